"""Alert transitions on ews.alerts: one message per state change of one (rule, scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["watch", "warning", "emergency"]
LEVELS: tuple[Level, ...] = ("watch", "warning", "emergency")
# A level's rank, the one table everything compares levels with: 0 is no level (ok, resolved).
LEVEL_RANK: dict[Level | None, int] = {None: 0, "watch": 1, "warning": 2, "emergency": 3}
ScopeKind = Literal["site", "area", "country", "corridor", "region", "source"]


class Scope(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ScopeKind
    id: str
    country: str | None = None  # None for corridor and region scopes, which span countries

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.id}"


class AlertEvent(BaseModel):
    """`alert_id` is stable per rule and scope; `(alert_id, transition)` is unique."""

    alert_id: str
    transition: int
    rule_id: str
    rule_version: str
    kind: str = (
        "threshold"  # the trigger kind: what `value` measures (a count, a ratio, hours, a level)
    )
    status: Literal["firing", "resolved"]
    level: Level | None
    previous_level: Level | None
    scope: Scope
    value: float
    threshold: float
    window: str
    started_at: datetime
    observed_until: datetime
    evaluated_at: datetime
    evidence: list[str] = Field(
        description='the reports behind the value, as "source/event_id" (the latest few)'
    )
    title: dict[str, str] = {}  # the rule's title in en/es/fr/pt, so receivers need no rules file
    details: dict[
        str, float
    ] = {}  # kind-specific figures: new categories and their counts, silent hours, ...
    cause: Literal["trigger_removed"] | None = Field(
        None,
        description="why the alert changed when not because of its value: trigger_removed (a rule "
        "reload removed or renamed its trigger)",
    )
    metric: str = Field(
        "",
        description="what the value measures: the metric summed (count, unaccompanied_children, "
        "newly_displaced...), a ratio's numerator, or a new value's category (nationality)",
    )
    denominator: str = Field("", description="a ratio's denominator (shelter_capacity)")
    clear: float | None = Field(
        None, description="the value the alert clears below (after clear_for), when it has one"
    )
    clear_for: str = Field("", description="how long below `clear` before it clears (ISO 8601)")
    baseline: str = Field(
        "",
        description="what the window is compared with (ISO 8601): a rate of change's baseline, "
        "a new value's lookback",
    )
    late: bool = Field(
        False,
        description="the transition concerns an earlier tick (observed_until), judged again "
        "because reports for it arrived after later ticks were judged",
    )

    @property
    def idempotency_key(self) -> str:
        return f"{self.alert_id}:{self.transition}"


class AlertSeries(BaseModel):
    """The values behind an alert (on ews.alerts.series, compacted, keyed by alert_id): the
    trigger's value at each of the scope's recent ticks, with its levels, for people to see how it
    got there. Published with each transition by the triggers worker; not sent to receivers."""

    alert_id: str
    rule_id: str
    kind: str
    scope: Scope
    window: str
    levels: dict[str, float]  # level → threshold
    clear: float
    points: list[tuple[datetime, float | None]]  # (tick, value; None: nothing to judge)
    until: datetime  # the tick of the transition it was published with
