"""Every delivery attempt and its outcome, on ews.deliveries: who received what, when."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class DeliveryRecord(BaseModel):
    idempotency_key: str
    alert_id: str
    transition: int
    contact_id: str
    channel: Literal["webhook", "email"]
    target: str  # the URL's host or the mail domain, never a secret
    attempt: int
    outcome: Literal["delivered", "failed", "refused", "dead"]
    detail: str = ""
    status_code: int | None = None
    duration_s: float
    at: datetime
