"""Alert transition → what a contact receives, in its language: JSON, CAP 1.2 XML, e-mail text.

Jinja2 templates in templates/; the sharing policy has been applied before (SharedAlert).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from schemas import AlertEvent, Contact
from services.common.geography import Geography

from .sharing import SharedAlert
from .wording import level_name, moment, place_name, summary

LANGUAGES = ("en", "es", "fr", "pt")


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("services.notify", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("xml",), default_for_string=False),
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
    if idempotency_key is not None:  # one of a group's messages: each keeps its own key
        body["idempotency_key"] = idempotency_key
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_email(
    shared: SharedAlert,
    contact: Contact,
    geography: Geography,
    ack_url: str | None,
    released_from: str | None = None,
    titles: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[str, str]:
    """(subject, plain-text body) in the contact's language."""
    language = contact.language
    template = _env().get_template(f"email.{language}.txt.j2")
    body = template.render(
        alert=shared.alert,
        title=title_of(shared.alert, language),
        contact=contact,
        summary=render_summary(shared, geography, language, released_from, titles),
        level=level_name(shared.alert.level, language).upper(),
        place=place_name(shared.alert.scope, geography, language),
        since=moment(shared.alert.started_at, language),
        ack_url=ack_url,
    )
    subject, _, text = body.partition("\n")
    return subject.removeprefix("Subject: ").strip(), text.strip() + "\n"


DIGEST_SUBJECT = {
    "en": "[EWS] {n} alert updates",
    "es": "[EWS] {n} actualizaciones de alertas",
    "fr": "[EWS] {n} mises à jour d'alertes",
    "pt": "[EWS] {n} atualizações de alertas",
}


def digest(emails: list[tuple[str, str]], language: str) -> tuple[str, str]:
    """A group's e-mails as one: a subject counting them, then each message under its own
    subject."""
    subject = DIGEST_SUBJECT[language].format(n=len(emails))
    text = "\n\n".join(
        f"{part_subject}\n{'=' * min(len(part_subject), 72)}\n{part}"
        for part_subject, part in emails
    )
    return subject, text
