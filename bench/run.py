"""`make bench`: the five groups of figures, measured side by side in one run.

1. ceiling vs pipeline: the raw aiokafka consumer (getmany + JSON decode) draining N feed messages,
   then ingest + triggers draining the same N; events/s of each and their ratio; then the same with
   more triggers workers in the consumer group (--scale-out), to show how far scaling out goes.
2. backtest: events/s of the pure evaluator over M observations with the shipped trigger set.
3. latency: a paced producer at each offered load, with alert-causing probes among ordinary
   reports; p50/p95/p99 from produce to webhook receipt; one probe after an idle period.
4. scale: the live workers' memory for several site counts over M events each, sampled as history
   grows (bounded by retention, not by history), with what they hold, and their peak RSS.
5. delivery: a healthy contact's delivery latency beside a receiver that hangs and one that
   answers 429, against the same run with healthy receivers only (p99 ratio, target ≤ 2).

Prints a table, writes bench/results.json. `python -m bench.run --help` for the sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import AlertEvent, Scope, SitesFile
from schemas.config import Site
from services.common.config_files import load_model
from services.common.geography import Geography
from services.common.settings import PROJECT_ROOT
from services.common.topics import Topics
from services.demo.receiver import ReceivedAlert, WebhookReceiver
from services.demo.stack import LocalStack
from services.ingest.validation import parse_feed_message
from services.triggers.backtest import run_backtest
from services.triggers.loading import load_engine

from .workload import START, feed_messages, write_geography

RESULTS = PROJECT_ROOT / "bench" / "results.json"
WARM_UP_S = 3.0  # the latency group's unmeasured start
GROUPS = ("pipeline", "backtest", "latency", "scale", "delivery")
SHIPPED_RULES = PROJECT_ROOT / "config" / "triggers.yaml"


def say(text: str) -> None:
    print(text, flush=True)


def config_dir(run_dir: Path, n_sites: int) -> Path:
    """The shipped triggers and sharing policy over a generated geography of n_sites."""
    directory = run_dir / f"config-{n_sites}"
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("triggers.yaml", "sharing.yaml"):
        shutil.copy(PROJECT_ROOT / "config" / name, directory / name)
    write_geography(n_sites, directory / "sites.yaml")
    (directory / "contacts.yaml").write_text("version: 1\ncontacts: []\n")
    return directory


def observations_of(messages, sites_file: Path):
    geography = Geography(load_model(sites_file, SitesFile))
    now = datetime.now(UTC)
    for feed, value in messages:
        yield parse_feed_message(feed, value, geography, now)


async def metric_total(client: httpx.AsyncClient, port: int, name: str) -> float:
    try:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


async def produce_all(bootstrap: str, topics: Topics, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=262144
    )
    await producer.start()
    try:
        futures = [await producer.send(topics.feeds[feed], value) for feed, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# --- 1. ceiling and pipeline ---------------------------------------------------------------


async def raw_ceiling(bootstrap: str, topics: Topics, n: int) -> float:
    consumer = AIOKafkaConsumer(
        *topics.feeds.values(),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    try:
        seen, started = 0, time.perf_counter()
        first = True
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
            if first and batches:
                first, started = False, time.perf_counter()
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                    seen += 1
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def ceiling_and_pipeline(
    run_dir: Path,
    bootstrap: str,
    n: int,
    n_sites: int,
    triggers_workers: int = 1,
    broker_pid: int | None = None,
) -> dict:
    """The raw consumer's rate, then the pipeline's over the same messages, and the CPU time each
    process spent per event while the pipeline ran (where the time goes, steadier than a rate)."""
    config = config_dir(run_dir, n_sites)
    stack = LocalStack(
        run_dir / f"pipeline-{triggers_workers}",
        namespace=f"bench{secrets.token_hex(3)}",
        bootstrap=bootstrap,
        env_extra={"EWS_CONFIG_DIR": str(config)},
    )
    stack.logs.mkdir(parents=True, exist_ok=True)
    topics = Topics(stack.namespace)
    await stack.ensure_topics()
    messages = list(feed_messages(n, n_sites))
    engine = load_engine(config / "triggers.yaml", config / "sites.yaml", "P7D")
    scoped = sum(
        len(engine.scopes_for(o)) for o in observations_of(messages, config / "sites.yaml")
    )
    say(
        f"  producing {n:,} feed messages ({sum(len(v) for _, v in messages) / n:.0f} bytes on "
        "average) ..."
    )
    await produce_all(bootstrap, topics, messages)
    ceiling = await raw_ceiling(bootstrap, topics, n)
    say(f"  raw aiokafka consumer, getmany + JSON decode: {ceiling:,.0f} events/s")
    try:
        # The triggers workers first, ready; then ingest, watched from its launch: the clock starts
        # at the first report it counts, not at the first look after it may already have done much
        # of the work.
        triggers = ["triggers"] + [f"triggers-{i}" for i in range(2, triggers_workers + 1)]
        for name in triggers:
            stack.launch("triggers", name)
        await stack.wait_ready()
        stack.launch("ingest")
        started, cpu_before = None, {}

        def processes_cpu() -> dict[str, float | None]:
            return {
                **{name: _cpu_s(process.pid) for name, process in stack.workers.items()},
                "broker": _cpu_s(broker_pid),
            }

        async with httpx.AsyncClient(timeout=5) as client:
            deadline = time.monotonic() + max(600, n / 50)
            while time.monotonic() < deadline:
                stack.supervise()
                ingested = await metric_total(
                    client, stack.ports["ingest"], "ews_ingest_events_total"
                )
                if started is None and ingested > 0:
                    started = time.perf_counter()
                    cpu_before = processes_cpu()
                evaluated = sum(
                    [
                        await metric_total(
                            client, stack.ports[name], "ews_triggers_observations_total"
                        )
                        for name in triggers
                    ]
                )
                if evaluated >= scoped:
                    break
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError(
                    f"the pipeline evaluated {evaluated:.0f} of {scoped} scoped observations in "
                    "time"
                )
        assert started is not None  # the loop above waits until ingest has started
        elapsed = time.perf_counter() - started
        cpu_after = processes_cpu()
        pipeline = n / elapsed
        cpu_us = {
            name: round((after - before) / n * 1e6, 1)
            for name, after in cpu_after.items()
            if after is not None and (before := cpu_before.get(name)) is not None
        }
        say(
            f"  ingest + {len(triggers)} triggers worker{'s' if len(triggers) > 1 else ''}, the "
            f"same {n:,}: "
            f"{pipeline:,.0f} events/s ({scoped:,} scope evaluations, {elapsed:.1f}s); ratio "
            f"{pipeline / ceiling:.3f}"
        )
        say(
            "  CPU per event: "
            + ", ".join(f"{name} {us:.0f} µs" for name, us in cpu_us.items())
            + f"; {sum(cpu_us.values()) * pipeline / 1e6:.2f} of {_cpus()} cores busy"
        )
        rss = {name: stack.peak_rss_mb(name) for name in stack.workers}
        written = await records_written(bootstrap, stack.namespace, set(topics.feeds.values()))
        say(
            f"  records written per report: {sum(written.values()) / n:.1f} ("
            + ", ".join(f"{topic} {count / n:.2f}" for topic, count in written.items())
            + ")"
        )
        return {
            "events": n,
            "sites": n_sites,
            "records_written_per_report": {t: round(c / n, 3) for t, c in written.items()},
            "triggers_workers": len(triggers),
            "ceiling_events_per_s": round(ceiling),
            "pipeline_events_per_s": round(pipeline),
            "ratio": round(pipeline / ceiling, 4),
            "cpu_us_per_event": cpu_us,
            "scope_evaluations": scoped,
            "worker_peak_rss_mb": rss,
            "worker_restarts": stack.restarts,
        }
    finally:
        await stack.stop()


async def records_written(bootstrap: str, namespace: str, inputs: set[str]) -> dict[str, int]:
    """Records on each of a namespace's topics but its inputs (the feeds), largest first: what the
    pipeline wrote (the lever on its throughput)."""
    names = [spec.name for spec in Topics(namespace).specs() if spec.name not in inputs]
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        deadline = time.monotonic() + 10  # until the subscription's metadata is in
        while time.monotonic() < deadline and any(
            consumer.partitions_for_topic(t) is None for t in names
        ):
            await asyncio.sleep(0.1)
        partitions = [
            TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        counts: dict[str, int] = {}
        for tp, end in ends.items():
            short = tp.topic.removeprefix(namespace).lstrip(".-")
            counts[short] = counts.get(short, 0) + end
        return dict(sorted(((t, c) for t, c in counts.items() if c), key=lambda tc: -tc[1]))
    finally:
        await consumer.stop()


# --- 2. backtest ---------------------------------------------------------------------------


def backtest_speed(run_dir: Path, n: int, n_sites: int, checked: int = 100_000) -> dict:
    """The columnar backtest over n observations; then, over the first `checked`, the engine
    observation by observation: its speed, and whether both give the same transitions."""
    config = config_dir(run_dir, n_sites)
    say(f"  validating {n:,} observations over {n_sites:,} sites (not timed) ...")
    observations = list(observations_of(feed_messages(n, n_sites), config / "sites.yaml"))
    now = datetime.now(UTC)
    started = time.perf_counter()
    alerts = run_backtest(
        observations, load_engine(SHIPPED_RULES, config / "sites.yaml", "P7D"), now
    )
    elapsed = time.perf_counter() - started
    say(
        f"  columnar backtest, shipped rules: {n / elapsed:,.0f} events/s ({len(alerts):,} "
        f"transitions, {elapsed:.1f}s)"
    )
    subset = observations[:checked]
    started = time.perf_counter()
    exact = run_backtest(
        subset, load_engine(SHIPPED_RULES, config / "sites.yaml", "P7D"), now, exact=True
    )
    exact_elapsed = time.perf_counter() - started
    same = (
        run_backtest(subset, load_engine(SHIPPED_RULES, config / "sites.yaml", "P7D"), now) == exact
    )
    say(
        f"  engine observation by observation, first {len(subset):,}: "
        f"{len(subset) / exact_elapsed:,.0f} events/s; "
        f"same {len(exact):,} transitions as the columns: {'yes' if same else 'NO'}"
    )
    return {
        "events": n,
        "sites": n_sites,
        "events_per_s": round(n / elapsed),
        "transitions": len(alerts),
        "seconds": round(elapsed, 2),
        "engine_events": len(subset),
        "engine_events_per_s": round(len(subset) / exact_elapsed),
        "same_transitions": same,
    }


# --- 3. latency ----------------------------------------------------------------------------


def probe_message(site: str, country: str, index: int) -> bytes:
    """A report that fires crossing-surge at a site nobody has reported from: one
    alert per probe."""
    return json.dumps(
        {
            "event_id": f"probe-{index}",
            "source": f"BENCH-{country}",
            "site_id": site,
            "observed_at": START.isoformat(),
            "period": "P1D",
            "count": 9000,
            "from_country": "CO" if country != "CO" else "VE",
            "to_country": country,
        }
    ).encode()


async def workers_on(run_dir: Path, bootstrap: str, config: Path) -> tuple[LocalStack, Topics]:
    """Workers of a namespace of their own on the shared broker, reading this config and allowed
    to post to the local receiver; their topics created."""
    stack = LocalStack(
        run_dir,
        namespace=f"bench{secrets.token_hex(3)}",
        bootstrap=bootstrap,
        env_extra={"EWS_CONFIG_DIR": str(config), "EWS_ALLOW_PRIVATE_WEBHOOKS": "1"},
    )
    stack.logs.mkdir(parents=True, exist_ok=True)
    await stack.ensure_topics()
    return stack, Topics(stack.namespace)


async def latency(
    run_dir: Path, bootstrap: str, rates: list[int], seconds: float, idle_s: float
) -> dict:
    n_sites = 3000
    config = config_dir(run_dir, n_sites)
    # Every country's sites shared with the duty officer: the probes are told apart by their site id
    # in `alert_id`, which a country sharing aggregates only withholds (a fifth of the probes were
    # never counted as received once config/sharing.yaml had Honduras do so).
    (config / "sharing.yaml").write_text("version: 1\ndefault: {outside: full}\n")
    sites = load_model(config / "sites.yaml", SitesFile).sites
    background, probes = sites[:1000], sites[1000:]
    sent: dict[str, float] = {}  # probe site → produce time
    arrived: dict[str, float] = {}
    judged: dict[
        str, float
    ] = {}  # probe site → when the triggers worker judged it (the alert's evaluated_at)

    def on_alert(alert: ReceivedAlert) -> None:
        alert_id = alert.payload.get("alert_id", "")
        if alert_id.startswith("crossing-surge/site/") and alert.payload.get("transition") == 1:
            site = alert_id.rsplit("/", 1)[1]
            arrived.setdefault(site, alert.received_at)
            judged.setdefault(
                site, datetime.fromisoformat(alert.payload["evaluated_at"]).timestamp()
            )

    receiver = WebhookReceiver(secrets={}, on_alert=on_alert)
    await receiver.start()
    secret = secrets.token_hex(16)
    receiver.secrets["duty"] = secret
    (config / "contacts.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "contacts": [
                    {
                        "id": "duty",
                        "name": "Duty officer",
                        "organisation": "bench",
                        "language": "en",
                        "trigger_ids": ["crossing-surge"],
                        "channels": [
                            {"type": "webhook", "url": receiver.url_for("duty"), "secret": secret}
                        ],
                    }
                ],
            }
        )
    )
    stack, topics = await workers_on(run_dir / "latency", bootstrap, config)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    results: dict = {"rates": {}}
    probe_index = 0
    try:
        for service in ("ingest", "triggers", "notify"):
            stack.launch(service)
        await stack.wait_ready()

        async def send_probe() -> str:
            nonlocal probe_index
            site = probes[probe_index]
            probe_index += 1
            sent[site.id] = time.time()
            await producer.send(
                topics.feeds["border-crossings"], probe_message(site.id, site.country, probe_index)
            )
            return site.id

        day = 0

        async def offered(rate: int, seconds: float, label: str) -> tuple[list[str], int]:
            """Background reports at `rate` with ten probes a second for `seconds`: the probes,
            reports sent."""
            nonlocal day
            mine: list[str] = []
            tick = 0.01
            per_tick = rate * tick
            owed, next_probe = 0.0, time.monotonic()
            ends = time.monotonic() + seconds
            nxt = time.monotonic()
            i = 0
            while time.monotonic() < ends:
                owed += per_tick
                while owed >= 1:
                    site = background[i % len(background)]
                    day_of = day + i // len(background)
                    body = {
                        "event_id": f"bg-{label}-{i}",
                        "source": f"BENCH-{site.country}",
                        "site_id": site.id,
                        "observed_at": (START + timedelta(days=day_of)).isoformat(),
                        "period": "P1D",
                        "count": 100 + i % 300,
                        "to_country": site.country,
                    }
                    await producer.send(topics.feeds["border-crossings"], json.dumps(body).encode())
                    owed -= 1
                    i += 1
                if time.monotonic() >= next_probe:
                    mine.append(await send_probe())
                    next_probe += 0.1  # ten alert-causing probes a second
                stack.supervise()
                nxt += tick
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            day += i // len(background) + 1
            await _wait_for(lambda: all(s in arrived for s in mine), 60)
            return mine, i

        # The first alerts after start-up pay for what is done once (connections, templates, caches,
        # the first rule evaluations): measured apart, not mixed into the steady state.
        mine, _ = await offered(rates[0], WARM_UP_S, "warm-up")
        first = sorted((arrived[s] - sent[s]) * 1000 for s in mine if s in arrived)
        results["warm_up"] = {"seconds": WARM_UP_S, **_percentiles(first, len(mine), 0)}
        say(
            f"  warm-up, {WARM_UP_S:.0f}s at {rates[0]} events/s (not counted below): max "
            f"{results['warm_up']['max_ms']} ms, "
            f"p50 {results['warm_up']['p50_ms']} ms"
        )
        for rate in rates:
            mine, i = await offered(rate, seconds, str(rate))
            got = sorted((arrived[s] - sent[s]) * 1000 for s in mine if s in arrived)
            results["rates"][str(rate)] = r = _percentiles(got, len(mine), i / seconds)
            # where the time goes: produce → judged by triggers (ingest, routing, evaluation),
            # judged → received (notify)
            split = {
                "to_judged": sorted((judged[s] - sent[s]) * 1000 for s in mine if s in judged),
                "judged_to_received": sorted(
                    (arrived[s] - judged[s]) * 1000 for s in mine if s in judged
                ),
            }
            r["split_ms"] = {
                name: {
                    k: v for k, v in _percentiles(values, len(mine), 0).items() if k.endswith("_ms")
                }
                for name, values in split.items()
            }
            say(
                f"  {rate:>5} events/s offered ({r['achieved_events_per_s']:,.0f} sent): p50 "
                f"{r['p50_ms']} ms, "
                f"p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms "
                f"({r['received']}/{r['probes']} probes)"
            )
            for name, q in r["split_ms"].items():
                say(
                    f"        {name.replace('_', ' ')}: p50 {q['p50_ms']} ms, p95 {q['p95_ms']} "
                    f"ms, p99 {q['p99_ms']} ms, max {q['max_ms']} ms"
                )
        if idle_s > 0:
            say(f"  idle for {idle_s:.0f}s, then one probe ...")
            await asyncio.sleep(idle_s)
            stack.supervise()
            site = await send_probe()
            await _wait_for(lambda: site in arrived, 60)
            results["after_idle"] = {
                "idle_s": idle_s,
                "latency_ms": round((arrived[site] - sent[site]) * 1000, 1)
                if site in arrived
                else None,
            }
            say(f"  after {idle_s:.0f}s idle: {results['after_idle']['latency_ms']} ms")
        results["worker_peak_rss_mb"] = {name: stack.peak_rss_mb(name) for name in stack.workers}
        results["worker_restarts"] = stack.restarts
        return results
    finally:
        await producer.stop()
        await stack.stop()
        await receiver.stop()


async def _wait_for(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _percentiles(values: list[float], probes: int, achieved: float) -> dict:
    def pct(p: float) -> float | None:
        if not values:
            return None
        return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 1)

    return {
        "probes": probes,
        "received": len(values),
        "achieved_events_per_s": round(achieved),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": pct(100),
        "mean_ms": round(statistics.fmean(values), 1) if values else None,
    }


# --- 4. scale ------------------------------------------------------------------------------


async def produce_stream(bootstrap: str, topics: Topics, messages, chunk: int = 20_000) -> int:
    """Produce a generator's messages a chunk at a time (a million need not be held at once)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=262144
    )
    await producer.start()
    sent = 0
    try:
        futures = []
        for feed, value in messages:
            futures.append(await producer.send(topics.feeds[feed], value))
            if len(futures) >= chunk:
                await asyncio.gather(*futures)
                sent, futures = sent + len(futures), []
        await asyncio.gather(*futures)
        return sent + len(futures)
    finally:
        await producer.stop()


