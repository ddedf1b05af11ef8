"""`make run`: a local Kafka broker, the three workers, a webhook receiver and the bundled scenario.

Prints each alert as it is delivered and ends with a summary. Stops every process it
started, also on Ctrl-C or failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time
from datetime import datetime
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.library_internals import refresh_metadata
from services.common.local_kafka import MissingTool, check_tools
from services.common.settings import PROJECT_ROOT
from services.common.topics import Topics

from .receiver import ReceivedAlert, WebhookReceiver
from .scenario import FeedMessage, bundled_scenario
from .stack import LocalStack
from .verify import predict, verify

RUN_DIR = PROJECT_ROOT / ".cache" / "run"
SERVICES = ("ingest", "triggers", "notify")
COLOURS = {"watch": "33", "warning": "35", "emergency": "31", None: "32"}
TTY = sys.stdout.isatty()


def say(text: str) -> None:
    print(text, flush=True)


def _paint(text: str, colour: str) -> str:
    return f"\033[{colour}m{text}\033[0m" if TTY else text


def demo_contacts(receiver: WebhookReceiver) -> dict:
    """Three coordination contacts, all pointing at the local receiver."""
    people: list[tuple[str, str, str, dict[str, Any], str]] = [
        ("regional-duty-officer", "Regional duty officer", "IOM regional office (demo)", {}, "en"),
        (
            "pa-focal-point",
            "Punto focal nacional",
            "Migración Panamá (demo)",
            {"country": "PA", "countries": ["PA"], "min_level": "warning"},
            "es",
        ),
        (
            "hn-focal-point",
            "Punto focal nacional",
            "INM Honduras (demo)",
            {"country": "HN", "countries": ["HN"]},
            "es",
        ),
    ]
    contacts = []
    for contact_id, name, org, scope, language in people:
        secret = secrets.token_hex(16)
        receiver.secrets[contact_id] = secret
        contacts.append(
            {
                "id": contact_id,
                "name": name,
                "organisation": org,
                "language": language,
                **scope,
                "channels": [
                    {"type": "webhook", "url": receiver.url_for(contact_id), "secret": secret}
                ],
            }
        )
    return {"version": 1, "contacts": contacts}


def print_alert(alert: ReceivedAlert) -> None:
    p = alert.payload
    if p.get("test"):  # a test message sent from the console's contacts page
        say(f"  {'TEST':<9} {p['sent_at'][:10]}  → {alert.contact_id:<22} {p['summary']}")
        return
    level = p["level"] if p["status"] == "firing" else None
    label = (p["level"] or "").upper() if p["status"] == "firing" else "RESOLVED"
    when = p["observed_until"][:10]
    say(
        f"  {_paint(f'{label:<9}', COLOURS[level])} {when}  → {alert.contact_id:<22} {p['summary']}"
    )


async def _wait_for_deliveries(
    receiver: WebhookReceiver,
    count: int,
    stack: LocalStack,
    timeout_s: float,
    quiet_s: float = 15.0,
) -> bool:
    """Wait for `count` deliveries, or until nothing new arrived for `quiet_s` after the first one.

    Live composites may combine member alerts in another order than the backtest that made
    the prediction, so the count can differ by a transition; the run does not hang on it.
    Restarts a worker that stopped itself on purpose; fails at once if a worker dies otherwise.
    """
    deadline = time.monotonic() + timeout_s
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        if await receiver.wait_for(count, timeout_s=1.0):
            return True
        if len(receiver.received) != last_count:
            last_count, last_change = len(receiver.received), time.monotonic()
        elif last_count > 0 and time.monotonic() - last_change > quiet_s:
            return False
        for name in stack.supervise():
            say(f"  (the {name} worker stopped itself; restarting it, as a supervisor would)")
    return False


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        out = {}
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await refresh_metadata(consumer)
                partitions = consumer.partitions_for_topic(topic) or set()
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
            out[topic] = sum(ends.values())
        return out
    finally:
        await consumer.stop()


async def _produce(bootstrap: str, topics: Topics, messages: list[FeedMessage]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        previous_day = None
        for message in messages:
            day_marker = message.origin.split(":")[0], _observed_day(message)  # pause between days
            if previous_day is not None and day_marker != previous_day:
                await producer.flush()
                await asyncio.sleep(0.05)
            previous_day = day_marker
            await producer.send(topics.feeds[message.feed], message.value, key=message.key or None)
        await producer.flush()
    finally:
        await producer.stop()


def _observed_day(message: FeedMessage) -> str:
    marker = b'"observed_at": "'
    at = message.value.find(marker)
    return (
        message.value[at + len(marker) : at + len(marker) + 10].decode(errors="replace")
        if at >= 0
        else ""
    )


async def _demo(keep_kafka: bool) -> int:
    started = time.monotonic()
    run_dir = RUN_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    receiver = WebhookReceiver(secrets={}, on_alert=print_alert)
    existing = os.environ.get("EWS_KAFKA_BOOTSTRAP")
    contacts_file = run_dir / "contacts.yaml"
    accounts_file = run_dir / "accounts.yaml"
    password = secrets.token_urlsafe(9)  # this run's console password, printed below
    stack = LocalStack(
        run_dir,
        namespace=f"demo{int(time.time())}" if existing else "ews",
        bootstrap=existing,
        env_extra={
            "EWS_CONTACTS_FILE": str(contacts_file),
            "EWS_ALLOW_PRIVATE_WEBHOOKS": "1",  # the demo receiver listens on loopback
            "EWS_ACCOUNTS_FILE": str(accounts_file),
            "EWS_CONSOLE_SECRET": secrets.token_urlsafe(32),
        },
    )
    logs = stack.logs
    try:
        if existing:
            say(f"▶ using the Kafka cluster at {existing} (topics under {stack.namespace}.*)")
        else:
            say("▶ starting a local Apache Kafka broker (KRaft, loopback) ...")
        bootstrap = await stack.start_kafka()
        if not existing:
            say(f"  Kafka is up at {bootstrap}")
        await receiver.start()
        contacts_file.write_text(
            yaml.safe_dump(demo_contacts(receiver), allow_unicode=True, sort_keys=False)
        )
        accounts_file.write_text(yaml.safe_dump(demo_accounts(password), allow_unicode=True))
        settings = stack.settings
        await stack.ensure_topics()
        say(
            f"▶ starting the workers: {', '.join(SERVICES)}; webhook receiver on "
            f"{receiver.host}:{receiver.port}"
        )
        for service in SERVICES:
            stack.launch(service)
        await stack.wait_ready()
        say("  all three workers are ready")
        console = f"http://127.0.0.1:{stack.ports['notify']}/console/"
        say(
            f"▶ the console: {console}  sign in as demo.pa (Panamá's focal point, in Spanish) or "
            f"demo.regional (regional administrator), password {password}"
        )

        messages = bundled_scenario()
        prediction = predict(
            [(m.feed, m.value) for m in messages],
            settings.triggers_file,
            settings.sites_file,
            settings.resolved_contacts_file,
            settings.allowed_lateness,
            settings.resolved_sharing_file,
            secret.get_secret_value()
            if (secret := settings.id_secret or settings.link_secret)
            else None,
        )
        transitions, deliveries = len(prediction.alerts), len(prediction.deliveries)
        say(
            f"▶ replaying the bundled scenario: {len(messages)} feed messages "
            "(INM Honduras monthly arrivals 2014–2025, real; Darién corridor October 2026, "
            "synthetic)"
        )
        say(
            f"  the rules predict {transitions} alert transitions and {deliveries} deliveries; "
            "arriving:"
        )
        topics = Topics(stack.namespace)
        await _produce(bootstrap, topics, messages)
        arrived = await _wait_for_deliveries(receiver, deliveries, stack, timeout_s=120)
        await asyncio.sleep(2)  # let late extras (there should be none) show up before counting

        deadline = time.monotonic() + 15
        while (
            True
        ):  # every message is either published or rejected; wait until ingest has done both
            counts = await _end_offsets(
                bootstrap, [topics.observations, topics.ingest_rejected, topics.alerts]
            )
            if (
                counts[topics.observations] + counts[topics.ingest_rejected] >= len(messages)
                or time.monotonic() > deadline
            ):
                break
            await asyncio.sleep(0.5)
        verdict = verify(
            prediction.deliveries, receiver.received, receiver.duplicates, receiver.conflicts
        )
        say("")
        say("▶ summary")
        say(f"  events in          {len(messages)}")
        say(f"  accepted           {counts[topics.observations]}  (expected {prediction.valid})")
        say(
            f"  rejected           {counts[topics.ingest_rejected]}  (with reasons, on "
            f"{topics.ingest_rejected})"
        )
        say(
            f"  alerts fired       {counts[topics.alerts]}  transitions on {topics.alerts} (the "
            f"backtest predicts {transitions})"
        )
        say(
            f"  deliveries         {len(receiver.received)}  distinct, signature verified "
            f"(backtest: {deliveries}; "
            f"{len(verdict.missing)} missing, {len(verdict.extra)} extra, {len(verdict.wrong)} "
            f"saying otherwise); {receiver.duplicates} repeats ({receiver.conflicts} with other "
            f"content), {receiver.bad_signatures} bad signatures"
        )
        say(
            f"  took               {time.monotonic() - started:.0f}s; logs in "
            f"{logs.relative_to(PROJECT_ROOT)}"
        )
        if not receiver.received:
            say("✗ no alert reached the receiver; see the worker logs above")
            return 1
        if not arrived or not verdict.ok:
            say(
                "! the deliveries differ from the backtest's: reports of one scope reached the "
                "workers in another\n"
                "  order than the file's (see EWS_EVALUATION_SETTLE_S in README), or a composite "
                "combined its members\n"
                "  in another order; see the worker logs"
            )
        if sys.stdin.isatty():
            say(f"▶ the console stays open at {console} (password {password}): press Enter to stop")
            await _until_enter()
        return 0
    finally:
        say("▶ stopping everything the demo started")
        await stack.stop(keep_kafka=keep_kafka)
        await receiver.stop()


def demo_accounts(password: str) -> dict:
    """Two people for the console: Panamá's focal point (Spanish) and a regional administrator."""
    from services.notify.console.accounts import hash_password

    hashed = hash_password(password)
    return {
        "version": 1,
        "accounts": [
            {
                "username": "demo.pa",
                "name": "Punto focal de Panamá (demo)",
                "role": "coordinator",
                "country": "PA",
                "language": "es",
                "contacts": ["pa-focal-point"],
                "password_hash": hashed,
            },
            {
                "username": "demo.regional",
                "name": "Regional duty officer (demo)",
                "role": "admin",
                "language": "en",
                "contacts": ["regional-duty-officer"],
                "password_hash": hashed,
            },
        ],
    }


async def _until_enter() -> None:
    """Wait for Enter on the terminal (Ctrl-C cancels the demo as always)."""
    loop = asyncio.get_running_loop()
    pressed = loop.create_future()

    def readable() -> None:
        if not pressed.done():
            pressed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), readable)
    try:
        await pressed
        sys.stdin.readline()
    finally:
        loop.remove_reader(sys.stdin.fileno())


def run_demo(keep_kafka: bool = False) -> int:
    try:
        check_tools()
    except MissingTool as exc:
        print(exc, file=sys.stderr)
        return 3
    loop = asyncio.new_event_loop()
    task = loop.create_task(_demo(keep_kafka))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        print("interrupted; everything the demo started has been stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 (the demo's last word: say what failed, exit 1)
        print(f"make run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
