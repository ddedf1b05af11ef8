"""The triggers worker on the real broker: same transitions as the backtest, hot reload, a worker
killed."""

import asyncio
import json
import random
import re
import shutil
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from schemas import Location, Observation
from services.common.settings import PROJECT_ROOT
from services.common.topics import Topics
from services.triggers.backtest import run_backtest
from services.triggers.loading import load_engine
from tests.helpers import NOW, crossing, observation, silence_rule
from tests.integration.kafka_io import consume, wait_ready

SITES = [
    "PA-LAJAS-BLANCAS",
    "PA-SAN-VICENTE",
    "CR-PASO-CANOAS",
    "CR-PENAS-BLANCAS",
    "NI-PENAS-BLANCAS",
    "HN-TROJES",
    "HN-DANLI",
    "GT-TECUN-UMAN",
    "MX-TAPACHULA",
    "CO-NECOCLI",
]
COUNTRY = {s: s[:2] for s in SITES}
SITE_RULES: dict[str, Any] = {
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
        }
    ],
}


def random_walk_observations(days: int, seed: int) -> list[Observation]:
    """Daily counts per site that wander across the levels, so many transitions happen."""
    rng = random.Random(seed)
    out = []
    level = {s: rng.randint(300, 3000) for s in SITES}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(days):
        for site in SITES:
            level[site] = max(0, int(level[site] * rng.uniform(0.6, 1.6)) + rng.randint(-100, 100))
            level[site] = min(level[site], 9000)
            observed = start + timedelta(days=day)
            out.append(
                Observation(
                    event_id=f"{site}-{day}",
                    feed="border_crossing",
                    source="TEST",
                    observed_at=observed,
                    period="P1D",
                    period_end=observed + timedelta(days=1),
                    location=Location(kind="site", id=site, country=COUNTRY[site]),
                    metrics={"count": level[site]},
                    ingested_at=NOW,
                )
            )
    return out


def interleave(observations: list[Observation], seed: int) -> list[Observation]:
    """Another arrival order: each site's reports stay in order, sites interleave at random."""
    rng = random.Random(seed)
    queues = {s: [o for o in observations if o.location.id == s] for s in SITES}
    out = []
    while any(queues.values()):
        site = rng.choice([s for s, q in queues.items() if q])
        out.append(queues[site].pop(0))
    return out


