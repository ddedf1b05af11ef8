"""The evaluation core on threshold rules: levels, windows, hysteresis, overrides, corrections."""

import json

from services.triggers.backtest import run_backtest
from services.triggers.core import ScopeState
from tests.helpers import (
    NOW,
    TITLE,
    crossing,
    engine_with,
    observation,
    rules_yaml,
    threshold_rule,
)


def transitions(engine, reports, feed="border-crossings"):
    alerts = run_backtest([observation(r, feed) for r in reports], engine, NOW)
    return [(a.alert_id, a.transition, a.status, a.level, a.value) for a in alerts]


def test_a_value_exactly_at_a_level_fires_it():
    engine = engine_with(rules_yaml(threshold_rule()))
    assert transitions(engine, [crossing(0, 999)]) == []
    assert transitions(engine, [crossing(0, 1000)]) == [
        ("surge/site/PA-LAJAS-BLANCAS", 1, "firing", "watch", 1000)
    ]


def test_escalation_is_immediate_and_transitions_are_numbered():
    engine = engine_with(rules_yaml(threshold_rule()))
    got = transitions(engine, [crossing(0, 1200), crossing(1, 2600), crossing(2, 5100)])
    assert [(t[1], t[3]) for t in got] == [(1, "watch"), (2, "warning"), (3, "emergency")]


def test_24h_window_sums_one_day_of_daily_reports_only():
    engine = engine_with(rules_yaml(threshold_rule(levels={"watch": 1500})))
    assert transitions(engine, [crossing(0, 900), crossing(1, 900)]) == []


def test_7d_window_sums_a_week():
    engine = engine_with(rules_yaml(threshold_rule(window="7d", levels={"watch": 6000})))
    got = transitions(engine, [crossing(d, 900) for d in range(7)])
    assert got == [("surge/site/PA-LAJAS-BLANCAS", 1, "firing", "watch", 6300)]


def test_hysteresis_a_value_hovering_at_the_level_does_not_flap():
    engine = engine_with(rules_yaml(threshold_rule(clear=800, clear_for="48h")))
    hovering = [1010, 990, 1005, 995, 1001, 980]
    got = transitions(engine, [crossing(d, v) for d, v in enumerate(hovering)])
    assert got == [("surge/site/PA-LAJAS-BLANCAS", 1, "firing", "watch", 1010)]


def test_resolves_only_after_clear_for_below_clear():
    engine = engine_with(rules_yaml(threshold_rule(clear=800, clear_for="48h")))
    got = transitions(
        engine, [crossing(0, 1500), crossing(1, 500), crossing(2, 500), crossing(3, 500)]
    )
    assert [(t[1], t[2]) for t in got] == [(1, "firing"), (2, "resolved")]
    # the resolution comes with the observation 48h after the value first fell below clear
    alerts = run_backtest(
        [observation(crossing(d, v)) for d, v in enumerate([1500, 500, 500, 500])], engine, NOW
    )
    assert (
        alerts[1].observed_until.day == 5
        and alerts[1].previous_level == "watch"
        and alerts[1].threshold == 800
    )


def test_for_waits_before_firing():
    engine = engine_with(rules_yaml(threshold_rule(**{"for": "48h"})))
    got = transitions(engine, [crossing(0, 1200), crossing(1, 1200), crossing(2, 1200)])
    assert [(t[1], t[3]) for t in got] == [(1, "watch")]
    alerts = run_backtest([observation(crossing(d, 1200)) for d in range(3)], engine, NOW)
    assert alerts[0].observed_until.day == 4 and alerts[0].started_at.day == 2


def test_national_override_applies_to_that_country_only():
    engine = engine_with(
        rules_yaml(threshold_rule(), overrides={"PA": {"surge": {"levels": {"watch": 2000}}}})
    )
    panama = transitions(engine, [crossing(0, 1500)])
    costa_rica = transitions(engine, [crossing(0, 1500, site="CR-PASO-CANOAS", frm="PA", to="CR")])
    assert panama == []
    assert costa_rica == [("surge/site/CR-PASO-CANOAS", 1, "firing", "watch", 1500)]
    alert = run_backtest([observation(crossing(0, 2100))], engine, NOW)[0]
    assert (
        alert.threshold == 2000
        and alert.rule_version
        != engine.rules.for_scope("surge", alert.scope.model_copy(update={"country": "CR"})).version
    )


