"""What the notify service keeps about alerts it routes: silences, acknowledgements,
delivery jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .alert import AlertEvent, Level, ScopeKind
from .delivery import SentContent
from .types import Identifier, UtcDateTime


class Silence(BaseModel):
    """Mutes matching alerts between starts_at and ends_at. Every given matcher must match."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    rule_id: Identifier | None = None
    scope_kind: ScopeKind | None = None
    scope_id: str | None = None
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    comment: str = Field(
        min_length=1, max_length=500, description="why; shown to everyone who lists silences"
    )
    created_by: str
    created_at: datetime
    expired_by: str | None = None

    @model_validator(mode="after")
    def _sensible(self) -> Silence:
        if not any((self.rule_id, self.scope_kind, self.scope_id, self.country)):
            raise ValueError("give at least one matcher: rule_id, scope_kind, scope_id or country")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def matches(self, alert: AlertEvent, at: datetime) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        countries = {alert.scope.country} if alert.scope.country else set()
        return (
            (self.rule_id is None or self.rule_id == alert.rule_id)
            and (self.scope_kind is None or self.scope_kind == alert.scope.kind)
            and (self.scope_id is None or self.scope_id == alert.scope.id)
            and (self.country is None or self.country in countries)
        )


class Acknowledgement(BaseModel):
    """A contact's acknowledgement of an alert (on ews.notify.acks, keyed `alert_id|contact_id`;
    records keyed by the bare alert_id, written before acknowledgements were per contact, count for
    every contact)."""

    alert_id: str
    contact_id: str | None = Field(None, description="the contact acknowledging for itself")
    transition: int = Field(
        description="the transition acknowledged; a later escalation needs a new one"
    )
    by: str
    at: datetime
    comment: str = ""
    level: Level | None = Field(
        None, description="the level acknowledged: it covers the episode's later de-escalations"
    )
    started_at: datetime | None = Field(
        None, description="when the acknowledged episode started (a new episode needs a new one)"
    )
    via: Literal["api", "link", "console"] = "api"  # a token, a signed link, or the console

    @property
    def key(self) -> str:
        return ack_key(self.alert_id, self.contact_id)


def ack_key(alert_id: str, contact_id: str | None) -> str:
    return f"{alert_id}|{contact_id}" if contact_id else alert_id


class DeliveryJob(BaseModel):
    """One message to one contact on one channel, with its attempts so far (on ews.notify.retry,
    and held in notify's `pending` table until it is delivered, dead or moot)."""

    # {alert_id}:{transition}:{contact_id}[:repeat-n|:escalation|:released-{silence}]
    idempotency_key: str
    alert: AlertEvent
    contact_id: str
    channel_index: int
    reason: Literal["transition", "repeat", "escalation", "release"] = "transition"
    attempt: int = 0
    due_at: datetime
    first_attempt_at: datetime | None = (
        None  # its age decides dead-lettering (EWS_DELIVERY_MAX_AGE)
    )
    last_error: str = ""
    muted_by: str | None = None  # the silence holding it back: told when that silence ends
    released_from: str | None = None  # a release: the silence that had held it back
    releases: str | None = None  # a release: the key of the muted job it replaces in `pending`
    group: str | None = None  # sent with the other pending jobs of this group (Contact.group_by)
    escalated_from: list[str] = Field(
        default_factory=list, description="an escalation: the contacts that did not acknowledge"
    )


Outcome = Literal["delivered", "failed", "refused", "dead", "muted", "moot"]


class JobOutcome(BaseModel):
    """What became of one attempt (or of the stages before it), sent on ews.notify.retry to the
    stage that owns the job's `pending` and `delivered` entries."""

    job: DeliveryJob
    outcome: Outcome
    detail: str = ""
    status_code: int | None = None
    duration_s: float = 0.0
    next_due_at: datetime | None = None  # failed: when the next attempt is due
    sent: SentContent | None = None  # an attempt: what the message carried
