"""E-mail delivery over SMTP with STARTTLS."""

from __future__ import annotations

import ssl
import time
from email.message import EmailMessage

import aiosmtplib

from services.common.settings import Settings

from .webhook import AttemptResult


def build_message(
    settings: Settings,
    to: str,
    subject: str,
    body: str,
    idempotency_key: str,
    html: str | None = None,
) -> EmailMessage:
    """A plain-text message, with an HTML alternative of the same content when given."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["X-EWS-Idempotency-Key"] = idempotency_key
    message["Message-ID"] = f"<{idempotency_key.replace('/', '.').replace(':', '.')}@ews>"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


async def send_email(settings: Settings, message: EmailMessage) -> AttemptResult:
    """One SMTP transaction; refuses to send if STARTTLS is required and the server does not offer
    it."""
    if not settings.smtp_host:
        return AttemptResult(False, None, "no SMTP server configured (EWS_SMTP_HOST)", 0.0)
    context = ssl.create_default_context(
        cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    )
    started = time.monotonic()
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            tls_context=context,
            timeout=settings.smtp_timeout_s,
        )
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        return AttemptResult(
            False, None, f"{type(exc).__name__}: {exc}"[:300], time.monotonic() - started
        )
    return AttemptResult(True, 250, "", time.monotonic() - started)