def config_dir(tmp_path, rules: dict):
    directory = tmp_path / "config"
    directory.mkdir()
    shutil.copy(PROJECT_ROOT / "config" / "sites.yaml", directory / "sites.yaml")
    (directory / "triggers.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    return directory


def key_of(alert: dict) -> tuple:
    return alert["alert_id"], alert["transition"]


async def produce_observations(bootstrap, topic, observations):
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for o in observations:
            await producer.send(topic, o.model_dump_json().encode(), key=o.key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def wait_for_alerts(bootstrap, topic, expected: set, timeout_s: float = 90) -> list[dict]:
    """Every alert on the topic once each expected (alert_id, transition) is there (a replay after a
    crash may repeat some, so counting records is not enough), then 3 s more for anything extra."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    alerts: list[dict] = []
    try:
        deadline = time.monotonic() + timeout_s
        extra_until = None
        while time.monotonic() < (extra_until or deadline):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                alerts.extend(json.loads(r.value) for r in records)
            if extra_until is None and expected <= {key_of(a) for a in alerts}:
                extra_until = time.monotonic() + 3
        return alerts
    finally:
        await consumer.stop()


async def test_live_gives_the_backtests_transitions_in_any_interleaving_of_sites(
    workers, kafka_bootstrap, namespace, tmp_path
):
    directory = config_dir(tmp_path, SITE_RULES)
    workers.env["EWS_CONFIG_DIR"] = str(directory)
    observations = random_walk_observations(days=40, seed=7)
    engine = load_engine(directory / "triggers.yaml", directory / "sites.yaml", "P7D")
    expected = {
        (a.alert_id, a.transition): (a.status, a.level, a.value)
        for a in run_backtest(observations, engine, NOW)
    }
    shuffled = {
        (a.alert_id, a.transition): (a.status, a.level, a.value)
        for a in run_backtest(interleave(observations, 99), engine, NOW)
    }
    assert shuffled == expected and len(expected) > 40

    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    await produce_observations(
        kafka_bootstrap, Topics(namespace).observations, interleave(observations, 3)
    )
    alerts = await wait_for_alerts(kafka_bootstrap, Topics(namespace).alerts, set(expected))
    assert {key_of(a): (a["status"], a["level"], a["value"]) for a in alerts} == expected
    assert len(alerts) == len(expected)


async def test_live_judges_reports_arriving_in_any_order_within_the_settle_time_as_the_backtest(
    workers, kafka_bootstrap, namespace, tmp_path
):
    """Issue 4's property over the real broker: each three days of reports (four sites, corrections,
    gaps, new nationalities) produced in a random order, judged after EWS_EVALUATION_SETTLE_S; the
    transitions (site and country thresholds, rate of change, new value, silence) are the
    backtest's."""
    from tests.helpers import ARRIVAL_RULES, ARRIVAL_START, daily_reports, transitions

    directory = config_dir(tmp_path, yaml.safe_load(ARRIVAL_RULES))
    workers.env.update(EWS_CONFIG_DIR=str(directory), EWS_EVALUATION_SETTLE_S="2")
    observations = daily_reports(5)
    engine = load_engine(directory / "triggers.yaml", directory / "sites.yaml", "P7D")
    expected = transitions(run_backtest(observations, engine, NOW))
    assert len({key[0].split("/")[0] for key in expected}) == 5  # every kind of rule fires

    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    topic = Topics(namespace).observations
    rng = random.Random(8)
    groups: dict[int, list[Observation]] = {}
    for o in observations:
        groups.setdefault((o.observed_at - ARRIVAL_START).days // 3, []).append(o)
    for g in sorted(groups):
        group = groups[g]
        rng.shuffle(group)
        await produce_observations(kafka_bootstrap, topic, group)
        await asyncio.sleep(4)  # the settle time, and a margin for the timer
    alerts = await wait_for_alerts(kafka_bootstrap, Topics(namespace).alerts, set(expected))
    got = {
        key_of(a): (
            a["status"],
            a["level"],
            a["value"],
            datetime.fromisoformat(a["observed_until"]),
        )
        for a in alerts
    }
    assert got == expected
    assert len(alerts) == len(expected)


async def test_sites_falling_silent_on_the_wall_clock_alert_whatever_partition_holds_their_state(
    workers, kafka_bootstrap, namespace, tmp_path
):
    """The silence check reaches every scope through one message per partition naming its scopes."""
    rules = {
        "version": 1,
        "triggers": [
            {
                "id": "quiet",
                "kind": "silence",
                "feed": "border_crossing",
                "scope": "site",
                "levels": {"watch": "2s"},
                "title": SITE_RULES["triggers"][0]["title"],
            }
        ],
    }
    workers.env.update(
        EWS_CONFIG_DIR=str(config_dir(tmp_path, rules)), EWS_SILENCE_CHECK_INTERVAL_S="1"
    )
    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    observed = datetime.now(UTC).replace(microsecond=0)
    reports = [
        Observation(
            event_id=f"{site}-quiet",
            feed="border_crossing",
            source="TEST",
            observed_at=observed,
            period="PT1S",
            period_end=observed + timedelta(seconds=1),
            location=Location(kind="site", id=site, country=COUNTRY[site]),
            metrics={"count": 5},
            ingested_at=observed,
        )
        for site in SITES
    ]
    await produce_observations(kafka_bootstrap, Topics(namespace).observations, reports)
    expected = {
        (f"quiet/site/{site}", 1) for site in SITES
    }  # due 1 s after arrival, silent 2 s more
    alerts = await wait_for_alerts(
        kafka_bootstrap, Topics(namespace).alerts, expected, timeout_s=60
    )
    assert {key_of(a): (a["status"], a["level"]) for a in alerts} == dict.fromkeys(
        expected, ("firing", "watch")
    )


@pytest.mark.faults
async def test_a_killed_worker_of_two_loses_and_changes_no_transition(
    workers, kafka_bootstrap, namespace, tmp_path
):
    directory = config_dir(tmp_path, SITE_RULES)
    workers.env["EWS_CONFIG_DIR"] = str(directory)
    observations = random_walk_observations(days=60, seed=11)
    engine = load_engine(directory / "triggers.yaml", directory / "sites.yaml", "P7D")
    expected = {
        (a.alert_id, a.transition): (a.status, a.level, a.value)
        for a in run_backtest(observations, engine, NOW)
    }
    topics = Topics(namespace)

    first, second = workers.start("triggers"), workers.start("triggers")
    await wait_ready(workers, [first, second])
    supervisor = asyncio.create_task(
        workers.supervise()
    )  # workers that stop on a dropped-message gap come back
    ordered = interleave(observations, 5)
    half = len(ordered) // 2
    await produce_observations(kafka_bootstrap, topics.observations, ordered[:half])
    await consume(kafka_bootstrap, topics.alerts, 5, timeout_s=30)  # the stream is flowing
    first[0].send_signal(signal.SIGKILL)
    first[0].wait()
    await produce_observations(kafka_bootstrap, topics.observations, ordered[half:])
    restarted = workers.start("triggers")
    await wait_ready(workers, [second, restarted])

    alerts = await wait_for_alerts(kafka_bootstrap, topics.alerts, set(expected), timeout_s=120)
    supervisor.cancel()
    got: dict = {}
    for a in alerts:
        got.setdefault(key_of(a), set()).add((a["status"], a["level"], a["value"]))
    assert set(got) == set(expected), (
        f"missing {sorted(set(expected) - set(got))[:5]}, extra "
        f"{sorted(set(got) - set(expected))[:5]}"
    )
    assert all(len(v) == 1 for v in got.values()), (
        "a repeated (alert_id, transition) must carry the same transition"
    )
    assert {k: next(iter(v)) for k, v in got.items()} == expected


async def test_changed_rules_are_reloaded_and_a_broken_file_is_refused(
    workers, kafka_bootstrap, namespace, tmp_path
):
    directory = config_dir(tmp_path, SITE_RULES)
    workers.env.update(EWS_CONFIG_DIR=str(directory), EWS_RULES_RELOAD_INTERVAL_S="0.5")
    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    metrics_url = f"http://127.0.0.1:{started[0][1]}/metrics"
    topics = Topics(namespace)

    (directory / "triggers.yaml").write_text(
        (directory / "triggers.yaml").read_text().replace("window: 24h", "window: soon")
    )
    changed = dict(
        SITE_RULES, triggers=[dict(SITE_RULES["triggers"][0], levels={"watch": 100}, clear=50)]
    )
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 20
        while (
            'ews_rules_reloads_total{outcome="refused"} 1.0'
            not in (await client.get(metrics_url)).text
        ):
            assert time.monotonic() < deadline, workers.logs()
            time.sleep(0.3)
        await produce_observations(
            kafka_bootstrap, topics.observations, random_walk_observations(1, 1)[:1]
        )
        [old] = [
            json.loads(r.value)
            for r in await consume(kafka_bootstrap, topics.alerts, 1, timeout_s=5)
        ] or [None]
        (directory / "triggers.yaml").write_text(yaml.safe_dump(changed))
        while (
            'ews_rules_reloads_total{outcome="applied"} 1.0'
            not in (await client.get(metrics_url)).text
        ):
            assert time.monotonic() < deadline + 20, workers.logs()
            time.sleep(0.3)
    assert (
        "previous rules stay active" in workers.logs()
        and "window: expected a duration" in workers.logs()
    )
    low = Observation.model_validate(
        random_walk_observations(1, 1)[1].model_dump() | {"metrics": {"count": 150}}
    )
    await produce_observations(kafka_bootstrap, topics.observations, [low])
    alerts = [
        json.loads(r.value)
        for r in await consume(kafka_bootstrap, topics.alerts, 1 + (old is not None), timeout_s=20)
    ]
    new = [a for a in alerts if a["scope"]["id"] == low.location.id]
    assert new and new[0]["threshold"] == 100 and new[0]["level"] == "watch"
    assert old is None or new[0]["rule_version"] != old["rule_version"]


async def test_reports_too_late_for_a_scope_are_counted_by_source_and_scope(
    workers, kafka_bootstrap, namespace, tmp_path
):
    """A report older than EWS_ALLOWED_LATENESS behind what its scope judged is kept out, and the
    monitoring team sees which source and scope (ews_triggers_too_late_total, EwsReportsTooLate)."""
    directory = config_dir(tmp_path, SITE_RULES)
    workers.env.update(EWS_CONFIG_DIR=str(directory), EWS_ALLOWED_LATENESS="P3D")
    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    metrics_url = f"http://127.0.0.1:{started[0][1]}/metrics"
    lajas = [o for o in random_walk_observations(10, 3) if o.location.id == "PA-LAJAS-BLANCAS"]
    await produce_observations(kafka_bootstrap, Topics(namespace).observations, lajas[1:])
    wanted = 'ews_triggers_too_late_total{scope="site/PA-LAJAS-BLANCAS",source="TEST"} 1.0'
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 30
        while (
            'ews_triggers_observations_total{outcome="applied"} 9.0'
            not in (await client.get(metrics_url)).text
        ):
            assert time.monotonic() < deadline, workers.logs()
            await asyncio.sleep(0.3)
        # day 0, once day 9 is judged: five days further back than the three allowed
        await produce_observations(kafka_bootstrap, Topics(namespace).observations, lajas[:1])
        deadline = time.monotonic() + 30
        while wanted not in (text := (await client.get(metrics_url)).text):
            assert time.monotonic() < deadline, text[-3000:]
            await asyncio.sleep(0.3)
    assert 'ews_triggers_observations_total{outcome="too_late"} 1.0' in text


async def test_two_sources_ids_stay_apart_and_a_correction_moving_a_report_withdraws_it(
    workers, kafka_bootstrap, namespace, tmp_path
):
    """Through ingest's HTTP API: two partners numbering their reports alike are two reports at
    Lajas Blancas (1,200: watch); the first partner then corrects its report to Paso Canoas, and
    Lajas Blancas' alert resolves on the 600 left."""
    rules = json.loads(json.dumps(SITE_RULES))
    del rules["triggers"][0]["clear"], rules["triggers"][0]["clear_for"]
    directory = config_dir(tmp_path, rules)
    snm, iom = "partner-token-PA-SNM-0123456789abcdef", "partner-token-IOM-PA-0123456789abcdef"
    workers.env.update(
        EWS_CONFIG_DIR=str(directory),
        EWS_TOKENS=f"PA-SNM:partner:{snm};IOM-DTM-PA:partner:{iom}",
    )
    started = [workers.start(s) for s in ("ingest", "triggers")]
    await wait_ready(workers, started)
    url = f"http://127.0.0.1:{started[0][1]}/feeds/border-crossings"
    report = crossing(0, 600) | {"event_id": "report-1"}

    async def post(token: str, item: dict) -> tuple[str, int]:
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(url, json=[item], headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        [answer] = r.json()["results"]
        return answer["outcome"], answer.get("revision", 0)

    assert await post(snm, report) == ("accepted", 1)
    assert await post(iom, report | {"source": "IOM-DTM-PA"}) == ("accepted", 1)
    topic = Topics(namespace).alerts
    lajas = "surge/site/PA-LAJAS-BLANCAS"
    [fired] = await wait_for_alerts(kafka_bootstrap, topic, {(lajas, 1)}, timeout_s=60)
    assert (fired["level"], fired["value"]) == ("watch", 1200)
    assert sorted(fired["evidence"]) == ["IOM-DTM-PA/report-1", "PA-SNM/report-1"]

    # (PA-SNM reports for Panama: a declared source's report about another country is refused)
    moved = report | {"site_id": "PA-PASO-CANOAS", "from_country": "CR", "to_country": "PA"}
    assert await post(snm, moved) == ("correction", 2)
    alerts = await wait_for_alerts(kafka_bootstrap, topic, {(lajas, 2)}, timeout_s=60)
    resolved = [a for a in alerts if a["alert_id"] == lajas and a["transition"] == 2]
    assert [(a["status"], a["value"]) for a in resolved] == [("resolved", 600)]
    assert {a["alert_id"] for a in alerts} == {lajas}  # 600 at Paso Canoas is under every level


async def test_a_surge_reported_late_alerts_live_at_the_day_it_concerns(
    workers, kafka_bootstrap, namespace, tmp_path
):
    """Days 0, 1, 2 and 4 at 300 are judged; day 3's 6,000 arrives last: the emergency goes out,
    marked late, naming day 3."""
    directory = config_dir(tmp_path, SITE_RULES)
    workers.env.update(EWS_CONFIG_DIR=str(directory))
    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    metrics_url = f"http://127.0.0.1:{started[0][1]}/metrics"
    topics = Topics(namespace)
    reports = {day: observation(crossing(day, 6000 if day == 3 else 300)) for day in range(5)}
    await produce_observations(
        kafka_bootstrap, topics.observations, [reports[d] for d in (0, 1, 2, 4)]
    )
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 30
        while (
            'ews_triggers_observations_total{outcome="applied"} 4.0'
            not in (await client.get(metrics_url)).text
        ):
            assert time.monotonic() < deadline, workers.logs()
            await asyncio.sleep(0.3)
    await produce_observations(kafka_bootstrap, topics.observations, [reports[3]])
    alert_id = "surge/site/PA-LAJAS-BLANCAS"
    alerts = await wait_for_alerts(kafka_bootstrap, topics.alerts, {(alert_id, 1)}, timeout_s=60)
    [fired] = [a for a in alerts if a["alert_id"] == alert_id]
    assert (fired["status"], fired["level"], fired["value"], fired["late"]) == (
        "firing",
        "emergency",
        6000,
        True,
    )
    assert fired["observed_until"].startswith(reports[3].period_end.date().isoformat())


async def test_a_trigger_removed_while_firing_resolves_after_the_reload(
    workers, kafka_bootstrap, namespace, tmp_path
):
    directory = config_dir(tmp_path, SITE_RULES)
    workers.env.update(EWS_CONFIG_DIR=str(directory), EWS_RULES_RELOAD_INTERVAL_S="0.5")
    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    topics = Topics(namespace)
    await produce_observations(
        kafka_bootstrap, topics.observations, [observation(crossing(0, 3000))]
    )
    alert_id = "surge/site/PA-LAJAS-BLANCAS"
    await wait_for_alerts(kafka_bootstrap, topics.alerts, {(alert_id, 1)}, timeout_s=60)
    renamed = json.loads(json.dumps(SITE_RULES))
    renamed["triggers"][0]["id"] = "site-surge"
    (directory / "triggers.yaml").write_text(yaml.safe_dump(renamed, allow_unicode=True))
    alerts = await wait_for_alerts(kafka_bootstrap, topics.alerts, {(alert_id, 2)}, timeout_s=60)
    [resolved] = [a for a in alerts if (a["alert_id"], a["transition"]) == (alert_id, 2)]
    assert (resolved["status"], resolved["cause"], resolved["previous_level"]) == (
        "resolved",
        "trigger_removed",
        "warning",
    )


async def test_a_declared_source_is_watched_before_it_reports_and_by_its_own_cycle(
    workers, kafka_bootstrap, namespace, tmp_path
):
    """GT-IGM is declared (reporting every 10 s) and never reports: its silence fires live with no
    message at all. HN-INM (declared monthly, 15 days' delay) reports October: the next report is
    due a month after its arrival at the earliest, and the worker exports both figures for the
    shipped Prometheus rule."""
    silence = silence_rule(watch="10s", warning="1h")
    directory = config_dir(tmp_path, {"version": 1, "triggers": [silence]})
    sites = yaml.safe_load((directory / "sites.yaml").read_text())
    sites["sources"].append(
        {
            "id": "GT-IGM",
            "name": "Instituto Guatemalteco de Migración",
            "country": "GT",
            "feeds": ["border_crossing"],
            "period": "10s",
        }
    )
    (directory / "sites.yaml").write_text(yaml.safe_dump(sites, allow_unicode=True))
    workers.env.update(EWS_CONFIG_DIR=str(directory), EWS_SILENCE_CHECK_INTERVAL_S="1")
    started = [workers.start("triggers")]
    await wait_ready(workers, started)
    topics = Topics(namespace)
    october = {
        "event_id": "hn-inm-2026-10",
        "source": "HN-INM",
        "observed_at": "2026-10-01T00:00:00Z",
        "period": "P1M",
        "from_country": "NI",
        "to_country": "HN",
        "count": 2000,
    }
    sent = datetime.now(UTC)
    await produce_observations(kafka_bootstrap, topics.observations, [observation(october)])
    alert_id = "silent/source/GT-IGM"
    alerts = await wait_for_alerts(kafka_bootstrap, topics.alerts, {(alert_id, 1)}, timeout_s=90)
    [silent] = [a for a in alerts if a["alert_id"] == alert_id]
    assert (silent["status"], silent["level"], silent["scope"]["country"]) == (
        "firing",
        "watch",
        "GT",
    )
    assert not [a for a in alerts if a["alert_id"] == "silent/source/HN-INM"]
    _process, port = started[0]
    deadline = time.monotonic() + 30
    while True:  # the gauges are exported every 15 s
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        figures = {
            (name, source): float(value)
            for name, source, value in re.findall(
                r'^(ews_feed_\w+_timestamp_seconds)\{feed="border_crossing",source="([^"]+)"\} '
                r"(\S+)$",
                text,
                re.M,
            )
        }
        if ("ews_feed_next_due_timestamp_seconds", "HN-INM") in figures:
            break
        assert time.monotonic() < deadline, text
        await asyncio.sleep(1)
    november = datetime(2026, 11, 1, tzinfo=UTC)
    assert figures[("ews_feed_period_end_timestamp_seconds", "HN-INM")] == november.timestamp()
    due = datetime.fromtimestamp(figures[("ews_feed_next_due_timestamp_seconds", "HN-INM")], UTC)
    # a month after it arrived (it arrived after 16 November, the end of October plus a month's
    # delay of 15 days, and so reporting late)
    assert sent + timedelta(days=28) <= due <= datetime.now(UTC) + timedelta(days=31)
    # watched from the start: due 10 s after it was first watched, though it never reported
    assert ("ews_feed_next_due_timestamp_seconds", "GT-IGM") in figures
    assert ("ews_feed_period_end_timestamp_seconds", "GT-IGM") not in figures
