"""Notify on the real broker: the API, retries through Kafka, a restart mid-retry, e-mail,
acknowledgements, silences."""

import asyncio
import json
import signal
import ssl
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest

from schemas import AlertEvent, Scope
from services.common.topics import Topics
from tests.helpers import webhook_contact
from tests.integration.kafka_io import consume, produce, wait_ready

ADMIN = "admin-token-0123456789abcdefghij"
PARTNER = "partner-token-0123456789abcdefgh"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def alert(
    n: int, level="warning", status="firing", site="PA-LAJAS-BLANCAS", transition=1
) -> AlertEvent:
    now = datetime.now(UTC)
    return AlertEvent(
        alert_id=f"surge/site/{site}-{n}" if n else f"surge/site/{site}",
        transition=transition,
        rule_id="surge",
        rule_version="sha256:test",
        status=status,
        level=level if status == "firing" else None,
        previous_level=None if status == "firing" else level,
        scope=Scope(kind="site", id=site, country=site[:2]),
        value=2600,
        threshold=2500,
        window="PT24H",
        started_at=now,
        observed_until=now,
        evaluated_at=now,
        evidence=["e-1"],
        title={"en": "Surge", "es": "Aumento", "fr": "Afflux", "pt": "Aumento"},
    )


async def send_alerts(bootstrap, namespace, alerts):
    for a in alerts:
        await produce(
            bootstrap,
            Topics(namespace).alerts,
            [a.model_dump_json().encode()],
            key=a.alert_id.encode(),
        )


@pytest.fixture
async def notify(workers, tmp_path):
    (tmp_path / "contacts.yaml").write_text("version: 1\ncontacts: []\n")
    workers.env.update(
        EWS_CONTACTS_FILE=str(tmp_path / "contacts.yaml"),
        EWS_TOKENS=f"root:admin:{ADMIN};PA-SNM:partner:{PARTNER}",
        EWS_DELIVERY_BACKOFF_INITIAL_S="0.3",
        EWS_DELIVERY_BACKOFF_MAX_S="2",
        EWS_REMINDER_CHECK_INTERVAL_S="0.5",
    )

    async def start(**env):
        started = [workers.start("notify", **env)]
        await wait_ready(workers, started)
        return started[0]

    return start


