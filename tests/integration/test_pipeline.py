"""The thin slice end to end on the real broker: feed → ingest → triggers → notify → a real HTTP
receiver."""

import base64
import json
import time

import httpx

from services.common.topics import Topics
from services.notify.webhook import verify
from tests.integration.kafka_io import consume, produce, wait_ready, write_contacts

CONTRACT_EXAMPLE = {
    "event_id": "pa-snm-2026-11-20-lajas-blancas",
    "source": "PA-SNM",
    "observed_at": "2026-11-20T00:00:00Z",
    "period": "P1D",
    "site_id": "PA-LAJAS-BLANCAS",
    "from_country": "CO",
    "to_country": "PA",
    "count": 2710,
    "by_nationality": {"VE": 900, "EC": 300, "HT": 120, "CN": 200},
    "children": 310,
    "unaccompanied_children": 12,
}


async def test_a_border_crossing_surge_reaches_the_contacts_webhook(
    workers, receiver, kafka_bootstrap, namespace, tmp_path
):
    contacts = tmp_path / "contacts.yaml"
    write_contacts(
        contacts,
        receiver,
        [
            {
                "id": "pa-focal-point",
                "countries": ["PA"],
                "language": "es",
                "trigger_ids": ["crossing-surge"],
            },
            {
                "id": "hn-focal-point",
                "countries": ["HN"],
                "language": "es",
            },  # not concerned: must get nothing
        ],
    )
    workers.env["EWS_CONTACTS_FILE"] = str(contacts)
    started = [workers.start(s) for s in ("ingest", "triggers", "notify")]
    await wait_ready(workers, started)
    topics = Topics(namespace)

    sent_at = time.time()
    await produce(
        kafka_bootstrap,
        topics.feed_border_crossings,
        [json.dumps(CONTRACT_EXAMPLE).encode()],
        key=b"PA-LAJAS-BLANCAS",
    )
    assert await receiver.wait_for(1, timeout_s=60), workers.logs()

    [delivery] = receiver.received.values()
    assert delivery.contact_id == "pa-focal-point"
    assert (
        delivery.headers["Idempotency-Key"]
        == "crossing-surge/site/PA-LAJAS-BLANCAS:1:pa-focal-point"
    )
    assert delivery.headers["Content-Type"] == "application/json"
    assert verify(
        "secret-of-pa-focal-point-0123456789",
        delivery.body,
        delivery.headers["X-EWS-Signature"],
        int(time.time()),
    )
    body = delivery.payload
    assert body["alert_id"] == "crossing-surge/site/PA-LAJAS-BLANCAS"
    assert (body["transition"], body["status"], body["level"], body["previous_level"]) == (
        1,
        "firing",
        "watch",
        None,
    )
    assert body["scope"] == {"kind": "site", "id": "PA-LAJAS-BLANCAS", "country": "PA"}
    assert body["value"] == 2710 and body["threshold"] == 2000  # Panama's national override
    assert body["window"] == "PT24H" and body["rule_version"].startswith("sha256:")
    assert body["evidence"] == ["PA-SNM/pa-snm-2026-11-20-lajas-blancas"]
    assert body["language"] == "es" and body["summary"].startswith(
        "VIGILANCIA: Aumento repentino de cruces fronterizos en ERM Lajas Blancas (Darién, "
        "Panamá). 2.710 personas que cruzaron en 24 horas; el nivel de vigilancia es 2.000."
    )
    assert body["place"] == "ERM Lajas Blancas (Darién, Panamá)" and body["metric"] == "count"
    assert delivery.received_at - sent_at < 30

    # every attempt is on the audit topic
    [record] = await consume(kafka_bootstrap, topics.deliveries, 1)
    audit = json.loads(record.value)
    assert (audit["outcome"], audit["contact_id"], audit["status_code"]) == (
        "delivered",
        "pa-focal-point",
        200,
    )
    assert "secret" not in record.value.decode()


async def test_invalid_messages_are_rejected_with_their_bytes_and_a_reason(
    workers, kafka_bootstrap, namespace, tmp_path
):
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text("version: 1\ncontacts: []\n")
    workers.env["EWS_CONTACTS_FILE"] = str(contacts)
    started = [workers.start("ingest")]
    await wait_ready(workers, started)
    topics = Topics(namespace)
    bad = [
        b'{"event_id": "x", "count": 1',
        json.dumps(CONTRACT_EXAMPLE | {"count": -1}).encode(),
        b"\xff\xfe",
    ]
    good = json.dumps(CONTRACT_EXAMPLE).encode()
    await produce(kafka_bootstrap, topics.feed_border_crossings, bad + [good], key=b"k")

    rejected = await consume(kafka_bootstrap, topics.ingest_rejected, 3)
    accepted = await consume(kafka_bootstrap, topics.observations, 1)
    assert len(accepted) == 1 and accepted[0].key == b"PA-LAJAS-BLANCAS"
    records = [json.loads(r.value) for r in rejected]
    assert [base64.b64decode(r["original_base64"]) for r in records] == bad
    assert [r["reason"] for r in records] == ["invalid_json", "validation", "not_utf8"]
    assert "count: Input should be greater than or equal to 0" in records[1]["detail"]
    assert {r["source_topic"] for r in records} == {topics.feed_border_crossings}
    assert sorted(r["source_offset"] for r in records) == [0, 1, 2]

    # counted, and the worker is still up and ready
    port = started[0][1]
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert (
            'ews_ingest_rejected_total{feed="border-crossings",reason="invalid_json"} 1.0'
            in metrics
        )
        assert 'ews_ingest_events_total{feed="border-crossings",outcome="accepted"} 1.0' in metrics
        assert (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
