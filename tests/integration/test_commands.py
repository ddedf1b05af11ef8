"""The commands a newcomer runs: `make run`'s demo, and the clear failure without Java."""

import os
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
    assert "EMERGENCY" in out and "Surge in irregular arrivals nationwide at country HN" in out
    summary = {
        line.split()[0]: line.split()
        for line in out.split("▶ summary")[1].splitlines()
        if line.strip()
    }
    assert summary["rejected"][1] == "4"
    delivered = int(summary["deliveries"][1])
    assert delivered > 0
    assert "0 repeats, 0 bad signatures" in out


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