def _cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used so far, None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def scale_run(run_dir: Path, bootstrap: str, n_sites: int, n: int) -> dict:
    """n feed messages over n_sites through live ingest, triggers and notify workers (no contact
    matches, so notify follows every alert without delivering): each worker's memory sampled as
    history grows, with what it says it holds, and its peak."""
    config = config_dir(run_dir, n_sites)
    stack = LocalStack(
        run_dir / f"scale-{n_sites}",
        namespace=f"bench{secrets.token_hex(3)}",
        bootstrap=bootstrap,
        env_extra={"EWS_CONFIG_DIR": str(config)},
    )
    stack.logs.mkdir(parents=True, exist_ok=True)
    await stack.ensure_topics()
    samples: list[dict] = []
    try:
        for service in ("ingest", "triggers", "notify"):
            stack.launch(service)
        await stack.wait_ready()
        idle = {name: stack.rss_mb(name) for name in stack.workers}  # before the first report
        started = time.perf_counter()
        last: list[
            bytes
        ] = []  # the last message produced: how many days of history the events span

        def remembered(messages):
            for feed, value in messages:
                last[:] = [value]
                yield feed, value

        producing = asyncio.create_task(
            produce_stream(
                bootstrap, Topics(stack.namespace), remembered(feed_messages(n, n_sites))
            )
        )

        async def sample(client: httpx.AsyncClient) -> dict:
            stack.supervise()
            ports = stack.ports
            return {
                "seconds": round(time.perf_counter() - started, 1),
                "ingested": await metric_total(client, ports["ingest"], "ews_ingest_events_total"),
                "evaluated": await metric_total(
                    client, ports["triggers"], "ews_triggers_observations_total"
                ),
                "event_ids_held": await metric_total(
                    client, ports["ingest"], "ews_ingest_event_ids_held"
                ),
                "contributions_held": await metric_total(
                    client, ports["triggers"], "ews_triggers_contributions_held"
                ),
                "rss_mb": {name: stack.rss_mb(name) for name in stack.workers},
            }

        async with httpx.AsyncClient(timeout=10) as client:
            while not producing.done():
                samples.append(await sample(client))
                await asyncio.wait([producing], timeout=2.0)
            producing.result()
            draining = asyncio.create_task(
                stack.wait_drained(["ingest", "triggers", "notify"], timeout_s=max(900, n / 200))
            )
            while not draining.done():
                samples.append(await sample(client))
                await asyncio.wait([draining], timeout=2.0)
            draining.result()
            final = await sample(client)
        elapsed = time.perf_counter() - started
        peaks = {name: stack.peak_rss_mb(name) for name in stack.workers}
        recovery = await recoveries(
            stack,
            final,
            load_model(config / "sites.yaml", SitesFile).sites[0],
            json.loads(last[0]),
        )
    finally:
        await stack.stop()
    marks = []
    for fraction in (
        0.25,
        0.5,
        0.75,
    ):  # the samples nearest a quarter, half and three quarters of the evaluation
        target = fraction * final["evaluated"]
        marks.append(
            {"fraction": fraction, **min(samples, key=lambda s: abs(s["evaluated"] - target))}
        )
    marks.append({"fraction": 1.0, **final})
    last_day = datetime.fromisoformat(json.loads(last[0])["observed_at"])

    def per_item(name: str, held: str) -> int | None:
        """Bytes of the worker's resident memory, over what it had before the first report, per
        item it holds at the end."""
        now, before = final["rss_mb"].get(name), idle.get(name)
        if not now or not before or not final[held]:
            return None
        return round((now - before) * 2**20 / final[held])

    return {
        "sites": n_sites,
        "events": n,
        "seconds": round(elapsed, 1),
        "events_per_s": round(n / elapsed),
        "days_of_history": (last_day - START).days + 1,
        "worker_peak_rss_mb": peaks,
        "samples": marks,
        "recovery": recovery,
        "bytes_per_report_in_windows": per_item("triggers", "contributions_held"),
        "bytes_per_event_id": per_item("ingest", "event_ids_held"),
        "worker_restarts": stack.restarts,
    }


