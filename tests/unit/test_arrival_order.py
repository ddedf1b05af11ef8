"""Transitions do not depend on the order observations arrive in, when they are judged together.

The live worker adds every observation that reached a scope within the settle time and then
judges the scope tick by tick in event-time order; the backtest does the same per tick. So any
permutation of the reports inside a judged group must give the backtest's transitions, for
every kind of rule that reads windows (threshold at site and country scope, rate of change,
new value, silence), including corrections of earlier reports.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Location, Observation
from services.triggers.backtest import Backtest, run_backtest
from tests.helpers import NOW, engine_with

SITES = [
    ("PA-LAJAS-BLANCAS", "PA"),
    ("PA-SAN-VICENTE", "PA"),
    ("CR-PASO-CANOAS", "CR"),
    ("CR-PENAS-BLANCAS", "CR"),
]
TITLE = {"en": "t", "es": "t", "fr": "t", "pt": "t"}
RULES = yaml.safe_dump(
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
                "title": TITLE,
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
                "title": TITLE,
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
                "title": TITLE,
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
                "title": TITLE,
            },
            {
                "id": "silent-site",
                "kind": "silence",
                "feed": "border_crossing",
                "scope": "site",
                "levels": {"watch": "20h"},
                "title": TITLE,
            },
        ],
    }
)
START = datetime(2026, 5, 1, tzinfo=UTC)


def reports(seed: int, days: int = 18) -> list[Observation]:
    """Daily reports per site with wandering counts, occasional new nationalities, gaps and
    corrections."""
    rng = random.Random(seed)
    level = {site: rng.randint(200, 2500) for site, _ in SITES}
    out = []
    for day in range(days):
        for site, country in SITES:
            if rng.random() < 0.08:
                continue  # a missing day: silence fires and clears when the next report comes
            level[site] = max(0, min(9000, int(level[site] * rng.uniform(0.5, 1.8))))
            nationalities = {
                rng.choice(["VE", "HT", "EC", "CO", "CN", "AF"]): level[site] // rng.randint(3, 40)
            }
            observed = START + timedelta(days=day)
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


def judged_in_groups(observations: list[Observation], days_per_group: int, seed: int) -> list:
    """Reports of each run of `days_per_group` days arrive in a random order and are judged
    together."""
    rng = random.Random(seed)
    backtest = Backtest(engine_with(RULES))
    groups: dict[int, list[Observation]] = {}
    for o in observations:
        groups.setdefault((o.observed_at - START).days // days_per_group, []).append(o)
    for g in sorted(groups):
        group = groups[g]
        rng.shuffle(group)
        backtest.apply_together(group, NOW)
    return backtest.alerts


def transitions(alerts) -> dict:
    return {
        (a.alert_id, a.transition): (a.status, a.level, a.value, a.observed_until) for a in alerts
    }


@settings(max_examples=40, deadline=None)
@given(
    data_seed=st.integers(0, 10_000),
    order_seed=st.integers(0, 10_000),
    days_per_group=st.integers(1, 6),
)
def test_any_arrival_order_within_judged_groups_gives_the_backtests_transitions(
    data_seed, order_seed, days_per_group
):
    observations = reports(data_seed)
    expected = transitions(run_backtest(observations, engine_with(RULES), NOW))
    assert transitions(judged_in_groups(observations, days_per_group, order_seed)) == expected


def test_the_property_is_not_vacuous():
    """The feed above makes every kind fire, and judging one report at a time out of order would
    differ."""
    observations = reports(3)
    alerts = run_backtest(observations, engine_with(RULES), NOW)
    assert {a.rule_id for a in alerts} == {
        "site-surge",
        "country-surge",
        "spike",
        "new-origin",
        "silent-site",
    }
    one_at_a_time = Backtest(engine_with(RULES))
    shuffled = list(observations)
    random.Random(1).shuffle(shuffled)
    for o in shuffled:
        one_at_a_time.apply(o, NOW)
    assert transitions(one_at_a_time.alerts) != transitions(alerts)
