"""Copy a feed through the whole system while parts fail, then verify: every expected delivery
arrived, none extra (services/demo/verify.py computes the expectation with the pure core).

Each scenario is seeded and bounded in time. The feed is produced a day at a time and each day
drained before the next: live evaluation happens on arrival, so the same days must reach a
scope in order for live and backtest to agree (see issue 4), and the faults land between and
inside days. Sizes: EWS_FAULT_SITES x EWS_FAULT_DAYS reports (default 40 x 16 = 640 reports).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from bench.workload import write_geography
from services.common.local_kafka import LocalCluster
from services.common.topics import Topics
from services.demo.receiver import WebhookReceiver
from services.demo.stack import LocalStack
from services.demo.verify import expected_deliveries, verify

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SITES = int(os.environ.get("EWS_FAULT_SITES", "40"))
DAYS = int(os.environ.get("EWS_FAULT_DAYS", "16"))
START = datetime(2026, 3, 1, tzinfo=UTC)
RULES = {
    "version": 1,
    "triggers": [
        {
            "id": "surge",
            "kind": "threshold",
            "feed": "border_crossing",
            "metric": "count",
            "scope": "site",
            "window": "24h",
            "levels": {"watch": 1000, "warning": 2500, "emergency": 5000},
            "clear": 800,
            "clear_for": "24h",
            "title": {"en": "Surge", "es": "Aumento", "fr": "Afflux", "pt": "Aumento"},
            "rationale": "test",
        },
        {
            "id": "children",
            "kind": "threshold",
            "feed": "border_crossing",
            "metric": "unaccompanied_children",
            "scope": "site",
            "window": "24h",
            "levels": {"watch": 20, "warning": 60},
            "clear": 10,
            "title": {"en": "Children", "es": "Niños", "fr": "Enfants", "pt": "Crianças"},
            "rationale": "test",
        },
    ],
}


def feed(seed: int, config: Path) -> list[list[tuple[str, bytes, bytes]]]:
    """Per day: (feed, key, value) of one report per site, counts wandering across the levels."""
    rng = random.Random(seed)
    sites = [
        (s["id"], s["country"])
        for s in yaml.safe_load((config / "sites.yaml").read_text())["sites"]
    ]
    level = [rng.randint(300, 3000) for _ in range(SITES)]
    days = []
    for day in range(DAYS):
        reports = []
        for i in range(SITES):
            level[i] = min(
                9000, max(0, int(level[i] * rng.uniform(0.55, 1.7)) + rng.randint(-100, 100))
            )
            site, country = sites[i]
            body = {
                "event_id": f"r-{site}-{day}",
                "source": f"TEST-{country}",
                "site_id": site,
                "observed_at": (START + timedelta(days=day)).isoformat(),
                "period": "P1D",
                "count": level[i],
                "to_country": country,
                "unaccompanied_children": level[i] // rng.randint(30, 300),
            }
            reports.append(("border-crossings", site.encode(), json.dumps(body).encode()))
        days.append(reports)
    return days


@pytest.fixture
async def system(tmp_path: Path, kafka_bootstrap: str):
    """A config dir (rules above, SITES generated sites, one webhook contact), a receiver, and a
    stack."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "triggers.yaml").write_text(yaml.safe_dump(RULES, allow_unicode=True))
    write_geography(SITES, config / "sites.yaml")
    receiver = WebhookReceiver(secrets={"duty": "duty-secret-0123456789abcdef"}, hang_s=3.0)
    await receiver.start()
    (config / "contacts.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "contacts": [
                    {
                        "id": "duty",
                        "name": "Duty",
                        "organisation": "test",
                        "channels": [
                            {
                                "type": "webhook",
                                "url": receiver.url_for("duty"),
                                "secret": "duty-secret-0123456789abcdef",
                            }
                        ],
                    }
                ],
            }
        )
    )
    stack = LocalStack(
        tmp_path / "stack",
        namespace=f"f{secrets.token_hex(4)}",
        bootstrap=kafka_bootstrap,
        env_extra={
            "EWS_CONFIG_DIR": str(config),
            "EWS_ALLOW_PRIVATE_WEBHOOKS": "1",
            "EWS_WEBHOOK_TIMEOUT_S": "1",
            "EWS_DELIVERY_MAX_ATTEMPTS": "50",
            "EWS_DELIVERY_BACKOFF_INITIAL_S": "0.2",
            "EWS_DELIVERY_BACKOFF_MAX_S": "2",
            "EWS_STALL_TIMEOUT_S": "20",
            "EWS_LOG_LEVEL": "info",
        },
    )
    stack.logs.mkdir(parents=True)
    yield config, receiver, stack
    await stack.stop()
    await receiver.stop()


