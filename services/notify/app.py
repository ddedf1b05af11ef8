"""The notify worker: alert transitions → contacts → rendered messages → webhook / e-mail →
ews.deliveries.

- `deliver_alert` reads ews.alerts, routes each transition (contacts, silences, sharing policy),
  and makes the first attempt at once.
- Failed attempts wait on ews.notify.retry (keyed by alert_id, so they meet the same table
  partition) with their due time; `retry_delivery` makes the later attempts and, after the
  last, moves the job to ews.notify.dead. Repeats and escalations go the same way.
- The `delivered` table (changelog-backed, keyed by alert_id) remembers every delivered
  (alert, transition, contact, channel): nothing delivered is sent again, also after a
  restart or rebalance.
- Contacts, silences and acknowledgements live in compacted topics; every worker keeps a
  complete view of them and of the alerts (services.common.topic_view).
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import faust
import httpx

from schemas import AlertEvent, Contact, ContactsFile, DeliveryRecord, SitesFile, WebhookChannel
from schemas.config import SharingFile
from schemas.notify import Acknowledgement, DeliveryJob, Silence
from schemas.types import as_timedelta, parse_duration
from services.common.auth import TokenStore
from services.common.config_files import load_model
from services.common.faust_app import ContinuityGuard, broker_health, create_faust_app
from services.common.geography import Geography
from services.common.outage import riding_out
from services.common.settings import Settings
from services.common.topic_view import TopicView
from services.common.topics import Topics

from . import metrics
from .api import register_api
from .email import build_message, send_email
from .picture import AlertPicture, is_acknowledged, reminders_due
from .rendering import render_cap, render_email, render_json
from .routing import escalation_targets, route_to_contacts, silenced_by
from .sharing import share
from .webhook import AttemptResult, WebhookTargetRefused, check_target, post_webhook

log = logging.getLogger(__name__)


def backoff_delay(attempt: int, settings: Settings) -> float:
    """Exponential backoff with jitter: attempt n waits between half and all of initial × 2^(n-1),
    capped."""
    ceiling = min(
        settings.delivery_backoff_max_s, settings.delivery_backoff_initial_s * 2 ** (attempt - 1)
    )
    return random.uniform(ceiling / 2, ceiling)


class NotifyState:
    """What every notify worker knows: contacts, silences, acknowledgements, the alert picture."""

    def __init__(self, settings: Settings, topics: Topics) -> None:
        self.settings = settings
        self.topics = topics
        self.geography = Geography(load_model(settings.sites_file, SitesFile))
        self.policy = (
            load_model(settings.resolved_sharing_file, SharingFile)
            if settings.resolved_sharing_file.exists()
            else SharingFile()
        )
        contacts_file = settings.resolved_contacts_file
        self.file_contacts = (
            {c.id: c for c in load_model(contacts_file, ContactsFile).contacts}
            if contacts_file.exists()
            else {}
        )
        self.tokens = TokenStore.from_settings(settings)
        self.picture = AlertPicture()
        bootstrap = settings.kafka_bootstrap
        self.contacts = TopicView(bootstrap, topics.contacts, Contact.model_validate_json)
        self.silences = TopicView(bootstrap, topics.notify_silences, Silence.model_validate_json)
        self.acks = TopicView(bootstrap, topics.notify_acks, Acknowledgement.model_validate_json)
        self.alerts = TopicView(
            bootstrap,
            topics.alerts,
            AlertEvent.model_validate_json,
            on_change=self._alert_changed,
        )
        self.views = [self.contacts, self.silences, self.acks, self.alerts]

    def _alert_changed(self, key: str, alert: AlertEvent | None, record: Any) -> None:
        if alert is not None:
            self.picture.record(alert, record.partition)

    async def loaded(self) -> None:
        """Wait until every view has read its topic to the end (agents must not route on a partial
        view)."""
        await asyncio.gather(*(view.caught_up.wait() for view in self.views))

    def all_contacts(self) -> dict[str, Contact]:
        return {**self.file_contacts, **self.contacts.items}

    def ack_url(self, alert_id: str) -> str | None:
        base = self.settings.public_url
        return f"{base.rstrip('/')}/alerts/{quote(alert_id, safe='')}/ack" if base else None


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    state = NotifyState(settings, topics)
    repeat_interval = as_timedelta(parse_duration(settings.repeat_interval))
    escalate_after = as_timedelta(parse_duration(settings.escalate_after))
    app = create_faust_app(
        "notify",
        settings,
        settings.notify_web_port,
        readiness=lambda: [f"loading {v.topic}" for v in state.views if not v.caught_up.is_set()],
    )
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    retries = app.topic(
        topics.notify_retry,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    deliveries = app.topic(topics.deliveries, key_serializer="raw", value_serializer="raw")
    dead = app.topic(topics.notify_dead, key_serializer="raw", value_serializer="raw")
    delivered = app.Table(
        "delivered",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        help="alert_id → delivery keys already delivered, with when",
    )
    guard = ContinuityGuard(app)
    client_holder: dict[str, httpx.AsyncClient] = {}
    enqueued: set[str] = set()  # repeat/escalation jobs this worker already queued

    def client() -> httpx.AsyncClient:
        if "c" not in client_holder:
            client_holder["c"] = httpx.AsyncClient(
                timeout=settings.webhook_timeout_s, follow_redirects=False
            )
        return client_holder["c"]

    @app.task
    async def follow_views() -> None:
        await asyncio.gather(*(view.run() for view in state.views))

    # --- one attempt ---------------------------------------------------------------------

    def job_key(job: DeliveryJob) -> str:
        return f"{job.idempotency_key}|{job.channel_index}"

    async def attempt(job: DeliveryJob) -> tuple[AttemptResult | None, str]:
        """Deliver one job once. Returns (result, outcome-if-not-attempted)."""
        contact = state.all_contacts().get(job.contact_id)
        if contact is None or job.channel_index >= len(contact.channels):
            return None, "contact removed"
        shared = share(job.alert, contact, state.policy)
        if shared is None:
            return None, "sharing policy: nothing shared with this recipient"
        channel = contact.channels[job.channel_index]
        now = datetime.now(UTC)
        if isinstance(channel, WebhookChannel):
            url = str(channel.url)
            try:
                await check_target(url, settings.allow_private_webhooks)
            except WebhookTargetRefused as exc:
                return AttemptResult(False, None, str(exc), 0.0), "refused"
            if contact.format == "cap":
                body = render_cap(shared, contact, state.picture.earlier_in_episode(job.alert))
                content_type = "application/cap+xml; charset=utf-8"
            else:
                body, content_type = render_json(shared, contact), "application/json"
            return await post_webhook(
                client(),
                url,
                channel.secret,
                body,
                job.idempotency_key,
                content_type,
                int(now.timestamp()),
            ), ""
        subject, text = render_email(shared, contact, state.ack_url(job.alert.alert_id))
        return await send_email(
            settings, build_message(settings, channel.address, subject, text, job.idempotency_key)
        ), ""

    def channel_name(job: DeliveryJob) -> str:
        contact = state.all_contacts().get(job.contact_id)
        if contact is None or job.channel_index >= len(contact.channels):
            return "webhook"
        return contact.channels[job.channel_index].type

    def target_of(job: DeliveryJob) -> str:
        contact = state.all_contacts().get(job.contact_id)
        if contact is None or job.channel_index >= len(contact.channels):
            return ""
        channel = contact.channels[job.channel_index]
        return (
            (urlsplit(str(channel.url)).hostname or "")
            if isinstance(channel, WebhookChannel)
            else channel.address.split("@")[-1]
        )

    async def record(
        job: DeliveryJob, outcome: str, result: AttemptResult | None, detail: str = ""
    ) -> None:
        rec = DeliveryRecord(
            idempotency_key=job.idempotency_key,
            alert_id=job.alert.alert_id,
            transition=job.alert.transition,
            contact_id=job.contact_id,
            channel=channel_name(job),
            target=target_of(job),
            attempt=job.attempt,
            outcome=outcome,
            detail=detail or (result.detail if result else ""),
            status_code=result.status_code if result else None,
            duration_s=result.duration_s if result else 0.0,
            at=datetime.now(UTC),
        )
        await deliveries.send(key=job.alert.alert_id.encode(), value=rec.model_dump_json().encode())
        metrics.DELIVERIES.labels(rec.channel, outcome).inc()
        if result is not None:
            metrics.DELIVERY_SECONDS.labels(rec.channel).observe(result.duration_s)

    def already_delivered(job: DeliveryJob) -> bool:
        return job_key(job) in (delivered.get(job.alert.alert_id) or {})

    in_flight: dict[str, asyncio.Lock] = {}

    async def run_job(job: DeliveryJob) -> None:
        """One delivery at a time per key: the alert and retry agents may hold the same job after a
        replay."""
        key = job_key(job)
        lock = in_flight.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await run_job_locked(job)
        finally:
            if not lock.locked() and in_flight.get(key) is lock:
                del in_flight[key]

    async def run_job_locked(job: DeliveryJob) -> None:
        """Attempt a job in-stream and act on the outcome: delivered, retried later, dead or
        refused."""
        if already_delivered(job):
            return
        job = job.model_copy(update={"attempt": job.attempt + 1})
        result, not_attempted = await attempt(job)
        if result is None:
            await record(job, "refused", None, not_attempted)
            return
        if result.delivered:
            done = dict(delivered.get(job.alert.alert_id) or {})
            done[job_key(job)] = datetime.now(UTC).isoformat()
            delivered[job.alert.alert_id] = done
            await record(job, "delivered", result)
            log.info(
                "delivered %s (%s, attempt %d)", job.idempotency_key, channel_name(job), job.attempt
            )
            return
        if not_attempted == "refused":
            await record(job, "refused", result)
            log.warning("not delivering %s: %s", job.idempotency_key, result.detail)
            return
        await record(job, "failed", result)
        log.info("attempt %d of %s failed: %s", job.attempt, job.idempotency_key, result.detail)
        if job.attempt >= settings.delivery_max_attempts:
            await record(
                job, "dead", result, f"gave up after {job.attempt} attempts: {result.detail}"
            )
            await dead.send(key=job.alert.alert_id.encode(), value=job.model_dump_json().encode())
            metrics.DEAD.labels(channel_name(job)).inc()
            log.error("gave up delivering %s after %d attempts", job.idempotency_key, job.attempt)
            return
        wait = (
            result.retry_after_s
            if result.retry_after_s is not None
            else backoff_delay(job.attempt, settings)
        )
        later = job.model_copy(
            update={
                "due_at": datetime.now(UTC) + timedelta(seconds=wait),
                "last_error": result.detail,
            }
        )
        await retries.send(key=job.alert.alert_id.encode(), value=later.model_dump_json().encode())
        metrics.RETRY_BACKLOG.inc()

    def jobs_for(
        alert: AlertEvent, contacts: list[Contact], reason: str, suffix: str = ""
    ) -> list[DeliveryJob]:
        now = datetime.now(UTC)
        return [
            DeliveryJob(
                idempotency_key=f"{alert.alert_id}:{alert.transition}:{c.id}{suffix}",
                alert=alert,
                contact_id=c.id,
                channel_index=i,
                reason=reason,
                due_at=now,
            )
            for c in contacts
            for i in range(len(c.channels))
        ]

    # --- agents ----------------------------------------------------------------------------

    @app.agent(alerts)
    async def deliver_alert(stream: faust.StreamT) -> None:
        await state.loaded()
        async for event in stream.events():
            if not await guard.check(event):
                continue  # after a gap: the stream was sent back for what it dropped
            alert = AlertEvent.model_validate_json(event.message.value)
            state.picture.record(alert, event.message.partition)
            now = datetime.now(UTC)
            silence = silenced_by(alert, state.silences.items.values(), now)
            contacts = route_to_contacts(alert, state.all_contacts().values(), state.geography)
            if silence is not None:
                for job in jobs_for(alert, contacts, "transition"):
                    await record(
                        job, "refused", None, f"silenced by {silence.id}: {silence.comment}"
                    )
                metrics.SILENCED.inc()
                continue
            jobs = [j for j in jobs_for(alert, contacts, "transition") if not already_delivered(j)]
            for job in jobs:  # in-stream, one after another: table writes need the current event
                await run_job(job)

    @app.agent(retries)
    async def retry_delivery(stream: faust.StreamT) -> None:
        await state.loaded()
        async for event in stream.events():
            if not await guard.check(event):
                continue  # after a gap: the stream was sent back for what it dropped
            job = DeliveryJob.model_validate_json(event.message.value)
            log.debug(
                "retry job %s attempt %d due %s", job.idempotency_key, job.attempt, job.due_at
            )
            metrics.RETRY_BACKLOG.dec()
            latest = state.picture.latest.get(job.alert.alert_id)
            ack = state.acks.items.get(job.alert.alert_id)
            if job.reason != "transition" and (
                is_acknowledged(job.alert, ack)
                or (latest is not None and latest.transition != job.alert.transition)
            ):
                # a repeat or escalation that an acknowledgement or a newer transition made moot
                continue
            wait = (job.due_at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, settings.delivery_backoff_max_s))
            await run_job(job)

    @app.timer(interval=settings.reminder_check_interval_s)
    @riding_out(broker_health(app), "queueing reminders")
    async def queue_reminders() -> None:
        """Repeats of firing, unacknowledged alerts, and escalation, for the alerts this worker
        owns."""
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topics.alerts}
        now = datetime.now(UTC)
        contacts = state.all_contacts()
        for alert_id, alert in list(state.picture.latest.items()):
            if state.picture.partitions.get(alert_id) not in owned:
                continue
            repeats, escalate = reminders_due(
                alert, state.acks.items.get(alert_id), now, repeat_interval, escalate_after
            )
            routed = route_to_contacts(alert, contacts.values(), state.geography)
            planned = []
            if repeats:
                planned += jobs_for(alert, routed, "repeat", f":repeat-{repeats}")
            if escalate:
                planned += jobs_for(
                    alert, escalation_targets(routed, contacts), "escalation", ":escalation"
                )
            for job in planned:
                if job_key(job) not in enqueued:
                    enqueued.add(job_key(job))
                    await retries.send(key=alert_id.encode(), value=job.model_dump_json().encode())
                    metrics.RETRY_BACKLOG.inc()

    register_api(app, state, topics)
    return app
