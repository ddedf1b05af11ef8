"""The values behind an alert, published with each transition for the console's chart: the
trigger's value at the scope's recent ticks, as the engine judged them."""

from __future__ import annotations

from datetime import timedelta

from schemas import Scope
from services.triggers.core.windows import ScopeState
from tests.helpers import NOW, crossing, engine_with, observation, rules_yaml, threshold_rule


def test_a_transition_carries_the_window_values_of_the_ticks_before_it():
    engine = engine_with(rules_yaml(threshold_rule(window="48h")))
    state = ScopeState()
    scope = Scope(kind="site", id="PA-LAJAS-BLANCAS", country="PA")
    counts = [300, 400, 200, 6000, 300]
    events = []
    for day, count in enumerate(counts):
        engine.add(state, scope, observation(crossing(day, count)), NOW)
        events.extend(engine.judge(state, scope, NOW))
    emergency = next(e for e in events if e.level == "emergency")
    series = engine.series(state, emergency)
    assert series is not None
    assert series.levels == {"watch": 1000, "warning": 2500, "emergency": 5000}
    # a 48 h window over daily reports: each tick sums that day and the day before
    assert [v for _, v in series.points] == [300, 700, 600, 6200]
    assert series.points[-1][0] == emergency.observed_until == series.until
    assert series.points[0][0] == series.points[1][0] - timedelta(days=1)
    # a later transition (here: the next day's) carries the ticks up to it
    next_day = emergency.model_copy(
        update={"observed_until": emergency.observed_until + timedelta(days=1)}
    )
    later = engine.series(state, next_day)
    assert later is not None and [v for _, v in later.points] == [300, 700, 600, 6200, 6300]


def test_there_is_no_series_for_a_trigger_removed_from_the_rules():
    engine = engine_with(rules_yaml(threshold_rule()))
    state = ScopeState()
    scope = Scope(kind="site", id="PA-LAJAS-BLANCAS", country="PA")
    engine.add(state, scope, observation(crossing(0, 6000)), NOW)
    (event,) = engine.judge(state, scope, NOW)
    gone = event.model_copy(update={"rule_id": "no-such-rule"})
    assert engine.series(state, gone) is None
