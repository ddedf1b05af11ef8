"""Ingest on the real broker: HTTP uploads, duplicates and corrections, CSV/HXL files, a hostile
corpus."""

import asyncio
import base64
import json
import subprocess
import sys

import httpx
import pytest

from services.common.settings import PROJECT_ROOT
from services.common.topics import Topics
from tests.helpers import crossing
from tests.integration.kafka_io import consume, produce, wait_ready

PARTNER_TOKEN = "partner-token-PA-SNM-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdefghij"


@pytest.fixture
async def ingest(workers):
    workers.env["EWS_TOKENS"] = f"PA-SNM:partner:{PARTNER_TOKEN};ops:operator:{OPERATOR_TOKEN}"
    workers.env["EWS_FEED_HTTP_MAX_BYTES"] = "200000"
    started = [workers.start("ingest")]
    await wait_ready(workers, started)
    return f"http://127.0.0.1:{started[0][1]}"


async def test_http_upload_answers_per_item(ingest, kafka_bootstrap, namespace):
    url = f"{ingest}/feeds/border-crossings"
    auth = {"Authorization": f"Bearer {PARTNER_TOKEN}"}
    first, second = crossing(0, 1200), crossing(1, 1300)
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(url, json=[first, second, crossing(2, -1)], headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["outcome"] for x in body["results"]] == ["accepted", "accepted", "rejected"]
        assert "count: Input should be greater than or equal to 0" in body["results"][2]["detail"]
        assert (body["accepted"], body["rejected"]) == (2, 1)

        r = await client.post(url, json=[first, second | {"count": 1350}], headers=auth)
        assert [(x["outcome"], x["revision"]) for x in r.json()["results"]] == [
            ("duplicate", 1),
            ("correction", 2),
        ]

        assert (await client.post(url, json=[first])).status_code == 401
        wrong = await client.post(
            url, json=[first], headers={"Authorization": "Bearer not-a-token"}
        )
        assert wrong.status_code == 401 and "unknown or revoked token" in wrong.json()["error"]
        operator = await client.post(
            url, json=[first], headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        assert operator.status_code == 403 and "role operator" in operator.json()["error"]
        big = await client.post(url, content=b"[" + b'"x",' * 60000 + b'"x"]', headers=auth)
        assert big.status_code == 413 and "larger than 200000 bytes" in big.json()["error"]
        assert (
            await client.post(f"{ingest}/feeds/weather", json=[], headers=auth)
        ).status_code == 404
        assert (await client.post(url, content=b"{not json", headers=auth)).status_code == 400

    topics = Topics(namespace)
    published = [
        json.loads(r.value) for r in await consume(kafka_bootstrap, topics.observations, 3)
    ]
    assert sorted((o["event_id"], o["revision"], o["metrics"]["count"]) for o in published) == [
        ("pa-lajas-blancas-0", 1, 1200),
        ("pa-lajas-blancas-1", 1, 1300),
        ("pa-lajas-blancas-1", 2, 1350),
    ]
    [rejected] = await consume(kafka_bootstrap, topics.ingest_rejected, 1)
    assert json.loads(rejected.value)["source_partner"] == "PA-SNM item 2"


async def test_a_partner_publishes_only_for_its_own_sources_and_their_country(
    ingest, kafka_bootstrap, namespace
):
    """Any partner token could publish for any source, site or country, and so overwrite another
    partner's event_ids; now a report for another source, or a declared source's report about
    another country, is refused (403 naming it) and nothing of the request is kept."""
    url = f"{ingest}/feeds/border-crossings"
    auth = {"Authorization": f"Bearer {PARTNER_TOKEN}"}
    own = crossing(0, 1200)
    async with httpx.AsyncClient(timeout=30) as client:
        foreign = await client.post(
            url, json=[own, crossing(1, 900) | {"source": "CR-DGME"}], headers=auth
        )
        assert foreign.status_code == 403 and "CR-DGME" in foreign.json()["error"]
        elsewhere = await client.post(
            url,
            json=[crossing(2, 700, site="HN-TROJES", frm="NI", to="HN")],
            headers=auth,
        )
        assert elsewhere.status_code == 403
        assert "reports for PA" in elsewhere.json()["error"]
        assert "HN-TROJES" in elsewhere.json()["error"]
        accepted = await client.post(url, json=[own], headers=auth)
        assert accepted.json()["accepted"] == 1
    published = await consume(kafka_bootstrap, Topics(namespace).observations, 5, timeout_s=5)
    assert [json.loads(r.value)["event_id"] for r in published] == [own["event_id"]]


async def test_an_item_not_deduplicated_in_time_is_answered_pending_and_still_published(
    workers, kafka_bootstrap, namespace
):
    workers.env["EWS_TOKENS"] = f"PA-SNM:partner:{PARTNER_TOKEN}"
    workers.env["EWS_FEED_HTTP_ANSWER_S"] = (
        "0.001"  # no answer can make the round trip through the broker in time
    )
    started = [workers.start("ingest")]
    await wait_ready(workers, started)
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"http://127.0.0.1:{started[0][1]}/feeds/border-crossings",
            json=[crossing(0, 1200)],
            headers={"Authorization": f"Bearer {PARTNER_TOKEN}"},
        )
    assert r.status_code == 200, r.text
    [item] = r.json()["results"]
    assert (item["outcome"], item["event_id"]) == ("pending", "pa-lajas-blancas-0")
    assert item["detail"] == "queued for de-duplication; no answer within 0.001 s"
    [published] = await consume(kafka_bootstrap, Topics(namespace).observations, 1)
    assert json.loads(published.value)["event_id"] == "pa-lajas-blancas-0"


