"""A whole ews on this machine: a Kafka broker (or the cluster in EWS_KAFKA_BOOTSTRAP), worker
processes, their readiness, and supervision that restarts a worker which stopped itself on purpose
(exit 70/75/76, as compose and Kubernetes would). `make run`, `make bench` and the reliability
scenarios all stand the system up through here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.exits import EXIT_FAILED, EXIT_GAP, EXIT_STALLED
from services.common.kafka_admin import ensure_topics
from services.common.library_internals import refresh_metadata
from services.common.local_kafka import LocalBroker, free_port, stop_pid
from services.common.relay import stage_group
from services.common.settings import Settings
from services.common.topics import Topics

RESTART_CODES = (EXIT_FAILED, EXIT_STALLED, EXIT_GAP)  # a worker that stopped itself on purpose


class WorkerNotReady(RuntimeError):
    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


async def wait_until_ready(
    workers: Iterable[tuple[str, subprocess.Popen, int]], timeout_s: float = 120
) -> None:
    """Until each (name, process, web port) answers 200 on /readyz; WorkerNotReady if one exits or
    time runs out."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        for name, process, port in workers:
            while True:
                if process.poll() is not None:
                    raise WorkerNotReady(
                        f"the {name} worker exited with {process.returncode}", name
                    )
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise WorkerNotReady(
                        f"the {name} worker was not ready after {timeout_s:.0f}s", name
                    )
                await asyncio.sleep(0.3)


# Keys withheld identifiers on a stack of this machine's own (a deployment sets its own secret).
LOCAL_ID_SECRET = "local-stack-id-secret-not-for-deployments"