# what each worker counts once it has judged the probe sent after it came back
JUDGED = {"triggers": "ews_triggers_observations_total", "ingest": "ews_ingest_events_total"}


async def recoveries(stack: LocalStack, before: dict, site: Site, last: dict) -> dict:
    """Each worker killed with -9 in turn, its windows and remembered ids full, and started again:
    seconds to ready (its partitions' state read back), and, for ingest and triggers, to its first
    report judged (one new report sent once it is ready); what it holds then, beside before."""
    topics = Topics(stack.namespace)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=1)
    await producer.start()
    out: dict = {}
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for name in ("triggers", "ingest", "notify"):
                stack.kill(name)
                killed = time.perf_counter()
                stack.launch(name)
                await stack.wait_ready([name], timeout_s=900)
                ready = time.perf_counter() - killed
                r: dict = {"ready_s": round(ready, 1)}
                if name in JUDGED:
                    body = {  # one more report at a site of the workload, of its last period
                        "event_id": f"recovery-{name}",
                        "source": f"BENCH-{site.country}",
                        "site_id": site.id,
                        "observed_at": last["observed_at"],
                        "period": last["period"],
                        "count": 100,
                        "to_country": site.country,
                    }
                    await producer.send_and_wait(
                        topics.feeds["border-crossings"], json.dumps(body).encode()
                    )
                    port = stack.ports[name]
                    while await metric_total(client, port, JUDGED[name]) < 1:
                        if time.perf_counter() - killed > 900:
                            break
                        await asyncio.sleep(0.05)
                    r["first_judged_s"] = round(time.perf_counter() - killed, 1)
                held = {
                    "triggers": ("ews_triggers_contributions_held", "contributions_held"),
                    "ingest": ("ews_ingest_event_ids_held", "event_ids_held"),
                }.get(name)
                if held is not None:
                    r["held_before"] = before[held[1]]
                    r["held_after"] = await metric_total(client, stack.ports[name], held[0])
                r["rss_mb"] = stack.rss_mb(name)
                out[name] = r
    finally:
        await producer.stop()
    return out


