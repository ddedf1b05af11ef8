"""The sharing policy, applied before rendering: what a recipient outside the source country may
see. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import AlertEvent, Contact, Scope
from schemas.config import SharingFile, SharingRule


@dataclass(frozen=True)
class SharedAlert:
    """The alert as this recipient may see it, and how its figures read."""

    alert: AlertEvent
    value_text: str
    threshold_text: str
    floored: bool  # the value is below the small-count floor and reads "<k"
    aggregated: bool  # site-level detail removed


COUNT_KINDS = (
    "threshold",
    "new_value",
)  # values that count people; ratios, hours and levels are not floored


def _text(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.4g}"


def rule_for(alert: AlertEvent, policy: SharingFile) -> SharingRule:
    """The source country's rule; alerts spanning countries (corridor, region)
    follow the default."""
    if alert.scope.country and alert.scope.kind in ("site", "area", "country", "source"):
        return policy.countries.get(alert.scope.country, policy.default)
    return policy.default


def share(alert: AlertEvent, contact: Contact, policy: SharingFile) -> SharedAlert | None:
    """None when the source country shares nothing with this recipient."""
    inside = contact.country is not None and contact.country == alert.scope.country
    rule = SharingRule(outside="full", small_count_floor=0) if inside else rule_for(alert, policy)
    if rule.outside == "nothing":
        return None
    shared = alert
    aggregated = False
    if (
        rule.outside == "aggregates"
        and alert.scope.kind in ("site", "area", "source")
        and alert.scope.country
    ):
        shared = alert.model_copy(
            update={
                "scope": Scope(kind="country", id=alert.scope.country, country=alert.scope.country),
                "evidence": [],
                "details": {},
            }
        )
        aggregated = True
    is_count = alert.kind in COUNT_KINDS and alert.value == int(alert.value)
    floored = is_count and rule.small_count_floor > 0 and 0 < alert.value < rule.small_count_floor
    value_text = f"<{rule.small_count_floor}" if floored else _text(alert.value)
    if floored:
        shared = shared.model_copy(update={"details": {}})
    return SharedAlert(shared, value_text, _text(alert.threshold), floored, aggregated)