def test_a_correction_replaces_the_value_it_corrects():
    engine = engine_with(rules_yaml(threshold_rule()))
    state = ScopeState()
    first = observation(crossing(0, 3000))
    scope = engine.scopes_for(first)[0]
    assert engine.apply(state, scope, first, NOW).alerts[0].level == "warning"
    corrected = observation(crossing(0, 1200), revision=2)
    result = engine.apply(state, scope, corrected, NOW)
    assert result.outcome == "applied"
    stale = engine.apply(state, scope, first, NOW)
    assert stale.outcome == "stale_revision"
    assert (
        state.feeds["border_crossing"].contributions[first.report_id].metrics.number("count")
        == 1200
    )


def test_corridor_scope_adds_sites_across_countries():
    engine = engine_with(
        rules_yaml(threshold_rule(id="corridor", scope="corridor", levels={"watch": 3000}))
    )
    got = transitions(
        engine, [crossing(0, 1600), crossing(0, 1600, site="CR-PASO-CANOAS", frm="PA", to="CR")]
    )
    assert got == [("corridor/corridor/darien-northbound", 1, "firing", "watch", 3200)]
    alert = run_backtest([observation(crossing(0, 3100))], engine, NOW)[0]
    assert alert.scope.country is None and sorted(alert.evidence) == ["PA-SNM/pa-lajas-blancas-0"]


def test_observations_older_than_the_lateness_bound_are_kept_out():
    engine = engine_with(rules_yaml(threshold_rule()), lateness="P2D")
    state = ScopeState()
    latest = observation(crossing(10, 100))
    scope = engine.scopes_for(latest)[0]
    engine.apply(state, scope, latest, NOW)
    assert engine.apply(state, scope, observation(crossing(2, 5000)), NOW).outcome == "too_late"
    assert engine.apply(state, scope, observation(crossing(9, 100)), NOW).outcome == "applied"


def test_state_survives_a_json_round_trip_like_the_changelog():
    engine = engine_with(rules_yaml(threshold_rule(clear=800, clear_for="48h")))
    state = ScopeState()
    first = observation(crossing(0, 1500))
    scope = engine.scopes_for(first)[0]
    engine.apply(state, scope, first, NOW)
    restored = ScopeState.from_json(json.loads(json.dumps(state.to_json())))
    alert = engine.apply(restored, scope, observation(crossing(1, 2600)), NOW).alerts[0]
    assert (alert.transition, alert.level, alert.previous_level) == (2, "warning", "watch")


def test_shipped_rules_fire_on_the_real_honduras_series():
    from services.common.settings import PROJECT_ROOT
    from services.demo.scenario import load_honduras_arrivals
    from services.ingest.validation import parse_feed_message
    from services.triggers.loading import load_engine
    from tests.helpers import GEOGRAPHY

    engine = load_engine(
        PROJECT_ROOT / "config" / "triggers.yaml", PROJECT_ROOT / "config" / "sites.yaml", "P7D"
    )
    observations = [
        parse_feed_message(m.feed, m.value, GEOGRAPHY, NOW) for m in load_honduras_arrivals()
    ]
    alerts = run_backtest(observations, engine, NOW)
    firsts = [(a.observed_until.strftime("%Y-%m"), a.level) for a in alerts if a.status == "firing"]
    assert firsts[0] == ("2022-05", "watch")  # April 2022: 12,971 arrivals
    assert ("2023-09", "emergency") in firsts  # August 2023: 65,526
    assert alerts[-1].status == "resolved"  # back below 8,000 in 2025


def test_a_trigger_removed_by_a_reload_resolves_its_firing_alerts_and_leaves_the_state():
    """Delete a trigger while it fires: the reloaded engine resolves it (cause trigger_removed,
    with the removed rule's title) instead of keeping it firing with repeats forever."""
    old = engine_with(rules_yaml(threshold_rule(), threshold_rule(id="other", levels={"watch": 1})))
    state = ScopeState()
    first = observation(crossing(0, 3000))
    scope = old.scopes_for(first)[0]
    assert {a.rule_id for a in old.apply(state, scope, first, NOW).alerts} == {"surge", "other"}
    new = engine_with(rules_yaml(threshold_rule(id="other", levels={"watch": 1})))
    [resolved] = new.retire(state, NOW, previous=old)
    assert (resolved.alert_id, resolved.transition, resolved.status, resolved.cause) == (
        "surge/site/PA-LAJAS-BLANCAS",
        2,
        "resolved",
        "trigger_removed",
    )
    assert resolved.previous_level == "warning" and resolved.title == TITLE
    assert set(state.alerts) == {"other"} and new.retire(state, NOW) == []