async def scale(run_dir: Path, bootstrap: str, site_counts: list[int], n: int) -> dict:
    out = {}
    for n_sites in site_counts:
        say(f"  {n_sites:,} sites, {n:,} events through ingest, triggers and notify ...")
        r = out[str(n_sites)] = await scale_run(run_dir, bootstrap, n_sites, n)
        for s in r["samples"]:
            rss = ", ".join(
                f"{name} {mb:.0f}" for name, mb in s["rss_mb"].items() if mb is not None
            )
            say(
                f"    {s['fraction']:>4.0%} evaluated ({s['seconds']:.0f}s): RSS {rss} MB; "
                f"{s['contributions_held']:,.0f} reports in windows, {s['event_ids_held']:,.0f} "
                "event_ids remembered"
            )
        say(
            "    peak RSS: "
            + ", ".join(f"{name} {mb:.0f} MB" for name, mb in r["worker_peak_rss_mb"].items() if mb)
            + f"; {r['days_of_history']} days of history, {r['events_per_s']:,} events/s"
        )
        say(
            f"    bytes per report in windows {r['bytes_per_report_in_windows']} (target ≤ 400), "
            f"per remembered event_id {r['bytes_per_event_id']} (target ≤ 150)"
        )
        for name, rec in r["recovery"].items():
            say(f"    kill -9 of {name}: {_recovered(rec)}")
    return out