async def test_kafka_resends_are_dropped_and_corrections_published_with_a_higher_revision(
    ingest, kafka_bootstrap, namespace
):
    topics = Topics(namespace)
    report = json.dumps(crossing(0, 1000)).encode()
    corrected = json.dumps(crossing(0, 1100)).encode()
    await produce(
        kafka_bootstrap,
        topics.feed_border_crossings,
        [report, report, corrected, report],
        key=b"PA-LAJAS-BLANCAS",
    )
    # copies keyed differently land in different partitions and still meet at de-duplication
    other = json.dumps(crossing(1, 500)).encode()
    await produce(kafka_bootstrap, topics.feed_border_crossings, [other], key=b"one")
    await produce(kafka_bootstrap, topics.feed_border_crossings, [other], key=b"another")
    published = [
        json.loads(r.value)
        for r in await consume(kafka_bootstrap, topics.observations, 5, timeout_s=15)
    ]
    first = [
        (o["revision"], o["metrics"]["count"])
        for o in published
        if o["event_id"] == "pa-lajas-blancas-0"
    ]
    # the first version sent again after the correction is superseded: it does not revert it
    assert first == [(1, 1000), (2, 1100)]
    assert [o["revision"] for o in published if o["event_id"] == "pa-lajas-blancas-1"] == [1]


async def test_a_hostile_stream_yields_one_rejection_per_bad_message_and_every_valid_one_once(
    ingest, workers, kafka_bootstrap, namespace
):
    from aiokafka import AIOKafkaProducer

    from tests.corpus import (
        malformed_border_crossings,
        malformed_displacement,
        valid_border_crossings,
    )

    topics = Topics(namespace)
    bad_crossings, bad_displacement = malformed_border_crossings(), malformed_displacement()
    valid = valid_border_crossings(120)
    assert len(bad_crossings) + len(bad_displacement) >= 200
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=12 * 1024 * 1024
    )
    await producer.start()
    try:
        mixed = [
            m for pair in zip(bad_crossings, valid, strict=False) for m in pair
        ] + bad_crossings[len(valid) :]
        for message in mixed:
            await producer.send(topics.feed_border_crossings, message)
        for message in bad_displacement:
            await producer.send(topics.feed_displacement, message)
        await producer.flush()
    finally:
        await producer.stop()

    expected_rejections = len(bad_crossings) + len(bad_displacement)
    rejected = await consume(
        kafka_bootstrap, topics.ingest_rejected, expected_rejections, timeout_s=90
    )
    published = await consume(kafka_bootstrap, topics.observations, len(valid), timeout_s=30)
    records = [json.loads(r.value) for r in rejected]
    originals = sorted(base64.b64decode(r["original_base64"]) for r in records)
    assert originals == sorted(bad_crossings + bad_displacement)  # exactly one rejection each
    assert all(r["reason"] and r["detail"] for r in records)
    assert sorted(json.loads(r.value)["event_id"] for r in published) == sorted(
        f"valid-{i}" for i in range(120)
    )
    extra = await consume(kafka_bootstrap, topics.observations, len(valid) + 1, timeout_s=3)
    assert len(extra) == len(valid)  # nothing published twice
    assert all(p.poll() is None for p in workers.processes), (
        "the ingest worker must not have restarted"
    )