async def copy_feed(stack: LocalStack, days, faults: dict) -> None:
    """Produce day by day; before day d, run faults[d] (it may be async); drain after each day."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    topics = Topics(stack.namespace)
    try:
        for d, reports in enumerate(days):
            half = len(reports) // 2
            for i, (feed_name, key, value) in enumerate(reports):
                if i == half and d in faults:  # the fault lands in the middle of a day
                    await producer.flush()
                    result = faults[d]()
                    if asyncio.iscoroutine(result):
                        await result
                await producer.send(topics.feeds[feed_name], value, key=key)
            await producer.flush()
            await stack.wait_drained(["ingest", "triggers"])
    finally:
        await producer.stop()


async def start_all(stack: LocalStack) -> None:
    await stack.ensure_topics()
    for service in ("ingest", "triggers", "notify"):
        stack.launch(service)
    await stack.wait_ready()


async def settle(
    stack: LocalStack, receiver: WebhookReceiver, expected: dict, timeout_s: float = 120
) -> None:
    """Wait for the expected deliveries (supervising restarts), then a little longer
    for any extra."""
    deadline = time.monotonic() + timeout_s
    while not set(expected) <= set(receiver.received) and time.monotonic() < deadline:
        stack.supervise()
        await asyncio.sleep(0.5)
    try:
        await stack.wait_drained(["notify"])
    except TimeoutError as exc:  # say why: the workers' own words
        logs = "\n".join(f"--- {n}\n{stack.tail(n, 60)}" for n in stack.workers)
        raise AssertionError(f"{exc}\n{logs}") from None
    await asyncio.sleep(3)


def check(config: Path, days, receiver: WebhookReceiver, stack: LocalStack) -> None:
    expected = expected_deliveries([(f, v) for day in days for f, _, v in day], config)
    verdict = verify(expected, receiver.received, receiver.duplicates, receiver.conflicts)
    assert len(expected) > 40, "the feed should cause many transitions"
    assert verdict.ok, f"{verdict}\n" + "\n".join(
        f"--- {n}\n{stack.tail(n, 30)}" for n in stack.workers
    )


async def test_each_worker_killed_mid_stream_and_restarted_delivers_every_transition_once(system):
    config, receiver, stack = system
    days = feed(11, config)
    await start_all(stack)

    def kill_and_restart(name: str):
        async def act() -> None:
            stack.kill(name)
            stack.launch(name)

        return act

    faults = {
        DAYS // 4: kill_and_restart("ingest"),
        DAYS // 2: kill_and_restart("triggers"),
        3 * DAYS // 4: kill_and_restart("notify"),
    }
    await copy_feed(stack, days, faults)
    expected = expected_deliveries([(f, v) for day in days for f, _, v in day], config)
    await settle(stack, receiver, expected)
    check(config, days, receiver, stack)


async def test_a_webhook_outage_of_errors_timeouts_and_429_then_recovery_delivers_each_one_once(
    system,
):
    config, receiver, stack = system
    days = feed(12, config)
    await start_all(stack)

    def outage() -> None:
        receiver.failures.extend(
            [(500, {})] * 15 + [(0, {})] * 4 + [(429, {"Retry-After": "1"})] * 10 + [(503, {})] * 5
        )

    await copy_feed(stack, days, {DAYS // 3: outage})
    expected = expected_deliveries([(f, v) for day in days for f, _, v in day], config)
    await settle(stack, receiver, expected)
    assert receiver.refused == 34  # the outage happened, and ended
    check(config, days, receiver, stack)


async def test_notify_killed_in_a_storm_of_429s_loses_and_doubles_nothing(system):
    """Every receiver answers 429 (Retry-After 1 s) for a while; notify is killed -9 in the middle
    of it, with deliveries waiting to be tried again, and restarted."""
    config, receiver, stack = system
    days = feed(14, config)
    await start_all(stack)

    def storm() -> None:
        receiver.failures.extend([(429, {"Retry-After": "1"})] * 60)

    async def kill_notify() -> None:
        stack.kill("notify")
        stack.launch("notify")

    await copy_feed(stack, days, {DAYS // 3: storm, DAYS // 3 + 1: kill_notify})
    expected = expected_deliveries([(f, v) for day in days for f, _, v in day], config)
    await settle(stack, receiver, expected)
    assert receiver.refused >= 20  # the storm happened
    check(config, days, receiver, stack)


@pytest.mark.parametrize("how", ["stopped", "killed"])
async def test_the_broker_stopped_or_killed_and_restarted_mid_stream_delivers_every_transition_once(
    tmp_path, system, how
):
    """The only broker goes away mid-stream, with SIGTERM (a clean shutdown) or SIGKILL (a machine
    failing: what it acknowledged is in the page cache, not yet on disk)."""
    config, receiver, stack = system
    private = LocalStack(
        tmp_path / "private"
    )  # a broker of its own: stopping the shared one would hurt other tests
    stack.bootstrap = await private.start_kafka()
    days = feed(13, config)
    await start_all(stack)

    async def bounce() -> None:
        assert private.broker is not None
        await asyncio.to_thread(private.broker.stop if how == "stopped" else private.broker.kill)
        await asyncio.sleep(5)
        await asyncio.to_thread(private.broker.start)

    try:
        await copy_feed(stack, days, {DAYS // 2: bounce})
        expected = expected_deliveries([(f, v) for day in days for f, _, v in day], config)
        await settle(stack, receiver, expected)
        check(config, days, receiver, stack)
    finally:
        await stack.stop()
        await private.stop()


async def test_a_broker_of_three_killed_mid_stream_delivers_every_transition_once(tmp_path, system):
    """Replication factor 3, min.insync.replicas 2: with one broker gone, writes still have two
    replicas."""
    config, receiver, stack = system
    cluster = LocalCluster(tmp_path / "cluster", size=3)
    await asyncio.to_thread(cluster.start)
    stack.bootstrap = cluster.bootstrap
    stack.env_extra.update(
        {"EWS_TOPIC_REPLICATION_FACTOR": "3", "EWS_TOPIC_MIN_INSYNC_REPLICAS": "2"}
    )
    days = feed(14, config)
    try:
        await start_all(stack)
        await copy_feed(stack, days, {DAYS // 2: cluster.brokers[1].kill})
        expected = expected_deliveries([(f, v) for day in days for f, _, v in day], config)
        await settle(stack, receiver, expected)
        check(config, days, receiver, stack)
    finally:
        await stack.stop()
        await asyncio.to_thread(cluster.stop)


OUTAGE_S = float(os.environ.get("EWS_FAULT_OUTAGE_S", "120"))


async def test_a_broker_outage_of_two_minutes_with_every_worker_running_is_ridden_out(
    tmp_path, system
):
    """No worker exits while the broker is gone; each says so on /readyz (503 naming the broker)
    and /healthz stays its own liveness; after the broker is back they resume by themselves and
    every transition is delivered once."""
    config, receiver, stack = system
    private = LocalStack(tmp_path / "private")
    stack.bootstrap = await private.start_kafka()
    days = feed(17, config)
    token = "partner-token-0123456789abcdefgh"
    source = json.loads(days[0][0][2])["source"]  # the report it posts during the outage
    stack.env_extra["EWS_TOKENS"] = f"partner:partner/{source}:{token}"
    await start_all(stack)
    seen: dict[str, set[tuple[int, int, bool]]] = {name: set() for name in stack.workers}
    refused: list[httpx.Response] = []

    async def outage() -> None:
        assert private.broker is not None
        await asyncio.to_thread(private.broker.stop)
        deadline = time.monotonic() + OUTAGE_S
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                for name, process in stack.workers.items():
                    assert process.poll() is None, f"{name} exited:\n{stack.tail(name, 40)}"
                    port = stack.ports[name]
                    ready = await client.get(f"http://127.0.0.1:{port}/readyz")
                    alive = await client.get(f"http://127.0.0.1:{port}/healthz")
                    seen[name].add((ready.status_code, alive.status_code, "broker" in ready.text))
                if not refused and time.monotonic() > deadline - OUTAGE_S / 2:
                    refused.append(
                        await client.post(
                            f"http://127.0.0.1:{stack.ports['ingest']}/feeds/border-crossings",
                            json=[json.loads(days[0][0][2])],
                            headers={"Authorization": f"Bearer {token}"},
                            timeout=90,
                        )
                    )
                await asyncio.sleep(2)
        await asyncio.to_thread(private.broker.start)

    try:
        await copy_feed(stack, days, {DAYS // 2: outage})
        expected = expected_deliveries([(f, v) for day in days for f, _, v in day], config)
        await settle(stack, receiver, expected, timeout_s=240)
        check(config, days, receiver, stack)
        assert stack.restarts == 0 and all(p.poll() is None for p in stack.workers.values())
        for name, answers in seen.items():
            assert (503, 200, True) in answers, (name, answers)  # not ready, alive, says why
        [upload] = refused  # a partner posting during the outage is told to come back
        assert upload.status_code == 503 and upload.headers["Retry-After"] == "30", upload.text
        assert "broker" in upload.json()["error"]
        for name in stack.workers:
            lines = (stack.logs / f"{name}.log").read_text().count("Unable connect to node")
            assert lines < 50, f"{name} logged {lines} connection errors"
    finally:
        await stack.stop()
        await private.stop()
