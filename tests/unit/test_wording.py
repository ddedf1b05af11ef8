"""Messages a person reads at a glance: places by name, figures with their unit, durations in words,
the period a report covers, in each of the four languages; the same wording in webhook summaries,
e-mail and CAP."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from schemas import AlertEvent, Scope
from services.common.settings import PROJECT_ROOT
from services.notify.cap import render_cap
from services.notify.rendering import render_email, render_json, render_summary
from services.notify.wording import LANGUAGES, place_name, window_words
from services.triggers.backtest import run_backtest
from services.triggers.history import load_history
from services.triggers.loading import load_engine
from tests.helpers import GEOGRAPHY, contact, shared

CONFIG = PROJECT_ROOT / "config"
ISO_DURATION = re.compile(r"\bP(?:T?\d+[HMSDWY]|\d+[DWMY])")
AT = datetime(2026, 11, 13, tzinfo=UTC)  # the tick that judges 12 November's reports


@cache
def scenario_alerts() -> list[AlertEvent]:
    engine = load_engine(CONFIG / "triggers.yaml", CONFIG / "sites.yaml", "P7D")
    history = load_history([PROJECT_ROOT / "scenarios"], engine.geography, AT)
    return run_backtest(history.observations, engine, AT)


def alert(kind: str, value: float, threshold: float, **fields) -> AlertEvent:
    scope = fields.pop("scope", Scope(kind="site", id="PA-LAJAS-BLANCAS", country="PA"))
    return AlertEvent(
        alert_id=f"r/{scope.kind}/{scope.id}",
        transition=1,
        rule_id="r",
        rule_version="v",
        kind=kind,
        status=fields.pop("status", "firing"),
        level=fields.pop("level", "warning"),
        previous_level=fields.pop("previous_level", None),
        scope=scope,
        value=value,
        threshold=threshold,
        window=fields.pop("window", "PT24H"),
        started_at=AT - timedelta(days=2),
        observed_until=fields.pop("observed_until", AT),
        evaluated_at=AT,
        evidence=[],
        title=fields.pop("title", {"en": "Trigger", "es": "Disparador", "fr": "D", "pt": "G"}),
        **fields,
    )


def said(a: AlertEvent, language: str) -> str:
    reader = contact(language=language)
    return render_summary(shared(a, reader), GEOGRAPHY, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_of_the_bundled_scenario_names_places_and_units_not_identifiers(language):
    alerts = scenario_alerts()
    assert {a.kind for a in alerts} >= {"threshold", "ratio", "composite"}
    reader = contact(language=language, format="cap")
    for a in alerts:
        seen = shared(a, reader)
        summary = render_summary(seen, GEOGRAPHY, language)
        email = render_email(seen, reader, GEOGRAPHY, None)
        subject, body = email.subject, email.text
        cap = render_cap(seen, language, [], GEOGRAPHY).decode()
        webhook = render_json(seen, reader, GEOGRAPHY).decode()
        place = place_name(a.scope, GEOGRAPHY, language)
        for text in (summary, subject):
            assert place in text, (text, place)
            assert a.scope.id not in text or a.scope.kind == "country", text
            assert not ISO_DURATION.search(text), text
            assert "_" not in text, text  # no metric names such as newly_displaced
        assert summary in body and summary in webhook
        assert html.escape(summary, quote=False) in email.html.replace("&#39;", "'")
        assert f"<description>{summary}</description>" in cap.replace("&#39;", "'")
        assert f"<areaDesc>{place}</areaDesc>" in cap


def test_a_threshold_says_the_count_its_unit_the_window_and_the_day_it_concerns():
    surge = alert("threshold", 4394, 4000, metric="count", previous_level="watch")
    assert said(surge, "en") == (
        "WARNING: Trigger at ERM Lajas Blancas (Darién, Panama), up from watch. 4,394 people "
        "crossing in 24 hours; the warning level is 4,000. Data for 12 Nov 2026."
    )
    assert said(surge, "es") == (
        "ALERTA: Disparador en ERM Lajas Blancas (Darién, Panamá), antes vigilancia. 4.394 "
        "personas que cruzaron en 24 horas; el nivel de alerta es 4.000. Datos del 12 nov 2026."
    )
    children = alert("threshold", 37, 25, metric="unaccompanied_children", window="P7D")
    assert "37 enfants non accompagnés en 7 jours" in said(children, "fr")
    monthly = alert(
        "threshold",
        12971,
        10000,
        metric="count",
        window="P1M",
        observed_until=datetime(2026, 11, 1, tzinfo=UTC),
        scope=Scope(kind="country", id="HN", country="HN"),
    )
    assert said(monthly, "pt").endswith(
        "em 1 mês; o nível de alerta é 10.000. Dados de outubro de 2026."
    )
    assert "in Honduras." in said(monthly, "en")


def test_a_ratio_reads_as_a_percentage_and_a_spike_as_a_multiple_of_the_usual_rate():
    shelters = alert(
        "ratio",
        0.962,
        0.95,
        metric="shelter_occupancy",
        denominator="shelter_capacity",
        scope=Scope(kind="area", id="PA-5", country="PA"),
    )
    assert "Shelters at 96.2% of capacity over 24 hours; the warning level is 95%." in said(
        shelters, "en"
    )
    assert "Albergues al 96,2\u00a0% de su capacidad" in said(shelters, "es")
    spike = alert(
        "rate_of_change",
        2.4,
        2.0,
        metric="count",
        window="P7D",
        baseline="P28D",
        details={"current": 8400, "baseline_expected": 3500},
    )
    assert (
        "2.4\u00a0× the usual rate: 8,400 people crossing in 7 days, against 3,500 expected from "
        "the previous 28 days; the warning level is 2\u00a0×." in said(spike, "en")
    )
    assert "2,4\u00a0× el ritmo habitual" in said(spike, "es")


def test_a_new_value_names_the_nationality_and_a_silence_counts_hours_against_the_cycle():
    arrivals = alert(
        "new_value",
        37,
        50,
        metric="nationality",
        window="P7D",
        baseline="P90D",
        details={"AF": 37, "ER": 12},
        level="watch",
    )
    text = said(arrivals, "es")
    assert (
        "Primeras llegadas en 90 días, en 7 días: nacionales de Afganistán: 37, nacionales de "
        "Eritrea: 12." in text
    )
    assert "nationals of Afghanistan: 37" in said(arrivals, "en")
    silent = alert(
        "silence",
        51.5,
        48,
        window="",
        scope=Scope(kind="source", id="PA-SNM", country="PA"),
        details={"silent_hours": 51.5, "expected_every_hours": 24},
        level="watch",
    )
    assert said(silent, "en") == (
        "WATCH: Trigger from Servicio Nacional de Migración (Panamá). No report for 2 days and 3 "
        "hours past the one expected (this source reports every 24 hours); the watch level is 2 "
        "days. Data up to 12 Nov 2026."
    )


def test_an_all_clear_says_what_is_over_and_where_the_figure_stands():
    over = alert(
        "threshold",
        300,
        800,
        metric="count",
        status="resolved",
        level=None,
        previous_level="warning",
    )
    assert said(over, "en").startswith(
        "RESOLVED: Trigger at ERM Lajas Blancas (Darién, Panama) is over (it was at warning). 300 "
        "people crossing in 24 hours, below 800."
    )
    removed = over.model_copy(update={"cause": "trigger_removed"})
    assert said(removed, "es") == (
        "RESUELTA: Disparador en ERM Lajas Blancas (Darién, Panamá) terminó (estaba en alerta): "
        "el disparador se retiró de las reglas."
    )


def test_durations_read_as_people_say_them():
    assert window_words("PT24H", "en") == "24 hours"
    assert window_words("P7D", "es") == "7 días"
    assert window_words("P1M", "fr") == "1 mois"
    assert window_words("PT6H", "pt") == "6 horas"


def test_a_level_held_under_its_threshold_says_why_instead_of_citing_a_level_not_reached():
    """Panama's watch (2,000) holds at 1,700 because it clears only after 48 hours under 1,500."""
    held = alert(
        "threshold", 1700, 2000, metric="count", level="watch", clear=1500, clear_for="P2D"
    )
    assert (
        said(held, "en")
        .split(". ", 1)[1]
        .startswith(
            "1,700 people crossing in 24 hours, below the watch level (2,000) but still above the "
            "clearing level, 1,500; it clears after 2 days below that."
        )
    )
    assert "aún por encima del nivel de cierre, 1.500" in said(held, "es")
    shelters = alert(
        "ratio",
        0.82,
        0.85,
        metric="shelter_occupancy",
        denominator="shelter_capacity",
        level="watch",
        clear=0.8,
        scope=Scope(kind="area", id="PA-5", country="PA"),
    )
    assert (
        "Shelters at 82% of capacity in 24 hours, below the watch level (85%) but still above "
        in (said(shelters, "en"))
    )
    # over its threshold: the level as usual
    over = held.model_copy(update={"value": 2100})
    assert "the watch level is 2,000" in said(over, "en")