async def test_ews_ingest_publishes_good_rows_and_keeps_bad_ones(
    kafka_bootstrap, namespace, tmp_path
):
    path = tmp_path / "crossings.csv"
    path.write_text(
        "#date,#meta+source,#loc+code,#country+origin+code,#country+code+dest,#affected\n"
        "2026-11-20,PA-SNM,PA-LAJAS-BLANCAS,CO,PA,1520\n"
        "2026-11-21,PA-SNM,PA-LAJAS-BLANCAS,CO,PA,lots\n"
    )
    env = {
        "EWS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EWS_TOPIC_NAMESPACE": namespace,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "ingest", str(path)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert f"{path}:3: count: Input should be a valid integer (got 'lots')" in result.stderr
    assert f"2 rows, 1 sent to {namespace}.feed.border-crossings, 1 rejected" in result.stdout
    topics = Topics(namespace)
    [sent] = await consume(kafka_bootstrap, topics.feed_border_crossings, 1)
    assert sent.key == b"PA-LAJAS-BLANCAS" and json.loads(sent.value)["count"] == 1520
    [kept] = await consume(kafka_bootstrap, topics.ingest_rejected, 1)
    assert (json.loads(kept.value)["source_file"], json.loads(kept.value)["source_row"]) == (
        str(path),
        3,
    )


async def test_the_hostile_corpus_over_http_and_file_upload_at_volume_is_rejected_item_by_item(
    ingest, workers, kafka_bootstrap, namespace, tmp_path
):
    """The same corpus as over Kafka, five times over: every item answered 'rejected' with a reason
    and kept on the rejected topic (HTTP), every bad row named by file:row (upload); the worker
    stays up."""
    from tests.corpus import malformed_border_crossings

    url = f"{ingest}/feeds/border-crossings"
    auth = {"Authorization": f"Bearer {PARTNER_TOKEN}"}
    corpus = malformed_border_crossings()
    items, bodies = [], []
    for raw in corpus:
        try:
            items.append(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            bodies.append(raw)  # not JSON at all: the whole request is refused, with the reason
    items = [
        i for i in items if len(json.dumps(i)) < 150_000
    ]  # over the 200 kB body limit: answered 413 instead
    rounds, answered = 5, 0
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(rounds):
            for start in range(0, len(items), 40):
                batch = items[start : start + 40]
                r = await client.post(url, content=json.dumps(batch).encode(), headers=auth)
                if r.status_code == 413:
                    continue
                assert r.status_code == 200, r.text
                results = r.json()["results"]
                assert all(
                    x["outcome"] == "rejected" and x["reason"] and x["detail"] for x in results
                ), results
                answered += len(results)
            for raw in bodies:
                r = await client.post(
                    url, content=raw, headers={**auth, "Content-Type": "application/json"}
                )
                assert r.status_code in (400, 413) and r.json()["error"]
        ready = await client.get(f"{ingest}/readyz")
    assert answered >= rounds * 90 and ready.status_code == 200
    kept = await consume(kafka_bootstrap, Topics(namespace).ingest_rejected, answered, timeout_s=60)
    assert len(kept) == answered
    assert all(json.loads(r.value)["source_partner"].startswith("PA-SNM item ") for r in kept)

    rows = ["#date,#meta+source,#loc+code,#country+origin+code,#country+code+dest,#affected"]
    bad_values = ["lots", "-5", "1e3", "NaN", "", "9" * 40, "0x10", "12.5", "2;5", "--1"]
    rows += [
        f"2026-11-{1 + i % 28:02d},PA-SNM,PA-LAJAS-BLANCAS,CO,PA,{bad_values[i % len(bad_values)]}"
        for i in range(2000)
    ]
    path = tmp_path / "hostile.hxl.csv"
    path.write_text("\n".join(rows) + "\n")
    env = {
        "EWS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EWS_TOPIC_NAMESPACE": namespace,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "ingest", str(path)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "2000 rows, 0 sent" in result.stdout and "2000 rejected" in result.stdout
    named = {
        line.split(":")[1] for line in result.stderr.splitlines() if line.startswith(f"{path}:")
    }
    assert named == {str(n) for n in range(2, 2002)}  # every bad row named by its line
    assert all(p.poll() is None for p in workers.processes), (
        "the ingest worker must not have restarted"
    )


async def test_a_site_added_to_sites_yaml_is_known_to_ingest_without_a_restart(
    workers, kafka_bootstrap, namespace, tmp_path
):
    """Ingest reloads sites.yaml as the triggers worker does; a broken file is refused, counted, and
    the sites it knew stay."""
    import shutil

    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    workers.env.update(
        EWS_CONFIG_DIR=str(config),
        EWS_RULES_RELOAD_INTERVAL_S="0.5",
        EWS_TOKENS=f"PA-SNM:partner:{PARTNER_TOKEN}",
    )
    started = [workers.start("ingest")]
    await wait_ready(workers, started)
    base = f"http://127.0.0.1:{started[0][1]}"
    auth = {"Authorization": f"Bearer {PARTNER_TOKEN}"}
    report = crossing(0, 40, site="PA-METETI")

    async def outcome(client: httpx.AsyncClient) -> dict:
        answer = await client.post(f"{base}/feeds/border-crossings", json=[report], headers=auth)
        return answer.json()["results"][0]

    async def until(client: httpx.AsyncClient, condition, what: str) -> None:
        for _ in range(60):
            if condition(await client.get(f"{base}/metrics")):
                return
            await asyncio.sleep(0.5)
        pytest.fail(f"{what}\n{workers.logs()}")

    async with httpx.AsyncClient(timeout=30) as client:
        first = await outcome(client)
        assert first["reason"] == "unknown_site", first
        sites = config / "sites.yaml"
        text = sites.read_text()
        sites.write_text("sites: [oops\n")  # a broken edit: refused, the old sites stay
        await until(
            client,
            lambda r: 'ews_ingest_config_reloads_total{outcome="refused"} 1.0' in r.text,
            "the broken sites file was not refused",
        )
        assert (await outcome(client))["reason"] == "unknown_site"
        sites.write_text(
            text.replace(
                "sites:\n",
                "sites:\n  - {id: PA-METETI, name: Metetí, country: PA, kind: reception, "
                "area: PA-5, lat: 8.50, lon: -77.98}\n",
                1,
            )
        )
        await until(
            client,
            lambda r: 'ews_ingest_config_reloads_total{outcome="applied"} 1.0' in r.text,
            "the corrected sites file was not applied",
        )
        assert (await outcome(client))["outcome"] == "accepted"
    assert all(p.poll() is None for p in workers.processes)


async def test_an_earlier_version_sent_again_after_a_correction_is_superseded(
    ingest, kafka_bootstrap, namespace
):
    """A partner re-sending yesterday's file after correcting a figure must not revert it."""
    url = f"{ingest}/feeds/border-crossings"
    auth = {"Authorization": f"Bearer {PARTNER_TOKEN}"}
    first, corrected = crossing(0, 1200), crossing(0, 1500)
    async with httpx.AsyncClient(timeout=30) as client:
        answers = []
        for report in (first, corrected, first, corrected):
            r = await client.post(url, json=[report], headers=auth)
            answers.append((r.json()["results"][0]["outcome"], r.json()["results"][0]["revision"]))
    assert answers == [("accepted", 1), ("correction", 2), ("superseded", 2), ("duplicate", 2)]
    published = await consume(kafka_bootstrap, Topics(namespace).observations, 3, timeout_s=5)
    assert [
        (json.loads(r.value)["revision"], json.loads(r.value)["metrics"]["count"])
        for r in published
    ] == [
        (1, 1200),
        (2, 1500),
    ]
