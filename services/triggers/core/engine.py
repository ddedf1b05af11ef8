"""Event-time windows per scope and the evaluation of every rule at that scope.

State is one `ScopeState` per scope key ("site/PA-LAJAS-BLANCAS", "corridor/darien-northbound",
"source/PA-SNM"): the observations still inside the retention period (keyed by event_id, so a
correction replaces what it corrects), the member alerts composites combine, and one
AlertState per rule. Time is always passed in: `at` is event time, `now` the wall clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from schemas import LEVELS, AlertEvent, Location, Observation, Scope
from schemas.types import parse_duration
from services.common.geography import Geography

from .rules import CompiledRule, RuleSet, as_timedelta
from .state_machine import AlertState, Transition, step_alert

MAX_EVIDENCE = 20
MAX_RATIO = 1_000_000.0  # a spike over a zero baseline reads as this, not infinity (JSON has no infinity)
_RANK = {level: i + 1 for i, level in enumerate(LEVELS)}


class Contribution(BaseModel):
    revision: int
    start: datetime
    end: datetime
    metrics: dict[str, int]
    categories: dict[str, dict[str, int]] = Field(default_factory=dict)


class FeedWindow(BaseModel):
    """The observations of one feed at one scope that may still fall in a window."""

    watermark: datetime | None = None  # the latest period end seen at this scope
    earliest: datetime | None = None  # the earliest period start ever seen (is a baseline full yet?)
    last_arrival: datetime | None = None  # wall clock of the latest observation (silence)
    last_period: str | None = None  # its period: when the next report is due
    contributions: dict[str, Contribution] = Field(default_factory=dict)


class ScopeState(BaseModel):
    scope: Scope | None = None  # set on first use, so a timer can evaluate a scope with no new data
    feeds: dict[str, FeedWindow] = Field(default_factory=dict)
    alerts: dict[str, AlertState] = Field(default_factory=dict)
    # member rule id → member scope key → level rank (0 resolved, 1 watch, 2 warning, 3 emergency)
    members: dict[str, dict[str, int]] = Field(default_factory=dict)


Outcome = Literal["applied", "stale_revision", "too_late"]


@dataclass
class ApplyResult:
    outcome: Outcome
    alerts: list[AlertEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Evaluation:
    value: float
    evidence: list[str] = field(default_factory=list)
    details: dict[str, float] = field(default_factory=dict)


class TriggerEngine:
    def __init__(self, rules: RuleSet, geography: Geography, allowed_lateness: str = "P7D") -> None:
        self.rules = rules
        self.geography = geography
        self.allowed_lateness = as_timedelta(parse_duration(allowed_lateness))
        # Called with (rule, scope, value, at) at every evaluation; backtest plots use it.
        self.trace: Callable[[CompiledRule, Scope, float, datetime], None] | None = None

    # --- where observations and member alerts go --------------------------------------

    def _all_scopes(self, observation: Observation) -> list[Scope]:
        scopes = self.geography.scopes_of(observation.location)
        if "source" in self.rules.scope_kinds:
            scopes.append(Scope(kind="source", id=observation.source, country=observation.location.country))
        return scopes

    def scopes_for(self, observation: Observation) -> list[Scope]:
        """The scopes this observation counts towards that at least one rule watches."""
        return [s for s in self._all_scopes(observation) if self.rules.applies_to(observation.feed, s.kind)]

    def scope_from_key(self, key: str, observation: Observation) -> Scope:
        """Rebuild a scope from its key (what the repartition topic carries)."""
        for scope in self._all_scopes(observation):
            if scope.key == key:
                return scope
        raise KeyError(f"observation {observation.event_id} does not count towards scope {key}")

    def composite_targets(self, alert: AlertEvent) -> list[Scope]:
        """The scopes of composites that combine this alert's rule: its own scope or one enclosing it."""
        composites = self.rules.composites_of(alert.rule_id)
        if not composites:
            return []
        if alert.scope.kind in ("corridor", "region", "source"):
            enclosing = [alert.scope] + ([Scope(kind="region", id=self.geography.region)] if alert.scope.kind == "corridor" else [])
        else:
            location = Location(kind=alert.scope.kind, id=alert.scope.id, country=alert.scope.country or "")
            enclosing = self.geography.scopes_of(location)
        kinds = {c.scope_kind for c in composites}
        return [s for s in enclosing if s.kind in kinds]

    # --- observations -------------------------------------------------------------------

    def apply(self, state: ScopeState, scope: Scope, observation: Observation, now: datetime) -> ApplyResult:
        """Add one observation to a scope's windows and evaluate every rule there."""
        state.scope = scope
        window = state.feeds.setdefault(observation.feed, FeedWindow())
        rules = self.rules.rules_for(observation.feed, scope)
        previous = window.contributions.get(observation.event_id)
        if previous is not None and previous.revision >= observation.revision:
            return ApplyResult("stale_revision")
        retention = self._retention(rules)
        if window.watermark is not None and observation.period_end < window.watermark - retention:
            return ApplyResult("too_late")
        events: list[AlertEvent] = []
        gap_hours = 0.0
        if window.watermark is not None and observation.observed_at > window.watermark:
            gap_hours = (observation.observed_at - window.watermark).total_seconds() / 3600
        window.contributions[observation.event_id] = Contribution(
            revision=observation.revision, start=observation.observed_at, end=observation.period_end,
            metrics=observation.metrics, categories=observation.categories,
        )
        if window.watermark is None or observation.period_end > window.watermark:
            window.watermark = observation.period_end
            window.last_period = observation.period
        if window.earliest is None or observation.observed_at < window.earliest:
            window.earliest = observation.observed_at
        window.last_arrival = now
        at = window.watermark
        for rule in rules:
            if rule.kind == "silence":
                events.extend(self._silence_on_arrival(state, scope, rule, gap_hours, observation, at, now))
                continue
            evaluation = evaluate(rule, window, at)
            if evaluation is not None:
                events.extend(self._step(state, scope, rule, evaluation, at, now))
        self._prune(window, retention)
        return ApplyResult("applied", events)

    def _retention(self, rules: list[CompiledRule]) -> timedelta:
        return max((r.retention for r in rules), default=timedelta(0)) + self.allowed_lateness

    @staticmethod
    def _prune(window: FeedWindow, retention: timedelta) -> None:
        assert window.watermark is not None
        horizon = window.watermark - retention
        for eid in [eid for eid, c in window.contributions.items() if c.end < horizon]:
            del window.contributions[eid]

    # --- silence --------------------------------------------------------------------------

    def _silence_on_arrival(self, state: ScopeState, scope: Scope, rule: CompiledRule, gap_hours: float,
                            observation: Observation, at: datetime, now: datetime) -> list[AlertEvent]:
        """Data arrived: a silence the timer saw resolves; a gap in history fires and resolves at once."""
        alert = state.alerts.setdefault(rule.id, AlertState())
        events = []
        if alert.status == "ok" and rule.level_for(gap_hours) is not None:
            silent_since = observation.observed_at - timedelta(hours=gap_hours)
            events.extend(self._step(state, scope, rule, Evaluation(gap_hours, details={"silent_hours": round(gap_hours, 2)}),
                                     silent_since + timedelta(hours=gap_hours), now))
        events.extend(self._step(state, scope, rule, Evaluation(0.0, [observation.event_id]), at, now))
        return events

    def check_silence(self, state: ScopeState, scope: Scope, now: datetime) -> list[AlertEvent]:
        """Wall-clock check: hours since the next report was due, for every silence rule at this scope."""
        events = []
        for feed, window in state.feeds.items():
            if window.last_arrival is None or window.watermark is None:
                continue
            for rule in self.rules.rules_for(feed, scope):
                if rule.kind != "silence":
                    continue
                due = window.last_arrival + as_timedelta(parse_duration(window.last_period or "P1D"))
                silent_hours = max(0.0, (now - due).total_seconds() / 3600)
                if silent_hours < rule.levels[0][1] and state.alerts.get(rule.id, AlertState()).status == "ok":
                    continue
                evaluation = Evaluation(silent_hours, details={"silent_hours": round(silent_hours, 2)})
                events.extend(self._step(state, scope, rule, evaluation, window.watermark, now, clock=now))
        return events

    # --- composites -----------------------------------------------------------------------

    def apply_member(self, state: ScopeState, scope: Scope, member: AlertEvent, now: datetime) -> list[AlertEvent]:
        """A member trigger changed somewhere inside this scope: re-evaluate the composites that use it."""
        state.scope = scope
        rank = _RANK[member.level] if member.status == "firing" and member.level else 0
        state.members.setdefault(member.rule_id, {})[member.scope.key] = rank
        events = []
        for composite in self.rules.composites_of(member.rule_id):
            if composite.scope_kind != scope.kind:
                continue
            ranks = [max(state.members.get(m, {}).values(), default=0) for m in composite.members]
            value = float(min(ranks) if composite.mode == "all" else max(ranks))
            firing = sorted(f"{m}@{k}" for m in composite.members for k, r in state.members.get(m, {}).items() if r)
            evaluation = Evaluation(value, evidence=firing[:MAX_EVIDENCE],
                                    details={m: float(r) for m, r in zip(composite.members, ranks)})
            events.extend(self._step(state, scope, composite, evaluation, member.observed_until, now))
        return events

    # --- the state machine and the alert it produces ------------------------------------

    def _step(self, state: ScopeState, scope: Scope, rule: CompiledRule, evaluation: Evaluation,
              at: datetime, now: datetime, clock: datetime | None = None) -> list[AlertEvent]:
        if self.trace is not None:
            self.trace(rule, scope, evaluation.value, at)
        alert = state.alerts.setdefault(rule.id, AlertState())
        change = step_alert(alert, rule, evaluation.value, clock or at)
        if change is None:
            return []
        return [self._event(rule, scope, change, evaluation, at, now)]

    @staticmethod
    def _event(rule: CompiledRule, scope: Scope, change: Transition, evaluation: Evaluation,
               at: datetime, now: datetime) -> AlertEvent:
        return AlertEvent(
            alert_id=f"{rule.id}/{scope.kind}/{scope.id}",
            transition=change.transition,
            rule_id=rule.id,
            rule_version=rule.version,
            kind=rule.kind,
            status=change.status,
            level=change.level,
            previous_level=change.previous_level,
            scope=scope,
            value=evaluation.value,
            threshold=change.threshold,
            window=rule.window or "",
            started_at=change.started_at,
            observed_until=at,
            evaluated_at=now,
            evidence=evaluation.evidence[-MAX_EVIDENCE:],
            title=rule.title.model_dump(),
            details=evaluation.details,
        )


