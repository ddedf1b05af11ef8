"""rate_of_change, ratio, new_value, silence and composite triggers on the pure core."""

from datetime import timedelta

from services.triggers.backtest import Backtest, run_backtest
from services.triggers.core import ScopeState
from tests.helpers import (
    NOW,
    TITLE,
    crossing,
    engine_with,
    observation,
    rules_yaml,
    silence_rule,
)


def displacement(
    day: int, occupancy: int, capacity: int = 1000, area: str = "PA-5", newly: int = 0
) -> dict:
    return {
        "event_id": f"{area}-{day}",
        "source": "PA-MINGOB",
        "observed_at": f"2026-11-{day + 1:02d}T00:00:00Z",
        "period": "P1D",
        "area_id": area,
        "country": "PA",
        "newly_displaced": newly,
        "shelter_occupancy": occupancy,
        "shelter_capacity": capacity,
    }


def spike_rule(**extra):
    return {
        "id": "spike",
        "kind": "rate_of_change",
        "feed": "border_crossing",
        "metric": "count",
        "scope": "site",
        "window": "1d",
        "baseline": "7d",
        "min_value": 500,
        "levels": {"watch": 1.5, "warning": 2.0},
        "title": TITLE,
        **extra,
    }


def run(rules, reports, feed="border-crossings"):
    return run_backtest(
        [observation(r, feed) for r in reports], engine_with(rules_yaml(*rules)), NOW
    )


def test_rate_of_change_waits_for_a_full_baseline():
    early_spike = [crossing(0, 400), crossing(1, 400), crossing(2, 2000)]
    assert run([spike_rule()], early_spike) == []


def test_rate_of_change_fires_on_a_spike_against_the_baseline_rate():
    reports = [crossing(d, 400) for d in range(7)] + [crossing(7, 900)]
    [alert] = run([spike_rule()], reports)
    assert (alert.level, alert.value) == ("warning", 2.25)
    assert alert.details == {"current": 900.0, "baseline_expected": 400.0}


def test_rate_of_change_ignores_small_numbers_below_min_value():
    reports = [crossing(d, 100) for d in range(7)] + [crossing(7, 450)]  # 4.5x, but only 450 people
    assert run([spike_rule()], reports) == []


def test_ratio_fires_on_shelter_occupancy_over_capacity():
    rule = {
        "id": "shelters",
        "kind": "ratio",
        "feed": "displacement",
        "metric": "shelter_occupancy",
        "denominator": "shelter_capacity",
        "scope": "area",
        "window": "24h",
        "aggregate": "sum",
        "levels": {"watch": 0.85, "warning": 0.95},
        "title": TITLE,
    }
    alerts = run(
        [rule],
        [displacement(0, 700), displacement(1, 860), displacement(2, 960)],
        feed="displacement",
    )
    assert [(a.level, a.value) for a in alerts] == [("watch", 0.86), ("warning", 0.96)]
    assert alerts[0].scope.key == "area/PA-5"


def test_new_value_fires_for_a_nationality_absent_during_the_lookback():
    rule = {
        "id": "new-nat",
        "kind": "new_value",
        "feed": "border_crossing",
        "category": "nationality",
        "scope": "site",
        "window": "1d",
        "lookback": "5d",
        "levels": {"watch": 50},
        "title": TITLE,
    }
    usual = [crossing(d, 500, by_nationality={"VE": 400}) for d in range(6)]
    newcomers = crossing(6, 600, by_nationality={"VE": 400, "AF": 80, "CN": 10})
    [alert] = run([rule], usual + [newcomers])
    assert alert.level == "watch" and alert.value == 80
    assert alert.details == {"AF": 80.0, "CN": 10.0}
    assert (
        run([rule], usual[3:] + [newcomers]) == []
    )  # data since day 3 only: the lookback is not covered yet


def test_silence_seen_in_history_fires_and_resolves_when_data_resumes():
    reports = [crossing(0, 10), crossing(1, 10), crossing(5, 10)]  # days 3-5 missing: a 72h gap
    alerts = run([silence_rule()], reports)
    assert [(a.status, a.level, a.value) for a in alerts] == [
        ("firing", "watch", 72.0),
        ("resolved", None, 0.0),
    ]
    assert alerts[0].scope.key == "source/PA-SNM"


def test_silence_on_the_wall_clock_with_no_new_message():
    engine = engine_with(rules_yaml(silence_rule()))
    state = ScopeState()
    last = observation(crossing(0, 10))
    scope = engine.scopes_for(last)[0]
    engine.apply(state, scope, last, NOW)
    assert (
        engine.check_silence(state, scope, NOW + timedelta(hours=24 + 47)) == []
    )  # due after 24h, +47h
    [watch] = engine.check_silence(state, scope, NOW + timedelta(hours=24 + 50))
    assert (watch.level, watch.details["silent_hours"]) == ("watch", 50.0)
    [warning] = engine.check_silence(state, scope, NOW + timedelta(hours=24 + 97))
    assert warning.level == "warning" and warning.previous_level == "watch"
    [resolved] = engine.apply(
        state, scope, observation(crossing(1, 10)), NOW + timedelta(hours=200)
    ).alerts
    assert resolved.status == "resolved"


