"""Every delivery attempt and its outcome, on ews.deliveries: who received what, when."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SentContent(BaseModel):
    """What a message said, as the sharing policy let its recipient see it: the answer to "who
    received which figure"."""

    alert_id: str = Field(
        description="the identifier the recipient saw (withheld places: a digest)"
    )
    value_shown: str = Field(description='the value as shown: "4394", "<10", "" when withheld')
    withheld: list[str] = Field(
        default_factory=list, description="what the policy left out: place, figures, evidence…"
    )
    body_sha256: str = Field(description="hex SHA-256 of the body (or e-mail text) sent")


class DeliveryRecord(BaseModel):
    idempotency_key: str
    alert_id: str
    transition: int
    alert_country: str | None = None  # the alert's country (none: a corridor or the region)
    shown_alert_id: str | None = Field(
        None,
        description="the identifier the recipient saw (a withheld place's digest); none when "
        "nothing of the alert was shared with it",
    )
    contact_id: str
    channel: Literal["webhook", "email"]
    target: str  # the URL's host or the mail domain, never a secret
    attempt: int
    outcome: Literal["delivered", "failed", "refused", "dead"]
    detail: str = ""
    status_code: int | None = None
    duration_s: float
    at: datetime
    sent: SentContent | None = None  # an attempt: what it carried


class AuditRecord(BaseModel):
    """One write through the API (on ews.audit): who changed what, when."""

    at: datetime
    by: str = Field(description="the token's name, or the contact acknowledging by a signed link")
    role: str
    by_country: str | None = None  # the writer's country (none: regional)
    action: Literal[
        "contact.create",
        "contact.update",
        "contact.delete",
        "contact.test",
        "silence.create",
        "silence.expire",
        "ack.create",
        "ack.withdraw",
    ]
    target: str = Field(description="the contact id, silence id, or alert_id|contact_id written")
    country: str | None = Field(None, description="the country the written object concerns")
    shown_target: str | None = Field(
        None, description="an acknowledgement's target as its contact saw the alert"
    )
    detail: str = Field("", description="a test message's outcome on each channel")
