"""Builders and generators shared by tests: feed reports, observations, engines with rules written
inline, wide histories for backtests (seeded, and as hypothesis strategies that shrink), daily
reports for arrival-order tests. Test files import from here, never from each other."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from hypothesis import strategies as st

from schemas import AlertEvent, Contact, Location, Observation, Scope, SitesFile, TriggersFile
from schemas.config import SharingFile
from services.common.config_files import load_model
from services.common.geography import Geography
from services.common.settings import PROJECT_ROOT
from services.ingest.validation import Limits, parse_feed_message
from services.notify.sharing import Reader, SharedAlert, SharingPolicy
from services.triggers.backtest import run_backtest
from services.triggers.core import RuleSet, TriggerEngine

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GEOGRAPHY = Geography(load_model(PROJECT_ROOT / "config" / "sites.yaml", SitesFile))
TITLE = {"en": "Surge", "es": "Aumento", "fr": "Afflux", "pt": "Aumento"}


def crossing(
    day: int, count: int, site: str = "PA-LAJAS-BLANCAS", frm: str = "CO", to: str = "PA", **extra
) -> dict:
    observed = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=day)
    return {
        "event_id": f"{site.lower()}-{day}",
        "source": "PA-SNM",
        "observed_at": observed.isoformat().replace("+00:00", "Z"),
        "period": "P1D",
        "site_id": site,
        "from_country": frm,
        "to_country": to,
        "count": count,
        **extra,
    }


# Test histories run past NOW (their ingested_at); plausibility is test_implausible_input.py's
_TEST_LIMITS = Limits(max_future="P2Y")


def observation(report: dict, feed: str = "border-crossings", revision: int = 1) -> Observation:
    obs = parse_feed_message(feed, json.dumps(report).encode(), GEOGRAPHY, NOW, _TEST_LIMITS)
    return obs.model_copy(update={"revision": revision}) if revision != 1 else obs


def engine_with(rules_yaml: str, lateness: str = "P7D") -> TriggerEngine:
    file = TriggersFile.model_validate(yaml.safe_load(rules_yaml))
    return TriggerEngine(RuleSet(file), GEOGRAPHY, lateness)


def threshold_rule(**overrides) -> dict:
    rule = {
        "id": "surge",
        "kind": "threshold",
        "feed": "border_crossing",
        "metric": "count",
        "scope": "site",
        "window": "24h",
        "aggregate": "sum",
        "levels": {"watch": 1000, "warning": 2500, "emergency": 5000},
        "title": TITLE,
    }
    rule.update(overrides)
    return rule


def silence_rule(watch: str = "48h", warning: str = "96h") -> dict:
    """Feed silence per source of border-crossing reports."""
    return {
        "id": "silent",
        "kind": "silence",
        "feed": "border_crossing",
        "scope": "source",
        "levels": {"watch": watch, "warning": warning},
        "title": TITLE,
    }


def rules_yaml(*rules: dict, overrides: dict | None = None) -> str:
    return yaml.safe_dump({"version": 1, "triggers": list(rules), "overrides": overrides or {}})


# --- alerts and the people who receive them ---------------------------------------------------


def alerts_for(*reports: dict[str, Any], **rule: Any) -> list[AlertEvent]:
    """The backtest's alerts for these border-crossing reports under one threshold rule."""
    engine = engine_with(rules_yaml(threshold_rule(**rule)))
    return run_backtest([observation(r) for r in reports], engine, NOW)


def episode(
    *counts: int, site: str = "PA-LAJAS-BLANCAS", frm: str = "CO", to: str = "PA", **rule: Any
) -> list[AlertEvent]:
    """The alerts of daily counts at one site, a day each from day 0."""
    return alerts_for(
        *(crossing(day, n, site=site, frm=frm, to=to) for day, n in enumerate(counts)), **rule
    )


def contact(cid: str = "c", **fields: Any) -> Contact:
    """A webhook contact; `fields` are the contact file's (countries, min_level, language...)."""
    return Contact.model_validate(
        {
            "id": cid,
            "name": cid,
            "organisation": "org",
            **fields,
            "channels": [{"type": "webhook", "url": "https://example.org/h", "secret": "s" * 20}],
        }
    )


