"""The webhook body: the alert plus a summary in the contact's language, for every language."""

from __future__ import annotations

import json

import pytest

from services.notify.rendering import LANGUAGES, render_json
from tests.helpers import GEOGRAPHY, alerts_for, contact, crossing, shared


@pytest.mark.parametrize(
    "language, words",
    [
        (
            "en",
            "WARNING: Surge at ERM Lajas Blancas (Darién, Panama). 2,600 people crossing in 24 "
            "hours; the warning level is 2,500. Data for 1 Nov 2026.",
        ),
        (
            "es",
            "ALERTA: Aumento en ERM Lajas Blancas (Darién, Panamá). 2.600 personas que cruzaron "
            "en 24 horas; el nivel de alerta es 2.500. Datos del 1 nov 2026.",
        ),
        (
            "fr",
            "ALERTE : Afflux à ERM Lajas Blancas (Darién, Panama). 2 600 personnes ayant "
            "franchi la frontière en 24 heures ; seuil du niveau alerte : 2 500. Données du 1 nov. "
            "2026.",
        ),
        (
            "pt",
            "ALERTA: Aumento em ERM Lajas Blancas (Darién, Panamá). 2.600 pessoas que "
            "atravessaram em 24 horas; o nível de alerta é 2.500. Dados de 1 de nov. de 2026.",
        ),
    ],
)
def test_webhook_body_is_the_alert_plus_text_in_the_contacts_language(language, words):
    alert = alerts_for(crossing(0, 2600))[0]
    reader = contact("c", language=language)
    body = json.loads(render_json(shared(alert, reader), reader, GEOGRAPHY))
    assert body["alert_id"] == "surge/site/PA-LAJAS-BLANCAS" and body["transition"] == 1
    assert body["language"] == language
    assert body["summary"].startswith(words)
    assert {"en": "2,600", "es": "2.600", "fr": "2 600", "pt": "2.600"}[language] in body["summary"]


def test_every_language_has_a_template():
    alert = alerts_for(crossing(0, 2600), crossing(1, 10), clear=800)[-1]
    for language in LANGUAGES:
        reader = contact("c", language=language)
        assert json.loads(render_json(shared(alert, reader), reader, GEOGRAPHY))["summary"]


@pytest.mark.parametrize(
    "language, words",
    [("en", "Reported late."), ("es", "con retraso"), ("fr", "en retard"), ("pt", "com atraso")],
)
def test_a_late_transition_says_so_in_every_language(language, words):
    alert = alerts_for(crossing(0, 2600))[0]
    reader = contact("c", language=language)
    on_time = json.loads(render_json(shared(alert, reader), reader, GEOGRAPHY))["summary"]
    late = alert.model_copy(update={"late": True})
    summary = json.loads(render_json(shared(late, reader), reader, GEOGRAPHY))["summary"]
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
        summary = json.loads(render_json(shared(retired, reader), reader, GEOGRAPHY))["summary"]
        assert words in summary and "0" not in summary.split(":", 1)[1].split("(")[0]
