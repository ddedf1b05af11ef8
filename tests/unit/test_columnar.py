"""The columnar backtest gives exactly the transitions of adding and judging observation by
observation.

`run_backtest` works from columns (services/triggers/core/columnar.py) and hands scopes it cannot
reproduce to the engine; `exact=True` runs the engine everywhere. Over wide histories - every kind
of rule, `for` and `clear_for`, national overrides, calendar windows, mixed period lengths, gaps,
corrections, negative category counts, composites - the two must give the same alerts in the same
order, field for field.
"""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import AlertEvent, Observation
from services.triggers.backtest import run_backtest
from services.triggers.core import columnar as columnar_module
from services.triggers.core import columns
from tests.helpers import (
    NOW,
    WIDE_RULES,
    WidePlan,
    engine_with,
    history_of,
    wide_history,
    wide_plans,
)


def both(observations: list[Observation]) -> tuple[list[AlertEvent], list[AlertEvent]]:
    return (
        run_backtest(observations, engine_with(WIDE_RULES), NOW),
        run_backtest(observations, engine_with(WIDE_RULES), NOW, exact=True),
    )


@settings(max_examples=60, deadline=None)
@given(plan=wide_plans())
def test_columns_give_the_engines_transitions_in_the_engines_order(plan: WidePlan):
    columnar, exact = both(history_of(plan))
    assert columnar == exact


def test_the_comparison_is_not_vacuous():
    """The history above makes every rule fire, in both paths, with evidence and details; sites,
    corridors and sources go through the columns, scopes with a max or mean ratio through the
    engine."""
    observations = wide_history(5, 75, 0.0, 0.0, 0.0)
    by_engine = columnar_module.engine_scopes(engine_with(WIDE_RULES), observations)
    columnar, exact = both(observations)
    fired = {a.rule_id for a in exact}
    assert fired == {r["id"] for r in yaml.safe_load(WIDE_RULES)["triggers"]}
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
    columnar, exact = both(wide_history(9, 40, 0.0, 0.0, 0.0))
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
        if o.feed != "border_crossing" or not o.event_id.startswith("HN-DANLI-3")
        else o.model_copy(update={"metrics": {**o.metrics, "count": 2**55 + 1}})
        for o in wide_history(11, 12, 0.0, 0.0, 0.0)
    ]
    columnar, exact = both(observations)
    assert columnar == exact
    assert any(a.alert_id == "site-surge/site/HN-DANLI" for a in exact)
    assert "site/HN-DANLI" in columnar_module.engine_scopes(engine_with(WIDE_RULES), observations)


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