def webhook_contact(receiver: Any, cid: str, **fields: Any) -> dict:
    """A contact (as the API takes it) whose webhook is the test receiver, its secret registered
    there."""
    secret = f"secret-of-{cid}-0123456789"
    receiver.secrets[cid] = secret
    return {
        "id": cid,
        "name": cid,
        "organisation": "test",
        **fields,
        "channels": [{"type": "webhook", "url": receiver.url_for(cid), "secret": secret}],
    }


def sharing(policy: SharingFile | None = None) -> SharingPolicy:
    """A sharing policy over the shipped sites, with a test key."""
    return SharingPolicy(policy or SharingFile(), GEOGRAPHY, b"test-key-" * 4)


def shared(alert: AlertEvent, reader: Contact, policy: SharingFile | None = None) -> SharedAlert:
    """The alert as the sharing policy lets this reader see it, which must be sent to them."""
    found = sharing(policy).view(alert, Reader.of_contact(reader))
    assert found is not None, f"{alert.alert_id} is not shared with {reader.id}"
    return found


# --- histories for backtests: the columnar path against the engine ---------------------------

SHORT_TITLE = {"en": "t", "es": "t", "fr": "t", "pt": "t"}
BC, DP = "border_crossing", "displacement"
WIDE_SITES = [
    ("PA-LAJAS-BLANCAS", "PA"),
    ("PA-SAN-VICENTE", "PA"),
    ("CR-PASO-CANOAS", "CR"),
    ("HN-DANLI", "HN"),
]
WIDE_AREAS = [("PA-5", "PA"), ("CR-P", "CR")]
WIDE_START = datetime(2026, 3, 1, tzinfo=UTC)
BC, DP = "border_crossing", "displacement"


def _rule(id: str, kind: str, scope: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "kind": kind, "scope": scope, "title": SHORT_TITLE, **fields}


# Every kind of rule, `for` and `clear_for`, a national override, calendar windows, a composite.
WIDE_RULES = yaml.safe_dump(
    {
        "version": 1,
        "triggers": [
            _rule(
                "site-surge",
                "threshold",
                "site",
                feed=BC,
                metric="count",
                window="48h",
                levels={"watch": 1500, "warning": 3000, "emergency": 6000},
                clear=1200,
                clear_for="24h",
            ),
            _rule(
                "children",
                "threshold",
                "site",
                feed=BC,
                metric="unaccompanied_children",
                window="24h",
                aggregate="mean",
                levels={"watch": 20, "warning": 60},
                **{"for": "24h"},
            ),
            _rule(
                "peak",
                "threshold",
                "area",
                feed=BC,
                metric="count",
                window="3d",
                aggregate="max",
                levels={"watch": 4000},
            ),
            _rule(
                "corridor-surge",
                "threshold",
                "corridor",
                feed=BC,
                metric="count",
                window="7d",
                levels={"watch": 9000, "warning": 20000},
                clear=7000,
                clear_for="2d",
            ),
            _rule(
                "national-month",
                "threshold",
                "country",
                feed=BC,
                metric="count",
                window="P1M",
                levels={"watch": 20000, "warning": 50000},
                clear=15000,
                clear_for="P1M",
            ),
            _rule(
                "spike",
                "rate_of_change",
                "site",
                feed=BC,
                metric="count",
                window="2d",
                baseline="6d",
                min_value=300,
                levels={"watch": 1.5, "warning": 2.5},
                clear=1.2,
            ),
            _rule(
                "new-origin",
                "new_value",
                "site",
                feed=BC,
                category="nationality",
                window="2d",
                lookback="5d",
                levels={"watch": 20, "warning": 200},
            ),
            _rule(
                "silent-source",
                "silence",
                "source",
                feed=BC,
                levels={"watch": "20h", "warning": "60h"},
            ),
            _rule(
                "displaced",
                "threshold",
                "area",
                feed=DP,
                metric="newly_displaced",
                window="24h",
                levels={"watch": 500, "warning": 1500},
                clear=200,
                clear_for="48h",
            ),
            _rule(
                "shelters",
                "ratio",
                "area",
                feed=DP,
                metric="shelter_occupancy",
                denominator="shelter_capacity",
                window="24h",
                levels={"watch": 0.85, "warning": 1.0},
                clear=0.8,
            ),
            _rule(
                "shelters-mean",
                "ratio",
                "country",
                feed=DP,
                metric="shelter_occupancy",
                denominator="shelter_capacity",
                window="48h",
                aggregate="mean",
                levels={"watch": 0.9},
            ),
            _rule(
                "new-cause",
                "new_value",
                "area",
                feed=DP,
                category="cause",
                window="3d",
                lookback="6d",
                levels={"watch": 100},
            ),
            _rule(
                "surge-and-shelters",
                "composite",
                "area",
                members=["site-surge", "shelters"],
                mode="all",
            ),
        ],
        "overrides": {
            "PA": {"site-surge": {"levels": {"watch": 2000, "warning": 4000}, "clear": 1500}}
        },
    }
)


