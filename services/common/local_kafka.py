"""A real Apache Kafka broker on this machine, fetched from Maven Central and run in KRaft mode.

`ews kafka start|stop` (behind `make kafka` / `make kafka-stop`), `make run` and the test
fixture all use this module. The broker artifacts are resolved by Maven from
deploy/kafka/pom.xml into .cache/kafka (git-ignored) and run with the machine's Java 17+.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .settings import PROJECT_ROOT

POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
CACHE = PROJECT_ROOT / ".cache" / "kafka"
LOG4J_CONFIG = PROJECT_ROOT / "deploy" / "kafka" / "log4j2.properties"


class MissingTool(RuntimeError):
    """Java or Maven is not installed; the message says what to install."""


def _say(message: str) -> None:
    print(f"[kafka] {message}", file=sys.stderr, flush=True)


def check_tools() -> None:
    """Raise MissingTool with one clear sentence unless Java 17+ and Maven are on PATH."""
    java = shutil.which("java")
    if java is None:
        raise MissingTool(
            "Java 17 or newer is needed to run the local Kafka broker: install it "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and run again."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < 17:
        raise MissingTool(
            "Java 17 or newer is needed to run the local Kafka broker, found "
            f"{out.splitlines()[0] if out else 'unknown'}: "
            "install Java 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and run "
            "again."
        )
    if shutil.which("mvn") is None:
        raise MissingTool(
            "Maven is needed to fetch the Apache Kafka broker from Maven Central: install it "
            "(Debian/Ubuntu: apt-get install maven) and run again."
        )


def libs_dir() -> Path:
    """Where the jars for the current pom live; a changed pom gets a fresh folder."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return CACHE / f"libs-{digest}"