def test_the_engine_tells_alerts_what_they_measure_and_when_they_clear():
    from tests.helpers import alerts_for, crossing

    [fired, *_] = alerts_for(crossing(0, 2600), clear=800, clear_for="48h")
    assert (fired.metric, fired.clear, fired.clear_for) == ("count", 800, "P2D")


def test_the_backtest_plot_draws_every_fired_scope_with_labelled_axes(tmp_path):
    from services.triggers.backtest_report import PANELS_PER_PAGE, axis_label, plot

    alerts = scenario_alerts()
    pairs = {(a.rule_id, a.scope.key) for a in alerts}
    assert len(pairs) > PANELS_PER_PAGE  # more than one page's worth
    written = plot(tmp_path / "plot.png", {}, alerts, {}, GEOGRAPHY)
    assert written == [tmp_path / "plot.png", tmp_path / "plot-2.png"]
    assert all(p.stat().st_size > 10_000 for p in written)
    labels = {a.kind: axis_label(a) for a in alerts}
    assert labels["threshold"] in (
        "people crossing in 24 hours",
        "people crossing in 7 days",
        "people crossing in 1 month",
        "people newly displaced in 24 hours",
        "unaccompanied children in 24 hours",
    )
    assert labels["ratio"] == "shelter occupancy / shelter capacity"