@dataclass
class LocalStack:
    run_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    namespace: str = "ews"
    bootstrap: str | None = None  # an existing cluster; otherwise a private broker is started
    broker: LocalBroker | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    restarts: int = 0

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    async def start_kafka(self) -> str:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.bootstrap is None:
            self.broker = LocalBroker(
                data_dir=self.run_dir / "kafka", port=free_port(), controller_port=free_port()
            )
            await asyncio.to_thread(self.broker.start)
            self.bootstrap = self.broker.bootstrap
        return self.bootstrap

    @property
    def env(self) -> dict[str, str]:
        assert self.bootstrap is not None
        return {
            **os.environ,
            "EWS_KAFKA_BOOTSTRAP": self.bootstrap,
            "EWS_TOPIC_NAMESPACE": self.namespace,
            "EWS_DATA_DIR": str(self.run_dir / "data"),
            "EWS_LOG_LEVEL": "warning",
            "EWS_ID_SECRET": os.environ.get("EWS_ID_SECRET", LOCAL_ID_SECRET),
            **{f"EWS_{s.upper()}_WEB_PORT": str(p) for s, p in self.ports.items()},
            **self.env_extra,
        }

    @property
    def settings(self) -> Settings:
        values: dict[str, Any] = {
            k[4:].lower(): v for k, v in self.env.items() if k.startswith("EWS_")
        }
        return Settings(**values)

    async def ensure_topics(self) -> None:
        await ensure_topics(self.settings)

    def launch(self, service: str, name: str | None = None) -> subprocess.Popen:
        """Start `ews worker SERVICE` (as NAME, for a second worker of one service), logging to
        logs/NAME.log."""
        name = name or service
        self.ports.setdefault(name, free_port())
        env = {
            **self.env,
            f"EWS_{service.upper()}_WEB_PORT": str(self.ports[name]),
            "EWS_INSTANCE_ID": name,  # restarted under its name: its partitions back at once
        }
        ews = shutil.which("ews", path=str(Path(sys.executable).parent)) or "ews"
        with open(self.logs / f"{name}.log", "ab") as log:  # the worker keeps its own copy
            self.workers[name] = subprocess.Popen(
                [ews, "worker", service],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self.workers[name]

    def service_of(self, name: str) -> str:
        return name.split("-")[0]

    async def wait_ready(self, names: list[str] | None = None, timeout_s: float = 120) -> None:
        names = names or list(self.workers)
        try:
            await wait_until_ready(
                [(name, self.workers[name], self.ports[name]) for name in names], timeout_s
            )
        except WorkerNotReady as exc:
            raise WorkerNotReady(
                f"{exc}; last lines of its log "
                f"({self.logs / exc.name}.log):\n{self.tail(exc.name)}",
                exc.name,
            ) from None

    def supervise(self) -> list[str]:
        """Restart workers that stopped themselves on purpose; raise if one died otherwise. Returns
        who restarted."""
        restarted = []
        for name, process in list(self.workers.items()):
            code = process.poll()
            if code in RESTART_CODES:
                self.launch(self.service_of(name), name)
                self.restarts += 1
                restarted.append(name)
            elif code is not None and code != 0 and code != -9:
                raise RuntimeError(f"the {name} worker exited with {code}:\n{self.tail(name)}")
        return restarted

    async def wait_drained(self, services: Iterable[str], timeout_s: float = 180) -> None:
        """Until each service's consumer group has committed everything on its input topics
        (restarting workers that stop themselves meanwhile): the barrier between steps of a
        scenario."""
        topics, ns = Topics(self.namespace), self.namespace
        groups = {  # service → its consumer groups → their input topics
            "ingest": {
                stage_group(ns, "ingest", "validation"): list(topics.feeds.values()),
                stage_group(ns, "ingest", "deduplication"): [topics.ingest_validated],
            },
            "triggers": {
                stage_group(ns, "triggers", "routing"): [topics.observations, topics.alerts],
                stage_group(ns, "triggers", "evaluation"): [topics.triggers_scoped],
            },
            "notify": {f"{ns}-notify": [topics.alerts, topics.notify_retry]},
        }
        deadline = time.monotonic() + timeout_s
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await admin.start()
        await consumer.start()
        try:
            while True:
                self.supervise()
                behind, lagging = 0, []
                for group, inputs in (g for service in services for g in groups[service].items()):
                    partitions = [
                        TopicPartition(t, p)
                        for t in inputs
                        for p in (consumer.partitions_for_topic(t) or ())
                    ]
                    if not partitions:
                        await refresh_metadata(consumer)
                        behind += 1
                        continue
                    ends = await consumer.end_offsets(partitions)
                    committed = await admin.list_consumer_group_offsets(
                        group, partitions=partitions
                    )
                    for tp in partitions:
                        done = committed.get(tp)
                        lag = max(
                            0,
                            ends[tp]
                            - (done.offset if done is not None and done.offset >= 0 else 0),
                        )
                        if lag:
                            behind += lag
                            lagging.append(f"{group}: {tp.topic}/{tp.partition} {lag} behind")
                if behind == 0:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{behind} messages still unprocessed after {timeout_s:.0f}s: "
                        f"{', '.join(lagging)}"
                    )
                await asyncio.sleep(0.3)
        finally:
            await consumer.stop()
            await admin.close()

    def kill(self, name: str) -> None:
        """kill -9, as a crashed machine would."""
        process = self.workers[name]
        os.killpg(process.pid, 9)
        process.wait()

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def peak_rss_mb(self, name: str) -> float | None:
        """The worker's peak resident memory so far (VmHWM), while it runs."""
        return self.rss_mb(name, "VmHWM")

    def rss_mb(self, name: str, field: str = "VmRSS") -> float | None:
        """The worker's resident memory now (or another /proc status field in kB), while it runs."""
        try:
            for line in Path(f"/proc/{self.workers[name].pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    async def stop(self, keep_kafka: bool = False) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                await asyncio.to_thread(stop_pid, process.pid, 15)
        if self.broker is not None and not keep_kafka:
            await asyncio.to_thread(self.broker.stop)
            shutil.rmtree(self.run_dir / "kafka", ignore_errors=True)
