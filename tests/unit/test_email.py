"""E-mail: subject and body in the contact's language, with the acknowledgement link."""

from __future__ import annotations

import pytest

from services.notify.rendering import render_email
from tests.helpers import GEOGRAPHY, contact, episode, shared


@pytest.mark.parametrize(
    "language, words",
    [
        ("en", ("[EWS WARNING]", "Acknowledge")),
        ("es", ("[EWS ALERTA]", "Confirme")),
        ("fr", ("[EWS ALERTE]", "Accusez réception")),
        ("pt", ("[EWS ALERTA]", "Confirme o recebimento")),
    ],
)
def test_email_subject_and_body_in_the_contacts_language(language, words):
    alert = episode(2600)[0]
    reader = contact(language=language)
    subject, body = render_email(
        shared(alert, reader), reader, GEOGRAPHY, "https://ews.example.org/alerts/x/ack"
    )
    assert subject.startswith(words[0]) and "Lajas Blancas" in subject  # the place, by name
    assert "PA-LAJAS-BLANCAS" not in subject
    assert words[1] in body and "https://ews.example.org/alerts/x/ack" in body
    assert "Bearer" not in body  # one click, no token


def test_email_held_back_by_a_silence_says_so_in_the_contacts_language():
    alert = episode(2600)[0]
    for language, words in (("en", "Held back by silence"), ("es", "Retenida por el silencio")):
        reader = contact(language=language)
        _, body = render_email(shared(alert, reader), reader, GEOGRAPHY, None, "sil-1")
        assert f"{words} sil-1" in body
        _, plain = render_email(shared(alert, reader), reader, GEOGRAPHY, None)
        assert words not in plain