async def test_the_api_registers_contacts_and_answers_bad_input_clearly(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    process, port = await notify()
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=20) as api:
        assert (await api.get("/contacts")).status_code == 401
        wrong = await api.get("/contacts", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "unknown or revoked token" in wrong.json()["error"]
        partner = await api.post(
            "/contacts", json={}, headers={"Authorization": f"Bearer {PARTNER}"}
        )
        assert partner.status_code == 403 and "role partner" in partner.json()["error"]

        missing = await api.post("/contacts", json={"id": "x"}, headers=AUTH)
        assert missing.status_code == 422
        assert {e["field"] for e in missing.json()["errors"]} >= {
            "name",
            "organisation",
            "channels",
        }
        bad_url = webhook_contact(receiver, "bad") | {
            "channels": [{"type": "webhook", "url": "not a url", "secret": "s" * 20}]
        }
        assert (
            (await api.post("/contacts", json=bad_url, headers=AUTH))
            .json()["errors"][0]["field"]
            .startswith("channels.0")
        )
        assert (await api.get("/contacts/nobody", headers=AUTH)).status_code == 404
        not_json = await api.post("/contacts", content=b"{nope", headers=AUTH)
        assert not_json.status_code == 400 and "body is not JSON" in not_json.json()["error"]
        deep = await api.post("/contacts", content=b"[" * 100_000 + b"]" * 100_000, headers=AUTH)
        assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]

        created = await api.post(
            "/contacts",
            json=webhook_contact(receiver, "pa", countries=["PA"], language="es"),
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        assert created.json()["channels"][0]["secret"] == "***"
        assert (
            await api.post("/contacts", json=webhook_contact(receiver, "pa"), headers=AUTH)
        ).status_code == 409
        patched = await api.patch("/contacts/pa", json={"min_level": "warning"}, headers=AUTH)
        assert patched.status_code == 200 and patched.json()["min_level"] == "warning"
        assert [c["id"] for c in (await api.get("/contacts", headers=AUTH)).json()["contacts"]] == [
            "pa"
        ]
        # a test message now, on each channel, its outcome answered and audited
        probe = await api.post("/contacts/pa/test", headers=AUTH)
        assert probe.status_code == 200, probe.text
        assert [(r["channel"], r["delivered"]) for r in probe.json()["results"]] == [
            ("webhook", True)
        ]
        [test] = receiver.received.values()
        assert test.payload["test"] is True and test.payload["language"] == "es"
        writes = (await api.get("/audit", headers=AUTH)).json()["writes"]
        assert any(
            w["action"] == "contact.test" and "delivered (200)" in w["detail"] for w in writes
        )
        receiver.received.clear()

    await send_alerts(kafka_bootstrap, namespace, [alert(0)])
    assert await receiver.wait_for(1, timeout_s=30), workers.logs()
    [delivery] = receiver.received.values()
    assert delivery.headers["Idempotency-Key"] == "surge/site/PA-LAJAS-BLANCAS:1:pa"
    assert delivery.payload["language"] == "es"

    async with httpx.AsyncClient(base_url=url, timeout=20) as api:
        partner_reads = await api.get("/alerts", headers={"Authorization": f"Bearer {PARTNER}"})
        assert partner_reads.status_code == 403  # partners publish and read nothing
        picture = (await api.get("/alerts", headers=AUTH)).json()
        assert picture["count"] == 1 and picture["alerts"][0]["acknowledged"] is False
        by_partner = await api.post(
            "/alerts/surge/site/PA-LAJAS-BLANCAS/ack",
            json={"comment": "team on site", "contact_id": "pa"},
            headers={"Authorization": f"Bearer {PARTNER}"},
        )
        assert by_partner.status_code == 403  # a data partner acknowledges nothing
        unnamed = await api.post("/alerts/surge/site/PA-LAJAS-BLANCAS/ack", json={}, headers=AUTH)
        assert unnamed.status_code == 422 and "each contact acknowledges for itself" in unnamed.text
        ack = await api.post(
            "/alerts/surge/site/PA-LAJAS-BLANCAS/ack",
            json={"comment": "team on site", "contact_id": "pa"},
            headers=AUTH,
        )
        assert ack.status_code == 200 and (ack.json()["by"], ack.json()["contact_id"]) == (
            "root",
            "pa",
        )
        [listed] = (await api.get("/alerts", headers=AUTH)).json()["alerts"]
        assert listed["acknowledged"] is True
        assert [(a["contact_id"], a["comment"]) for a in listed["acknowledgements"]] == [
            ("pa", "team on site")
        ]
        withdrawn = await api.delete(
            "/alerts/surge/site/PA-LAJAS-BLANCAS/ack?contact_id=pa", headers=AUTH
        )
        assert withdrawn.status_code == 204
        assert (await api.get("/alerts", headers=AUTH)).json()["alerts"][0]["acknowledged"] is False
        nothing = await api.post(
            "/alerts/nothing/here/ack", json={"contact_id": "pa"}, headers=AUTH
        )
        assert nothing.status_code == 404
        assert (await api.delete("/contacts/pa", headers=AUTH)).status_code == 204
        assert (await api.get("/contacts/pa", headers=AUTH)).status_code == 404


async def test_private_webhook_targets_are_refused_unless_allowed(notify, workers, receiver):
    workers.env["EWS_ALLOW_PRIVATE_WEBHOOKS"] = "0"
    process, port = await notify()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        refused = await api.post("/contacts", json=webhook_contact(receiver, "local"), headers=AUTH)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "channels.0.url"
    assert "https" in refused.json()["errors"][0]["message"]


async def test_a_receiver_that_fails_then_recovers_gets_everything_exactly_once(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    receiver.failures = [(500, {})] * 6 + [(429, {"Retry-After": "1"})] * 2 + [(503, {})] * 2
    process, port = await notify()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        for cid in ("one", "two"):
            assert (
                await api.post("/contacts", json=webhook_contact(receiver, cid), headers=AUTH)
            ).status_code == 201
    alerts = [alert(n) for n in range(1, 6)]
    await send_alerts(kafka_bootstrap, namespace, alerts)
    assert await receiver.wait_for(10, timeout_s=60), workers.logs()
    await asyncio.sleep(2)
    assert sorted(receiver.received) == sorted(
        f"{a.alert_id}:1:{c}" for a in alerts for c in ("one", "two")
    )
    assert receiver.duplicates == 0 and receiver.refused == 10
    records = [
        json.loads(r.value)
        for r in await consume(kafka_bootstrap, Topics(namespace).deliveries, 20, timeout_s=10)
    ]
    outcomes = sorted(r["outcome"] for r in records)
    assert outcomes.count("delivered") == 10 and outcomes.count("failed") == 10


async def test_notify_killed_mid_retry_loses_and_doubles_nothing(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    receiver.failures = [(500, {})] * 1000  # down for now
    process, port = await notify(
        EWS_DELIVERY_BACKOFF_INITIAL_S="1",
        EWS_DELIVERY_BACKOFF_MAX_S="2",
        EWS_DELIVERY_MAX_ATTEMPTS="30",
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        assert (
            await api.post("/contacts", json=webhook_contact(receiver, "one"), headers=AUTH)
        ).status_code == 201
    alerts = [alert(n) for n in range(1, 9)]
    await send_alerts(kafka_bootstrap, namespace, alerts)
    await consume(
        kafka_bootstrap, Topics(namespace).notify_retry, 8, timeout_s=30
    )  # all waiting on the retry topic
    process.send_signal(signal.SIGKILL)
    process.wait()
    receiver.failures.clear()  # the receiver recovers while notify is down
    restarted = workers.start(
        "notify",
        EWS_DELIVERY_BACKOFF_INITIAL_S="1",
        EWS_DELIVERY_BACKOFF_MAX_S="2",
        EWS_DELIVERY_MAX_ATTEMPTS="30",
    )
    await wait_ready(workers, [restarted])
    assert await receiver.wait_for(8, timeout_s=60), workers.logs()
    await asyncio.sleep(3)
    assert sorted(receiver.received) == sorted(f"{a.alert_id}:1:one" for a in alerts)
    assert receiver.duplicates == 0


async def test_after_the_last_attempt_a_delivery_is_dead_lettered(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    receiver.failures = [(500, {})] * 100
    process, port = await notify(EWS_DELIVERY_MAX_ATTEMPTS="3")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        assert (
            await api.post("/contacts", json=webhook_contact(receiver, "one"), headers=AUTH)
        ).status_code == 201
    await send_alerts(kafka_bootstrap, namespace, [alert(1)])
    [dead] = await consume(kafka_bootstrap, Topics(namespace).notify_dead, 1, timeout_s=30)
    assert json.loads(dead.value)["attempt"] == 3 and receiver.refused == 3
    async with httpx.AsyncClient() as client:
        assert (
            'ews_notify_dead_total{channel="webhook"} 1.0'
            in (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        )
    # an operator lists the dead letters and, the receiver mended, replays them
    key = "surge/site/PA-LAJAS-BLANCAS-1:1:one"
    listed = await asyncio.to_thread(ews_command, workers, "deliveries", "dead")
    assert listed.returncode == 0, listed.stderr
    assert f"{key}  contact one channel 0  3 attempts  last error: HTTP 500" in listed.stdout
    receiver.failures = []
    unknown = await asyncio.to_thread(ews_command, workers, "deliveries", "replay", "no:such:key")
    assert unknown.returncode == 1 and "no dead letter 'no:such:key' waiting" in unknown.stderr
    replayed = await asyncio.to_thread(ews_command, workers, "deliveries", "replay", "--all")
    assert replayed.returncode == 0 and f"replayed {key} (contact one)" in replayed.stdout
    assert await receiver.wait_for(1, timeout_s=30)
    assert list(receiver.received) == [key]  # with its original Idempotency-Key
    again = await asyncio.to_thread(ews_command, workers, "deliveries", "dead")
    assert again.stdout == "" and "0 dead letters" in again.stderr
    shown = await asyncio.to_thread(ews_command, workers, "deliveries", "dead", "--all")
    assert "(replayed " in shown.stdout


def ews_command(workers, *args: str):
    """`ews ...` as an operator runs it, against the test's broker and namespace."""
    import subprocess
    import sys

    from services.common.settings import PROJECT_ROOT

    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={
            "PATH": "/usr/bin:/bin",
            **{k: v for k, v in workers.env.items() if k.startswith("EWS_")},
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_repeats_stop_when_acknowledged_and_escalation_reaches_the_next_contact(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    process, port = await notify(EWS_REPEAT_INTERVAL="PT2S", EWS_ESCALATE_AFTER="PT3S")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        await api.post("/contacts", json=webhook_contact(receiver, "boss"), headers=AUTH)
        await api.post(
            "/contacts",
            json=webhook_contact(
                receiver,
                "duty",
                countries=["PA"],
                escalation_contacts=["boss"],
                min_level="warning",
            ),
            headers=AUTH,
        )
        await api.patch(
            "/contacts/boss", json={"countries": ["MX"]}, headers=AUTH
        )  # boss only hears by escalation
        await send_alerts(kafka_bootstrap, namespace, [alert(0)])
        deadline = time.monotonic() + 30
        while not any(k.endswith(":escalation") for k in receiver.received):
            assert time.monotonic() < deadline, (sorted(receiver.received), workers.logs())
            await asyncio.sleep(0.3)
        keys = sorted(receiver.received)
        assert (
            "surge/site/PA-LAJAS-BLANCAS:1:duty" in keys
            and "surge/site/PA-LAJAS-BLANCAS:1:duty:repeat-1" in keys
        )
        assert "surge/site/PA-LAJAS-BLANCAS:1:boss:escalation" in keys
        ack = await api.post(
            "/alerts/surge%2Fsite%2FPA-LAJAS-BLANCAS/ack", json={"contact_id": "duty"}, headers=AUTH
        )
        assert ack.status_code == 200, ack.text
        count = len(receiver.received)
        await asyncio.sleep(5)
        assert len(receiver.received) == count  # no repeat after the acknowledgement


async def test_a_silence_mutes_matching_alerts_and_is_recorded(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    process, port = await notify()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        await api.post("/contacts", json=webhook_contact(receiver, "one"), headers=AUTH)
        bad = await api.post("/silences", json={"comment": "x", "duration": "1h"}, headers=AUTH)
        assert bad.status_code == 422 and "at least one matcher" in bad.text
        created = await api.post(
            "/silences",
            json={"country": "PA", "duration": "1h", "comment": "census week"},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        await send_alerts(kafka_bootstrap, namespace, [alert(1), alert(2, site="CR-PASO-CANOAS")])
        assert await receiver.wait_for(1, timeout_s=30)
        await asyncio.sleep(2)
        assert list(receiver.received) == ["surge/site/CR-PASO-CANOAS-2:1:one"]
        listed = (await api.get("/silences", headers=AUTH)).json()["silences"]
        assert listed[0]["comment"] == "census week" and listed[0]["active"]
        expired = await api.delete(f"/silences/{created.json()['id']}", headers=AUTH)
        assert expired.status_code == 200 and expired.json()["expired_by"] == "root"
    records = [
        json.loads(r.value)
        for r in await consume(kafka_bootstrap, Topics(namespace).deliveries, 2, timeout_s=10)
    ]
    assert any(r["outcome"] == "refused" and "silenced by" in r["detail"] for r in records)


async def test_email_over_smtp_with_starttls(notify, workers, kafka_bootstrap, namespace, tmp_path):
    trustme = pytest.importorskip("trustme")
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox = []

    class Inbox(Message):
        def handle_message(self, message):
            inbox.append(message)

    from services.common.local_kafka import free_port

    port = free_port()
    controller = Controller(
        Inbox(), hostname="127.0.0.1", port=port, tls_context=server_context, require_starttls=True
    )
    controller.start()
    try:
        process, api_port = await notify(
            EWS_SMTP_HOST="127.0.0.1",
            EWS_SMTP_PORT=str(port),
            EWS_SMTP_CA_FILE=str(ca_file),
            EWS_SMTP_FROM="alerts@ews.test",
            EWS_PUBLIC_URL="https://ews.example.org",
            EWS_LINK_SECRET="link-secret-for-the-tests-0123456789",
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=20) as api:
            created = await api.post(
                "/contacts",
                json={
                    "id": "mail",
                    "name": "Mail",
                    "organisation": "IOM",
                    "language": "fr",
                    "channels": [{"type": "email", "address": "duty@iom.test"}],
                },
                headers=AUTH,
            )
            assert created.status_code == 201, created.text
        await send_alerts(kafka_bootstrap, namespace, [alert(0)])
        deadline = time.monotonic() + 30
        while not inbox:
            assert time.monotonic() < deadline, workers.logs()
            await asyncio.sleep(0.3)
        message = inbox[0]
        assert message["To"] == "duty@iom.test" and message["Subject"].startswith(
            "[EWS ALERTE] Afflux"
        )
        parts = {
            part.get_content_type(): part.get_payload(decode=True).decode("utf-8")
            for part in message.walk()
            if not part.is_multipart()
        }
        assert set(parts) == {"text/plain", "text/html"}  # the same content, twice
        body = parts["text/plain"]
        assert "Accusez réception" in body and "https://ews.example.org/ack/" in body
        assert "Bearer" not in body  # a signed link: no token needed
        assert body.splitlines()[0] in parts["text/html"]  # the summary first, in both
        assert 'href="https://ews.example.org/ack/' in parts["text/html"]
    finally:
        controller.stop()


async def test_operators_manage_contacts_from_the_command_line(
    notify, workers, kafka_bootstrap, namespace
):
    import subprocess
    import sys

    from services.common.settings import PROJECT_ROOT

    process, port = await notify()
    env = {
        "PATH": "/usr/bin:/bin",
        "EWS_NOTIFY_URL": f"http://127.0.0.1:{port}",
        "EWS_API_TOKEN": ADMIN,
    }

    def ews(*args):
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "contacts", *args],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = await asyncio.to_thread(
        ews,
        "add",
        "--id",
        "iom-roso",
        "--name",
        "Duty officer",
        "--organisation",
        "IOM",
        "--corridors",
        "darien-northbound",
        "--language",
        "es",
        "--webhook",
        "http://127.0.0.1:9/hook",
    )
    assert added.returncode == 0, added.stderr
    assert "registered iom-roso" in added.stdout and "webhook secret" in added.stdout
    listed = await asyncio.to_thread(ews, "list")
    assert "iom-roso" in listed.stdout and "darien-northbound" in listed.stdout
    assert listed.stdout.startswith("ID ") and "1 contact" in listed.stderr
    updated = await asyncio.to_thread(ews, "update", "iom-roso", "--min-level", "warning")
    assert updated.returncode == 0 and "updated iom-roso: min_level" in updated.stdout
    assert "warning" in (await asyncio.to_thread(ews, "list")).stdout
    # nothing listens on port 9: the test message says so, and the exit code too
    tested = await asyncio.to_thread(ews, "test", "iom-roso")
    assert tested.returncode == 1 and "webhook 127.0.0.1: failed" in tested.stdout, tested
    bad = await asyncio.to_thread(
        ews, "add", "--id", "x", "--name", "x", "--organisation", "x", "--countries", "ZZ"
    )
    assert bad.returncode == 1 and "countries.0" in bad.stderr and "channels" in bad.stderr
    removed = await asyncio.to_thread(ews, "remove", "iom-roso")
    assert removed.returncode == 0 and "removed iom-roso" in removed.stdout
    assert (await asyncio.to_thread(ews, "remove", "iom-roso")).returncode == 1


def deliveries_of(records, key_part: str) -> list[dict]:
    return [r for r in records if key_part in r["idempotency_key"]]


async def all_deliveries(bootstrap, namespace, at_least: int) -> list[dict]:
    return [
        json.loads(r.value)
        for r in await consume(bootstrap, Topics(namespace).deliveries, at_least, timeout_s=20)
    ]


async def test_a_silence_mutes_repeats_and_escalations_and_is_told_once_when_it_ends(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    """Silence Panama; a PA alert fires: no transition, repeat or escalation goes out while it
    holds. Expire it early while the alert still fires: each contact it muted is told the alert's
    current state once, marked as released from the silence."""
    process, port = await notify(EWS_REPEAT_INTERVAL="PT2S", EWS_ESCALATE_AFTER="PT3S")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        await api.post(
            "/contacts", json=webhook_contact(receiver, "boss", countries=["MX"]), headers=AUTH
        )
        await api.post(
            "/contacts",
            json=webhook_contact(receiver, "duty", countries=["PA"], escalation_contacts=["boss"]),
            headers=AUTH,
        )
        created = await api.post(
            "/silences",
            json={"country": "PA", "duration": "6h", "comment": "census week"},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        await send_alerts(kafka_bootstrap, namespace, [alert(0)])
        await asyncio.sleep(8)  # past the first repeat (2 s) and the escalation (3 s)
        assert receiver.received == {}, sorted(receiver.received)
        expired = await api.delete(f"/silences/{created.json()['id']}", headers=AUTH)
        assert expired.status_code == 200
        released_key = f"surge/site/PA-LAJAS-BLANCAS:1:duty:released-{created.json()['id']}"
        deadline = time.monotonic() + 30
        while released_key not in receiver.received:
            assert time.monotonic() < deadline, (sorted(receiver.received), workers.logs())
            await asyncio.sleep(0.3)
        body = receiver.received[released_key].payload
        assert body["released_from_silence"] == created.json()["id"]
        assert body["summary"].startswith(f"Held back by silence {created.json()['id']}")
    records = await all_deliveries(kafka_bootstrap, namespace, 2)
    muted = [r for r in records if r["outcome"] == "refused" and "silenced by" in r["detail"]]
    assert [r["idempotency_key"] for r in muted] == ["surge/site/PA-LAJAS-BLANCAS:1:duty"]
    assert not [k for k in receiver.received if k.endswith(":1:duty")]  # told once, as released


async def test_an_acknowledgement_holds_when_the_alert_de_escalates(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    process, port = await notify(EWS_REPEAT_INTERVAL="PT2S", EWS_ESCALATE_AFTER="PT1H")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        await api.post(
            "/contacts", json=webhook_contact(receiver, "duty", countries=["PA"]), headers=AUTH
        )
        warning = alert(0)
        await send_alerts(kafka_bootstrap, namespace, [warning])
        assert await receiver.wait_for(1, timeout_s=30)
        ack = await api.post(
            "/alerts/surge%2Fsite%2FPA-LAJAS-BLANCAS/ack", json={"contact_id": "duty"}, headers=AUTH
        )
        assert ack.status_code == 200, ack.text
        watch = warning.model_copy(
            update={
                "transition": 2,
                "level": "watch",
                "previous_level": "warning",
                "evaluated_at": datetime.now(UTC),
                "started_at": warning.started_at,
            }
        )
        await send_alerts(kafka_bootstrap, namespace, [watch])
        assert await receiver.wait_for(2, timeout_s=30)  # the de-escalation itself is told
        await asyncio.sleep(5)
        assert sorted(receiver.received) == [
            "surge/site/PA-LAJAS-BLANCAS:1:duty",
            "surge/site/PA-LAJAS-BLANCAS:2:duty",
        ]  # and no repeat resumes
        listed = (await api.get("/alerts", headers=AUTH)).json()["alerts"]
        assert listed[0]["acknowledged"] is True


async def test_whoever_was_told_warning_hears_the_de_escalation_and_the_resolution(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    process, port = await notify()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        await api.post(
            "/contacts",
            json=webhook_contact(receiver, "senior", countries=["PA"], min_level="warning"),
            headers=AUTH,
        )
        warning = alert(0)
        watch = warning.model_copy(
            update={"transition": 2, "level": "watch", "previous_level": "warning"}
        )
        resolved = warning.model_copy(
            update={
                "transition": 3,
                "status": "resolved",
                "level": None,
                "previous_level": "watch",
                "value": 100,
            }
        )
        await send_alerts(kafka_bootstrap, namespace, [warning, watch, resolved])
        assert await receiver.wait_for(3, timeout_s=30), sorted(receiver.received)
        assert sorted(receiver.received) == [
            f"surge/site/PA-LAJAS-BLANCAS:{n}:senior" for n in (1, 2, 3)
        ]


async def test_one_hanging_and_one_throttling_receiver_delay_no_one_else(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    """`slow` hangs past the 10 s timeout, `busy` answers 429 asking for an HTTP-date 3 s away;
    `duty` gets each of 5 alerts within seconds, and `busy` is tried again no sooner than asked."""
    process, port = await notify(EWS_WEBHOOK_TIMEOUT_S="10")
    receiver.hang_s = 15
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=6), usegmt=True)
    receiver.failures_for["slow"] = [(0, {})] * 5
    receiver.failures_for["busy"] = [(429, {"Retry-After": when})]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        for cid in ("slow", "busy", "duty"):
            await api.post(
                "/contacts", json=webhook_contact(receiver, cid, countries=["PA"]), headers=AUTH
            )
        sent = time.time()
        await send_alerts(kafka_bootstrap, namespace, [alert(n) for n in range(1, 6)])
        deadline = time.monotonic() + 20
        while len([k for k in receiver.received if k.endswith(":duty")]) < 5:
            assert time.monotonic() < deadline, (sorted(receiver.received), workers.logs())
            await asyncio.sleep(0.2)
        duty = [a.received_at - sent for k, a in receiver.received.items() if k.endswith(":duty")]
        assert max(duty) < 8, duty  # in order, behind `slow`, the fifth would wait 50 s
        [(throttled_key, throttled_at)] = [
            (key, at) for key, cid, at, status in receiver.attempts if status == 429
        ]
        deadline = time.monotonic() + 30
        while throttled_key not in receiver.received:
            assert time.monotonic() < deadline, (receiver.attempts, workers.logs())
            await asyncio.sleep(0.2)
    retried = receiver.received[throttled_key].received_at
    # no sooner than the date asked for (whole seconds, as HTTP-dates are), however long the
    # set-up took before the 429
    asked = parsedate_to_datetime(when).timestamp()
    assert retried >= asked - 0.05, (retried - asked, retried - throttled_at, receiver.attempts)
    assert asked > throttled_at  # the 429 came before the time it asked for


async def test_a_signed_link_in_each_message_acknowledges_for_its_contact_without_a_token(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    """Both contacts get repeats; duty acknowledges by the link in its message (GET shows a form,
    POST acknowledges): duty's repeats stop, other's go on; an altered link acknowledges
    nothing."""
    secret = "link-secret-for-the-tests-0123456789"
    process, port = await notify(
        EWS_REPEAT_INTERVAL="PT2S",
        EWS_ESCALATE_AFTER="PT1H",
        EWS_LINK_SECRET=secret,
        EWS_PUBLIC_URL="http://127.0.0.1:1",  # replaced below by the worker's own port
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        for cid, language in (("duty", "es"), ("other", "en")):
            contact = webhook_contact(receiver, cid, countries=["PA"], language=language)
            await api.post("/contacts", json=contact, headers=AUTH)
        await send_alerts(kafka_bootstrap, namespace, [alert(0)])
        assert await receiver.wait_for(2, timeout_s=30)
        link = receiver.received["surge/site/PA-LAJAS-BLANCAS:1:duty"].payload["ack_url"]
        assert link.startswith("http://127.0.0.1:1/ack/") and "LAJAS" not in link
        path = link.removeprefix("http://127.0.0.1:1")
        shown = await api.get(path)
        assert shown.status_code == 200 and "<form method='post'>" in shown.text
        # in the contact's language, the place as it was shown
        assert "Confirmar la recepción" in shown.text and "ERM Lajas Blancas" in shown.text
        assert shown.headers["Cache-Control"] == "no-store"
        assert (await api.get("/alerts", headers=AUTH)).json()["alerts"][0]["acknowledged"] is False
        tampered = await api.post(path[:-3] + "xyz", data={"comment": "x"})
        assert tampered.status_code == 403 and "not one ews signed" in tampered.text
        done = await api.post(path, data={"comment": "on our way"})
        assert done.status_code == 200 and "Recepción confirmada" in done.text, done.text
        [listed] = (await api.get("/alerts", headers=AUTH)).json()["alerts"]
        [ack] = listed["acknowledgements"]
        assert (ack["contact_id"], ack["via"], ack["comment"], ack["level"]) == (
            "duty",
            "link",
            "on our way",
            "warning",
        )
        await asyncio.sleep(1)
        before = {k for k in receiver.received if ":duty:repeat" in k}
        await asyncio.sleep(6)
        assert {k for k in receiver.received if ":duty:repeat" in k} == before
        assert any(":other:repeat" in k for k in receiver.received)


async def test_a_contact_that_groups_gets_a_countrys_transitions_as_one_message(
    notify, workers, receiver, kafka_bootstrap, namespace
):
    process, port = await notify()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
        created = await api.post(
            "/contacts",
            json=webhook_contact(
                receiver, "desk", countries=["PA", "CR"], group_by=["country"], group_wait="PT3S"
            ),
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        assert created.json()["group_by"] == ["country"]
    panama = [alert(n) for n in (1, 2, 3)]
    sent = time.monotonic()
    await send_alerts(kafka_bootstrap, namespace, [*panama, alert(4, site="CR-PASO-CANOAS")])
    assert await receiver.wait_for(2, timeout_s=30), sorted(receiver.received)
    assert time.monotonic() - sent >= 2.5  # the group waited to collect
    await asyncio.sleep(2)
    [group_key] = [k for k in receiver.received if ":group-" in k]
    parts = receiver.received[group_key].payload
    assert sorted(p["idempotency_key"] for p in parts) == [f"{a.alert_id}:1:desk" for a in panama]
    assert "surge/site/CR-PASO-CANOAS-4:1:desk" in receiver.received  # a group of one, alone
    assert len(receiver.received) == 2