def test_composite_fires_when_all_members_fire_in_the_same_area():
    surge = {
        "id": "surge",
        "kind": "threshold",
        "feed": "border_crossing",
        "metric": "count",
        "scope": "site",
        "window": "24h",
        "levels": {"watch": 1000, "warning": 2500},
        "title": TITLE,
    }
    shelters = {
        "id": "shelters",
        "kind": "ratio",
        "feed": "displacement",
        "metric": "shelter_occupancy",
        "denominator": "shelter_capacity",
        "scope": "area",
        "window": "24h",
        "levels": {"watch": 0.85},
        "title": TITLE,
    }
    both = {
        "id": "both",
        "kind": "composite",
        "scope": "area",
        "mode": "all",
        "members": ["surge", "shelters"],
        "title": TITLE,
    }
    backtest = Backtest(engine_with(rules_yaml(surge, shelters, both)))
    backtest.apply(observation(crossing(0, 3000)), NOW)  # Lajas Blancas lies in Darién, PA-5
    assert [a.rule_id for a in backtest.alerts] == ["surge"]
    produced = backtest.apply(observation(displacement(0, 900), "displacement"), NOW)
    assert [(a.alert_id, a.level) for a in produced] == [
        ("shelters/area/PA-5", "watch"),
        ("both/area/PA-5", "watch"),
    ]
    produced = backtest.apply(
        observation(crossing(1, 100)), NOW
    )  # surge resolves → composite resolves
    assert [(a.rule_id, a.status) for a in produced] == [
        ("surge", "resolved"),
        ("both", "resolved"),
    ]


def test_composite_members_must_exist_and_sit_inside_its_scope():
    import pytest
    import yaml
    from pydantic import ValidationError

    from schemas import TriggersFile

    corridor = {
        "id": "wide",
        "kind": "threshold",
        "feed": "border_crossing",
        "metric": "count",
        "scope": "corridor",
        "window": "7d",
        "levels": {"watch": 1},
        "title": TITLE,
    }
    bad = {
        "id": "both",
        "kind": "composite",
        "scope": "area",
        "members": ["wide", "ghost"],
        "title": TITLE,
    }
    with pytest.raises(ValidationError, match="unknown trigger 'ghost'|cannot contain wide"):
        TriggersFile.model_validate(yaml.safe_load(rules_yaml(corridor, bad)))


def test_composite_combines_members_that_changed_at_the_same_moment_whatever_their_order():
    """At one moment the surge rises to warning while the shelters fall to watch: the composite
    moves once, to the level both hold together, whichever member alert arrives first. Taken one by
    one, the order would decide whether it passed through another level first."""
    from schemas import AlertEvent, Scope
    from services.triggers.core import ScopeState

    surge = {
        "id": "surge",
        "kind": "threshold",
        "feed": "border_crossing",
        "metric": "count",
        "scope": "site",
        "window": "24h",
        "levels": {"watch": 1000, "warning": 2500, "emergency": 5000},
        "title": TITLE,
    }
    shelters = {
        "id": "shelters",
        "kind": "ratio",
        "feed": "displacement",
        "metric": "shelter_occupancy",
        "denominator": "shelter_capacity",
        "scope": "area",
        "window": "24h",
        "levels": {"watch": 0.85, "warning": 0.95, "emergency": 1.1},
        "title": TITLE,
    }
    both = {
        "id": "both",
        "kind": "composite",
        "scope": "area",
        "mode": "all",
        "members": ["surge", "shelters"],
        "title": TITLE,
    }
    engine = engine_with(rules_yaml(surge, shelters, both))
    area = Scope(kind="area", id="PA-5", country="PA")
    site = Scope(kind="site", id="PA-LAJAS-BLANCAS", country="PA")

    def member(rule_id: str, scope: Scope, level: str, day: int) -> AlertEvent:
        at = NOW + timedelta(days=day)
        return AlertEvent(
            alert_id=f"{rule_id}/{scope.kind}/{scope.id}",
            transition=1,
            rule_id=rule_id,
            rule_version="v",
            status="firing",
            level=level,
            previous_level=None,
            scope=scope,
            value=1,
            threshold=1,
            window="P1D",
            started_at=at,
            observed_until=at,
            evaluated_at=NOW,
            evidence=[],
        )

    def run(order: list[int], together: bool) -> list[tuple[str, str | None]]:
        state = ScopeState()
        engine.apply_members(
            state,
            area,
            [member("surge", site, "watch", 0), member("shelters", area, "emergency", 0)],
            NOW,
        )
        changes = [member("surge", site, "emergency", 1), member("shelters", area, "watch", 1)]
        changes = [changes[i] for i in order]
        if together:
            produced = engine.apply_members(state, area, changes, NOW)
        else:
            produced = [
                a for change in changes for a in engine.apply_members(state, area, [change], NOW)
            ]
        return [(a.status, a.level) for a in produced]

    assert (
        run([0, 1], together=True) == run([1, 0], together=True) == []
    )  # watch before, watch after
    assert run([0, 1], together=False) != run([1, 0], together=False)  # one by one, the order shows
