"""The notify worker: ews.alerts → contacts it concerns → rendered message → webhook → ews.deliveries."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timezone
from urllib.parse import urlsplit

import faust
import httpx

from schemas import AlertEvent, Contact, ContactsFile, DeliveryRecord, SitesFile, WebhookChannel
from services.common.config_files import load_model
from services.common.faust_app import create_faust_app
from services.common.geography import Geography
from services.common.settings import Settings
from services.common.topics import Topics

from . import metrics
from .rendering import render_json
from .routing import route_to_contacts
from .webhook import WebhookTargetRefused, check_target, post_webhook

log = logging.getLogger(__name__)


def backoff_delay(attempt: int, settings: Settings) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to initial, then doubling, capped."""
    ceiling = min(settings.delivery_backoff_max_s, settings.delivery_backoff_initial_s * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    geography = Geography(load_model(settings.sites_file, SitesFile))
    contacts = load_model(settings.resolved_contacts_file, ContactsFile).contacts
    app = create_faust_app("notify", settings, settings.notify_web_port)
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    deliveries = app.topic(topics.deliveries, key_serializer="raw", value_serializer="raw")
    dead = app.topic(topics.notify_dead, key_serializer="raw", value_serializer="raw")
    client_holder: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        if "c" not in client_holder:
            client_holder["c"] = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
        return client_holder["c"]

    async def record(rec: DeliveryRecord) -> None:
        await deliveries.send(key=rec.idempotency_key.encode(), value=rec.model_dump_json().encode())
        metrics.DELIVERIES.labels(rec.channel, rec.outcome).inc()

    async def deliver_webhook(alert: AlertEvent, contact: Contact, channel: WebhookChannel) -> None:
        url = str(channel.url)
        key = f"{alert.alert_id}:{alert.transition}:{contact.id}"
        base = dict(idempotency_key=key, alert_id=alert.alert_id, transition=alert.transition,
                    contact_id=contact.id, channel="webhook", target=urlsplit(url).hostname or "")
        try:
            await check_target(url, settings.allow_private_webhooks)
        except WebhookTargetRefused as exc:
            await record(DeliveryRecord(**base, attempt=0, outcome="refused", detail=str(exc), duration_s=0.0,
                                        at=datetime.now(timezone.utc)))
            log.warning("not delivering %s to %s: %s", key, contact.id, exc)
            return
        body = render_json(alert, contact)
        for attempt in range(1, settings.delivery_max_attempts + 1):
            now = datetime.now(timezone.utc)
            result = await post_webhook(client(), url, channel.secret, body, key, "application/json",
                                        int(now.timestamp()))
            metrics.DELIVERY_SECONDS.labels("webhook").observe(result.duration_s)
            outcome = "delivered" if result.delivered else "failed"
            await record(DeliveryRecord(**base, attempt=attempt, outcome=outcome, detail=result.detail,
                                        status_code=result.status_code, duration_s=result.duration_s, at=now))
            if result.delivered:
                return
            if attempt < settings.delivery_max_attempts:
                await asyncio.sleep(result.retry_after_s or backoff_delay(attempt, settings))
        dead_record = DeliveryRecord(**base, attempt=settings.delivery_max_attempts, outcome="dead",
                                     detail="gave up after the last attempt", duration_s=0.0,
                                     at=datetime.now(timezone.utc))
        await dead.send(key=key.encode(), value=dead_record.model_dump_json().encode())
        metrics.DEAD.labels("webhook").inc()
        log.error("gave up delivering %s to %s after %d attempts", key, contact.id, settings.delivery_max_attempts)

    @app.agent(alerts)
    async def notify_contacts(stream: faust.StreamT) -> None:
        async for raw in stream:
            alert = AlertEvent.model_validate_json(raw)
            for contact in route_to_contacts(alert, contacts, geography):
                for channel in contact.channels:
                    if isinstance(channel, WebhookChannel):
                        await deliver_webhook(alert, contact, channel)

    return app
