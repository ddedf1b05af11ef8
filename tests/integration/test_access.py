"""Access through the real notify API and broker: principals with a role and a country, an
authorisation matrix (endpoint × role × country → status), alerts read through the sharing policy
(a Honduran site named to no one outside Honduras), writes scoped by country, and workers that
listen only where their settings say."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from services.common.topics import Topics
from tests.helpers import site_alert, webhook_contact
from tests.integration.kafka_io import produce, wait_ready

TOKENS = {
    "admin": ("root:admin", "admin-token-0123456789abcdefghij"),
    "op-pa": ("op-pa:operator@PA", "operator-pa-token-0123456789abcd"),
    "op-regional": ("op-reg:operator", "operator-regional-token-012345678"),
    "co-pa": ("co-pa:coordinator@PA", "coordinator-pa-token-0123456789ab"),
    "co-hn": ("co-hn:coordinator@HN", "coordinator-hn-token-0123456789ab"),
    "partner": ("PA-SNM:partner", "partner-token-0123456789abcdefgh"),
}


def auth(who: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who][1]}"} if who else {}


def contact(receiver, cid: str, country: str | None) -> dict:
    # these tests read the API: nothing needs delivering below an emergency
    return webhook_contact(receiver, cid, country=country, min_level="emergency")


@pytest.fixture
async def api(workers, tmp_path, receiver, kafka_bootstrap, namespace):
    contacts = [contact(receiver, "pa-focal", "PA"), contact(receiver, "hn-focal", "HN")]
    (tmp_path / "contacts.yaml").write_text(json.dumps({"version": 1, "contacts": contacts}))
    workers.env.update(
        EWS_CONTACTS_FILE=str(tmp_path / "contacts.yaml"),
        EWS_TOKENS=";".join(f"{spec}:{token}" for spec, token in TOKENS.values()),
    )
    started = [workers.start("notify")]
    await wait_ready(workers, started)
    alerts = [site_alert("HN-TROJES"), site_alert("PA-LAJAS-BLANCAS", value=4394)]
    for a in alerts:
        await produce(
            kafka_bootstrap,
            Topics(namespace).alerts,
            [a.model_dump_json().encode()],
            key=a.alert_id.encode(),
        )
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{started[0][1]}", timeout=20
    ) as client:
        for _ in range(100):
            listed = (await client.get("/alerts", headers=auth("admin"))).json()
            if listed["count"] == 2:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail(f"the alerts never reached notify: {listed}")
        # a contact of Honduras created through the API, for the write rows
        created = await client.post(
            "/contacts", json=contact(receiver, "hn-api", "HN"), headers=auth("admin")
        )
        assert created.status_code == 201, created.text
        yield client, started[0]


def silence(**matchers) -> dict:
    return {"duration": "1h", "comment": "maintenance of the feed", **matchers}


# (method, path, body, who → expected status); a body may name the principal to stay unique
MATRIX: list[tuple[str, str, object, dict[str | None, int]]] = [
    ("GET", "/contacts", None,
     {None: 401, "admin": 200, "op-pa": 200, "op-regional": 200, "co-pa": 200, "partner": 403}),
    ("POST", "/contacts", "contact-HN",
     {"admin": 201, "op-regional": 201, "op-pa": 403, "co-hn": 403, "partner": 403}),
    ("POST", "/contacts", "contact-PA",
     {"op-pa": 201, "co-pa": 403, "partner": 403}),
    ("GET", "/contacts/hn-api", None,
     {"admin": 200, "co-hn": 200, "op-pa": 404, "co-pa": 404, "partner": 403}),
    ("PATCH", "/contacts/hn-api", {"language": "es"},
     {"op-pa": 404, "co-hn": 403, "partner": 403, "admin": 200}),
    ("DELETE", "/contacts/hn-api", None, {"op-pa": 404, "co-hn": 403, "partner": 403}),
    ("GET", "/alerts", None,
     {None: 401, "admin": 200, "op-pa": 200, "co-pa": 200, "co-hn": 200, "partner": 403}),
    ("GET", "/alerts/history", None, {"admin": 200, "co-pa": 200, "partner": 403}),
    ("GET", "/silences", None, {"admin": 200, "op-pa": 200, "co-hn": 200, "partner": 403}),
    ("POST", "/silences", silence(country="HN"),
     {"admin": 201, "op-regional": 201, "op-pa": 403, "co-hn": 403, "partner": 403}),
    ("POST", "/silences", silence(scope_id="HN-TROJES"), {"op-pa": 403}),
    ("POST", "/silences", silence(rule_id="crossing-surge"), {"op-pa": 201, "co-pa": 403}),
    ("POST", "/alerts/crossing-surge%2Fsite%2FHN-TROJES/ack", {"contact_id": "hn-focal"},
     {"co-hn": 200, "op-pa": 404, "co-pa": 404, "partner": 403}),
    ("POST", "/alerts/crossing-surge%2Fsite%2FHN-TROJES/ack", {"contact_id": "pa-focal"},
     {"co-pa": 404, "op-pa": 404}),  # Panama's readers do not know the Honduran site's id
    ("POST", "/alerts/crossing-surge%2Fsite%2FPA-LAJAS-BLANCAS/ack", {"contact_id": "pa-focal"},
     {"co-pa": 200, "op-pa": 200, "co-hn": 404, "admin": 200}),
]  # fmt: skip


async def test_the_authorisation_matrix_every_endpoint_role_and_country(api, receiver):
    client, _ = api
    failures = []
    for method, path, body, expected in MATRIX:
        for who, status in expected.items():
            payload = body
            if isinstance(body, str) and body.startswith("contact-"):
                payload = contact(receiver, f"c-{who}-{body[-2:].lower()}", body[-2:])
            answer = await client.request(
                method, path, headers=auth(who), **({"json": payload} if payload else {})
            )
            if answer.status_code != status:
                said = answer.text[:200]
                failures.append(
                    f"{method} {path} as {who}: {answer.status_code} ≠ {status}: {said}"
                )
    assert not failures, "\n".join(failures)


async def test_readers_see_alerts_as_their_country_may(api):
    client, _ = api
    seen_by_pa = await client.get("/alerts", headers=auth("co-pa"))
    text = seen_by_pa.text
    for withheld in ("HN-TROJES", "HN-INM/r-1", "HN-EP"):
        assert withheld not in text, withheld
    assert not re.search(r"(?<![\d.])3000(?!\d)", text)  # the site's figure (not in a time)
    alerts = {a["scope"]["id"]: a for a in seen_by_pa.json()["alerts"]}
    honduras = alerts["HN"]
    assert honduras["value"] is None and honduras["evidence"] == []
    assert honduras["alert_id"].startswith("crossing-surge/country/HN/w")
    assert alerts["PA-LAJAS-BLANCAS"]["value"] == 4394
    # the identifier shown is the one to act on, for a contact of one's own country
    acked = await client.post(
        f"/alerts/{honduras['alert_id']}/ack",
        json={"contact_id": "pa-focal", "comment": "seen"},
        headers=auth("co-pa"),
    )
    assert acked.status_code == 200 and "HN-TROJES" not in acked.text
    again = (await client.get("/alerts", headers=auth("co-pa"))).json()["alerts"]
    assert [a["acknowledged"] for a in again if a["scope"]["id"] == "HN"] == [True]
    # Honduras's own readers see the site and its figure; filters and paging
    own = await client.get("/alerts?country=HN", headers=auth("co-hn"))
    assert [a["scope"]["id"] for a in own.json()["alerts"]] == ["HN-TROJES"]
    assert own.json()["alerts"][0]["value"] == 3000
    paged = (await client.get("/alerts?limit=1", headers=auth("admin"))).json()
    assert paged["count"] == 1 and paged["total"] == 2 and paged["next_offset"] == 1
    history = (
        await client.get("/alerts/history?rule=crossing-surge", headers=auth("co-pa"))
    ).json()
    assert history["total"] == 2 and "HN-TROJES" not in json.dumps(history)
    bad = await client.get("/alerts?level=orange", headers=auth("admin"))
    assert bad.status_code == 400 and "level" in bad.json()["error"]


async def test_a_country_operator_silences_its_own_country_and_sees_no_other(api):
    client, _ = api
    regional = await client.post("/silences", json=silence(country="HN"), headers=auth("admin"))
    assert regional.status_code == 201
    own = await client.post(
        "/silences", json=silence(rule_id="crossing-surge"), headers=auth("op-pa")
    )
    assert own.status_code == 201 and own.json()["country"] == "PA"
    listed = (await client.get("/silences", headers=auth("op-pa"))).json()["silences"]
    assert [s["id"] for s in listed] == [own.json()["id"]]
    expired = await client.delete(f"/silences/{regional.json()['id']}", headers=auth("op-pa"))
    assert expired.status_code == 404


async def test_the_worker_listens_only_on_the_address_its_settings_name(api):
    """Faust would bind 0.0.0.0 whatever EWS_WEB_HOST said."""
    _, (process, port) = api
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # LISTEN
                    listening.add(address)
    assert listening == {"0100007F"}, listening  # 127.0.0.1 only


async def test_the_delivery_audit_says_who_received_which_figure_as_they_saw_it(
    api, receiver, kafka_bootstrap, namespace, workers
):
    """ "Who received which figure when" was only answerable by reading a Kafka topic, and the
    records did not say what was sent."""
    import hashlib
    import subprocess
    import sys

    client, _ = api
    watcher = contact(receiver, "pa-watch", "PA") | {"min_level": "watch"}
    assert (await client.post("/contacts", json=watcher, headers=auth("admin"))).status_code == 201
    danli = site_alert("HN-DANLI", value=2800)
    await produce(
        kafka_bootstrap,
        Topics(namespace).alerts,
        [danli.model_dump_json().encode()],
        key=danli.alert_id.encode(),
    )
    for _ in range(150):  # the admin sees the record as made, with the id its recipient saw
        full = (
            await client.get(
                f"/deliveries?contact=pa-watch&alert={danli.alert_id}", headers=auth("admin")
            )
        ).json()
        if full["count"]:
            break
        await asyncio.sleep(0.2)
    [made] = full["deliveries"]
    shown = made["shown_alert_id"]
    listed = (await client.get(f"/deliveries?alert={shown}", headers=auth("co-pa"))).json()
    assert len(listed["deliveries"]) == 1, listed
    [record] = listed["deliveries"]
    assert record["alert_id"] == shown and made["alert_id"] == danli.alert_id
    # Panama's readers cannot look a Honduran site's records up by its name either
    by_site = await client.get(f"/deliveries?alert={danli.alert_id}", headers=auth("co-pa"))
    assert by_site.json()["count"] == 0
    assert record["outcome"] == "delivered" and record["alert_country"] == "HN"
    assert record["alert_id"].startswith("crossing-surge/country/HN/w")
    assert "HN-DANLI" not in json.dumps(listed)
    assert record["sent"]["value_shown"] == "" and "figures" in record["sent"]["withheld"]
    [got] = [r for k, r in receiver.received.items() if k == record["idempotency_key"]]
    assert hashlib.sha256(got.body).hexdigest() == record["sent"]["body_sha256"]
    # Honduras's coordinator does not see Panama's recipients; the admin sees the record as made
    assert (await client.get("/deliveries", headers=auth("co-hn"))).json()["count"] == 0
    assert (await client.get("/deliveries", headers=auth("partner"))).status_code == 403
    # the same from the command line, against the broker
    listing = subprocess.run(
        [sys.executable, "-m", "services.cli", "deliveries", "list", "--alert", danli.alert_id],
        env=workers.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert "pa-watch" in listing.stdout and "withheld: place, figures" in listing.stdout
    assert "1 delivery on" in listing.stderr


async def test_every_api_write_is_recorded_with_who_and_when(api, workers):
    """The audit of writes: contacts, silences and acknowledgements, with who and when, listed by
    the API (scoped by country) and the command line."""
    import subprocess
    import sys

    client, _ = api
    made = await client.post(
        "/silences", json=silence(rule_id="crossing-surge"), headers=auth("op-pa")
    )
    assert made.status_code == 201
    honduras = (await client.get("/alerts", headers=auth("co-pa"))).json()["alerts"]
    [withheld] = [a["alert_id"] for a in honduras if a["scope"]["id"] == "HN"]
    acked = await client.post(
        f"/alerts/{withheld}/ack", json={"contact_id": "pa-focal"}, headers=auth("co-pa")
    )
    assert acked.status_code == 200
    everything = (await client.get("/audit", headers=auth("admin"))).json()["writes"]
    actions = [(w["action"], w["by"]) for w in everything]
    assert ("contact.create", "root") in actions  # the fixture's contact of Honduras
    assert ("silence.create", "op-pa") in actions and ("ack.create", "co-pa") in actions
    seen_by_pa = await client.get("/audit", headers=auth("co-pa"))
    assert "HN-TROJES" not in seen_by_pa.text
    pa_actions = {(w["action"], w["target"]) for w in seen_by_pa.json()["writes"]}
    assert ("ack.create", f"{withheld}|pa-focal") in pa_actions
    assert not any(t == "hn-api" for _, t in pa_actions)  # Honduras's contact, made by root
    assert (await client.get("/audit", headers=auth("partner"))).status_code == 403
    listing = subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "--action", "silence.create"],
        env=workers.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert "op-pa (operator, PA)  silence.create" in listing.stdout


async def test_a_changed_sharing_file_applies_without_a_restart(
    workers, tmp_path, receiver, kafka_bootstrap, namespace
):
    """Honduras shares in full; its operator changes the file to aggregates: from then on Panama's
    coordinator sees the country, not the site. A broken file is refused and the policy stays."""
    sharing = tmp_path / "sharing.yaml"
    sharing.write_text("version: 1\ncountries:\n  HN: {outside: full}\n")
    workers.env.update(
        EWS_SHARING_FILE=str(sharing),
        EWS_TOKENS=";".join(f"{spec}:{token}" for spec, token in TOKENS.values()),
    )
    started = [workers.start("notify")]
    await wait_ready(workers, started)
    trojes = site_alert("HN-TROJES")
    await produce(
        kafka_bootstrap,
        Topics(namespace).alerts,
        [trojes.model_dump_json().encode()],
        key=trojes.alert_id.encode(),
    )

    async def seen_by_panama(client) -> list[str]:
        for _ in range(100):
            alerts = (await client.get("/alerts", headers=auth("co-pa"))).json()["alerts"]
            if alerts:
                return [a["scope"]["id"] for a in alerts]
            await asyncio.sleep(0.2)
        pytest.fail("the alert never reached notify")

    async def until(client, wanted: list[str]) -> None:
        for _ in range(50):
            if await seen_by_panama(client) == wanted:
                return
            await asyncio.sleep(0.2)
        pytest.fail(f"Panama's coordinator never saw {wanted}: {await seen_by_panama(client)}")

    base = f"http://127.0.0.1:{started[0][1]}"
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        assert await seen_by_panama(client) == ["HN-TROJES"]
        sharing.write_text("version: 1\ncountries:\n  HN: {outside: aggregates}\n")
        await until(client, ["HN"])
        sharing.write_text("version: 1\ncountries:\n  HN: {outside: sometimes}\n")
        for _ in range(50):
            metrics = (await client.get("/metrics")).text
            if 'ews_notify_config_reloads_total{file="sharing",outcome="refused"} 1.0' in metrics:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the broken sharing file was not counted as refused")
        assert await seen_by_panama(client) == ["HN"]  # the policy before it stays
    assert "changed sharing file refused" in workers.logs()


async def test_metrics_and_health_can_be_served_on_a_monitoring_address_of_their_own(workers):
    """EWS_MONITORING_HOST: /metrics, /healthz and /readyz on that address (web port + offset);
    /metrics no longer on the API's address, which still serves the API."""
    from services.common.local_kafka import free_port

    monitoring_port = free_port()
    web_port = monitoring_port - 100
    workers.env.update(
        EWS_MONITORING_HOST="127.0.0.2",  # another loopback address: the monitoring network
        EWS_TOKENS=";".join(f"{spec}:{token}" for spec, token in TOKENS.values()),
    )
    started = [workers.start("notify", port=web_port)]
    await wait_ready(workers, started)
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(50):
            try:
                ready = await client.get(f"http://127.0.0.2:{monitoring_port}/readyz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.2)
        else:
            pytest.fail(f"nothing listens on 127.0.0.2:{monitoring_port}\n{workers.logs()}")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        scraped = await client.get(f"http://127.0.0.2:{monitoring_port}/metrics")
        assert scraped.status_code == 200 and "ews_worker_ready" in scraped.text
        assert (await client.get(f"http://127.0.0.1:{web_port}/metrics")).status_code == 404
        api = await client.get(f"http://127.0.0.1:{web_port}/alerts", headers=auth("admin"))
        assert api.status_code == 200
        with pytest.raises(httpx.ConnectError):  # the API is not on the monitoring address
            await client.get(f"http://127.0.0.2:{web_port}/alerts", headers=auth("admin"))
