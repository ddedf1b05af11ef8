"""Alert transition → what a contact receives, in its language: the JSON body, the e-mail (plain
text and HTML); CAP is in cap.py.

Jinja2 templates in templates/; the sharing policy has been applied before (SharedAlert).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from schemas import AlertEvent, Contact
from services.common.geography import Geography

from .sharing import SharedAlert
from .wording import level_name, place_name, summary, tick_date

LANGUAGES = ("en", "es", "fr", "pt")


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("services.notify", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("xml", "html"), default_for_string=False),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def title_of(alert: AlertEvent, language: str) -> str:
    return alert.title.get(language) or alert.title.get("en") or alert.rule_id


RELEASED = {
    "en": "Held back by silence {silence}, which has ended: this is where the alert stands now.",
    "es": "Retenida por el silencio {silence}, que ha terminado: así está la alerta ahora.",
    "fr": "Retenue par le silence {silence}, qui a pris fin : voici où en est l'alerte.",
    "pt": "Retida pelo silêncio {silence}, que terminou: é assim que o alerta está agora.",
}


def render_summary(
    shared: SharedAlert,
    geography: Geography,
    language: str,
    released_from: str | None = None,
    titles: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """A few plain sentences in the reader's language: what, where, the figure in words, the
    period (and, for a message a silence held back, that it was)."""
    text = summary(shared, geography, language, title_of(shared.alert, language), titles)
    if released_from is not None:
        text = f"{RELEASED[language].format(silence=released_from)} {text}"
    return text


def render_json(
    shared: SharedAlert,
    contact: Contact,
    geography: Geography,
    released_from: str | None = None,
    ack_url: str | None = None,
    idempotency_key: str | None = None,
    titles: Mapping[str, Mapping[str, str]] | None = None,
    console_url: str | None = None,
) -> bytes:
    """The webhook body: the alert as on ews.alerts, plus title and summary in the contact's
    language, and `released_from_silence` when a silence had held it back."""
    body = shared.alert.model_dump(mode="json", exclude={"title"})
    body["value"], body["threshold"] = shared.value, shared.threshold
    if shared.withheld:
        body["withheld"] = list(shared.withheld)  # what the sharing policy left out
    body.update(
        value_display=shared.value_text,
        language=contact.language,
        title=title_of(shared.alert, contact.language),
        place=place_name(shared.alert.scope, geography, contact.language),
        summary=render_summary(shared, geography, contact.language, released_from, titles),
    )
    if released_from is not None:
        body["released_from_silence"] = released_from
    if ack_url is not None:
        body["ack_url"] = ack_url  # one click acknowledges for this contact, no token needed
    if console_url is not None:
        body["console_url"] = console_url  # the alert's page in the console (sign-in needed)
    if idempotency_key is not None:  # one of a group's messages: each keeps its own key
        body["idempotency_key"] = idempotency_key
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


EMAIL_WORDS = {
    "en": {
        "colon": ":",
        "place": "Place",
        "since": "Since",
        "trigger": "Trigger",
        "alert": "Alert",
        "number": "#",
        "ack": "Acknowledge for yourself (stops your repeats and escalation), no token needed:",
        "ack_button": "Acknowledge",
        "console": "The alert in the console (its chart, timeline and deliveries):",
        "console_button": "Open in the console",
        "footer": "— ews, early warning for migration and displacement in the Americas",
        "updates": "[EWS] {n} alert updates",
    },
    "es": {
        "colon": ":",
        "place": "Lugar",
        "since": "Desde",
        "trigger": "Disparador",
        "alert": "Alerta",
        "number": "n.º ",
        "ack": "Confirme la recepción (detiene sus repeticiones y el escalamiento), sin token:",
        "ack_button": "Confirmar la recepción",
        "console": "La alerta en la consola (su gráfico, cronología y entregas):",
        "console_button": "Abrir en la consola",
        "footer": "— ews, alerta temprana de migración y desplazamiento en las Américas",
        "updates": "[EWS] {n} actualizaciones de alertas",
    },
    "fr": {
        "colon": " :",
        "place": "Lieu",
        "since": "Depuis",
        "trigger": "Déclencheur",
        "alert": "Alerte",
        "number": "n° ",
        "ack": "Accusez réception (arrête vos rappels et l'escalade), sans jeton :",
        "ack_button": "Accuser réception",
        "console": "L'alerte dans la console (graphique, chronologie, envois) :",
        "console_button": "Ouvrir dans la console",
        "footer": "— ews, alerte précoce sur les migrations et déplacements dans les Amériques",
        "updates": "[EWS] {n} mises à jour d'alertes",
    },
    "pt": {
        "colon": ":",
        "place": "Local",
        "since": "Desde",
        "trigger": "Gatilho",
        "alert": "Alerta",
        "number": "n.º ",
        "ack": "Confirme o recebimento (interrompe suas repetições e o escalonamento), sem token:",
        "ack_button": "Confirmar o recebimento",
        "console": "O alerta no console (gráfico, cronologia e entregas):",
        "console_button": "Abrir no console",
        "footer": "— ews, alerta precoce de migração e deslocamento nas Américas",
        "updates": "[EWS] {n} atualizações de alertas",
    },
}


@dataclass(frozen=True)
class Email:
    """One e-mail: a plain-text part and an HTML part with the same content."""

    subject: str
    text: str
    html: str
    part: Mapping[str, Any]  # what it says, to be one part of a group's e-mail


def render_email(
    shared: SharedAlert,
    contact: Contact,
    geography: Geography,
    ack_url: str | None,
    released_from: str | None = None,
    titles: Mapping[str, Mapping[str, str]] | None = None,
    console_url: str | None = None,
) -> Email:
    """The e-mail in the contact's language: the summary first (place, figure, unit, period),
    then the details, the one-click acknowledgement and the console's page for the alert."""
    language = contact.language
    alert = shared.alert
    title = title_of(alert, language)
    place = place_name(alert.scope, geography, language)
    level = level_name(alert.level, language).upper()
    subject = f"[EWS {level}] {title} — {place}"
    part: dict[str, Any] = {
        "subject": subject,
        "summary": render_summary(shared, geography, language, released_from, titles),
        "level": alert.level or "resolved",
        "rows": [
            (EMAIL_WORDS[language]["place"], place),
            (EMAIL_WORDS[language]["since"], tick_date(alert.started_at, language)),
            (EMAIL_WORDS[language]["trigger"], f"{alert.rule_id} ({alert.rule_version[:19]})"),
            (
                EMAIL_WORDS[language]["alert"],
                f"{alert.alert_id} {EMAIL_WORDS[language]['number']}{alert.transition}",
            ),
        ],
        "ack_url": ack_url if alert.status == "firing" else None,
        "console_url": console_url,
    }
    return _email(subject, [part], language)


def _email(subject: str, parts: list[Mapping[str, Any]], language: str) -> Email:
    values = {"parts": parts, "words": EMAIL_WORDS[language], "lang": language, "title": subject}
    text = _env().get_template("email.txt.j2").render(**values).strip() + "\n"
    html = _env().get_template("email.html").render(**values)
    return Email(subject, text, html, parts[0])


def digest(emails: list[Email], language: str) -> Email:
    """A group's e-mails as one: a subject counting them, then each message under its own
    subject, in both parts."""
    subject = EMAIL_WORDS[language]["updates"].format(n=len(emails))
    return _email(subject, [e.part for e in emails], language)
