"""Alert transition → what a contact receives, in its language. Jinja2 templates in templates/."""

from __future__ import annotations

import json
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from schemas import AlertEvent, Contact

LANGUAGES = ("en", "es", "fr", "pt")


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader("services.notify", "templates"), undefined=StrictUndefined,
                       autoescape=False, keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)


def title_of(alert: AlertEvent, language: str) -> str:
    return alert.title.get(language) or alert.title.get("en") or alert.rule_id


def render_summary(alert: AlertEvent, title: str, language: str) -> str:
    """One plain sentence or two in the contact's language."""
    return _env().get_template(f"summary.{language}.j2").render(alert=alert, title=title).strip()


def render_json(alert: AlertEvent, contact: Contact) -> bytes:
    """The webhook body: the alert as on ews.alerts, plus title and summary in the contact's language."""
    title = title_of(alert, contact.language)
    body = alert.model_dump(mode="json", exclude={"title"})
    body.update(language=contact.language, title=title, summary=render_summary(alert, title, contact.language))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