# --- the run -------------------------------------------------------------------------------


def _bench_alert(n: int) -> AlertEvent:
    now = datetime.now(UTC)
    return AlertEvent(
        alert_id=f"crossing-surge/site/BENCH-{n}",
        transition=1,
        rule_id="crossing-surge",
        rule_version="sha256:bench",
        status="firing",
        level="warning",
        previous_level=None,
        scope=Scope(kind="site", id=f"BENCH-{n}", country="PA"),
        value=2600,
        threshold=2500,
        window="PT24H",
        started_at=now,
        observed_until=now,
        evaluated_at=now,
        evidence=[],
        title={"en": "Surge", "es": "Aumento", "fr": "Afflux", "pt": "Aumento"},
    )


async def delivery_isolation(run_dir: Path, bootstrap: str, n_alerts: int) -> dict:
    """A healthy contact's delivery latency (alert published → received) while another contact's
    receiver hangs past the timeout and a third answers 429 to everything, against the same run
    with only healthy receivers: p50 and p99, and the ratio of the p99s (target ≤ 2)."""
    config = config_dir(run_dir, 10)
    runs: dict[str, dict] = {}
    for label, faulty in (("healthy", False), ("with_faulty", True)):
        receiver = WebhookReceiver(secrets={}, hang_s=30)
        await receiver.start()
        contacts = []
        for cid in ("duty", "slow", "busy"):
            receiver.secrets[cid] = secrets.token_hex(16)
            contacts.append(
                {
                    "id": cid,
                    "name": cid,
                    "organisation": "bench",
                    "channels": [
                        {
                            "type": "webhook",
                            "url": receiver.url_for(cid),
                            "secret": receiver.secrets[cid],
                        }
                    ],
                }
            )
        if faulty:
            receiver.failures_for["slow"] = [(0, {})] * (10 * n_alerts)
            receiver.failures_for["busy"] = [(429, {"Retry-After": "2"})] * (100 * n_alerts)
        (config / "contacts.yaml").write_text(yaml.safe_dump({"version": 1, "contacts": contacts}))
        stack, topics = await workers_on(run_dir / f"delivery-{label}", bootstrap, config)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
        await producer.start()
        sent: dict[str, float] = {}
        try:
            stack.launch("notify")
            await stack.wait_ready()
            for n in range(n_alerts):  # 20 alerts a second
                alert = _bench_alert(n)
                sent[f"{alert.alert_id}:1:duty"] = time.time()
                await producer.send(
                    topics.alerts, alert.model_dump_json().encode(), alert.alert_id.encode()
                )
                stack.supervise()
                await asyncio.sleep(0.05)
            await _wait_for(lambda wanted=set(sent), got=receiver.received: wanted <= set(got), 300)
        finally:
            await producer.stop()
            await stack.stop(keep_kafka=True)
            await receiver.stop()
        waits = sorted(receiver.received[k].received_at - at for k, at in sent.items())
        runs[label] = {
            "p50_ms": round(1000 * waits[len(waits) // 2]),
            "p99_ms": round(1000 * waits[min(len(waits) - 1, int(0.99 * len(waits)))]),
        }
    ratio = runs["with_faulty"]["p99_ms"] / max(runs["healthy"]["p99_ms"], 1)
    return {"alerts": n_alerts, **runs, "p99_ratio": round(ratio, 2)}


async def main_async(args: argparse.Namespace) -> dict:
    run_dir = PROJECT_ROOT / ".cache" / "bench" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    results: dict = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "platform": platform.platform(),
        },
        "command": "make bench " + " ".join(sys.argv[1:]),
    }
    stack = LocalStack(run_dir)
    say("▶ starting a local Apache Kafka broker ...")
    bootstrap = await stack.start_kafka()
    groups = set(args.only or GROUPS)
    try:
        if (
            "backtest" in groups
        ):  # first, while the broker is idle (after the pipeline it is still busy with its logs)
            say(f"▶ 2. backtest ({args.backtest_events:,} events)")
            results["backtest"] = await asyncio.to_thread(
                backtest_speed, run_dir, args.backtest_events, 1000
            )
        if "pipeline" in groups:
            say(f"▶ 1. ceiling vs pipeline ({args.events:,} events)")
            broker_pid = (
                stack.broker.process.pid
                if stack.broker is not None and stack.broker.process
                else None
            )
            results["pipeline"] = await ceiling_and_pipeline(
                run_dir, bootstrap, args.events, args.sites, broker_pid=broker_pid
            )
            if (
                args.scale_out > 1
            ):  # the same with more triggers workers in the group: how far scaling out goes here
                results["pipeline_scaled_out"] = await ceiling_and_pipeline(
                    run_dir,
                    bootstrap,
                    args.events,
                    args.sites,
                    triggers_workers=args.scale_out,
                    broker_pid=broker_pid,
                )
        if "latency" in groups:
            say(
                f"▶ 3. latency (offered loads {', '.join(map(str, args.rates))} events/s, "
                f"{args.seconds:.0f}s each)"
            )
            results["latency"] = await latency(
                run_dir, bootstrap, args.rates, args.seconds, args.idle
            )
        if "scale" in groups:
            say(
                f"▶ 4. scale ({', '.join(map(str, args.scale_sites))} sites, "
                f"{args.scale_events:,} events each)"
            )
            results["scale"] = await scale(run_dir, bootstrap, args.scale_sites, args.scale_events)
        if "delivery" in groups:
            say(f"▶ 5. delivery with a hanging and a throttling receiver ({args.alerts} alerts)")
            results["delivery"] = await delivery_isolation(run_dir, bootstrap, args.alerts)
    finally:
        await stack.stop()
    return results


