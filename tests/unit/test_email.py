"""E-mail: subject and body in the contact's language, a plain-text and an HTML part with the same
content, the acknowledgement link and the console's page."""

from __future__ import annotations

import email
import email.policy

import pytest

from services.common.settings import Settings
from services.notify.email import build_message
from services.notify.rendering import render_email
from tests.helpers import GEOGRAPHY, contact, episode, shared

ACK = "https://ews.example.org/ack/abc.def"
CONSOLE = "https://ews.example.org/console/alerts/surge/site/PA-LAJAS-BLANCAS"


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
    mail = render_email(shared(alert, reader), reader, GEOGRAPHY, ACK)
    assert mail.subject.startswith(words[0]) and "Lajas Blancas" in mail.subject  # the place
    assert "PA-LAJAS-BLANCAS" not in mail.subject
    assert words[1] in mail.text and ACK in mail.text
    assert "Bearer" not in mail.text  # one click, no token


def test_the_html_part_says_what_the_text_says_place_and_figures_first():
    alert = episode(2600)[0]
    reader = contact(language="es")
    mail = render_email(shared(alert, reader), reader, GEOGRAPHY, ACK, console_url=CONSOLE)
    first = mail.text.splitlines()[0]
    assert first.startswith("ALERTA: ") and "2.600 personas que cruzaron en 24 horas" in first
    assert first in mail.html
    assert mail.html.index(first) < mail.html.index("Lugar")  # the summary before the details
    assert f'href="{ACK}"' in mail.html and f'href="{CONSOLE}"' in mail.html
    assert CONSOLE in mail.text and "Abrir en la consola" in mail.html
    # both parts go out, as alternatives of one message
    settings = Settings(smtp_from="ews@example.org")
    message = build_message(settings, "pa@example.org", mail.subject, mail.text, "k:1", mail.html)
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    kinds = [part.get_content_type() for part in parsed.walk() if not part.is_multipart()]
    assert kinds == ["text/plain", "text/html"]


def test_a_title_cannot_inject_markup_into_the_html_part():
    alert = episode(2600)[0].model_copy(update={"title": {"en": "<script>alert(1)</script>"}})
    reader = contact(language="en")
    mail = render_email(shared(alert, reader), reader, GEOGRAPHY, ACK)
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html


def test_an_all_clear_has_no_acknowledgement_link():
    resolved = episode(2600, 100, clear=800)[-1]
    reader = contact(language="en")
    mail = render_email(shared(resolved, reader), reader, GEOGRAPHY, ACK)
    assert mail.subject.startswith("[EWS RESOLVED]") and ACK not in mail.text + mail.html


def test_email_held_back_by_a_silence_says_so_in_the_contacts_language():
    alert = episode(2600)[0]
    for language, words in (("en", "Held back by silence"), ("es", "Retenida por el silencio")):
        reader = contact(language=language)
        held = render_email(shared(alert, reader), reader, GEOGRAPHY, None, "sil-1")
        assert f"{words} sil-1" in held.text
        plain = render_email(shared(alert, reader), reader, GEOGRAPHY, None)
        assert words not in plain.text
