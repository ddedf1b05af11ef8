"""The commands a newcomer runs: `make run`'s demo, and the clear failure without Java."""

import os
import re
import subprocess
import sys

from services.common.settings import PROJECT_ROOT


def test_the_demo_replays_the_scenario_and_delivers_alerts(kafka_bootstrap):
    env = {**os.environ, "EWS_KAFKA_BOOTSTRAP": kafka_bootstrap}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "EMERGENCY" in out and "Surge in irregular arrivals nationwide in Honduras" in out
    assert "people crossing in 1 month" in out and "Data for " in out  # units and dates in words
    summary = {
        line.split()[0]: line.split()
        for line in out.split("▶ summary")[1].splitlines()
        if line.strip()
    }
    assert summary["rejected"][1] == "4"
    assert re.search(r"the console: http://127\.0\.0\.1:\d+/console/ +sign in as demo\.pa", out)
    assert re.search(r"password [\w-]{12}", out)
    delivered = int(summary["deliveries"][1])
    assert delivered > 0
    assert (
        "0 missing, 0 extra, 0 saying otherwise); 0 repeats (0 with other content), 0 bad " in out
    )


def test_without_java_the_broker_commands_say_what_to_install():
    env = {**os.environ, "PATH": "/nonexistent"}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "kafka", "start"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 3
    assert "Java 17 or newer is needed" in result.stderr and "install" in result.stderr


async def test_a_worker_started_before_its_broker_waits_for_it_and_then_runs(
    workers, kafka_bootstrap
):
    """Machines reboot in any order: `ews worker` started while nothing answers at
    EWS_KAFKA_BOOTSTRAP says it is waiting and starts once the broker does."""
    import asyncio

    from services.common.local_kafka import free_port
    from tests.integration.kafka_io import wait_ready

    port = free_port()
    workers.env["EWS_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{port}"
    started = [workers.start("triggers")]
    process = started[0][0]
    deadline = asyncio.get_running_loop().time() + 30
    while "waiting for the Kafka broker" not in workers.logs():
        assert process.poll() is None, workers.logs()
        assert asyncio.get_running_loop().time() < deadline, workers.logs()
        await asyncio.sleep(0.5)
    await asyncio.sleep(5)
    assert process.poll() is None, workers.logs()
    assert f"waiting for the Kafka broker at 127.0.0.1:{port}" in workers.logs()

    # the broker "comes up" at that address: a forwarder to the test broker, whose metadata then
    # names its own address for everything after the bootstrap
    host, real_port = kafka_bootstrap.rsplit(":", 1)

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def forward(reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(real_port))
        asyncio.ensure_future(pipe(reader, upstream_writer))
        asyncio.ensure_future(pipe(upstream_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        await wait_ready(workers, started, timeout_s=120)
    finally:
        server.close()


async def test_a_worker_given_a_failing_file_exits_once_with_every_problem(workers, tmp_path):
    """No restart loop of tracebacks: the problems at their lines, exit 78 (not restarted by the
    supervisor), whichever worker reads the file."""
    import asyncio
    import shutil

    from services.common.exits import EXIT_CONFIG

    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    triggers = config / "triggers.yaml"
    text = triggers.read_text()
    triggers.write_text(
        text[: text.index("overrides:")]
        + "overrides:\n  GT:\n    crossing-surge: {levels: {watch: 300, warning: 600, "
        "emergency: 1200}}\n  GU:\n    crossing-surge: {clear: 100}\n"
    )
    workers.env["EWS_CONFIG_DIR"] = str(config)
    for service in ("triggers", "ingest"):
        process, _ = workers.start(service)
        for _ in range(600):
            if process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert process.returncode == EXIT_CONFIG, workers.logs()
    logs = workers.logs()
    assert "Traceback" not in logs
    assert logs.count("overrides.GT.crossing-surge: GT's crossing-surge: clear (800.0)") == 2
    assert logs.count("overrides.GU: GU has no sites or areas") == 2
    assert "configuration refused; fix the lines above and start again (exit 78" in logs
