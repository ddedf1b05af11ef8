"""Declared sources (the sites file's `sources:`): watched for silence from the start, before they
ever report, and silent by their own reporting cycle - a monthly source when next month's report is
overdue, not 48 hours after the last one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from schemas import Scope, SitesFile, TriggersFile
from schemas.config import Source
from services.cli import main
from services.common.geography import Geography
from services.common.settings import PROJECT_ROOT
from services.triggers.backtest import declared_sources_report
from services.triggers.core import RuleSet, ScopeState, TriggerEngine
from tests.helpers import GEOGRAPHY, NOW, engine_with, observation, rules_yaml, silence_rule

GEOGRAPHY_FILE = PROJECT_ROOT / "config" / "sites.yaml"

SILENCE = silence_rule()
HN_INM = {
    "id": "HN-INM",
    "name": "Instituto Nacional de Migración",
    "country": "HN",
    "feeds": ["border_crossing"],
    "period": "monthly",
    "delay": "15d",
}
DAILY = {
    "id": "GT-IGM",
    "name": "Instituto Guatemalteco de Migración",
    "country": "GT",
    "feeds": ["border_crossing"],
    "period": "daily",
}


def engine(*sources: dict) -> TriggerEngine:
    """The shipped geography with only these sources declared, and one silence rule."""
    sites = SitesFile(
        sites=list(GEOGRAPHY.sites.values()),
        areas=list(GEOGRAPHY.areas.values()),
        sources=[Source.model_validate(s) for s in sources],
    )
    rules = TriggersFile.model_validate(yaml.safe_load(rules_yaml(SILENCE)))
    return TriggerEngine(RuleSet(rules), Geography(sites), "P7D")


def monthly(month: int, count: int = 2000) -> dict:
    """Honduras' national count of a month of 2026."""
    return {
        "event_id": f"hn-inm-2026-{month:02d}",
        "source": "HN-INM",
        "observed_at": f"2026-{month:02d}-01T00:00:00Z",
        "period": "P1M",
        "from_country": "NI",
        "to_country": "HN",
        "count": count,
    }


def guatemala(day: int) -> dict:
    """Guatemala's national count of a day of October 2026."""
    return {
        "event_id": f"gt-igm-{day}",
        "source": "GT-IGM",
        "observed_at": f"2026-10-{day:02d}T00:00:00Z",
        "period": "P1D",
        "from_country": "HN",
        "to_country": "GT",
        "count": 300,
    }


def checks(eng: TriggerEngine, state: ScopeState, scope: Scope, start: datetime, hours: int):
    """Silence checks every hour from `start` for `hours` hours: the transitions, with when."""
    return [
        (start + timedelta(hours=h), event)
        for h in range(hours + 1)
        for event in eng.check_silence(state, scope, start + timedelta(hours=h))
    ]


def test_a_declared_source_that_never_reported_is_watched_from_the_first_check():
    eng = engine(DAILY)
    scope = Scope(kind="source", id="GT-IGM", country="GT")
    assert eng.declared_scope("source/GT-IGM") == scope
    assert eng.watched_sources() == ["source/GT-IGM"]
    state = ScopeState()
    told = checks(eng, state, scope, NOW, 24 + 100)
    # due a day after it was first watched; watch 48 h and warning 96 h past that
    assert [(at - NOW, e.status, e.level) for at, e in told] == [
        (timedelta(hours=24 + 48), "firing", "watch"),
        (timedelta(hours=24 + 96), "firing", "warning"),
    ]
    assert told[0][1].details == {"silent_hours": 48.0, "expected_every_hours": 24.0}
    assert told[0][1].scope == scope and told[0][1].alert_id == "silent/source/GT-IGM"
    # the clock it is watched by survives a restart (the state's changelog form)
    again = ScopeState.from_json(state.to_json())
    assert again.feeds["border_crossing"].watched_since == NOW
    [resolved] = eng.apply(again, scope, observation(guatemala(1)), NOW + timedelta(days=6)).alerts
    assert resolved.status == "resolved"


def test_an_undeclared_source_that_never_reported_is_not_watched():
    eng = engine()
    assert eng.declared_scope("source/GT-IGM") is None and eng.watched_sources() == []
    state = ScopeState()
    scope = Scope(kind="source", id="GT-IGM", country="GT")
    assert checks(eng, state, scope, NOW, 200) == [] and state.feeds == {}


def test_a_monthly_source_is_silent_when_next_months_report_is_overdue_not_after_48_hours():
    """October's report (ending 1 November) arrives on 10 November: November's is due a month
    after the end of October plus the declared delay of 15 days, 16 December; it is silent (watch)
    48 hours after that, and not a day before."""
    eng = engine(HN_INM)
    state = ScopeState()
    october = observation(monthly(10))
    [scope] = [s for s in eng.scopes_for(october) if s.kind == "source"]
    arrived = datetime(2026, 11, 10, tzinfo=UTC)
    assert eng.apply(state, scope, october, arrived).alerts == []
    window = state.feeds["border_crossing"]
    assert eng.next_due(scope, "border_crossing", window) == datetime(2026, 12, 16, tzinfo=UTC)
    [(at, watch)] = checks(eng, state, scope, arrived, 24 * 39)  # to 19 December
    assert at == datetime(2026, 12, 18, tzinfo=UTC) and watch.level == "watch"
    assert watch.details["expected_every_hours"] == 744.0  # a month, as a duration from January