def fetch() -> Path:
    """Resolve the broker and its runtime dependencies with Maven (once; cached)."""
    check_tools()
    target = libs_dir()
    done = target / ".complete"
    if done.exists():
        return target
    _say(f"fetching Apache Kafka from Maven Central ({POM.relative_to(PROJECT_ROOT)}) ...")
    target.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(POM),
        f"-Dmaven.repo.local={CACHE / 'm2'}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            "Maven could not fetch Kafka (exit "
            f"{result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    jars = sorted(p.name for p in target.glob("kafka_2.13-*.jar"))
    done.write_text("\n".join(jars))
    _say(
        f"fetched {len(list(target.glob('*.jar')))} jars ({', '.join(jars)}) into "
        f"{target.relative_to(PROJECT_ROOT)}"
    )
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalBroker:
    """One KRaft broker (combined broker+controller) listening on loopback: a single-node cluster
    by default, or one node of a LocalCluster (node_id, voters and cluster_id given)."""

    data_dir: Path
    port: int
    controller_port: int
    process: subprocess.Popen | None = None
    node_id: int = 1
    voters: str | None = None  # controller.quorum.voters of a cluster; None: this node alone
    cluster_id: str | None = None
    replication: int = 1  # of the internal topics (consumer offsets, transactions)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def _write_config(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters
            or f"{self.node_id}@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "4",
            "offsets.topic.replication.factor": str(self.replication),
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": str(self.replication),
            "transaction.state.log.min.isr": str(min(2, self.replication)),
            "share.coordinator.state.topic.replication.factor": str(self.replication),
            "share.coordinator.state.topic.min.isr": str(min(2, self.replication)),
            # Tuned for tests and the demo: groups form at once, segments stay small.
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(16 * 1024 * 1024),
            "log.retention.check.interval.ms": "60000",
            "message.max.bytes": str(16 * 1024 * 1024),
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, libs: Path, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def start(self, timeout_s: float = 60.0) -> None:
        self.launch()
        self.wait_ready(timeout_s)

    def launch(self) -> None:
        """Format storage on first use and start the JVM; a cluster's nodes are all launched before
        any is ready."""
        libs = fetch()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            cluster_id = self.cluster_id or uuid.uuid4().hex[:22]
            fmt = subprocess.run(
                self._java(
                    libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)
                ),
                capture_output=True,
                text=True,
            )
            if fmt.returncode != 0:
                raise RuntimeError(f"formatting Kafka storage failed: {fmt.stdout}{fmt.stderr}")
        with open(self.log_file, "ab") as log:  # the broker keeps its own copy of the file
            self.process = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config), heap="1g"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self.data_dir / "broker.pid").write_text(str(self.process.pid))

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with {self.process.returncode}; see {self.log_file}"
                )
            if _port_open(self.port) and _metadata_answers(self.bootstrap):
                return
            time.sleep(0.3)
        raise TimeoutError(
            f"Kafka did not answer on {self.bootstrap} within {timeout_s:.0f}s; see {self.log_file}"
        )

    def kill(self) -> None:
        """SIGKILL, as a machine failing would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None
            (self.data_dir / "broker.pid").unlink(missing_ok=True)

    def stop(self, timeout_s: float = 30.0) -> None:
        pid = self.process.pid if self.process else _read_pid(self.data_dir)
        if pid is None:
            return
        stop_pid(pid, timeout_s)
        (self.data_dir / "broker.pid").unlink(missing_ok=True)
        self.process = None


@dataclass
class LocalCluster:
    """Several KRaft nodes on loopback forming one cluster (every node a broker and a voter)."""

    data_dir: Path
    size: int = 3
    brokers: list[LocalBroker] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = [(free_port(), free_port()) for _ in range(self.size)]
        voters = ",".join(
            f"{i + 1}@127.0.0.1:{controller}" for i, (_, controller) in enumerate(ports)
        )
        cluster_id = uuid.uuid4().hex[:22]
        self.brokers = [
            LocalBroker(
                self.data_dir / f"node-{i + 1}",
                port,
                controller,
                node_id=i + 1,
                voters=voters,
                cluster_id=cluster_id,
                replication=min(3, self.size),
            )
            for i, (port, controller) in enumerate(ports)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def start(self, timeout_s: float = 90.0) -> None:
        for broker in self.brokers:
            broker.launch()
        for broker in self.brokers:
            broker.wait_ready(timeout_s)

    def stop(self) -> None:
        for broker in self.brokers:
            broker.stop()


def _metadata_answers(bootstrap: str) -> bool:
    """True once the broker serves metadata (a TCP accept alone comes earlier)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except (KafkaError, OSError, TimeoutError):  # not up yet, or refusing connections
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def _read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "broker.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def stop_pid(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM a process group, wait, then SIGKILL it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + (timeout_s if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                if _is_zombie(pid):
                    _reap(pid)
                    return
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (FileNotFoundError, IndexError):
        return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# The background broker of `make kafka`: fixed ports, data kept between starts.
DEFAULT_BROKER = LocalBroker(data_dir=CACHE / "broker", port=9092, controller_port=9093)


def start_background() -> str:
    check_tools()
    broker = DEFAULT_BROKER
    pid = _read_pid(broker.data_dir)
    if pid is not None and _alive(pid):
        _say(f"already running (pid {pid}) at {broker.bootstrap}")
        return broker.bootstrap
    if _port_open(broker.port):
        raise RuntimeError(
            f"port {broker.port} is already in use by another program; stop it or use "
            "EWS_KAFKA_BOOTSTRAP"
        )
    broker.start()
    _say(
        f"Kafka is running (pid {broker.process.pid if broker.process else '?'}), log "
        f"{broker.log_file.relative_to(PROJECT_ROOT)}"
    )
    return broker.bootstrap


def stop_background() -> bool:
    pid = _read_pid(DEFAULT_BROKER.data_dir)
    if pid is None or not _alive(pid):
        (DEFAULT_BROKER.data_dir / "broker.pid").unlink(missing_ok=True)
        return False
    DEFAULT_BROKER.stop()
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return not _is_zombie(pid)
    except ProcessLookupError:
        return False
