"""The delivery pipeline: the stages every message passes through, in order, as plain functions.

Transitions, repeats, escalations, releases from a silence and retries all take the same path, so
a silence or an acknowledgement applies to each of them alike:

1. **route** (`routing.route_to_contacts`): the contacts a transition concerns. A contact's
   `min_level` gates the opening of an episode only: whoever the episode reached hears its later
   transitions through the resolution (`AlertPicture.peak_at` says how high it went).
2. **plan** (`plan_jobs`): one job per contact and channel, keyed by its Idempotency-Key.
3. **hold back** (`hold_back`): an active silence mutes the job (kept, and told once when the
   silence ends while the alert still fires); a repeat, escalation or release that a newer
   transition or an acknowledgement made moot is dropped.
4. **share** (`sharing.share`): what the sharing policy lets this recipient see, or nothing.
5. **render** (`rendering`): JSON, CAP or e-mail in the contact's language.
6. **send** (`webhook.post_webhook`, `email.send_email`): one attempt.
7. **retry or dead-letter** (`after_failure`): Retry-After honoured up to EWS_RETRY_AFTER_MAX,
   else exponential backoff; dead after EWS_DELIVERY_MAX_ATTEMPTS attempts or once older than
   EWS_DELIVERY_MAX_AGE.
8. **record**: every outcome on ews.deliveries (services.notify.app).

The worker (services.notify.app) wires them to Kafka: jobs wait in a changelog-backed table and
are attempted concurrently, never inside the stream, so one slow receiver delays no one else.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schemas import AlertEvent, Contact
from schemas.notify import Acknowledgement, DeliveryJob, Silence
from services.common.geography import Geography
from services.common.settings import Settings

from .picture import AlertPicture, ack_of, is_acknowledged
from .routing import route_to_contacts, silenced_by


def routed_history(
    alerts: Iterable[AlertEvent], contacts: list[Contact], geography: Geography
) -> Iterator[tuple[AlertEvent, list[Contact]]]:
    """Stage 1 over a history of transitions (in order), as the worker routes them: each with the
    contacts it goes to. For predictions (the demo's and the reliability suite's verifier)."""
    picture = AlertPicture()
    for alert in alerts:
        picture.record(alert, 0)
        yield alert, route_to_contacts(alert, contacts, geography, picture.peak_at(alert))


def plan_jobs(
    alert: AlertEvent,
    contacts: Iterable[Contact],
    reason: Literal["transition", "repeat", "escalation", "release"],
    now: datetime,
    suffix: str = "",
) -> list[DeliveryJob]:
    """Stage 2: one job per contact and channel; the key names the transition, the contact and,
    for a reminder, which one."""
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


def group_of(job: DeliveryJob, contact: Contact, geography: Geography) -> str | None:
    """The group a transition joins for a contact that asked for grouping (`group_by`), or None:
    sent alone. CAP contacts get each transition as its own message (CAP: one alert each)."""
    if not contact.group_by or contact.format == "cap" or job.reason != "transition":
        return None
    scope = job.alert.scope
    values = []
    for dimension in contact.group_by:
        if dimension == "country":
            values.append(scope.country or "regional")
        elif dimension == "corridor":
            through = [scope.id] if scope.kind == "corridor" else geography.corridors_of(scope)
            values.append(",".join(through) or "-")
        else:
            values.append(job.alert.rule_id)
    return f"{contact.id}|{job.channel_index}|" + "|".join(values)


def group_message_key(contact_id: str, keys: list[str]) -> str:
    """The Idempotency-Key of a group's message: the same for the same transitions."""
    return f"{contact_id}:group-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Held:
    """Why a job is not sent now: muted by a silence (kept, released when it ends) or moot
    (dropped)."""

    outcome: Literal["muted", "moot"]
    detail: str
    silence: Silence | None = None


