"""The ingest and triggers workers' four stage transforms run in one process over the bench
workload, without a broker: microseconds per event for each stage's own work (what py-spy on a live
worker mixes with the Kafka client and the broker).

    .venv/bin/python -m bench.stages [--events 50000] [--sites 1000]

Each batch of feed messages goes through validation, de-duplication, routing and evaluation in
turn, each stage's outputs becoming the next one's records (partitions as the live workers choose
them, over 4 partitions). The workers' Faust apps (web endpoints, timers) are not built.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from services.common.relay import Out, Relay, Step, _index_of

from .workload import feed_messages

STAGES = ("validation", "deduplication", "routing", "evaluation")
PARTITIONS = 4


class Record(NamedTuple):  # what a stage reads of an aiokafka ConsumerRecord
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list


class _NoApp:
    """Stands in for a worker's Faust app: its decorators hand back what they decorate."""

    def __getattr__(self, name):
        def decorator(*args, **kwargs):
            return (
                args[0]
                if args and callable(args[0]) and not kwargs
                else (lambda function: function)
            )

        return decorator


def _transforms(config: Path) -> dict:
    os.environ["EWS_CONFIG_DIR"] = str(config)
    os.environ["EWS_TOPIC_NAMESPACE"] = "stages"
    from services.common.settings import Settings
    from services.ingest import app as ingest
    from services.triggers import app as triggers

    built: dict = {}
    for_service = Relay.for_service.__func__  # type: ignore[attr-defined]

    def capture(cls, settings, service, stage, topics, transform, **options):
        built[stage] = transform
        return for_service(cls, settings, service, stage, topics, transform, **options)

    # the stages are built as the services build them, without Kafka or Faust
    Relay.for_service = classmethod(capture)  # type: ignore[method-assign,assignment]
    Relay.partition_for = lambda self, topic, key: _index_of(key, PARTITIONS)  # type: ignore[method-assign]
    ingest.create_faust_app = triggers.create_faust_app = lambda *args, **kwargs: _NoApp()  # type: ignore[assignment]
    from services.common.outage import BrokerHealth

    health = BrokerHealth("127.0.0.1:9")  # the timers that would ask it are not run
    ingest.broker_health = triggers.broker_health = lambda app: health
    settings = Settings()
    ingest.create_app(settings)
    triggers.create_app(settings)
    return built


def _records(outs: list[Out], offsets: dict) -> list[Record]:
    records = []
    for out in outs:
        partition = (
            out.partition
            if out.partition is not None
            else _index_of(out.key, PARTITIONS)
            if out.key
            else 0
        )
        offset = offsets[(out.topic, partition)] = offsets.get((out.topic, partition), -1) + 1
        records.append(Record(out.topic, partition, offset, out.key, out.value, out.headers or []))
    return records


async def measure(n: int, n_sites: int, batch: int = 2000) -> dict[str, float]:
    from services.common.topics import Topics

    from .run import config_dir

    transforms = _transforms(config_dir(Path(tempfile.mkdtemp(prefix="ews-stages-")), n_sites))
    topics = Topics("stages")
    passed_on = {
        "validation": topics.ingest_validated,
        "deduplication": topics.observations,
        "routing": topics.triggers_scoped,
        "evaluation": None,
    }
    feed = [
        Record(topics.feeds[name], i % PARTITIONS, i, None, value, [])
        for i, (name, value) in enumerate(feed_messages(n, n_sites))
    ]
    gc.freeze()  # as `ews worker` does
    gc.set_threshold(100_000, 50, 1000)
    spent = dict.fromkeys(STAGES, 0.0)
    offsets: dict = {}
    for start in range(0, n, batch):
        records = feed[start : start + batch]
        for stage in STAGES:
            began = time.perf_counter()
            result = transforms[stage](records)
            spent[stage] += time.perf_counter() - began
            outputs = result.outputs if isinstance(result, Step) else result
            records = _records([o for o in outputs if o.topic == passed_on[stage]], offsets)
    return {stage: seconds / n * 1e6 for stage, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--sites", type=int, default=1000)
    args = parser.parse_args()
    costs = asyncio.run(measure(args.events, args.sites))
    for stage, us in costs.items():
        print(f"  {stage:<14} {us:7.1f} µs per event")
    total = sum(costs.values())
    print(
        f"  {'all four':<14} {total:7.1f} µs per event: {1e6 / total:,.0f} events/s on one core, "
        "no broker"
    )


if __name__ == "__main__":
    main()
