"""A test message to one contact, on each of its channels, now: so an operator who adds or edits a
contact learns at once whether its receiver answers (signature, address, format), without waiting
for an alert. It is marked as a test everywhere: `"test": true` in JSON, CAP `status` Test, the
e-mail subject; it names no alert and carries no figure."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from schemas import Contact, WebhookChannel
from services.common.settings import Settings

from .cap import cap_time
from .email import build_message, send_email
from .rendering import _env
from .webhook import AttemptResult, WebhookTargetRefused, check_target, post_webhook

TITLE = {
    "en": "Test message from ews",
    "es": "Mensaje de prueba de ews",
    "fr": "Message de test d'ews",
    "pt": "Mensagem de teste do ews",
}
TEXT = {
    "en": "This is a test of your alert channel, sent by {by} at {at} UTC. No action is needed.",
    "es": "Es una prueba de su canal de alertas, enviada por {by} el {at} UTC. No hace falta "
    "hacer nada.",
    "fr": "Ceci est un test de votre canal d'alerte, envoyé par {by} le {at} UTC. Aucune action "
    "n'est requise.",
    "pt": "Este é um teste do seu canal de alertas, enviado por {by} em {at} UTC. Nenhuma ação é "
    "necessária.",
}


@dataclass(frozen=True)
class ProbeResult:
    """One channel's answer to the test message."""

    channel: str  # "webhook" or "email"
    target: str  # the receiver's host, or the e-mail address
    ok: bool
    status_code: int | None
    detail: str
    duration_s: float

    @property
    def summary(self) -> str:
        outcome = f"delivered ({self.status_code})" if self.ok else f"failed: {self.detail}"
        return f"{self.channel} {self.target}: {outcome}"

    def as_json(self) -> dict:
        return {
            "channel": self.channel,
            "target": self.target,
            "delivered": self.ok,
            "status_code": self.status_code,
            "detail": self.detail,
            "duration_s": round(self.duration_s, 3),
        }


def probe_texts(contact: Contact, by: str, now: datetime) -> tuple[str, str]:
    """(title, sentence) in the contact's language."""
    at = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return TITLE[contact.language], TEXT[contact.language].format(by=by, at=at)


def render_probe_json(contact: Contact, by: str, now: datetime, key: str) -> bytes:
    title, text = probe_texts(contact, by, now)
    body = {
        "test": True,
        "idempotency_key": key,
        "contact_id": contact.id,
        "language": contact.language,
        "title": title,
        "summary": text,
        "sent_at": now.astimezone(UTC).isoformat(),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_probe_cap(
    contact: Contact, by: str, now: datetime, key: str, sender: str = "ews@early-warning.americas"
) -> bytes:
    title, text = probe_texts(contact, by, now)
    xml = (
        _env()
        .get_template("cap_test.xml")
        .render(
            identifier=key,
            sender=sender,
            sent=cap_time(now),
            expires=cap_time(now + timedelta(hours=1)),
            language=contact.language,
            event=title,
            description=text,
            area=contact.country or "Americas",
            country=contact.country,
        )
    )
    return xml.encode("utf-8")


async def send_probe(settings: Settings, contact: Contact, by: str) -> list[ProbeResult]:
    """The test message on every channel of the contact, one after another (a person waits for
    the answer, each attempt bounded by the webhook or SMTP timeout)."""
    now = datetime.now(UTC)
    results: list[ProbeResult] = []
    async with httpx.AsyncClient(
        timeout=settings.webhook_timeout_s, follow_redirects=False
    ) as client:
        for channel in contact.channels:
            key = f"ews-test:{contact.id}:{now.strftime('%Y%m%dT%H%M%S')}:{secrets.token_hex(4)}"
            result: AttemptResult
            if isinstance(channel, WebhookChannel):
                url = str(channel.url)
                target = httpx.URL(url).host
                try:
                    address = await check_target(url, settings.allow_private_webhooks)
                except WebhookTargetRefused as exc:
                    results.append(ProbeResult("webhook", target, False, None, str(exc), 0.0))
                    continue
                if contact.format == "cap":
                    body = render_probe_cap(contact, by, now, key, settings.cap_sender)
                    content_type = "application/cap+xml; charset=utf-8"
                else:
                    body = render_probe_json(contact, by, now, key)
                    content_type = "application/json"
                result = await post_webhook(
                    client,
                    url,
                    channel.secret,
                    body,
                    key,
                    content_type,
                    int(now.timestamp()),
                    address,
                )
            else:
                target = channel.address
                title, text = probe_texts(contact, by, now)
                message = build_message(settings, channel.address, f"[EWS] {title}", text, key)
                result = await send_email(settings, message)
            results.append(
                ProbeResult(
                    channel.type,
                    target,
                    result.delivered,
                    result.status_code,
                    result.detail,
                    result.duration_s,
                )
            )
    return results
