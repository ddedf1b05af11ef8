"""Stateless stages on aiokafka directly: read a batch, turn it into messages, send them all, commit.

Faust's per-event machinery (stream iteration, acks, sensors, a future and a serialiser pass per
send) measured as most of a worker's time in `make bench`. A stage that keeps no state needs
nothing of Faust's tables or recovery, so it runs here: `getmany` up to `max_records`, one call
of `transform` over the whole batch, every output handed to the producer without waiting for it,
then one wait for all acknowledgements, then one commit.

At least once: a batch's offsets are committed only after every message it produced was
acknowledged by the broker, and a rebalance waits for the batch in flight. A crash repeats at most
the uncommitted batches; the stages after drop repeats by key (ingest by event_id and digest,
triggers by scope and event_id). A stage's own bug stops the worker (exit 70) like a failing Faust
agent, so its supervisor restarts it from the last commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter, Gauge

from .exits import EXIT_FAILED, stop_worker

log = logging.getLogger(__name__)

LAG = Gauge("ews_consumer_lag_messages", "Messages on a topic not yet committed by the consumer group that reads it",
            ["group", "topic"])
RECORDS = Counter("ews_relay_records_total", "Records a stateless stage read, by stage", ["stage"])


def stage_group(namespace: str, service: str, stage: str) -> str:
    """The consumer group of a service's batch stage (Faust's own group is "{namespace}-{service}")."""
    return f"{namespace}-{service}-{stage}"


class Out(NamedTuple):
    """One message a stage produces."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None  # None: by key, as every Kafka client does (murmur2)
    headers: list[tuple[str, bytes]] | None = None


class Relay:
    """One stateless stage: `transform(records) -> [Out]` between `topics` and whatever it returns."""

    def __init__(self, stage: str, bootstrap: str, group_id: str, topics: Sequence[str],
                 transform: Callable[[list[ConsumerRecord]], list[Out]], *, max_records: int = 2000,
                 session_timeout_s: float = 30.0, heartbeat_interval_s: float = 3.0,
                 rebalance_timeout_s: float = 60.0, max_request_size: int = 1_048_576,
                 output_topics: Sequence[str] = ()) -> None:
        self.stage = stage
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = list(topics)
        self.transform = transform
        self.max_records = max_records
        self.consumer_options = dict(
            session_timeout_ms=int(session_timeout_s * 1000), heartbeat_interval_ms=int(heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(rebalance_timeout_s * 1000), max_poll_interval_ms=int(rebalance_timeout_s * 1000))
        self.max_request_size = max_request_size
        self.output_topics = list(output_topics)  # whose partitions `partition_for` knows
        self._partitions: dict[str, list[int]] = {}
        self.assigned = asyncio.Event()
        self.waiting_for: list[str] = list(topics)
        self._in_flight = asyncio.Lock()

    @classmethod
    def for_service(cls, settings, service: str, stage: str, topics: Sequence[str],
                    transform: Callable[[list[ConsumerRecord]], list[Out]], **options) -> Relay:
        """A stage of `service`'s workers: their own consumer group, the deployment's broker and timeouts."""
        return cls(stage, settings.kafka_bootstrap, stage_group(settings.topic_namespace, service, stage), topics, transform,
                   session_timeout_s=settings.broker_session_timeout_s,
                   heartbeat_interval_s=settings.broker_heartbeat_interval_s,
                   rebalance_timeout_s=settings.broker_rebalance_timeout_s, **options)

    def partition_for(self, topic: str, key: bytes) -> int:
        """The partition a message with this key goes to when sent by key (one of `output_topics`)."""
        return DefaultPartitioner()(key, self._partitions[topic], None)

    def not_ready(self) -> list[str]:
        """Reasons for /readyz: topics that do not exist yet, no assignment yet."""
        if self.waiting_for:
            return [f"{self.stage}: waiting for topic {', '.join(self.waiting_for)} to exist"]
        if not self.assigned.is_set():
            return [f"{self.stage}: waiting for the first partition assignment"]
        return []

    async def run(self) -> None:
        """The stage, for the life of the worker (run it as a task; cancel it to stop)."""
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - anything else is a bug or a broker that gave up: restart
            log.critical("stage %s failed, stopping the worker so it restarts from the last commit: %r",
                         self.stage, exc, exc_info=exc)
            stop_worker(EXIT_FAILED)

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=1,
                                    max_request_size=self.max_request_size)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group_id,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=4 << 20, **self.consumer_options)
        await producer.start()
        await consumer.start()
        try:
            for topic in self.output_topics:
                self._partitions[topic] = sorted(await producer.partitions_for(topic))
            await self._wait_for_topics(consumer)
            consumer.subscribe(self.topics, listener=_WaitForBatch(self))
            loop, next_lag_export = asyncio.get_running_loop(), 0.0
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=self.max_records)
                if batch:
                    async with self._in_flight:  # a rebalance waits until this batch is committed
                        await self._process(consumer, producer, batch)
                if loop.time() >= next_lag_export:
                    await self._export_lag(consumer)
                    next_lag_export = loop.time() + 1.0
        finally:
            await consumer.stop()
            await producer.stop()

    async def _wait_for_topics(self, consumer: AIOKafkaConsumer) -> None:
        """Subscribing to a topic that does not exist yet would see it only at the next metadata refresh."""
        announced = False
        while True:
            await consumer._client.force_metadata_update()
            self.waiting_for = [t for t in self.topics if not consumer.partitions_for_topic(t)]
            if not self.waiting_for:
                return
            if not announced:
                log.warning("%s: waiting for topic %s to exist (ews topics create)", self.stage, ", ".join(self.waiting_for))
                announced = True
            await asyncio.sleep(1.0)

    async def _process(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, batch: dict) -> None:
        assigned = consumer.assignment()
        batch = {tp: records for tp, records in batch.items() if tp in assigned}  # revoked since the fetch: its new owner has them
        if not batch:
            return
        records = [record for records in batch.values() for record in records]
        RECORDS.labels(self.stage).inc(len(records))
        outputs = self.transform(records)
        sent = [await producer.send(out.topic, out.value, key=out.key, partition=out.partition, headers=out.headers)
                for out in outputs]
        if sent:
            await asyncio.gather(*sent)  # a failed send raises: nothing of this batch is committed
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            log.warning("%s: the group rebalanced before this batch was committed (%s); its new owner repeats it",
                        self.stage, exc)
        except KafkaError as exc:
            log.warning("%s: commit failed (%r); the next batch's commit covers it", self.stage, exc)

    async def _export_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Behind = the partition's end minus what this stage has read (and, a batch later, committed)."""
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - await consumer.position(tp))
        for topic in self.topics:  # a topic no longer assigned here reads 0, not its last value
            LAG.labels(self.group_id, topic).set(lag.get(topic, 0))


class _WaitForBatch(ConsumerRebalanceListener):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def on_partitions_revoked(self, revoked) -> None:
        async with self.relay._in_flight:
            pass  # the batch in flight, if any, has been sent and committed

    async def on_partitions_assigned(self, assigned) -> None:
        self.relay.assigned.set()
        log.info("%s: assigned %s", self.relay.stage, sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))
