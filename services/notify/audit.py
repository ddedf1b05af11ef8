"""The delivery audit: who received which figure about which alert, when, on which channel, with
what outcome. Records come from ews.deliveries; the query and how a record reads for a reader who
may not see everything are pure, shared by `GET /deliveries` and `ews deliveries list`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.delivery import DeliveryRecord


@dataclass(frozen=True)
class DeliveryQuery:
    """Every field given must match; alert_id matches the identifier as recorded or as shown."""

    alert_id: str | None = None
    contact_id: str | None = None
    country: str | None = None  # the alert's country
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, record: DeliveryRecord) -> bool:
        return (
            (self.alert_id is None or self.alert_id in (record.alert_id, record.shown_alert_id))
            and (self.contact_id is None or record.contact_id == self.contact_id)
            and (self.country is None or record.alert_country == self.country)
            and (self.outcome is None or record.outcome == self.outcome)
            and (self.since is None or record.at >= self.since)
            and (self.until is None or record.at < self.until)
        )


def as_seen(record: DeliveryRecord, sees_all: bool) -> dict | None:
    """The record for a reader: an admin sees it as recorded; others see the alert by the
    identifier its recipient was shown (a withheld place's digest), and nothing of an alert that
    was not shared with the recipient at all."""
    data = record.model_dump(mode="json")
    if sees_all:
        return data
    shown = record.shown_alert_id
    if shown is None:
        return None
    if shown != record.alert_id:
        data["alert_id"] = shown
        data["idempotency_key"] = shown + record.idempotency_key[len(record.alert_id) :]
    return data


def line(record: DeliveryRecord) -> str:
    """One record as `ews deliveries list` prints it."""
    sent = record.sent
    what = (
        f"value {sent.value_shown or 'withheld'}"
        + (f" (withheld: {', '.join(sent.withheld)})" if sent.withheld else "")
        + f" body sha256 {sent.body_sha256[:12]}"
        if sent is not None
        else "nothing sent"
    )
    return (
        f"{record.at:%Y-%m-%d %H:%M:%S}  {record.idempotency_key}  {record.contact_id} "
        f"{record.channel} {record.target or '-'}  {record.outcome}"
        f"{f' {record.status_code}' if record.status_code else ''}  {what}"
        f"{f'  ({record.detail})' if record.detail else ''}"
    )
