"""Event-time windows per scope and the evaluation of every rule at that scope.

State is one `ScopeState` per scope key ("site/PA-LAJAS-BLANCAS", "corridor/darien-northbound"):
the observations still inside the retention period (keyed by event_id, so a correction
replaces what it corrects) and one AlertState per rule. Time is always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from schemas import AlertEvent, Observation, Scope
from schemas.types import parse_duration

from .rules import CompiledRule, RuleSet
from .state_machine import AlertState, step_alert
from services.common.geography import Geography

MAX_EVIDENCE = 20


class Contribution(BaseModel):
    revision: int
    start: datetime
    end: datetime
    metrics: dict[str, int]


class FeedWindow(BaseModel):
    """The observations of one feed at one scope that may still fall in a window."""

    watermark: datetime | None = None  # the latest period end seen at this scope
    contributions: dict[str, Contribution] = Field(default_factory=dict)


class ScopeState(BaseModel):
    feeds: dict[str, FeedWindow] = Field(default_factory=dict)
    alerts: dict[str, AlertState] = Field(default_factory=dict)


Outcome = Literal["applied", "stale_revision", "too_late"]


@dataclass
class ApplyResult:
    outcome: Outcome
    alerts: list[AlertEvent] = field(default_factory=list)


class TriggerEngine:
    def __init__(self, rules: RuleSet, geography: Geography, allowed_lateness: str = "P7D") -> None:
        self.rules = rules
        self.geography = geography
        self.allowed_lateness = parse_duration(allowed_lateness)

    def scopes_for(self, observation: Observation) -> list[Scope]:
        """The scopes this observation counts towards that at least one rule watches."""
        return [
            scope for scope in self.geography.scopes_of(observation.location)
            if self.rules.applies_to(observation.feed, scope.kind)
        ]

    def scope_from_key(self, key: str, observation: Observation) -> Scope:
        """Rebuild a scope from its key (what the repartition topic carries)."""
        for scope in self.geography.scopes_of(observation.location):
            if scope.key == key:
                return scope
        raise KeyError(f"observation {observation.event_id} does not count towards scope {key}")

    def apply(self, state: ScopeState, scope: Scope, observation: Observation, evaluated_at: datetime) -> ApplyResult:
        """Add one observation to a scope's windows and evaluate every rule there."""
        window = state.feeds.setdefault(observation.feed, FeedWindow())
        rules = self.rules.rules_for(observation.feed, scope)
        previous = window.contributions.get(observation.event_id)
        if previous is not None and previous.revision >= observation.revision:
            return ApplyResult("stale_revision")
        if window.watermark is not None and observation.period_end < window.watermark - self._retention(rules):
            return ApplyResult("too_late")
        window.contributions[observation.event_id] = Contribution(
            revision=observation.revision, start=observation.observed_at,
            end=observation.period_end, metrics=observation.metrics,
        )
        if window.watermark is None or observation.period_end > window.watermark:
            window.watermark = observation.period_end
        at = window.watermark
        events = []
        for rule in rules:
            event = self._evaluate(state, window, scope, rule, at, evaluated_at)
            if event is not None:
                events.append(event)
        self._prune(window, rules)
        return ApplyResult("applied", events)

    def _retention(self, rules: list[CompiledRule]) -> timedelta:
        reference = datetime(2000, 1, 1)
        longest = max((reference + r.window_delta - reference for r in rules), default=timedelta(0))
        return longest + (reference + self.allowed_lateness - reference)

    def _prune(self, window: FeedWindow, rules: list[CompiledRule]) -> None:
        assert window.watermark is not None
        horizon = window.watermark - self._retention(rules)
        stale = [eid for eid, c in window.contributions.items() if c.end < horizon]
        for eid in stale:
            del window.contributions[eid]

    def _evaluate(self, state: ScopeState, window: FeedWindow, scope: Scope, rule: CompiledRule,
                  at: datetime, evaluated_at: datetime) -> AlertEvent | None:
        start = at - rule.window_delta
        inside = sorted(
            ((c.start, eid, c.metrics[rule.metric]) for eid, c in window.contributions.items()
             if c.start >= start and c.end <= at and rule.metric in c.metrics),
        )
        if not inside:
            if rule.aggregate != "sum":
                return None
            value = 0.0
        else:
            value = aggregate(rule.aggregate, [v for _, _, v in inside])
        alert = state.alerts.setdefault(rule.id, AlertState())
        change = step_alert(alert, rule, value, at)
        if change is None:
            return None
        return AlertEvent(
            alert_id=f"{rule.id}/{scope.kind}/{scope.id}",
            transition=change.transition,
            rule_id=rule.id,
            rule_version=rule.version,
            status=change.status,
            level=change.level,
            previous_level=change.previous_level,
            scope=scope,
            value=value,
            threshold=change.threshold,
            window=rule.window,
            started_at=change.started_at,
            observed_until=at,
            evaluated_at=evaluated_at,
            evidence=[eid for _, eid, _ in inside][-MAX_EVIDENCE:],
            title=rule.title.model_dump(),
        )


def aggregate(kind: str, values: list[int]) -> float:
    if kind == "sum":
        return float(sum(values))
    if kind == "max":
        return float(max(values))
    if kind == "mean":
        return sum(values) / len(values)
    if kind == "last":
        return float(values[-1])
    raise ValueError(f"unknown aggregate {kind!r}")
