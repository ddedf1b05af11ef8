"""Transitions do not depend on the order observations arrive in, when they are judged together.

The live worker adds every observation that reached a scope within the settle time and then
judges the scope tick by tick in event-time order; the backtest does the same per tick. So any
permutation of the reports inside a judged group must give the backtest's transitions, for
every kind of rule that reads windows (threshold at site and country scope, rate of change,
new value, silence), including corrections of earlier reports.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import AlertEvent, Observation
from services.triggers.backtest import Backtest, run_backtest
from tests.helpers import (
    ARRIVAL_RULES,
    ARRIVAL_START,
    NOW,
    daily_reports,
    engine_with,
    transitions,
)


def judged_in_groups(
    observations: list[Observation], days_per_group: int, seed: int
) -> list[AlertEvent]:
    """Reports of each run of `days_per_group` days arrive in a random order and are judged
    together."""
    rng = random.Random(seed)
    backtest = Backtest(engine_with(ARRIVAL_RULES))
    groups: dict[int, list[Observation]] = {}
    for o in observations:
        groups.setdefault((o.observed_at - ARRIVAL_START).days // days_per_group, []).append(o)
    for g in sorted(groups):
        group = groups[g]
        rng.shuffle(group)
        backtest.apply_together(group, NOW)
    return backtest.alerts


@settings(max_examples=40, deadline=None)
@given(
    data_seed=st.integers(0, 10_000),
    order_seed=st.integers(0, 10_000),
    days_per_group=st.integers(1, 6),
)
def test_any_arrival_order_within_judged_groups_gives_the_backtests_transitions(
    data_seed, order_seed, days_per_group
):
    observations = daily_reports(data_seed)
    expected = transitions(run_backtest(observations, engine_with(ARRIVAL_RULES), NOW))
    assert transitions(judged_in_groups(observations, days_per_group, order_seed)) == expected


def test_the_property_is_not_vacuous():
    """The feed above makes every kind fire, and judging one report at a time out of order would
    differ."""
    observations = daily_reports(3)
    alerts = run_backtest(observations, engine_with(ARRIVAL_RULES), NOW)
    assert {a.rule_id for a in alerts} == {
        "site-surge",
        "country-surge",
        "spike",
        "new-origin",
        "silent-site",
    }
    one_at_a_time = Backtest(engine_with(ARRIVAL_RULES))
    shuffled = list(observations)
    random.Random(1).shuffle(shuffled)
    for o in shuffled:
        one_at_a_time.apply(o, NOW)
    assert transitions(one_at_a_time.alerts) != transitions(alerts)
