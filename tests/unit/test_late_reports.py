"""Late reports alert: a report arriving after later days were judged, within the lateness bound,
gives the transitions it warrants at the tick it concerns (marked late), and their clearing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import LEVEL_RANK
from services.triggers.backtest import Backtest, run_backtest
from tests.helpers import (
    ARRIVAL_RULES,
    NOW,
    crossing,
    daily_reports,
    engine_with,
    observation,
    rules_yaml,
    threshold_rule,
    transitions,
)

RULES = rules_yaml(threshold_rule(clear=800, clear_for="48h"))


def one_at_a_time(observations, rules=RULES):
    backtest = Backtest(engine_with(rules))
    for o in observations:
        backtest.apply(o, NOW)
    return backtest.alerts


def test_a_surge_reported_a_day_late_fires_at_the_day_it_concerns_and_clears_as_in_order():
    days = {0: 300, 1: 300, 2: 300, 3: 6000, 4: 300, 5: 300, 6: 300}
    in_order = [observation(crossing(d, n)) for d, n in days.items()]
    late = [in_order[d] for d in (0, 1, 2, 4, 3, 5, 6)]  # day 3's report arrives after day 4's
    expected = transitions(run_backtest(in_order, engine_with(RULES), NOW))
    alerts = one_at_a_time(late)
    assert transitions(alerts) == expected
    fired, resolved = alerts
    assert (fired.status, fired.level, fired.value) == ("firing", "emergency", 6000.0)
    assert fired.late and fired.observed_until == in_order[3].period_end
    assert resolved.status == "resolved" and not resolved.late


def test_a_late_report_under_every_level_changes_nothing_and_is_not_marked():
    reports = [observation(crossing(d, 300)) for d in (0, 1, 2, 4, 3)]
    assert one_at_a_time(reports) == []


def test_a_late_report_escalates_a_firing_alert_at_its_tick():
    """Warning since day 1; day 2's emergency figure arrives after day 3: escalation at day 2."""
    days = {0: 300, 1: 3000, 2: 9000, 3: 3000}
    in_order = [observation(crossing(d, n)) for d, n in days.items()]
    alerts = one_at_a_time([in_order[d] for d in (0, 1, 3, 2)])
    assert [(a.level, a.late, a.observed_until) for a in alerts] == [
        ("warning", False, in_order[1].period_end),
        ("emergency", True, in_order[2].period_end),
    ]


@settings(max_examples=60, deadline=None)
@given(
    data_seed=st.integers(0, 10_000),
    held_back=st.integers(0, 17),
    days_late=st.integers(1, 6),
)
def test_one_day_reported_late_reaches_every_level_the_backtest_reaches(
    data_seed, held_back, days_late
):
    """Each day's reports judged together (as within the settle time), one day's arriving late
    (one to six days, inside the lateness bound): every alert reaches live at least the highest
    level it reaches in the backtest (higher is possible: what was known at the time; a lower
    level it had passed by the time the late report came is not announced again; silence rules
    excepted: a day missing until it comes late is a gap), only transitions for ticks judged
    before are marked late, and once everything has arrived every alert is where the backtest left
    it."""
    observations = sorted(daily_reports(data_seed), key=lambda o: o.period_end)
    days = sorted({o.period_end for o in observations})
    late_day = days[held_back % len(days)]
    deliver_after = days[min(days.index(late_day) + days_late, len(days) - 1)]
    held = [o for o in observations if o.period_end == late_day]
    arrival = []
    for tick in days:
        if tick != late_day:
            arrival.append([o for o in observations if o.period_end == tick])
        if tick == deliver_after:
            arrival.append(held)
    backtest = Backtest(engine_with(ARRIVAL_RULES))
    expected = backtest.replay(observations, NOW, exact=True)
    live = Backtest(engine_with(ARRIVAL_RULES))
    late = []
    for group in arrival:
        produced = live.apply_together(group, NOW)
        if group is held:
            late = produced
    reached = _highest(live.alerts)
    assert all(reached.get(alert, 0) >= rank for alert, rank in _highest(expected).items())
    assert not any(a.late for a in live.alerts if a not in late)
    assert all(a.observed_until < deliver_after for a in late if a.late)
    assert _levels(live) == _levels(backtest)


def _highest(alerts) -> dict[str, int]:
    highest: dict[str, int] = {}
    for a in alerts:
        if a.level is not None and a.kind != "silence":
            highest[a.alert_id] = max(highest.get(a.alert_id, 0), LEVEL_RANK[a.level])
    return highest


def _levels(backtest: Backtest) -> dict[str, tuple[str, str | None]]:
    return {
        f"{rule_id}/{key}": (alert.status, alert.level)
        for key, state in backtest.states.items()
        for rule_id, alert in state.alerts.items()
    }


def test_a_late_report_fires_a_rule_with_for_whose_wait_began_before_it():
    """`for: 24h`: pending since day 1; day 2's figure, arriving after day 3 (which reset the
    wait), fires at day 2 as in order, and day 3 resolves it (found by the property below)."""
    rules = rules_yaml(threshold_rule(levels={"watch": 2000, "warning": 4000}, **{"for": "24h"}))
    days = {0: 300, 1: 2500, 2: 4500, 3: 300}
    in_order = [observation(crossing(d, n)) for d, n in days.items()]
    expected = transitions(run_backtest(in_order, engine_with(rules), NOW))
    assert list(expected) == [
        ("surge/site/PA-LAJAS-BLANCAS", 1),
        ("surge/site/PA-LAJAS-BLANCAS", 2),
    ]
    alerts = one_at_a_time([in_order[d] for d in (0, 1, 3, 2)], rules)
    assert [(a.status, a.level, a.late) for a in alerts] == [
        ("firing", "warning", True),
        ("resolved", None, False),
    ]
