"""The webhook body: the alert plus a summary in the contact's language, for every language."""

from __future__ import annotations

import json

import pytest

from services.notify.rendering import LANGUAGES, render_json
from tests.helpers import alerts_for, contact, crossing, shared


@pytest.mark.parametrize(
    "language, words",
    [
        ("en", "WARNING: Surge at site PA-LAJAS-BLANCAS"),
        ("es", "ALERTA: Aumento en punto PA-LAJAS-BLANCAS"),
        ("fr", "ALERTE : Afflux – site PA-LAJAS-BLANCAS"),
        ("pt", "ALERTA: Aumento em ponto PA-LAJAS-BLANCAS"),
    ],
)
def test_webhook_body_is_the_alert_plus_text_in_the_contacts_language(language, words):
    alert = alerts_for(crossing(0, 2600))[0]
    reader = contact("c", language=language)
    body = json.loads(render_json(shared(alert, reader), reader))
    assert body["alert_id"] == "surge/site/PA-LAJAS-BLANCAS" and body["transition"] == 1
    assert body["language"] == language
    assert body["summary"].startswith(words)
    assert {"en": "2,600", "es": "2.600", "fr": "2 600", "pt": "2.600"}[language] in body["summary"]


def test_every_language_has_a_template():
    alert = alerts_for(crossing(0, 2600), crossing(1, 10), clear=800)[-1]
    for language in LANGUAGES:
        reader = contact("c", language=language)
        assert json.loads(render_json(shared(alert, reader), reader))["summary"]


@pytest.mark.parametrize(
    "language, words",
    [("en", "Reported late."), ("es", "con retraso"), ("fr", "en retard"), ("pt", "com atraso")],
)
def test_a_late_transition_says_so_in_every_language(language, words):
    alert = alerts_for(crossing(0, 2600))[0]
    reader = contact("c", language=language)
    on_time = json.loads(render_json(shared(alert, reader), reader))["summary"]
    late = alert.model_copy(update={"late": True})
    summary = json.loads(render_json(shared(late, reader), reader))["summary"]
    assert words in summary and words not in on_time


def test_an_alert_resolved_because_its_trigger_was_removed_says_so():
    fired = alerts_for(crossing(0, 2600))[0]
    retired = fired.model_copy(
        update={
            "status": "resolved",
            "level": None,
            "previous_level": "warning",
            "transition": 2,
            "cause": "trigger_removed",
            "value": 0.0,
            "threshold": 0.0,
        }
    )
    for language, words in {
        "en": "removed from the rules",
        "es": "se retiró de las reglas",
    }.items():
        reader = contact("c", language=language)
        summary = json.loads(render_json(shared(retired, reader), reader))["summary"]
        assert words in summary and "0" not in summary.split(":", 1)[1].split("(")[0]