_PERIODS = {"P1D": timedelta(days=1), "PT12H": timedelta(hours=12), "P7D": timedelta(days=7)}
_NATIONALITIES = ["VE", "HT", "EC", "CO", "CN", "AF"]
_CAUSES = ["violence", "flood", "eviction"]


@dataclass(frozen=True)
class SiteDay:
    """One site's report of one day: its count (and a corrected count, if corrected), when in the
    day it starts, its period, nationalities counted, unaccompanied children per revision."""

    count: int
    hour: int
    period: str
    nationalities: dict[str, int]
    unaccompanied: tuple[int, ...]
    corrected: int | None = None


@dataclass(frozen=True)
class AreaDay:
    displaced: int
    cause: str
    shelters: tuple[int, int] | None  # occupancy, capacity


@dataclass(frozen=True)
class WidePlan:
    """A history as data: per day, each of WIDE_SITES' and WIDE_AREAS' reports (None: none that
    day), and the order the reports are given in."""

    days: tuple[tuple[tuple[SiteDay | None, ...], tuple[AreaDay | None, ...]], ...]
    order_seed: int = 0


def wide_history(
    seed: int, days: int, corrections: float, long_periods: float, negative: float
) -> list[Observation]:
    """Reports with wandering counts over sites and areas: gaps, half-day and weekly periods,
    corrections, negative category counts (the given rates), from one seed."""
    rng = random.Random(seed)
    level = {site: rng.randint(200, 3000) for site, _ in WIDE_SITES}
    planned = []
    for _day in range(days):
        sites: list[SiteDay | None] = []
        for site, _ in WIDE_SITES:
            if rng.random() < 0.1:
                sites.append(None)  # a missing day: the source's silence
                continue
            level[site] = max(0, min(9000, int(level[site] * rng.uniform(0.5, 1.8))))
            hour = rng.choice([0, 0, 0, 6])
            period = "P7D" if rng.random() < long_periods else rng.choice(["P1D", "P1D", "PT12H"])
            nationalities = {
                rng.choice(_NATIONALITIES): level[site] // rng.randint(3, 40)
                for _ in range(rng.randint(0, 3))
            }
            if rng.random() < negative:
                nationalities["XX"] = -5  # nothing upstream sends this; the engine copes, so must
            corrected = (
                int(level[site] * rng.uniform(0.5, 1.5)) if rng.random() < corrections else None
            )
            counts = [level[site]] + ([corrected] if corrected is not None else [])
            unaccompanied = tuple(count // rng.randint(20, 200) for count in counts)
            sites.append(
                SiteDay(level[site], hour, period, nationalities, unaccompanied, corrected)
            )
        areas: list[AreaDay | None] = []
        for _ in WIDE_AREAS:
            if rng.random() < 0.3:
                areas.append(None)
                continue
            capacity = rng.choice([400, 800])
            displaced = rng.randint(0, 2500)
            shelters = (rng.randint(200, capacity + 200), capacity) if rng.random() < 0.8 else None
            areas.append(AreaDay(displaced, rng.choice(_CAUSES), shelters))
        planned.append((tuple(sites), tuple(areas)))
    return history_of(WidePlan(tuple(planned)), rng)


@st.composite
def wide_plans(draw: st.DrawFn, max_days: int = 60) -> WidePlan:
    """Histories for hypothesis: they shrink towards fewer days, fewer reports, smaller counts,
    daily periods and no corrections, so a failure is reported on a small history."""
    long_periods = draw(st.booleans())
    corrections = draw(st.booleans())
    negative = draw(st.booleans())
    periods = ["P1D", "PT12H", "P7D"] if long_periods else ["P1D", "PT12H"]
    site_day = st.builds(
        SiteDay,
        count=st.integers(0, 9000),
        hour=st.sampled_from([0, 6]),
        period=st.sampled_from(periods),
        nationalities=st.dictionaries(
            st.sampled_from(_NATIONALITIES + (["XX"] if negative else [])),
            st.integers(-5 if negative else 0, 3000),
            max_size=3,
        ),
        unaccompanied=st.tuples(st.integers(0, 200), st.integers(0, 200)),
        corrected=st.none() | st.integers(0, 9000) if corrections else st.none(),
    )
    area_day = st.builds(
        AreaDay,
        displaced=st.integers(0, 2500),
        cause=st.sampled_from(_CAUSES),
        shelters=st.none() | st.tuples(st.integers(200, 1000), st.sampled_from([400, 800])),
    )
    day = st.tuples(
        st.tuples(*[st.none() | site_day for _ in WIDE_SITES]),
        st.tuples(*[st.none() | area_day for _ in WIDE_AREAS]),
    )
    n = draw(st.integers(1, max_days))  # shrinks towards a short history
    days = draw(st.lists(day, min_size=n, max_size=n))
    return WidePlan(tuple(days), draw(st.integers(0, 2**16)))


def history_of(plan: WidePlan, order: random.Random | None = None) -> list[Observation]:
    """The observations of a plan, in the order its seed (or `order`) shuffles them into."""
    out: list[Observation] = []
    for day, (sites, areas) in enumerate(plan.days):
        for (site, country), report in zip(WIDE_SITES, sites, strict=True):
            if report is None:
                continue
            observed = WIDE_START + timedelta(days=day, hours=report.hour)
            counts = [report.count] + ([report.corrected] if report.corrected is not None else [])
            for revision, (count, children) in enumerate(
                zip(counts, report.unaccompanied, strict=False), start=1
            ):
                out.append(
                    Observation(
                        event_id=f"{site}-{day}",
                        revision=revision,
                        feed=BC,
                        source=f"SRC-{country}",
                        observed_at=observed,
                        period=report.period,
                        period_end=observed + _PERIODS[report.period],
                        location=Location(kind="site", id=site, country=country),
                        metrics={"count": count, "unaccompanied_children": children},
                        categories=(
                            {"nationality": report.nationalities} if report.nationalities else {}
                        ),
                        ingested_at=NOW,
                    )
                )
        for (area, country), found in zip(WIDE_AREAS, areas, strict=True):
            if found is None:
                continue
            metrics = {"newly_displaced": found.displaced}
            if found.shelters is not None:
                metrics.update(
                    shelter_occupancy=found.shelters[0], shelter_capacity=found.shelters[1]
                )
            observed = WIDE_START + timedelta(days=day)
            out.append(
                Observation(
                    event_id=f"dp-{area}-{day}",
                    feed=DP,
                    source=f"DP-{country}",
                    observed_at=observed,
                    period="P1D",
                    period_end=observed + timedelta(days=1),
                    location=Location(kind="area", id=area, country=country),
                    metrics=metrics,
                    categories={"cause": {found.cause: found.displaced}},
                    ingested_at=NOW,
                )
            )
    (order or random.Random(plan.order_seed)).shuffle(out)  # the order matters only in ties
    return out


# --- reports arriving in any order: the live worker against the backtest ---------------------

ARRIVAL_SITES = [
    ("PA-LAJAS-BLANCAS", "PA"),
    ("PA-SAN-VICENTE", "PA"),
    ("CR-PASO-CANOAS", "CR"),
    ("CR-PENAS-BLANCAS", "CR"),
]
# Every kind of rule that reads windows, at site and country scope.
ARRIVAL_RULES = yaml.safe_dump(
    {
        "version": 1,
        "triggers": [
            {
                "id": "site-surge",
                "kind": "threshold",
                "feed": "border_crossing",
                "metric": "count",
                "scope": "site",
                "window": "48h",
                "levels": {"watch": 1500, "warning": 3000, "emergency": 6000},
                "clear": 1200,
                "clear_for": "24h",
                "title": SHORT_TITLE,
            },
            {
                "id": "country-surge",
                "kind": "threshold",
                "feed": "border_crossing",
                "metric": "count",
                "scope": "country",
                "window": "24h",
                "levels": {"watch": 2000, "warning": 4000},
                "for": "24h",
                "title": SHORT_TITLE,
            },
            {
                "id": "spike",
                "kind": "rate_of_change",
                "feed": "border_crossing",
                "metric": "count",
                "scope": "site",
                "window": "2d",
                "baseline": "6d",
                "min_value": 300,
                "levels": {"watch": 1.5, "warning": 2.5},
                "clear": 1.2,
                "title": SHORT_TITLE,
            },
            {
                "id": "new-origin",
                "kind": "new_value",
                "feed": "border_crossing",
                "category": "nationality",
                "scope": "site",
                "window": "2d",
                "lookback": "5d",
                "levels": {"watch": 20, "warning": 200},
                "title": SHORT_TITLE,
            },
            {
                "id": "silent-site",
                "kind": "silence",
                "feed": "border_crossing",
                "scope": "site",
                "levels": {"watch": "20h"},
                "title": SHORT_TITLE,
            },
        ],
    }
)
ARRIVAL_START = datetime(2026, 5, 1, tzinfo=UTC)


def daily_reports(seed: int, days: int = 18) -> list[Observation]:
    """Daily reports per site with wandering counts, occasional new nationalities, gaps and
    corrections."""
    rng = random.Random(seed)
    level = {site: rng.randint(200, 2500) for site, _ in ARRIVAL_SITES}
    out: list[Observation] = []
    for day in range(days):
        for site, country in ARRIVAL_SITES:
            if rng.random() < 0.08:
                continue  # a missing day: silence fires and clears when the next report comes
            level[site] = max(0, min(9000, int(level[site] * rng.uniform(0.5, 1.8))))
            nationalities = {
                rng.choice(["VE", "HT", "EC", "CO", "CN", "AF"]): level[site] // rng.randint(3, 40)
            }
            observed = ARRIVAL_START + timedelta(days=day)
            revisions = [1, 2] if rng.random() < 0.1 else [1]
            for (
                revision
            ) in revisions:  # a correction: the same event_id, a higher revision, another count
                count = level[site] if revision == 1 else int(level[site] * rng.uniform(0.5, 1.5))
                out.append(
                    Observation(
                        event_id=f"{site}-{day}",
                        revision=revision,
                        feed="border_crossing",
                        source=f"SRC-{country}",
                        observed_at=observed,
                        period="P1D",
                        period_end=observed + timedelta(days=1),
                        location=Location(kind="site", id=site, country=country),
                        metrics={"count": count},
                        categories={"nationality": nationalities},
                        ingested_at=NOW,
                    )
                )
    return out


def transitions(alerts: list[AlertEvent]) -> dict[tuple[str, int], tuple[Any, ...]]:
    """What two runs must agree on, by (alert_id, transition)."""
    return {
        (a.alert_id, a.transition): (a.status, a.level, a.value, a.observed_until) for a in alerts
    }


# --- sharing-policy properties: random alerts and policies over the shipped geography ---

COUNTRIES = sorted({s.country for s in GEOGRAPHY.sites.values()})
KINDS = ("threshold", "new_value", "rate_of_change", "ratio", "silence", "composite")
PLACES_OF = {
    c: {s.id for s in GEOGRAPHY.sites.values() if s.country == c}
    | {a.id for a in GEOGRAPHY.areas.values() if a.country == c}
    | {s.id for s in GEOGRAPHY.sources.values() if s.country == c}
    for c in COUNTRIES
}
SOURCES = sorted(GEOGRAPHY.sources) + ["UNDECLARED-SRC"]


@st.composite
def shared_alerts(draw) -> AlertEvent:
    """Alerts of every scope kind over the shipped geography, for sharing-policy properties."""
    kind = draw(st.sampled_from(("site", "area", "country", "source", "corridor", "region")))
    if kind == "site":
        site = draw(st.sampled_from(sorted(GEOGRAPHY.sites.values(), key=lambda s: s.id)))
        scope = Scope(kind="site", id=site.id, country=site.country)
    elif kind == "area":
        area = draw(st.sampled_from(sorted(GEOGRAPHY.areas.values(), key=lambda a: a.id)))
        scope = Scope(kind="area", id=area.id, country=area.country)
    elif kind == "source":
        source = draw(st.sampled_from(sorted(GEOGRAPHY.sources.values(), key=lambda s: s.id)))
        scope = Scope(kind="source", id=source.id, country=source.country)
    elif kind == "country":
        country = draw(st.sampled_from(COUNTRIES))
        scope = Scope(kind="country", id=country, country=country)
    elif kind == "corridor":
        scope = Scope(kind="corridor", id=draw(st.sampled_from(sorted(GEOGRAPHY.corridors))))
    else:
        scope = Scope(kind="region", id=GEOGRAPHY.region)
    if scope.country:  # a single country's alert counts its own country's reports
        own = [
            s
            for s in SOURCES
            if s not in GEOGRAPHY.sources or GEOGRAPHY.sources[s].country == scope.country
        ]
    else:
        own = SOURCES
    evidence = draw(st.lists(st.sampled_from(own), max_size=4))
    trigger = draw(st.sampled_from(KINDS))
    details = draw(
        st.dictionaries(
            st.sampled_from(("AF", "VE", "current", "baseline_expected")),
            st.integers(0, 40).map(float),
            max_size=3,
        )
    )
    start = NOW - timedelta(days=2)
    return AlertEvent(
        alert_id=f"r/{scope.key}",
        transition=draw(st.integers(1, 5)),
        rule_id="r",
        rule_version="v1",
        kind=trigger,
        status=draw(st.sampled_from(("firing", "resolved"))),
        level="warning",
        previous_level="watch",
        scope=scope,
        value=float(draw(st.integers(0, 40))),
        threshold=float(draw(st.integers(1, 40))),
        window="P1D",
        started_at=start,
        observed_until=NOW,
        evaluated_at=NOW,
        evidence=[f"{s}/ev-{i}" for i, s in enumerate(evidence)],
        title=TITLE,
        details=details,
    )


policies = st.builds(
    lambda default, countries: SharingFile.model_validate(
        {"default": default, "countries": countries}
    ),
    st.fixed_dictionaries(
        {
            "outside": st.sampled_from(("full", "aggregates")),
            "small_count_floor": st.integers(0, 20),
        }
    ),
    st.dictionaries(
        st.sampled_from(COUNTRIES),
        st.fixed_dictionaries(
            {
                "outside": st.sampled_from(("full", "aggregates", "nothing")),
                "small_count_floor": st.integers(0, 20),
            }
        ),
        max_size=5,
    ),
)


def site_alert(
    site: str,
    level: str = "warning",
    value: float = 3000,
    *,
    transition: int = 1,
    at: datetime | None = None,
    title: dict[str, str] = TITLE,
) -> AlertEvent:
    """A firing crossing-surge alert at a shipped site, three hours old at `at` (default now),
    for tests of what readers are shown."""
    found = GEOGRAPHY.sites[site]
    at = at or datetime.now(UTC)
    return AlertEvent(
        alert_id=f"crossing-surge/site/{site}",
        transition=transition,
        rule_id="crossing-surge",
        rule_version="sha256:test",
        status="firing",
        level=level,
        previous_level=None,
        scope=Scope(kind="site", id=site, country=found.country),
        value=value,
        threshold=2500,
        window="PT24H",
        started_at=at - timedelta(hours=3),
        observed_until=at,
        evaluated_at=at,
        evidence=[f"{found.country}-INM/r-{transition}"],
        title=title,
    )
