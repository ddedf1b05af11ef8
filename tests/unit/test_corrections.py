"""Corrections correct: a report sent again with other figures replaces the earlier figure, in
ingest's decisions and in `ews backtest` alike; re-sending an earlier version never reverts a
later correction (ingest remembers the versions it has seen of each event_id)."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from services.cli import main
from services.common.settings import PROJECT_ROOT, Settings
from services.ingest.app import dedup_retention
from services.ingest.deduplication import (
    SeenEvent,
    Versions,
    content_digest,
    decide,
    moved,
    remember,
)
from services.triggers.core import ScopeState
from tests.helpers import NOW, crossing, engine_with, observation, rules_yaml, threshold_rule


def test_an_earlier_version_sent_again_is_superseded_not_a_correction_back():
    first, second = observation(crossing(0, 1000)), observation(crossing(0, 1400))
    outcome, revision = decide(None, content_digest(first))
    entry = remember(None, content_digest(first), revision, NOW, 0, 1)
    assert (outcome, revision) == ("accepted", 1)
    outcome, revision = decide(entry, content_digest(second))
    assert (outcome, revision) == ("correction", 2)
    entry = remember(entry, content_digest(second), revision, NOW, 0, 2)
    assert decide(entry, content_digest(first)) == ("superseded", 2)
    assert decide(entry, content_digest(second)) == ("duplicate", 2)
    third = observation(crossing(0, 900))
    assert decide(entry, content_digest(third)) == ("correction", 3)
    # what a worker recovers from its changelog still knows the earlier version
    assert decide(SeenEvent.from_json(entry.to_json()), content_digest(first)) == ("superseded", 2)


def test_the_backtest_applies_a_correction_as_live_does_and_an_old_resend_does_not_revert_it(
    tmp_path,
):
    """Day 1 first reported as 900 (no alert), corrected to 9,000 (an emergency); the first
    version sent again afterwards changes nothing."""
    feed = tmp_path / "feed.jsonl"
    lines = [crossing(0, 500), crossing(1, 900), crossing(1, 9000), crossing(1, 900)]
    feed.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    rules = PROJECT_ROOT / "config" / "triggers.yaml"
    result = CliRunner().invoke(
        main, ["backtest", "--rules", str(rules), "--events", str(feed), "--json"]
    )
    assert result.exit_code == 0, result.output
    alerts = json.loads(result.stdout)
    surge = [a for a in alerts if a["alert_id"] == "crossing-surge/site/PA-LAJAS-BLANCAS"]
    assert [(a["status"], a["level"], a["value"]) for a in surge][:1] == [
        ("firing", "emergency", 9000.0)
    ]
    assert "1 correction, 1 earlier version sent again" in result.output


def _site_rule_engine():
    return engine_with(rules_yaml(threshold_rule()))


def _at(engine, observations, now=NOW):
    """Every observation put in every scope it reaches (as the live worker does), judged; the
    transitions and the states by scope key."""
    states: dict[str, ScopeState] = {}
    alerts = []
    for o in observations:
        for scope in engine.scopes_for(o):
            state = states.setdefault(scope.key, ScopeState())
            alerts.extend(engine.apply(state, scope, o, now).alerts)
    return alerts, states


def test_the_same_event_id_from_two_sources_is_two_reports_in_ingest_and_the_windows():
    """Two partners numbering their reports alike: neither corrects the other."""
    snm = observation(crossing(0, 600))
    iom = observation(crossing(0, 600, source="IOM-DTM-PA"))
    versions = Versions()
    assert versions.admit(snm) is snm and versions.admit(iom) is iom
    assert versions.counts["correction"] == 0
    alerts, states = _at(_site_rule_engine(), [snm, iom])
    window = states["site/PA-LAJAS-BLANCAS"].feeds["border_crossing"]
    assert sorted(window.contributions) == [
        "IOM-DTM-PA/pa-lajas-blancas-0",
        "PA-SNM/pa-lajas-blancas-0",
    ]
    assert [(a.level, a.value) for a in alerts] == [("watch", 1200.0)]


def test_a_correction_arriving_after_ingest_forgot_the_report_still_corrects():
    """Ingest remembers a report for a while; a monthly figure corrected later arrives as
    revision 1 again. It still replaces the figure, and the first version sent again after it
    does not come back."""
    first = observation(crossing(0, 3000))
    later = NOW + timedelta(days=40)
    corrected = observation(crossing(0, 1200)).model_copy(update={"ingested_at": later})
    resent = first.model_copy(update={"ingested_at": later + timedelta(days=1)})
    engine = _site_rule_engine()
    alerts, states = _at(engine, [first, corrected, resent])
    assert [(a.status, a.level, a.value) for a in alerts] == [
        ("firing", "warning", 3000.0),
        ("firing", "watch", 1200.0),
    ]
    window = states["site/PA-LAJAS-BLANCAS"].feeds["border_crossing"]
    assert window.contributions[first.report_id].metrics.number("count") == 1200
    # an older version reaching a scope after a newer one (another partition's path) changes
    # nothing either
    alerts, states = _at(engine, [corrected, first])
    assert [a.value for a in alerts] == [1200.0]


def test_a_correction_moving_a_report_to_another_site_withdraws_it_where_it_was():
    """9,000 first reported at Lajas Blancas, then corrected to Paso Canoas (Costa Rica): Lajas
    Blancas' emergency resolves, Paso Canoas fires, Panama's national figure drops."""
    first = observation(crossing(0, 9000))
    moved_report = crossing(0, 9000, site="CR-PASO-CANOAS", frm="PA", to="CR")
    moved_report["event_id"] = first.event_id
    second = observation(moved_report)
    versions = Versions()
    versions.admit(first)
    corrected = versions.admit(second)
    assert corrected is not None and corrected.moved_from == first.location
    engine = engine_with(
        rules_yaml(threshold_rule(), threshold_rule(id="national", scope="country"))
    )
    alerts, states = _at(engine, [first, corrected])
    assert [(a.alert_id, a.status, a.level) for a in alerts] == [
        ("surge/site/PA-LAJAS-BLANCAS", "firing", "emergency"),
        ("national/country/PA", "firing", "emergency"),
        ("surge/site/CR-PASO-CANOAS", "firing", "emergency"),
        ("national/country/CR", "firing", "emergency"),
        ("surge/site/PA-LAJAS-BLANCAS", "resolved", None),
        ("national/country/PA", "resolved", None),
    ]
    # the original arriving late where it was withdrawn does not bring the figure back
    lajas = states["site/PA-LAJAS-BLANCAS"]
    scope = engine.scopes_for(first)[0]
    assert engine.apply(lajas, scope, first, NOW).outcome == "stale_revision"


def test_ingest_names_where_a_moved_report_was_counted():
    first = observation(crossing(0, 9000))
    moved_report = crossing(0, 9000, site="CR-PASO-CANOAS", frm="PA", to="CR")
    moved_report["event_id"] = first.event_id
    second = observation(moved_report)
    entry = SeenEvent.from_json(
        remember(None, content_digest(first), 1, NOW, 0, 1, first.location).to_json()
    )
    assert moved(entry, second).moved_from == first.location
    assert moved(entry, first).moved_from is None


def test_ingest_remembers_reports_as_long_as_the_shipped_rules_can_count_them():
    """The new-nationality rule looks back 90 days over a 7-day window: a correction 60 days
    later must still be known as one, though EWS_DEDUP_RETENTION says 30 days."""
    settings = Settings(dedup_retention="P30D", allowed_lateness="P7D")
    assert dedup_retention(settings) == timedelta(days=104)
    assert dedup_retention(Settings(dedup_retention="P200D")) == timedelta(days=200)


def test_the_backtest_counts_a_moved_report_only_where_it_moved(tmp_path):
    """Replayed in event time, the correction meets the original at its tick: Lajas Blancas never
    fires, Paso Canoas does."""
    first = crossing(0, 9000)
    moved_report = crossing(0, 9000, site="CR-PASO-CANOAS", frm="PA", to="CR")
    moved_report["event_id"] = first["event_id"]
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(line) for line in [first, moved_report]) + "\n")
    rules = PROJECT_ROOT / "config" / "triggers.yaml"
    result = CliRunner().invoke(
        main, ["backtest", "--rules", str(rules), "--events", str(feed), "--json"]
    )
    assert result.exit_code == 0, result.output
    surge = [
        (a["scope"]["id"], a["status"])
        for a in json.loads(result.stdout)
        if a["rule_id"] == "crossing-surge" and a["scope"]["kind"] == "site"
    ]
    assert surge == [("CR-PASO-CANOAS", "firing")]
