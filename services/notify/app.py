"""The notify worker: the delivery pipeline (services.notify.pipeline, stage by stage) on Kafka.

- `deliver_alert` reads ews.alerts and routes each transition to its contacts (in-stream); each
  job is kept in the `pending` table and attempted at once, out of the stream.
- Attempts run concurrently (EWS_DELIVERY_CONCURRENCY), each through the same stages: held back
  by a silence or made moot, shared, rendered, sent. What became of one goes to ews.notify.retry
  (keyed by alert_id, so it meets the same table partitions), where `retry_delivery` records it on
  ews.deliveries and updates `pending` (the next attempt's due time, a job muted by a silence) and
  `delivered`, or moves the job to ews.notify.dead. No stage waits inside a stream: one receiver
  that hangs or asks to wait delays no other delivery.
- `start_due_deliveries` attempts the pending jobs whose time has come, and releases the jobs a
  silence held back once it ends; `queue_reminders` plans repeats and escalations, which take the
  same path.
- The `delivered` table (changelog-backed, keyed by alert_id) remembers the delivered
  (alert, transition, contact, channel) a retry, replay or restart could present again: nothing
  delivered is sent again, also after a restart or rebalance; `pending` survives them too. It
  keeps each alert's newest transition and what was delivered within EWS_DELIVERY_MAX_AGE and a
  day, so it grows with the alerts there are, not with their history (pipeline.still_needed).
- Contacts, silences and acknowledgements live in compacted topics; every worker keeps a
  complete view of them and of the alerts (services.common.topic_view).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import faust
import httpx

from schemas import (
    AlertEvent,
    AlertSeries,
    Contact,
    ContactsFile,
    DeliveryRecord,
    SitesFile,
    WebhookChannel,
)
from schemas.delivery import AuditRecord, SentContent
from schemas.notify import Acknowledgement, DeliveryJob, JobOutcome, Silence
from schemas.types import as_timedelta, parse_duration
from services.common.auth import TokenStore
from services.common.config_files import load_model
from services.common.faust_app import ContinuityGuard, broker_health, create_faust_app
from services.common.geography import Geography
from services.common.outage import riding_out
from services.common.reloading import Reloading
from services.common.settings import Settings
from services.common.topic_view import TopicView
from services.common.topics import Topics

from . import metrics
from .ack_links import alert_ref, sign_link
from .api import register_api
from .cap import CapProfile, render_cap
from .console.pages import register_console
from .console.views import alert_href
from .email import build_message, send_email
from .picture import HISTORY_KEPT, AlertPicture, acknowledged_by, reminders_due
from .pipeline import (
    after_failure,
    group_message_key,
    group_of,
    hold_back,
    plan_jobs,
    released,
    still_needed,
)
from .rendering import digest, render_email, render_json
from .routing import escalation_targets, route_to_contacts, silenced_by
from .sharing import Reader, SharedAlert, SharingPolicy, load_policy, withheld_id
from .webhook import AttemptResult, WebhookTargetRefused, check_target, post_webhook

log = logging.getLogger(__name__)
PER_CONTACT_CONCURRENCY = 4  # attempts to one contact at once


class NotifyState:
    """What every notify worker knows: contacts, silences, acknowledgements, the alert picture."""

    def __init__(self, settings: Settings, topics: Topics) -> None:
        self.settings = settings
        self.topics = topics
        self.geography = Geography(load_model(settings.sites_file, SitesFile))
        self.cap_profile = CapProfile.of(settings)
        secret = settings.id_secret or settings.link_secret
        sharing_file = settings.resolved_sharing_file
        self._policy = Reloading(
            [sharing_file],
            lambda: load_policy(
                sharing_file,
                self.geography,
                secret.get_secret_value() if secret is not None else None,
            ),
            "sharing policy",
        )
        self._policy_checked = time.monotonic()
        self._indexed: set[str] = set()
        self._by_ref: dict[str, str] = {}  # link reference → alert_id
        self._by_withheld: dict[str, str] = {}  # withheld identifier → alert_id
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
        # the delivery audit (GET /deliveries): every record of the last HISTORY_KEPT; read
        # alongside, not waited for (readiness does not depend on it)
        self.delivery_log: deque[DeliveryRecord] = deque()
        self.deliveries = TopicView(
            bootstrap,
            topics.deliveries,
            DeliveryRecord.model_validate_json,
            on_change=self._delivery_recorded,
        )
        # the values behind each alert (the console's chart): the latest per alert, not waited for
        self.series = TopicView(bootstrap, topics.alert_series, AlertSeries.model_validate_json)
        self.audit_log: deque[AuditRecord] = deque()  # GET /audit: API writes, HISTORY_KEPT long
        self.audit = TopicView(
            bootstrap, topics.audit, AuditRecord.model_validate_json, on_change=self._written
        )

    def _written(self, key: str, record: AuditRecord | None, _: Any) -> None:
        if record is None:
            return
        self.audit_log.append(record)
        while self.audit_log and self.audit_log[0].at < record.at - HISTORY_KEPT:
            self.audit_log.popleft()

    def _delivery_recorded(self, key: str, record: DeliveryRecord | None, _: Any) -> None:
        if record is None:
            return
        log = self.delivery_log
        log.append(record)
        while log and log[0].at < record.at - HISTORY_KEPT:
            log.popleft()

    def _alert_changed(self, key: str, alert: AlertEvent | None, record: Any) -> None:
        if alert is not None:
            self.picture.record(alert, record.partition)

    def views_loaded(self) -> bool:
        return all(view.caught_up.is_set() for view in self.views)

    async def loaded(self) -> None:
        """Wait until every view has read its topic to the end (agents must not route on a partial
        view)."""
        await asyncio.gather(*(view.caught_up.wait() for view in self.views))

    def all_contacts(self) -> dict[str, Contact]:
        return {**self.file_contacts, **self.contacts.items}

    def ack_url(self, alert: AlertEvent, contact_id: str) -> str | None:
        """The signed one-click link acknowledging this transition for this contact, when
        EWS_PUBLIC_URL and EWS_LINK_SECRET are set."""
        base, secret = self.settings.public_url, self.settings.link_secret
        if not base or secret is None or alert.status != "firing":
            return None
        ttl = as_timedelta(parse_duration(self.settings.ack_link_ttl))
        token = sign_link(secret.get_secret_value(), alert, contact_id, datetime.now(UTC) + ttl)
        return f"{base.rstrip('/')}/ack/{token}"

    @property
    def policy(self) -> SharingPolicy:
        """The sharing policy, read again when its file changes (checked at most once a second):
        a country changes what it shares without a restart. A changed file that does not load is
        refused, logged and counted, and the policy before it stays."""
        if time.monotonic() - self._policy_checked >= 1.0:
            self._policy_checked = time.monotonic()
            reloaded = self._policy.reload_if_changed()
            if reloaded is not None:
                outcome, problems = reloaded
                metrics.CONFIG_RELOADS.labels("sharing", outcome).inc()
                if outcome == "applied":
                    log.warning(
                        "%s reloaded: the new sharing policy applies", self._policy.files[0]
                    )
                else:
                    log.error(
                        "changed sharing file refused; the policy before it stays:\n%s",
                        "\n".join(problems),
                    )
        return self._policy.value

    def _index(self) -> None:
        """Bring the reverse indexes up to date with the alerts seen: each alert's link
        reference and withheld identifier is computed once, not on every request."""
        new = self.picture.latest.keys() - self._indexed
        link = self.settings.link_secret
        key = self.policy.key
        for alert_id in new:
            alert = self.picture.latest[alert_id]
            self._by_withheld[withheld_id(key, alert)] = alert_id
            if link is not None:
                self._by_ref[alert_ref(link.get_secret_value(), alert_id)] = alert_id
            self._indexed.add(alert_id)

    def alert_by_ref(self, ref: str) -> str | None:
        """The alert a link's reference names (ack_links.alert_ref), if it is still known."""
        self._index()
        found = self._by_ref.get(ref)
        return found if found in self.picture.latest else None

    def alert_by_withheld_id(self, shown_id: str) -> AlertEvent | None:
        """The alert an outside reader names by the identifier it was shown for a withheld place."""
        self._index()
        found = self._by_withheld.get(shown_id)
        return self.picture.latest.get(found) if found is not None else None

    def console_url(self, shared: SharedAlert) -> str | None:
        """The console's page for the alert as this recipient is shown it, when the console runs
        behind EWS_PUBLIC_URL."""
        base = self.settings.public_url
        if not base or not self.settings.accounts_file:
            return None
        return base.rstrip("/") + alert_href(shared.alert.alert_id)

    def member_titles(self, alert: AlertEvent) -> dict[str, dict[str, str]]:
        """A composite's member triggers by their titles, from the alerts they raised."""
        if alert.kind != "composite":
            return {}
        wanted = set(alert.details)
        return {a.rule_id: a.title for a in self.picture.latest.values() if a.rule_id in wanted}


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    state = NotifyState(settings, topics)
    repeat_interval = as_timedelta(parse_duration(settings.repeat_interval))
    # what `delivered` remembers beyond each alert's newest transition: a retry's whole life
    keep_delivered = timedelta(seconds=settings.delivery_max_age_s) + timedelta(days=1)
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
    pending = app.Table(
        "pending",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        help="job key → delivery job waiting: due at due_at, or muted by a silence",
    )
    guard = ContinuityGuard(app)
    client_holder: dict[str, httpx.AsyncClient] = {}
    enqueued: set[str] = set()  # repeat/escalation jobs this worker already planned

    def client() -> httpx.AsyncClient:
        if "c" not in client_holder:
            client_holder["c"] = httpx.AsyncClient(
                timeout=settings.webhook_timeout_s, follow_redirects=False
            )
        return client_holder["c"]

    @app.timer(interval=2.0)
    async def check_sharing_file() -> None:
        """A changed sharing file is read (and a broken one refused and counted) within seconds,
        whether or not anything is being read or sent."""
        _ = state.policy

    @app.task
    async def follow_views() -> None:
        await asyncio.gather(
            *(view.run() for view in [*state.views, state.deliveries, state.audit, state.series])
        )

    # --- one attempt ---------------------------------------------------------------------

    def job_key(job: DeliveryJob) -> str:
        return f"{job.idempotency_key}|{job.channel_index}"

    def sent_content(shared: SharedAlert, body: bytes) -> SentContent:
        return SentContent(
            alert_id=shared.alert.alert_id,
            value_shown=shared.value_text,
            withheld=list(shared.withheld),
            body_sha256=hashlib.sha256(body).hexdigest(),
        )

    async def attempt(
        jobs: list[DeliveryJob],
    ) -> list[tuple[DeliveryJob, AttemptResult | None, str, SentContent | None]]:
        """Stages 4-6 for jobs of one contact and channel (several: a group, sent as one
        message): share, render, send once. Each job with (result, outcome-if-not-attempted)."""
        first = jobs[0]
        contact = state.all_contacts().get(first.contact_id)
        if contact is None or first.channel_index >= len(contact.channels):
            return [(job, None, "contact removed", None) for job in jobs]
        out: list[tuple[DeliveryJob, AttemptResult | None, str, SentContent | None]] = []
        told: list[tuple[DeliveryJob, SharedAlert]] = []
        for job in jobs:
            shared = state.policy.view(job.alert, Reader.of_contact(contact))
            if shared is None:
                out.append((job, None, "sharing policy: nothing shared with this recipient", None))
            else:
                told.append((job, shared))
        if not told:
            return out
        channel = contact.channels[first.channel_index]
        # one message: alone, its own key; a group, a key of its own (each part carries its own)
        keys = [shared.shown_key(job.idempotency_key) for job, shared in told]
        key = keys[0] if len(keys) == 1 else group_message_key(contact.id, keys)
        now = datetime.now(UTC)
        result: AttemptResult
        if isinstance(channel, WebhookChannel):
            url = str(channel.url)
            try:
                address = await check_target(url, settings.allow_private_webhooks)
            except WebhookTargetRefused as exc:
                return out + [
                    (job, AttemptResult(False, None, str(exc), 0.0), "refused", None)
                    for job, _ in told
                ]
            if contact.format == "cap":  # never grouped
                job, shared = told[0]
                reader = Reader.of_contact(contact)
                earlier = [
                    seen.alert
                    for e in state.picture.earlier_in_episode(job.alert)
                    if (seen := state.policy.view(e, reader)) is not None
                ]
                body = render_cap(
                    shared,
                    contact.language,
                    earlier,
                    state.geography,
                    state.ack_url(job.alert, contact.id),
                    state.member_titles(job.alert),
                    state.cap_profile,
                )
                content_type = "application/cap+xml; charset=utf-8"
                bodies = [body]
            else:
                parts = [
                    render_json(
                        shared,
                        contact,
                        state.geography,
                        job.released_from,
                        state.ack_url(job.alert, contact.id),
                        shared.shown_key(job.idempotency_key) if len(told) > 1 else None,
                        state.member_titles(job.alert),
                        state.console_url(shared),
                    )
                    for job, shared in told
                ]
                body = parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"
                content_type = "application/json"
                bodies = parts
            result = await post_webhook(
                client(),
                url,
                channel.secret,
                body,
                key,
                content_type,
                int(now.timestamp()),
                address,
            )
        else:
            emails = [
                render_email(
                    shared,
                    contact,
                    state.geography,
                    state.ack_url(job.alert, contact.id),
                    job.released_from,
                    state.member_titles(job.alert),
                    state.console_url(shared),
                )
                for job, shared in told
            ]
            email = emails[0] if len(emails) == 1 else digest(emails, contact.language)
            bodies = [f"{e.subject}\n{e.text}".encode() for e in emails]
            result = await send_email(
                settings,
                build_message(
                    settings, channel.address, email.subject, email.text, key, email.html
                ),
            )
        return out + [
            (job, result, "", sent_content(shared, part))
            for (job, shared), part in zip(told, bodies, strict=True)
        ]

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

    async def record(job: DeliveryJob, outcome: str, done: JobOutcome | None = None) -> None:
        """Stage 8: the outcome on ews.deliveries."""
        contact = state.all_contacts().get(job.contact_id)
        seen = state.policy.view(job.alert, Reader.of_contact(contact)) if contact else None
        rec = DeliveryRecord(
            idempotency_key=job.idempotency_key,
            alert_id=job.alert.alert_id,
            transition=job.alert.transition,
            alert_country=job.alert.scope.country,
            shown_alert_id=seen.alert.alert_id if seen is not None else None,
            contact_id=job.contact_id,
            channel=channel_name(job),
            target=target_of(job),
            attempt=job.attempt,
            outcome=outcome,
            detail=done.detail if done else "",
            status_code=done.status_code if done else None,
            duration_s=done.duration_s if done else 0.0,
            at=datetime.now(UTC),
            sent=done.sent if done else None,
        )
        await deliveries.send(key=job.alert.alert_id.encode(), value=rec.model_dump_json().encode())
        metrics.DELIVERIES.labels(rec.channel, outcome).inc()
        if done is not None and done.duration_s > 0:  # an attempt was made
            metrics.DELIVERY_SECONDS.labels(rec.channel).observe(done.duration_s)

    def already_delivered(job: DeliveryJob) -> bool:
        return job_key(job) in (delivered.get(job.alert.alert_id) or {})

    # --- jobs: held in `pending` (in-stream), attempted concurrently (out of it) -------------

    running: set[str] = set()  # job keys being attempted, or whose outcome is on its way
    slots = asyncio.Semaphore(settings.delivery_concurrency)
    # a contact whose receiver hangs holds a few of the slots at most, never all of them
    per_contact: defaultdict[str, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(PER_CONTACT_CONCURRENCY)
    )
    tasks: set[asyncio.Task[None]] = set()

    group_due: dict[str, datetime] = {}  # group → when its collected transitions go out

    def schedule(job: DeliveryJob) -> None:
        """In-stream: keep a new job in `pending` (so a restart still has it) and attempt it now,
        or, for a contact that groups, when its group's wait is over."""
        key = job_key(job)
        if already_delivered(job) or pending.get(key) is not None:
            return
        contact = state.all_contacts().get(job.contact_id)
        group = group_of(job, contact, state.geography) if contact is not None else None
        if group is not None and contact is not None:
            now = datetime.now(UTC)
            due = group_due.get(group)
            if due is None or due <= now:  # the first of a new group: its wait starts now
                due = group_due[group] = now + as_timedelta(parse_duration(contact.group_wait))
            job = job.model_copy(update={"group": group, "due_at": due})
            pending[key] = job.model_dump(mode="json")
            return  # start_due_deliveries sends the group when it is due
        pending[key] = job.model_dump(mode="json")
        launch([(key, job)])

    def launch(members: list[tuple[str, DeliveryJob]]) -> None:
        """Attempt these jobs (one, or a group of one contact and channel) as one message."""
        members = [(key, job) for key, job in members if key not in running]
        if not members:
            return
        running.update(key for key, _ in members)
        task = asyncio.create_task(attempt_and_report(members))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def held_outcome(job: DeliveryJob, now: datetime) -> JobOutcome | None:
        """Stage 3 for one job: muted by a silence, or moot, or None (to be sent)."""
        held = hold_back(
            job,
            state.picture.latest.get(job.alert.alert_id),
            state.silences.items.values(),
            state.acks.items,
            now,
        )
        if held is None:
            return None
        muted_by = held.silence.id if held.silence is not None else None
        return JobOutcome(
            job=job.model_copy(update={"muted_by": muted_by}),
            outcome=held.outcome,
            detail=held.detail,
        )

    async def attempt_all(jobs: list[DeliveryJob]) -> list[JobOutcome]:
        """Stages 3-7 for jobs sent as one message (a group; usually one job), outside the
        stream."""
        now = datetime.now(UTC)
        outcomes, sendable = [], []
        for job in jobs:
            held = held_outcome(job, now)
            if held is not None:
                outcomes.append(held)
            else:
                sendable.append(
                    job.model_copy(
                        update={
                            "attempt": job.attempt + 1,
                            "first_attempt_at": job.first_attempt_at or now,
                        }
                    )
                )
        if sendable:
            outcomes += [outcome_of(*tried) for tried in await attempt(sendable)]
        return outcomes

    def outcome_of(
        job: DeliveryJob,
        result: AttemptResult | None,
        not_attempted: str,
        sent: SentContent | None = None,
    ) -> JobOutcome:
        """Stage 7: what an attempt's result means for its job."""
        if result is None:
            return JobOutcome(job=job, outcome="refused", detail=not_attempted)
        figures = {"status_code": result.status_code, "duration_s": result.duration_s, "sent": sent}
        if result.delivered:
            return JobOutcome(job=job, outcome="delivered", **figures)
        if not_attempted == "refused":
            return JobOutcome(job=job, outcome="refused", detail=result.detail, **figures)
        decision, due, why = after_failure(job, result.retry_after_s, settings, datetime.now(UTC))
        job = job.model_copy(update={"last_error": result.detail})
        if decision == "dead":
            return JobOutcome(job=job, outcome="dead", detail=f"{why}: {result.detail}", **figures)
        return JobOutcome(
            job=job, outcome="failed", detail=result.detail, next_due_at=due, **figures
        )

    async def attempt_and_report(members: list[tuple[str, DeliveryJob]]) -> None:
        """Attempt jobs (at most EWS_DELIVERY_CONCURRENCY messages at once) and send what became
        of each to the stage that owns its table entries; if that cannot be sent, the jobs stay
        pending and are attempted again (receivers de-duplicate by Idempotency-Key)."""
        first = members[0][1]
        try:
            async with per_contact[first.contact_id], slots:
                outcomes = await attempt_all([job for _, job in members])
            for done in outcomes:
                await retries.send(
                    key=done.job.alert.alert_id.encode(), value=done.model_dump_json().encode()
                )
        except Exception:
            for key, job in members:
                running.discard(key)
                if job.releases is not None:
                    running.discard(job.releases)
            log.exception("attempt of %s not reported; it will be attempted again", members[0][0])

    async def settle(done: JobOutcome) -> None:
        """In-stream: act on an attempt's outcome - record it, update `pending` and `delivered`,
        dead-letter."""
        job, key = done.job, job_key(done.job)
        running.discard(key)
        if job.releases is not None:  # a release stands in for the muted job it tells
            pending.pop(job.releases, None)
            running.discard(job.releases)
        elif pending.get(key) is None:
            return  # settled already (an outcome reported twice after a restart)
        if already_delivered(job):
            pending.pop(key, None)
        elif done.outcome == "delivered":
            now = datetime.now(UTC)
            finished = dict(delivered.get(job.alert.alert_id) or {})
            finished[key] = now.isoformat()
            delivered[job.alert.alert_id] = still_needed(finished, now, keep_delivered)
            pending.pop(key, None)
            await record(job, "delivered", done)
            log.info(
                "delivered %s (%s, attempt %d)", job.idempotency_key, channel_name(job), job.attempt
            )
        elif done.outcome == "failed":
            pending[key] = job.model_copy(update={"due_at": done.next_due_at}).model_dump(
                mode="json"
            )
            await record(job, "failed", done)
            log.info("attempt %d of %s failed: %s", job.attempt, job.idempotency_key, done.detail)
        elif done.outcome == "dead":
            pending.pop(key, None)
            await record(job, "failed", done)
            await record(job, "dead", done)
            await dead.send(key=job.alert.alert_id.encode(), value=job.model_dump_json().encode())
            metrics.DEAD.labels(channel_name(job)).inc()
            log.error("gave up delivering %s: %s", job.idempotency_key, done.detail)
        elif done.outcome == "refused":
            pending.pop(key, None)
            await record(job, "refused", done)
            log.warning("not delivering %s: %s", job.idempotency_key, done.detail)
        elif done.outcome == "muted":
            before = pending.get(key)
            pending[key] = job.model_dump(mode="json")
            if before is None or before.get("muted_by") != job.muted_by:  # once per silence
                await record(job, "refused", done)
                metrics.SILENCED.inc()
        else:  # moot: a reminder or release that a newer transition or acknowledgement answered
            pending.pop(key, None)
            enqueued.discard(key)
            log.debug("not sending %s: %s", job.idempotency_key, done.detail)

    def owned_alert_partitions() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == topics.alerts}

    @app.timer(interval=settings.delivery_scan_interval_s)
    @riding_out(broker_health(app), "starting due deliveries")
    async def start_due_deliveries() -> None:
        """Attempt the pending jobs whose time has come, and release those a silence held back once
        it has ended (the alert's current state, once, if it still fires)."""
        if not state.views_loaded():
            return
        owned, now = owned_alert_partitions(), datetime.now(UTC)
        waiting = 0
        groups: dict[str, list[tuple[str, DeliveryJob]]] = {}
        for key, data in list(pending.items()):
            if data is None or key in running:
                continue
            job = DeliveryJob.model_validate(data)
            alert_id = job.alert.alert_id
            if state.picture.partitions.get(alert_id, -1) not in owned | {-1}:
                continue
            if job.muted_by is None:
                waiting += 1
                if job.due_at <= now:
                    if job.group is None:
                        launch([(key, job)])
                    else:
                        groups.setdefault(job.group, []).append((key, job))
                continue
            latest = state.picture.latest.get(alert_id, job.alert)
            if silenced_by(latest, state.silences.items.values(), now) is not None:
                continue
            release = released(job, latest, now)
            if release is not None and (job_key(release) in running or already_delivered(release)):
                release = None  # another muted job of this contact tells it already
            if release is None:
                done = JobOutcome(job=job, outcome="moot", detail="told otherwise, or resolved")
                await retries.send(key=alert_id.encode(), value=done.model_dump_json().encode())
                running.add(key)  # until its outcome is settled
                continue
            running.add(key)
            launch([(job_key(release), release.model_copy(update={"releases": key}))])
        for members in groups.values():  # each group's due transitions as one message
            launch(members)
        for group in [g for g, due in group_due.items() if due <= now]:
            del group_due[group]
        metrics.RETRY_BACKLOG.set(waiting)

    # --- agents ----------------------------------------------------------------------------

    @app.agent(alerts)
    async def deliver_alert(stream: faust.StreamT) -> None:
        """Stages 1-2 in-stream for each transition; the jobs are attempted out of the stream."""
        await state.loaded()
        async for event in stream.events():
            if not await guard.check(event):
                continue  # after a gap: the stream was sent back for what it dropped
            alert = AlertEvent.model_validate_json(event.message.value)
            state.picture.record(alert, event.message.partition)
            contacts = route_to_contacts(
                alert, state.all_contacts().values(), state.geography, state.picture.peak_at(alert)
            )
            for job in plan_jobs(alert, contacts, "transition", datetime.now(UTC)):
                schedule(job)

    @app.agent(retries)
    async def retry_delivery(stream: faust.StreamT) -> None:
        """Outcomes of attempts, and the reminders the timer plans, in-stream and without waiting:
        a retry's wait is its `due_at` in `pending`."""
        await state.loaded()
        async for event in stream.events():
            if not await guard.check(event):
                continue  # after a gap: the stream was sent back for what it dropped
            value = event.message.value
            if value.startswith(b'{"job"'):
                await settle(JobOutcome.model_validate_json(value))
            else:
                schedule(DeliveryJob.model_validate_json(value))

    @app.timer(interval=settings.reminder_check_interval_s)
    @riding_out(broker_health(app), "queueing reminders")
    async def queue_reminders() -> None:
        """Repeats of firing, unacknowledged alerts, and escalation, for the alerts this worker
        owns; none while a silence mutes the alert (they are planned again once it ends)."""
        owned = owned_alert_partitions()
        now = datetime.now(UTC)
        contacts = state.all_contacts()
        for alert_id, alert in list(state.picture.latest.items()):
            if state.picture.partitions.get(alert_id) not in owned:
                continue
            if silenced_by(alert, state.silences.items.values(), now) is not None:
                continue
            repeats, escalate = reminders_due(alert, None, now, repeat_interval, escalate_after)
            if not repeats and not escalate:
                continue
            routed = route_to_contacts(
                alert, contacts.values(), state.geography, state.picture.peak_at(alert)
            )
            # each contact acknowledges for itself: the others keep their repeats and escalation
            waiting = [c for c in routed if not acknowledged_by(state.acks.items, alert, c.id)]
            planned = []
            if repeats:
                planned += plan_jobs(alert, waiting, "repeat", now, f":repeat-{repeats}")
            if escalate:
                escalated: dict[str, list[str]] = {}
                for source in waiting:
                    for target in escalation_targets([source], contacts):
                        if target not in routed:
                            escalated.setdefault(target.id, []).append(source.id)
                for target_id, sources in escalated.items():
                    planned += [
                        job.model_copy(update={"escalated_from": sources})
                        for job in plan_jobs(
                            alert, [contacts[target_id]], "escalation", now, ":escalation"
                        )
                    ]
            for job in planned:
                if job_key(job) not in enqueued:
                    enqueued.add(job_key(job))
                    await retries.send(key=alert_id.encode(), value=job.model_dump_json().encode())

    register_console(app, state, register_api(app, state, topics))
    return app
