"""The columnar backtest gives exactly the transitions of adding and judging observation by
observation.

`run_backtest` works from columns (services/triggers/core/columnar.py) and hands scopes it cannot
reproduce to the engine; `exact=True` runs the engine everywhere. Over wide histories - every kind
of rule, `for` and `clear_for`, national overrides, calendar windows, mixed period lengths, gaps,
corrections, negative category counts, composites - the two must give the same alerts in the same
order, field for field.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Location, Observation
from services.triggers.backtest import run_backtest
from services.triggers.core import columnar as columnar_module
from services.triggers.core import columns
from tests.helpers import NOW, engine_with

TITLE = {"en": "t", "es": "t", "fr": "t", "pt": "t"}
SITES = [
    ("PA-LAJAS-BLANCAS", "PA"),
    ("PA-SAN-VICENTE", "PA"),
    ("CR-PASO-CANOAS", "CR"),
    ("HN-DANLI", "HN"),
]
AREAS = [("PA-5", "PA"), ("CR-P", "CR")]
START = datetime(2026, 3, 1, tzinfo=UTC)
BC, DP = "border_crossing", "displacement"


def rule(id: str, kind: str, scope: str, **fields) -> dict:
    return {"id": id, "kind": kind, "scope": scope, "title": TITLE, **fields}


RULES = yaml.safe_dump(
    {
        "version": 1,
        "triggers": [
            rule(
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
            rule(
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
            rule(
                "peak",
                "threshold",
                "area",
                feed=BC,
                metric="count",
                window="3d",
                aggregate="max",
                levels={"watch": 4000},
            ),
            rule(
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
            rule(
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
            rule(
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
            rule(
                "new-origin",
                "new_value",
                "site",
                feed=BC,
                category="nationality",
                window="2d",
                lookback="5d",
                levels={"watch": 20, "warning": 200},
            ),
            rule(
                "silent-source",
                "silence",
                "source",
                feed=BC,
                levels={"watch": "20h", "warning": "60h"},
            ),
            rule(
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
            rule(
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
            rule(
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
            rule(
                "new-cause",
                "new_value",
                "area",
                feed=DP,
                category="cause",
                window="3d",
                lookback="6d",
                levels={"watch": 100},
            ),
            rule(
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


def history(
    seed: int, days: int, corrections: float, long_periods: float, negative: float
) -> list[Observation]:
    """Reports with wandering counts over sites and areas: gaps, half-day and weekly periods,
    corrections."""
    rng = random.Random(seed)
    level = {site: rng.randint(200, 3000) for site, _ in SITES}
    out: list[Observation] = []
    for day in range(days):
        for site, country in SITES:
            if rng.random() < 0.1:
                continue  # a missing day: the source's silence
            level[site] = max(0, min(9000, int(level[site] * rng.uniform(0.5, 1.8))))
            observed = START + timedelta(days=day, hours=rng.choice([0, 0, 0, 6]))
            period = "P7D" if rng.random() < long_periods else rng.choice(["P1D", "P1D", "PT12H"])
            nationality = {
                rng.choice(["VE", "HT", "EC", "CO", "CN", "AF"]): level[site] // rng.randint(3, 40)
                for _ in range(rng.randint(0, 3))
            }
            if rng.random() < negative:
                nationality[
                    "XX"
                ] = -5  # nothing upstream should send this; the engine copes, so must the columns
            revisions = [1, 2] if rng.random() < corrections else [1]
            for revision in revisions:
                count = level[site] if revision == 1 else int(level[site] * rng.uniform(0.5, 1.5))
                out.append(
                    Observation(
                        event_id=f"{site}-{day}",
                        revision=revision,
                        feed=BC,
                        source=f"SRC-{country}",
                        observed_at=observed,
                        period=period,
                        period_end=observed + _length(period),
                        location=Location(kind="site", id=site, country=country),
                        metrics={
                            "count": count,
                            "unaccompanied_children": count // rng.randint(20, 200),
                        },
                        categories={"nationality": nationality} if nationality else {},
                        ingested_at=NOW,
                    )
                )
        for area, country in AREAS:
            if rng.random() < 0.3:
                continue
            capacity = rng.choice([400, 800])
            displaced = rng.randint(0, 2500)
            metrics = {"newly_displaced": displaced}
            if rng.random() < 0.8:
                metrics.update(
                    shelter_occupancy=rng.randint(200, capacity + 200), shelter_capacity=capacity
                )
            observed = START + timedelta(days=day)
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
                    categories={
                        "cause": {rng.choice(["violence", "flood", "eviction"]): displaced}
                    },
                    ingested_at=NOW,
                )
            )
    rng.shuffle(out)  # the order given does not matter beyond ties
    return out


def _length(period: str) -> timedelta:
    return {"P1D": timedelta(days=1), "PT12H": timedelta(hours=12), "P7D": timedelta(days=7)}[
        period
    ]


def both(observations: list[Observation]) -> tuple[list, list]:
    return (
        run_backtest(observations, engine_with(RULES), NOW),
        run_backtest(observations, engine_with(RULES), NOW, exact=True),
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    days=st.integers(1, 75),
    corrections=st.sampled_from([0.0, 0.0, 0.05]),
    long_periods=st.sampled_from([0.0, 0.0, 0.1]),
    negative=st.sampled_from([0.0, 0.0, 0.02]),
)
def test_columns_give_the_engines_transitions_in_the_engines_order(
    seed, days, corrections, long_periods, negative
):
    columnar, exact = both(history(seed, days, corrections, long_periods, negative))
    assert columnar == exact


def test_the_comparison_is_not_vacuous():
    """The history above makes every rule fire, in both paths, with evidence and details; sites,
    corridors and sources go through the columns, scopes with a max or mean ratio through the
    engine."""
    observations = history(5, 75, 0.0, 0.0, 0.0)
    by_engine = columnar_module.engine_scopes(engine_with(RULES), observations)
    columnar, exact = both(observations)
    fired = {a.rule_id for a in exact}
    assert fired == {r["id"] for r in yaml.safe_load(RULES)["triggers"]}
    assert columnar == exact
    assert all(
        a.evidence
        for a in columnar
        if a.kind not in ("composite", "silence") and a.status == "firing"
    )
    assert any(a.details for a in columnar if a.kind == "new_value")
    assert sorted(by_engine) == ["area/CR-P", "area/HN-EP", "area/PA-5", "country/CR", "country/PA"]


def test_a_broken_column_would_be_caught():
    """The equality above is sharp: one transition of one scope dropped or changed is seen."""
    columnar, exact = both(history(9, 40, 0.0, 0.0, 0.0))
    assert columnar == exact
    assert (
        columnar[:-1] != exact
        and [a.model_copy(update={"value": a.value + 1}) for a in columnar] != exact
    )


def test_counts_too_large_for_exact_sums_go_to_the_engine():
    """Above 2**52 a float no longer holds every integer: such a metric's scopes are replayed by the
    engine."""
    observations = [
        o
        if o.feed != BC or not o.event_id.startswith("HN-DANLI-3")
        else o.model_copy(update={"metrics": {**o.metrics, "count": 2**55 + 1}})
        for o in history(11, 12, 0.0, 0.0, 0.0)
    ]
    columnar, exact = both(observations)
    assert columnar == exact
    assert any(a.alert_id == "site-surge/site/HN-DANLI" for a in exact)
    assert "site/HN-DANLI" in columnar_module.engine_scopes(engine_with(RULES), observations)


def _near_halves(draw_k: int, nudge: int) -> float:
    """A value within a few ulps of a half at the 4th decimal (k + 0.5) / 10**4: where rounding the
    scaled float picks the other neighbour than Python's round does for many of them."""
    import numpy as np

    half = (draw_k + 0.5) / 10**4
    return float(half + np.spacing(half) * nudge)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(0, 2e6),
            st.builds(_near_halves, st.integers(0, 10**9), st.integers(-3, 3)),
            st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)).map(lambda p: p[0] / p[1]),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_ratios_rounded_from_columns_are_pythons_round(values):
    """Rate-of-change and ratio values are rounded to 4 digits in bulk; an alert's value must be the
    engine's round(value, 4) to the last bit, halfway cases included (0.16125 → 0.1613, 1.61415 →
    1.6141)."""
    import numpy as np

    assert columns.rounded(np.array(values), 4).tolist() == [round(v, 4) for v in values]