def hold_back(
    job: DeliveryJob,
    latest: AlertEvent | None,
    silences: Iterable[Silence],
    acks: Mapping[str, Acknowledgement],
    now: datetime,
) -> Held | None:
    """Stage 3, for every job whatever its reason, at the moment it would be sent. A repeat is
    moot once its contact acknowledged; an escalation once every contact it escalates for did."""
    silence = silenced_by(job.alert, silences, now)
    if silence is not None:
        return Held("muted", f"silenced by {silence.id}: {silence.comment}", silence)
    if job.reason == "transition":
        return None  # what happened is told, even if it is no longer the latest
    if latest is not None and latest.transition != job.alert.transition:
        return Held("moot", f"transition {latest.transition} came since")
    if job.reason == "release":
        return None  # `released` made it of a firing alert; told whatever was acknowledged
    waiting_for = job.escalated_from if job.reason == "escalation" else [job.contact_id]
    answered = [ack_of(acks, job.alert.alert_id, c) for c in waiting_for]
    if answered and all(is_acknowledged(job.alert, ack) for ack in answered):
        return Held("moot", "acknowledged by " + ", ".join(sorted({a.by for a in answered if a})))
    return None


def released(job: DeliveryJob, latest: AlertEvent, now: datetime) -> DeliveryJob | None:
    """A job a silence held back, once that silence has ended: the alert's current state, told
    once, if it still fires (else nothing)."""
    if latest.status != "firing" or job.muted_by is None:
        return None
    return job.model_copy(
        update={
            "idempotency_key": f"{latest.alert_id}:{latest.transition}:{job.contact_id}"
            f":released-{job.muted_by}",
            "alert": latest,
            "reason": "release",
            "attempt": 0,
            "due_at": now,
            "first_attempt_at": None,
            "muted_by": None,
            "released_from": job.muted_by,
        }
    )


def backoff_delay(attempt: int, settings: Settings) -> float:
    """Exponential backoff with jitter: attempt n waits between half and all of initial × 2^(n-1),
    capped."""
    ceiling = min(
        settings.delivery_backoff_max_s, settings.delivery_backoff_initial_s * 2 ** (attempt - 1)
    )
    return random.uniform(ceiling / 2, ceiling)


def after_failure(
    job: DeliveryJob, retry_after_s: float | None, settings: Settings, now: datetime
) -> tuple[Literal["retry", "dead"], datetime | None, str]:
    """Stage 7: when to try again (the receiver's Retry-After up to EWS_RETRY_AFTER_MAX, else
    backoff), or dead: out of attempts, or the next attempt would fall past EWS_DELIVERY_MAX_AGE
    from the first."""
    if job.attempt >= settings.delivery_max_attempts:
        return "dead", None, f"gave up after {job.attempt} attempts"
    wait = (
        min(retry_after_s, settings.retry_after_max_s)
        if retry_after_s is not None
        else backoff_delay(job.attempt, settings)
    )
    due = now + timedelta(seconds=wait)
    first = job.first_attempt_at or now
    if due - first > timedelta(seconds=settings.delivery_max_age_s):
        return (
            "dead",
            None,
            (
                f"gave up after {job.attempt} attempts: the next would be more than "
                f"{settings.delivery_max_age_s / 3600:g} h after the first"
            ),
        )
    return "retry", due, ""


def still_needed(finished: Mapping[str, str], now: datetime, keep_for: timedelta) -> dict[str, str]:
    """What `delivered` keeps of one alert's delivered keys (`job key → when`), so that it grows
    with the alerts there are, not with their history: every key delivered within `keep_for` (a
    retry, a replay or a restart may still present it), and, however old, the plain keys of the
    newest transition (were the alerts topic ever read again, its last message is not sent
    again; older transitions are held back as told otherwise). Old repeats, escalations and
    releases go: reminders are planned for the current count only."""

    def transition_of(key: str) -> int:
        parts = key.split("|", 1)[0].split(":")
        return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else -1

    newest = max((transition_of(k) for k in finished), default=-1)
    horizon = now - keep_for
    kept = {}
    for key, when in finished.items():
        plain = len(key.split("|", 1)[0].split(":")) == 3  # alert:transition:contact, no suffix
        try:
            recent = datetime.fromisoformat(when) >= horizon
        except ValueError:
            recent = True  # unreadable: kept
        if recent or (plain and transition_of(key) == newest):
            kept[key] = when
    return kept