def test_a_declared_monthly_source_reporting_late_waits_a_month_from_its_arrival():
    """The delay is the usual one; a report later than that still gives the source a full cycle
    from its arrival."""
    eng = engine(HN_INM)
    state = ScopeState()
    october = observation(monthly(10))
    [scope] = [s for s in eng.scopes_for(october) if s.kind == "source"]
    eng.apply(state, scope, october, datetime(2026, 11, 25, tzinfo=UTC))
    due = eng.next_due(scope, "border_crossing", state.feeds["border_crossing"])
    assert due == datetime(2026, 12, 25, tzinfo=UTC)


def test_an_undeclared_source_keeps_the_period_of_its_latest_report():
    eng = engine()
    state = ScopeState()
    october = observation(monthly(10))
    [scope] = [s for s in eng.scopes_for(october) if s.kind == "source"]
    arrived = datetime(2026, 11, 10, tzinfo=UTC)
    eng.apply(state, scope, october, arrived)
    due = eng.next_due(scope, "border_crossing", state.feeds["border_crossing"])
    assert due == datetime(2026, 12, 10, tzinfo=UTC)


def test_a_source_no_longer_declared_that_never_reported_resolves_and_is_dropped():
    declared = engine(DAILY)
    scope = Scope(kind="source", id="GT-IGM", country="GT")
    state = ScopeState()
    [(_, watch)] = checks(declared, state, scope, NOW, 24 + 50)
    assert watch.status == "firing"
    [(_, resolved)] = checks(engine(), state, scope, NOW + timedelta(hours=80), 0)
    assert resolved.status == "resolved" and state.feeds == {}


@pytest.mark.parametrize(
    ("period", "normalised"),
    [("daily", "P1D"), ("Weekly", "P7D"), ("monthly", "P1M"), ("14d", "P14D"), ("P1M", "P1M")],
)
def test_reporting_periods_are_words_or_durations(period, normalised):
    assert Source.model_validate({**HN_INM, "period": period}).period == normalised


def sites_declaring(tmp_path, name: str, *sources: dict):
    sites = yaml.safe_load(GEOGRAPHY_FILE.read_text())
    sites["sources"] = list(sources)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sites, allow_unicode=True, sort_keys=False))
    return path


def test_declarations_are_checked_at_their_lines(tmp_path):
    fields = sites_declaring(
        tmp_path,
        "fields.yaml",
        HN_INM,
        {**DAILY, "id": "XX", "period": "fortnightly"},
        {**DAILY, "id": "YY", "feeds": []},
        {**DAILY, "id": "ZZ", "feeds": ["shelters"]},
    )
    names = sites_declaring(
        tmp_path,
        "names.yaml",
        HN_INM,
        {**HN_INM, "name": "again"},
        {**DAILY, "id": "GU-IGM", "country": "GU"},
    )
    result = CliRunner().invoke(main, ["rules", "check", str(fields), str(names)])
    assert result.exit_code == 1
    out = result.output
    for path, text in [
        (fields, "sources.1.period: expected a duration such as '24h'"),
        (fields, "sources.2.feeds: List should have at least 1 item"),
        (fields, "sources.3.feeds.0: Input should be 'border_crossing' or 'displacement'"),
        (names, "sources.1.id: source id 'HN-INM' is used more than once"),
        (names, "sources.2.country: source GU-IGM: GU has no sites or areas here"),
    ]:
        line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "sources:" in t)
        assert any(f"{path}:{n}: {text}" in out for n in range(line, line + 40)), (
            f"{path}: {text}\n{out}"
        )
    with pytest.raises(ValidationError):
        SitesFile.model_validate(yaml.safe_load(names.read_text()))


def test_the_check_notes_a_declared_feed_no_silence_trigger_watches(tmp_path):
    path = sites_declaring(
        tmp_path, "sites.yaml", {**DAILY, "feeds": ["border_crossing", "displacement"]}
    )
    rules = tmp_path / "triggers.yaml"
    rules.write_text(rules_yaml(SILENCE))
    result = CliRunner().invoke(main, ["rules", "check", str(path), str(rules)])
    assert result.exit_code == 0, result.output
    assert (
        "sources.0.feeds.1: note: source GT-IGM: no silence trigger in "
        f"{rules} reads displacement at scope source" in result.output
    )
    assert "feeds.0: note" not in result.output


def test_the_backtest_names_declared_sources_silent_at_the_end_of_the_history():
    eng = engine(HN_INM, DAILY)
    history = [observation(monthly(m)) for m in (1, 2, 3)]
    history += [observation(guatemala(d)) for d in range(1, 20)]
    assert declared_sources_report(eng, history) == [
        "declared source HN-INM: its newest border_crossing report ends 2026-04-01; reporting "
        "monthly, the next was due 2026-05-16 and is 157 days overdue at the history's end "
        "(2026-10-20)"
    ]
    assert declared_sources_report(eng, history[:3]) == [
        "declared sources with no reports in this history: GT-IGM (border_crossing)"
    ]


def test_the_shipped_sites_declare_the_bundled_sources():
    shipped = GEOGRAPHY.sources
    assert shipped["HN-INM"].period == "P1M" and shipped["PA-SNM"].period == "P1D"
    eng = engine_with(rules_yaml(SILENCE))
    assert "source/PA-SNM" in eng.watched_sources()
    assert eng.declared_scope("source/PA-SNM") == Scope(kind="source", id="PA-SNM", country="PA")