def _recovered(r: dict) -> str:
    text = f"ready in {r['ready_s']} s"
    if "first_judged_s" in r:
        text += f", first report judged at {r['first_judged_s']} s"
    if "held_before" in r:
        text += f"; {r['held_after']:,.0f} held after (before: {r['held_before']:,.0f})"
    return text


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def table(results: dict) -> str:
    rows = []
    if "pipeline" in results:
        p = results["pipeline"]
        rows += [
            (
                "ceiling: raw aiokafka getmany + JSON decode",
                f"{p['ceiling_events_per_s']:,} events/s",
            ),
            ("pipeline: ingest + triggers", f"{p['pipeline_events_per_s']:,} events/s"),
            ("ratio pipeline / ceiling (target ≥ 0.25)", f"{p['ratio']:.3f}"),
        ]
        if p.get("records_written_per_report"):
            w = p["records_written_per_report"]
            rows.append(
                (
                    "  records written per report",
                    f"{sum(w.values()):.1f} ("
                    + ", ".join(f"{t} {c:.2f}" for t, c in list(w.items())[:4])
                    + ", …)",
                )
            )
        if p.get("cpu_us_per_event"):
            rows.append(
                (
                    "  CPU per event while it ran",
                    ", ".join(f"{name} {us:.0f} µs" for name, us in p["cpu_us_per_event"].items()),
                )
            )
    if "pipeline_scaled_out" in results:
        q = results["pipeline_scaled_out"]
        rows += [
            (
                f"pipeline: ingest + {q['triggers_workers']} triggers workers (ceiling "
                f"{q['ceiling_events_per_s']:,})",
                f"{q['pipeline_events_per_s']:,} events/s, ratio {q['ratio']:.3f}",
            )
        ]
    if "backtest" in results:
        b = results["backtest"]
        rows.append(
            (
                f"backtest, shipped rules, {b['events']:,} events at {b['sites']:,} sites",
                f"{b['events_per_s']:,} events/s (target ≥ 200,000)",
            )
        )
        rows.append(
            (
                f"  engine one by one, first {b['engine_events']:,} (same transitions: "
                f"{'yes' if b['same_transitions'] else 'NO'})",
                f"{b['engine_events_per_s']:,} events/s",
            )
        )
    lat = results.get("latency", {"rates": {}})
    if "warm_up" in lat:
        rows.append(
            (
                f"latency of the first alerts after start-up ({lat['warm_up']['seconds']:.0f}s, "
                "not counted)",
                f"max {lat['warm_up']['max_ms']} ms, p50 {lat['warm_up']['p50_ms']} ms",
            )
        )
    for rate, r in lat["rates"].items():
        rows.append(
            (
                f"latency at {rate} events/s, p50 / p95 / p99",
                f"{r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} ms",
            )
        )
    if "after_idle" in lat:
        rows.append(
            (
                f"latency of one event after {lat['after_idle']['idle_s']:.0f}s idle",
                f"{lat['after_idle']['latency_ms']} ms",
            )
        )
    scale = results.get("scale", {})
    if len(scale) > 1:
        rates = {int(sites): r["events_per_s"] for sites, r in scale.items()}
        fewest, most = min(rates), max(rates)
        rows.append(
            (
                "scale: events/s through the live workers at "
                + " / ".join(f"{sites:,}" for sites in rates)
                + " sites",
                " / ".join(f"{rate:,}" for rate in rates.values())
                + f"; {most:,} against {fewest:,} sites {rates[most] / rates[fewest]:.2f}× "
                "(target ≥ 0.8)",
            )
        )
    for sites, r in scale.items():
        for name in ("triggers", "notify", "ingest"):
            rows.append(
                (
                    f"{name} RSS at 1/4, 1/2, 3/4, all of {r['events'] // 1000:,}k events, "
                    f"{int(sites):,} sites",
                    " → ".join(f"{s['rss_mb'].get(name) or 0:.0f}" for s in r["samples"])
                    + f" MB (peak {r['worker_peak_rss_mb'].get(name) or 0:.0f})",
                )
            )
        rows.append(
            (
                f"  reports in windows / event_ids remembered at the end, {int(sites):,} sites",
                f"{r['samples'][-1]['contributions_held']:,.0f} / "
                f"{r['samples'][-1]['event_ids_held']:,.0f}",
            )
        )
        rows.append(
            (
                f"  bytes per report in windows / per event_id remembered, {int(sites):,} sites",
                f"{r.get('bytes_per_report_in_windows')} (target ≤ 400) / "
                f"{r.get('bytes_per_event_id')} (target ≤ 150)",
            )
        )
        for name, rec in r.get("recovery", {}).items():
            rows.append((f"  kill -9 of {name} to ready, {int(sites):,} sites", _recovered(rec)))
    if "delivery" in results:
        d = results["delivery"]
        rows.append(
            (
                f"healthy contact's delivery, {d['alerts']} alerts, p50 / p99: healthy receivers "
                "only | beside a hanging and a 429 one",
                f"{d['healthy']['p50_ms']} / {d['healthy']['p99_ms']} ms | "
                f"{d['with_faulty']['p50_ms']} / {d['with_faulty']['p99_ms']} ms "
                f"(p99 ratio {d['p99_ratio']}, target ≤ 2)",
            )
        )
    for group in ("pipeline", "pipeline_scaled_out", "latency"):
        for name, mb in results.get(group, {}).get("worker_peak_rss_mb", {}).items():
            rows.append((f"{name} worker peak RSS ({group} run)", f"{mb:.0f} MB" if mb else "n/a"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=100_000, help="feed messages for ceiling vs pipeline"
    )
    parser.add_argument("--sites", type=int, default=1000, help="sites in the pipeline workload")
    parser.add_argument("--backtest-events", type=int, default=1_000_000)
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[100, 2000], help="offered loads, events/s"
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="how long each offered load runs"
    )
    parser.add_argument(
        "--idle", type=float, default=60.0, help="idle period before the last probe"
    )
    parser.add_argument("--scale-sites", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--scale-events", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=200, help="alerts in the delivery run")
    parser.add_argument(
        "--scale-out",
        type=int,
        default=2,
        help="then the pipeline again with this many triggers workers",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, to check the harness works"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=GROUPS,
        help="measure only these groups (the table shows what was measured)",
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.backtest_events, args.seconds, args.idle = 5000, 20_000, 4.0, 5.0
        args.scale_sites, args.scale_events = [10, 1000], 40_000
    results = asyncio.run(main_async(args))
    # A partial run goes to a file of its own: results.json holds figures measured side by side in
    # one run.
    written = RESULTS.with_name("results-only.json") if args.only else RESULTS
    written.write_text(json.dumps(results, indent=2) + "\n")
    say("\n" + table(results))
    say(f"\nwritten to {written.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