# --- the value each kind of rule computes over the windows ----------------------------------

def _inside(window: FeedWindow, start: datetime, end: datetime):
    return sorted(((c.start, eid, c) for eid, c in window.contributions.items() if c.start >= start and c.end <= end),
                  key=lambda item: (item[0], item[1]))


def aggregate(kind: str, values: list[int | float]) -> float:
    if kind == "sum":
        return float(sum(values))
    if kind == "max":
        return float(max(values))
    if kind == "mean":
        return sum(values) / len(values)
    if kind == "last":
        return float(values[-1])
    raise ValueError(f"unknown aggregate {kind!r}")


def evaluate(rule: CompiledRule, window: FeedWindow, at: datetime) -> Evaluation | None:
    """The rule's value for the window ending at event time `at`; None when it cannot be judged yet."""
    if rule.kind == "threshold":
        inside = [(eid, c.metrics[rule.metric]) for _, eid, c in _inside(window, at - rule.window_delta, at)
                  if rule.metric in c.metrics]
        if not inside:
            return Evaluation(0.0) if rule.aggregate == "sum" else None
        return Evaluation(aggregate(rule.aggregate, [v for _, v in inside]), [eid for eid, _ in inside])

    if rule.kind == "rate_of_change":
        window_start = at - rule.window_delta
        baseline_start = window_start - rule.baseline_delta
        if window.earliest is None or window.earliest > baseline_start:
            return None  # wait for a full baseline
        current = [(eid, c.metrics.get(rule.metric, 0)) for _, eid, c in _inside(window, window_start, at)]
        base = sum(c.metrics.get(rule.metric, 0) for _, _, c in _inside(window, baseline_start, window_start))
        current_sum = float(sum(v for _, v in current))
        span = as_timedelta(rule.window_delta) / as_timedelta(rule.baseline_delta)
        expected = base * span
        if current_sum < rule.min_value:
            ratio = 0.0
        elif expected <= 0:
            ratio = MAX_RATIO
        else:
            ratio = min(MAX_RATIO, round(current_sum / expected, 4))
        return Evaluation(ratio, [eid for eid, _ in current],
                          {"current": current_sum, "baseline_expected": round(expected, 2)})

    if rule.kind == "ratio":
        inside = [(eid, c) for _, eid, c in _inside(window, at - rule.window_delta, at)
                  if rule.metric in c.metrics and rule.denominator in c.metrics]
        if not inside:
            return None
        numerator = aggregate(rule.aggregate, [c.metrics[rule.metric] for _, c in inside])
        denominator = aggregate(rule.aggregate, [c.metrics[rule.denominator] for _, c in inside])
        if denominator <= 0:
            return None
        return Evaluation(round(numerator / denominator, 4), [eid for eid, _ in inside],
                          {rule.metric: numerator, rule.denominator: denominator})

    if rule.kind == "new_value":
        window_start = at - rule.window_delta
        lookback_start = window_start - rule.lookback_delta
        if window.earliest is None or window.earliest > lookback_start:
            return None  # without the whole lookback, everything would look new
        seen_before = {name for _, _, c in _inside(window, lookback_start, window_start)
                       for name, n in c.categories.get(rule.category, {}).items() if n > 0}
        counts: dict[str, int] = defaultdict(int)
        evidence = []
        for _, eid, c in _inside(window, window_start, at):
            for name, n in c.categories.get(rule.category, {}).items():
                if name not in seen_before and n > 0:
                    counts[name] += n
                    evidence.append(eid)
        new = {name: float(n) for name, n in counts.items()}
        return Evaluation(max(new.values(), default=0.0), sorted(set(evidence)), new)

    raise ValueError(f"rule {rule.id}: kind {rule.kind} is not evaluated over observation windows")
