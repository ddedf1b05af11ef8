"""Shared fixtures: a real Apache Kafka broker for the session, worker processes,
topic namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.local_kafka import LocalBroker, MissingTool, check_tools, free_port, stop_pid
from services.common.settings import PROJECT_ROOT, Settings
from services.demo.stack import LOCAL_ID_SECRET

CONFIG = PROJECT_ROOT / "config"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """EWS_KAFKA_BOOTSTRAP if set, else a fresh single-node KRaft broker started
    for this session."""
    existing = os.environ.get("EWS_KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    try:
        check_tools()
    except MissingTool as exc:
        pytest.exit(str(exc), returncode=3)
    data_dir = Path(tempfile.mkdtemp(prefix="ews-test-kafka-"))
    broker = LocalBroker(data_dir=data_dir, port=free_port(), controller_port=free_port())
    broker.start()
    yield broker.bootstrap
    broker.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def namespace() -> str:
    """A topic namespace of this test's own, so tests sharing the broker never see each other's
    messages."""
    return f"t{uuid.uuid4().hex[:10]}"


class Workers:
    """Starts `ews worker ...` processes with a test's settings and stops them all afterwards."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self.launches: dict[int, tuple[str, dict]] = {}  # pid → how it was started
        self.restarts = 0

    def settings(self) -> Settings:
        values: dict[str, Any] = {
            k[4:].lower(): v for k, v in self.env.items() if k.startswith("EWS_")
        }
        return Settings(**values)

    def start(
        self, service: str, port: int | None = None, **extra_env: str
    ) -> tuple[subprocess.Popen, int]:
        port = port or free_port()
        env = {**self.env, f"EWS_{service.upper()}_WEB_PORT": str(port), **extra_env}
        with open(self.log_dir / f"{service}-{len(self.processes)}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "worker", service],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=PROJECT_ROOT,
            )
        self.processes.append(process)
        self.launches[process.pid] = (service, {"port": port, **extra_env})
        return process, port

    async def supervise(self, exit_codes: tuple[int, ...] = (70, 75, 76)) -> None:
        """Restart workers that stop themselves on purpose, as compose or Kubernetes would."""
        import asyncio

        while True:
            for process in list(self.processes):
                if process.poll() in exit_codes and process.pid in self.launches:
                    service, options = self.launches.pop(process.pid)
                    self.start(service, **options)
                    self.restarts += 1
            await asyncio.sleep(0.5)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                stop_pid(process.pid, timeout_s=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


@pytest.fixture
def workers(kafka_bootstrap: str, namespace: str, tmp_path: Path):
    env = {
        **os.environ,
        "EWS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EWS_TOPIC_NAMESPACE": namespace,
        "EWS_DATA_DIR": str(tmp_path / "data"),
        "EWS_ALLOW_PRIVATE_WEBHOOKS": "1",
        "EWS_DELIVERY_BACKOFF_INITIAL_S": "0.2",
        "EWS_LOG_LEVEL": "info",
        "EWS_ID_SECRET": LOCAL_ID_SECRET,
    }
    (tmp_path / "logs").mkdir()
    pool = Workers(env, tmp_path / "logs")
    yield pool
    pool.stop_all()
