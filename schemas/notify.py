"""What the notify service keeps about alerts it routes: silences, acknowledgements,
delivery jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .alert import AlertEvent, ScopeKind
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
    alert_id: str
    transition: int = Field(
        description="the transition acknowledged; a later escalation needs a new one"
    )
    by: str
    at: datetime
    comment: str = ""


class DeliveryJob(BaseModel):
    """One message to one contact on one channel, with its attempts so far (on ews.notify.retry)."""

    idempotency_key: str  # {alert_id}:{transition}:{contact_id}[:repeat-n|:escalation]
    alert: AlertEvent
    contact_id: str
    channel_index: int
    reason: Literal["transition", "repeat", "escalation"] = "transition"
    attempt: int = 0
    due_at: datetime
    last_error: str = ""
