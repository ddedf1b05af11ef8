"""`make run`: a local Kafka broker, the three workers, a webhook receiver and the bundled scenario.

Prints each alert as it is delivered and ends with a summary. Stops every process it
started, also on Ctrl-C or failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import SitesFile
from services.common.config_files import load_model
from services.common.geography import Geography
from services.common.kafka_admin import ensure_topics
from services.common.local_kafka import LocalBroker, MissingTool, check_tools, free_port, stop_pid
from services.common.settings import PROJECT_ROOT, Settings
from services.common.topics import Topics
from services.ingest.validation import FeedRejection, parse_feed_message
from services.notify.routing import route_to_contacts
from services.triggers.backtest import run_backtest
from services.triggers.loading import load_engine
from schemas import ContactsFile

from .receiver import ReceivedAlert, WebhookReceiver
from .scenario import FeedMessage, bundled_scenario

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
    people = [
        ("regional-duty-officer", "Regional duty officer", "IOM regional office (demo)", {}, "en"),
        ("pa-focal-point", "Punto focal nacional", "Migración Panamá (demo)", {"countries": ["PA"], "min_level": "warning"}, "es"),
        ("hn-focal-point", "Punto focal nacional", "INM Honduras (demo)", {"countries": ["HN"]}, "es"),
    ]
    contacts = []
    for contact_id, name, org, scope, language in people:
        secret = secrets.token_hex(16)
        receiver.secrets[contact_id] = secret
        contacts.append({"id": contact_id, "name": name, "organisation": org, "language": language, **scope,
                         "channels": [{"type": "webhook", "url": receiver.url_for(contact_id), "secret": secret}]})
    return {"version": 1, "contacts": contacts}


def expected_deliveries(messages: list[FeedMessage], settings: Settings) -> tuple[int, int, int]:
    """(valid messages, alert transitions, deliveries) the pure core predicts for the scenario."""
    geography = Geography(load_model(settings.sites_file, SitesFile))
    engine = load_engine(settings.triggers_file, settings.sites_file, settings.allowed_lateness)
    contacts = load_model(settings.resolved_contacts_file, ContactsFile).contacts
    now = datetime.now(timezone.utc)
    observations = []
    for message in messages:
        try:
            observations.append(parse_feed_message(message.feed, message.value, geography, now))
        except FeedRejection:
            pass
    alerts = run_backtest(observations, engine, now)
    deliveries = sum(len(route_to_contacts(a, contacts, geography)) for a in alerts)
    return len(observations), len(alerts), deliveries


def print_alert(alert: ReceivedAlert) -> None:
    p = alert.payload
    level = p["level"] if p["status"] == "firing" else None
    label = (p["level"] or "").upper() if p["status"] == "firing" else "RESOLVED"
    when = p["observed_until"][:10]
    say(f"  {_paint(f'{label:<9}', COLOURS[level])} {when}  → {alert.contact_id:<22} {p['summary']}")


async def _wait_ready(port: int, process: subprocess.Popen, name: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"the {name} worker exited with {process.returncode}:\n{tail}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"the {name} worker was not ready after {timeout_s:.0f}s; see {log}")


RESTART_CODES = (70, 75, 76)  # a worker that stopped itself on purpose (see services/common/faust_app.py)


async def _wait_for_deliveries(receiver: WebhookReceiver, count: int, workers: dict[str, subprocess.Popen],
                               logs: Path, launch, timeout_s: float, quiet_s: float = 15.0) -> bool:
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
        for name, process in list(workers.items()):
            if process.poll() in RESTART_CODES:
                say(f"  (the {name} worker stopped itself with code {process.returncode}; restarting it, as a supervisor would)")
                workers[name] = launch(name)
                continue
            if process.poll() is not None:
                tail = "\n".join((logs / f"{name}.log").read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"the {name} worker exited with {process.returncode}:\n{tail}")
    return False


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        out = {}
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer._client.force_metadata_update()
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
    return message.value[at + len(marker): at + len(marker) + 10].decode(errors="replace") if at >= 0 else ""


async def _demo(keep_kafka: bool) -> int:
    started = time.monotonic()
    run_dir = RUN_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    logs = run_dir / "logs"
    logs.mkdir()
    broker: LocalBroker | None = None
    workers: dict[str, subprocess.Popen] = {}
    receiver = WebhookReceiver(secrets={}, on_alert=print_alert)
    try:
        existing = os.environ.get("EWS_KAFKA_BOOTSTRAP")
        if existing:
            bootstrap, namespace = existing, f"demo{int(time.time())}"
            say(f"▶ using the Kafka cluster at {bootstrap} (topics under {namespace}.*)")
        else:
            broker = LocalBroker(data_dir=run_dir / "kafka", port=free_port(), controller_port=free_port())
            say("▶ starting a local Apache Kafka broker (KRaft, loopback) ...")
            await asyncio.to_thread(broker.start)
            bootstrap, namespace = broker.bootstrap, "ews"
            say(f"  Kafka is up at {bootstrap}")

        await receiver.start()
        contacts_file = run_dir / "contacts.yaml"
        contacts_file.write_text(yaml.safe_dump(demo_contacts(receiver), allow_unicode=True, sort_keys=False))
        ports = {service: free_port() for service in SERVICES}
        env = {
            **os.environ,
            "EWS_KAFKA_BOOTSTRAP": bootstrap,
            "EWS_TOPIC_NAMESPACE": namespace,
            "EWS_CONTACTS_FILE": str(contacts_file),
            "EWS_ALLOW_PRIVATE_WEBHOOKS": "1",  # the demo receiver listens on loopback
            "EWS_DATA_DIR": str(run_dir / "data"),
            "EWS_LOG_LEVEL": "warning",
            **{f"EWS_{s.upper()}_WEB_PORT": str(p) for s, p in ports.items()},
        }
        settings = Settings(**{k[4:].lower(): v for k, v in env.items() if k.startswith("EWS_") and k != "EWS_ALLOW_PRIVATE_WEBHOOKS"},
                            allow_private_webhooks=True)
        await ensure_topics(settings)
        say(f"▶ starting the workers: {', '.join(SERVICES)}; webhook receiver on {receiver.host}:{receiver.port}")
        ews = shutil.which("ews", path=str(Path(sys.executable).parent)) or "ews"

        def launch(service: str) -> subprocess.Popen:
            log = open(logs / f"{service}.log", "ab")
            return subprocess.Popen([ews, "worker", service], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

        for service in SERVICES:
            workers[service] = launch(service)
        await asyncio.gather(*(
            _wait_ready(ports[s], workers[s], s, logs / f"{s}.log", 120) for s in SERVICES
        ))
        say("  all three workers are ready")

        messages = bundled_scenario()
        valid, transitions, deliveries = expected_deliveries(messages, settings)
        say(f"▶ replaying the bundled scenario: {len(messages)} feed messages "
            f"(INM Honduras monthly arrivals 2014–2025, real; Darién corridor October 2026, synthetic)")
        say(f"  the rules predict {transitions} alert transitions and {deliveries} deliveries; arriving:")
        await _produce(bootstrap, Topics(namespace), messages)
        arrived = await _wait_for_deliveries(receiver, deliveries, workers, logs, launch, timeout_s=120)
        await asyncio.sleep(2)  # let late extras (there should be none) show up before counting

        topics = Topics(namespace)
        deadline = time.monotonic() + 15
        while True:  # every message is either published or rejected; wait until ingest has done both
            counts = await _end_offsets(bootstrap, [topics.observations, topics.ingest_rejected, topics.alerts])
            if counts[topics.observations] + counts[topics.ingest_rejected] >= len(messages) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        say("")
        say("▶ summary")
        say(f"  events in          {len(messages)}")
        say(f"  accepted           {counts[topics.observations]}  (expected {valid})")
        say(f"  rejected           {counts[topics.ingest_rejected]}  (with reasons, on {topics.ingest_rejected})")
        say(f"  alerts fired       {counts[topics.alerts]}  transitions on {topics.alerts} (the backtest predicts {transitions})")
        say(f"  deliveries         {len(receiver.received)}  distinct, signature verified (backtest: {deliveries}); "
            f"{receiver.duplicates} repeats, {receiver.bad_signatures} bad signatures")
        say(f"  took               {time.monotonic() - started:.0f}s; logs in {logs.relative_to(PROJECT_ROOT)}")
        if not receiver.received:
            say("✗ no alert reached the receiver; see the worker logs above")
            return 1
        if not arrived:
            say("! fewer deliveries than the backtest predicted: reports of the same day reached the workers in\n"
                "  another order than the file's, which can merge two steps of a composite; see the worker logs")
        return 0
    finally:
        say("▶ stopping everything the demo started")
        for process in workers.values():
            if process.poll() is None:
                stop_pid(process.pid, timeout_s=15)
        await receiver.stop()
        if broker is not None and not keep_kafka:
            await asyncio.to_thread(broker.stop)
            shutil.rmtree(run_dir / "kafka", ignore_errors=True)


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
    except Exception as exc:
        print(f"make run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
