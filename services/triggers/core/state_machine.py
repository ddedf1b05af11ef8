"""The alert state machine of one (rule, scope): fire, escalate, de-escalate, resolve, with
hysteresis."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from schemas import LEVELS, Level

from .rules import CompiledRule

_RANK = {level: i for i, level in enumerate(LEVELS)}


_TIMES = ("started_at", "pending_since", "below_level_since", "below_clear_since")


@lru_cache(
    maxsize=1 << 14
)  # the states' times repeat across scopes and batches: period ends, ticks
def iso(value: datetime | None) -> str | None:
    """A time as the changelogs hold it (ISO 8601), None as None."""
    return value.isoformat() if value is not None else None


@dataclass(slots=True)
class AlertState:
    status: Literal["ok", "firing"] = "ok"
    level: Level | None = None
    transition: int = 0
    started_at: datetime | None = None
    pending_since: datetime | None = None  # condition first met, waiting for `for`
    below_level_since: datetime | None = (
        None  # value below the current level, waiting for `clear_for`
    )
    below_clear_since: datetime | None = None  # value below `clear`, waiting for `clear_for`

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "level": self.level,
            "transition": self.transition,
            "started_at": iso(self.started_at),
            "pending_since": iso(self.pending_since),
            "below_level_since": iso(self.below_level_since),
            "below_clear_since": iso(self.below_clear_since),
        }

    @classmethod
    def from_json(cls, data: dict) -> AlertState:
        values = dict(data)
        for name in _TIMES:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


@dataclass(frozen=True)
class Transition:
    """What changed; the engine turns it into an AlertEvent."""

    transition: int
    status: Literal["firing", "resolved"]
    level: Level | None
    previous_level: Level | None
    threshold: float
    started_at: datetime


def _elapsed(since: datetime | None, at: datetime, duration) -> bool:
    if since is None:
        return False
    return duration is None or at >= since + duration


def step_alert(
    state: AlertState, rule: CompiledRule, value: float, at: datetime
) -> Transition | None:
    """Advance the state with the value of the rule's window ending at event time `at`.

    Mutates `state`; returns the transition, if any. Firing waits for `for`; escalation is
    immediate; de-escalation and resolution wait for `clear_for` (hysteresis), and resolution
    needs the value below `clear`, which may sit below the lowest level.
    """
    target = rule.level_for(value)
    if state.status == "ok":
        if target is None:
            state.pending_since = None
            return None
        if state.pending_since is None:
            state.pending_since = at
        if rule.for_ is not None and not _elapsed(state.pending_since, at, rule.for_):
            return None
        state.started_at = state.pending_since
        return _move(state, "firing", target, rule.threshold_of(target))

    current = state.level
    assert current is not None
    below_clear = value < rule.clear
    effective: Level | None = None if below_clear else (target or rule.lowest_level)
    if effective is not None and _RANK[effective] > _RANK[current]:
        return _move(state, "firing", effective, rule.threshold_of(effective))
    state.below_clear_since = (state.below_clear_since or at) if below_clear else None
    lower = effective is None or _RANK[effective] < _RANK[current]
    state.below_level_since = (state.below_level_since or at) if lower else None
    if below_clear and _elapsed(state.below_clear_since, at, rule.clear_for):
        return _move(state, "resolved", None, rule.clear)
    if lower and _elapsed(state.below_level_since, at, rule.clear_for):
        to = effective or rule.lowest_level
        if to != current:
            return _move(state, "firing", to, rule.threshold_of(to))
    return None


def _move(
    state: AlertState, status: Literal["firing", "resolved"], level: Level | None, threshold: float
) -> Transition:
    previous = state.level
    started_at = state.started_at
    state.transition += 1
    state.below_level_since = None
    state.below_clear_since = None
    if status == "resolved":
        state.status, state.level, state.pending_since, state.started_at = "ok", None, None, None
    else:
        state.status, state.level = "firing", level
    assert started_at is not None
    return Transition(state.transition, status, level, previous, threshold, started_at)
