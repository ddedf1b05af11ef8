"""The alert state machine of one (rule, scope): fire, escalate, de-escalate, resolve, with
hysteresis."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import numpy as np

from schemas import LEVEL_RANK, Level
from schemas.types import EPOCH, DurationValue

from .rules import CompiledRule

_US = timedelta(microseconds=1)

_TIMES = ("started_at", "pending_since", "below_level_since", "below_clear_since")


@lru_cache(
    maxsize=1 << 14
)  # the states' times repeat across scopes and batches: period ends, ticks
def iso(value: datetime | None) -> str | None:
    """A time as the changelogs hold it (ISO 8601), None as None."""
    return value.isoformat() if value is not None else None


HISTORY_KEPT = 16  # changes an alert remembers the state before (late data may undo them)
WAITED = "waited"  # a Told that is no transition: a wait (`for`, `clear_for`) started or reset


class Told(NamedTuple):
    """A change an alert made: at which tick, to what (a transition's status and level, or WAITED),
    and the state just before it."""

    at: datetime
    status: str
    level: Level | None
    before: AlertState


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
    history: tuple[Told, ...] = ()  # the last HISTORY_KEPT changes, oldest first

    def copy(self) -> AlertState:
        """The state without its history."""
        return AlertState(
            self.status,
            self.level,
            self.transition,
            self.started_at,
            self.pending_since,
            self.below_level_since,
            self.below_clear_since,
        )

    def timers(self) -> tuple[datetime | None, ...]:
        return (self.pending_since, self.below_level_since, self.below_clear_since)

    def remember(self, told: Told) -> None:
        self.history = (*self.history[1 - HISTORY_KEPT :], told)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "level": self.level,
            "transition": self.transition,
            "started_at": iso(self.started_at),
            "pending_since": iso(self.pending_since),
            "below_level_since": iso(self.below_level_since),
            "below_clear_since": iso(self.below_clear_since),
        }
        if self.history:
            data["history"] = [
                [iso(t.at), t.status, t.level, t.before.to_json()] for t in self.history
            ]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertState:
        values = dict(data)
        for name in _TIMES:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        history = values.pop("history", ())
        state = cls(**values)
        state.history = tuple(
            Told(datetime.fromisoformat(at), status, level, AlertState.from_json(before))
            for at, status, level, before in history
        )
        return state


@dataclass(frozen=True)
class Transition:
    """What changed; the engine turns it into an AlertEvent."""

    transition: int
    status: Literal["firing", "resolved"]
    level: Level | None
    previous_level: Level | None
    threshold: float
    started_at: datetime


def _elapsed(since: datetime | None, at: datetime, duration: DurationValue | None) -> bool:
    if since is None:
        return False
    return duration is None or at >= since + duration


def is_quiet(state: AlertState) -> bool:
    """Nothing firing and nothing pending: only a value reaching a level can change the alert."""
    return state.status == "ok" and state.pending_since is None


def can_change(state: AlertState, rule: CompiledRule, value: float) -> bool:
    """False when `step_alert` would certainly leave the state as it is (the common case: a quiet
    alert and a value under every level), decided without stepping."""
    return not (is_quiet(state) and value < rule.lowest_threshold)


def step_alert(
    state: AlertState, rule: CompiledRule, value: float, at: datetime
) -> Transition | None:
    """Advance the state with the value of the rule's window ending at event time `at`.

    Mutates `state`; returns the transition, if any. Firing waits for `for`; escalation is
    immediate; de-escalation and resolution wait for `clear_for` (hysteresis), and resolution
    needs the value below `clear`, which may sit below the lowest level. `at` may be a tick before
    the last one stepped (late data): the engine then steps every later tick again.
    """
    target = rule.level_for(value)
    if state.status == "ok":
        if target is None:
            state.pending_since = None
            return None
        state.pending_since = _earliest(state.pending_since, at)
        if rule.for_ is not None and not _elapsed(state.pending_since, at, rule.for_):
            return None
        state.started_at = state.pending_since
        return _move(state, "firing", target, rule.threshold_of(target))

    current = state.level
    assert current is not None
    below_clear = value < rule.clear
    effective: Level | None = None if below_clear else (target or rule.lowest_level)
    if effective is not None and LEVEL_RANK[effective] > LEVEL_RANK[current]:
        return _move(state, "firing", effective, rule.threshold_of(effective))
    state.below_clear_since = _earliest(state.below_clear_since, at) if below_clear else None
    lower = effective is None or LEVEL_RANK[effective] < LEVEL_RANK[current]
    state.below_level_since = _earliest(state.below_level_since, at) if lower else None
    if below_clear and _elapsed(state.below_clear_since, at, rule.clear_for):
        return _move(state, "resolved", None, rule.clear)
    if lower and _elapsed(state.below_level_since, at, rule.clear_for):
        to = effective or rule.lowest_level
        if to != current:
            return _move(state, "firing", to, rule.threshold_of(to))
    return None


def _earliest(since: datetime | None, at: datetime) -> datetime:
    """When a condition has held since: `at` starts it; stepping an earlier tick again (late data)
    moves its start back."""
    return at if since is None or at < since else since


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


class Course:
    """A rule's judged values at one scope, and where among them the alert can change.

    Between two such ticks the state machine would see values that leave it as it is, so they are
    skipped: below the lowest level while nothing is pending; a level reached while `for` has not
    yet elapsed; while firing, values in the band of the level it holds or in runs under it shorter
    than `clear_for`, and inside a run under it, values in one band until `clear_for` elapses.
    What `step_alert` does with each value, worked out for a whole series of values at once."""

    def __init__(
        self, rule: CompiledRule, values: np.ndarray[Any, Any], ticks: np.ndarray[Any, Any]
    ) -> None:
        self.rule = rule
        self.values = values
        self.ticks = ticks
        reached = np.full(len(values), -1)
        for number, (_, threshold) in enumerate(rule.levels):
            reached[values >= threshold] = number
        # while firing: the level the value holds the alert at (-1 below clear)
        self.band = np.where(values < rule.clear, -1, np.maximum(reached, 0))
        self.can_fire = np.flatnonzero(reached >= 0).tolist()
        self.drops = np.flatnonzero(reached < 0).tolist()
        self.moves = (np.flatnonzero(self.band[1:] != self.band[:-1]) + 1).tolist()
        self.tick_at = ticks.tolist()
        self.number_of = {level: number for number, (level, _) in enumerate(rule.levels)}
        clear_for = rule.clear_for
        # the runs under a level are worked out ahead only for fixed durations (not months or years)
        self._clear_for_us = (
            0
            if clear_for is None
            else clear_for // _US
            if isinstance(clear_for, timedelta)
            else None
        )
        self._firing_at: dict[int, tuple[list[int], list[int]]] = {}

    def next_step(self, alert: AlertState, stepped: int, changed: bool) -> int:
        """The next judged tick after `stepped` whose value can change the alert (len(values) if
        none)."""
        n = len(self.tick_at)
        if alert.status == "ok":
            if is_quiet(alert):
                return _after(self.can_fire, stepped, n)
            assert alert.pending_since is not None
            return min(
                _after(self.drops, stepped, n),
                self._due(alert.pending_since, self.rule.for_, stepped),
            )
        assert alert.level is not None  # firing
        number = self.number_of[alert.level]
        held = (
            self.band[stepped] == number
        )  # the alert holds its level here (no time under it is counted)
        if changed and not held:
            return (
                stepped + 1
            )  # fired or de-escalated at a value under the level: the next value counts from here
        if held and self._clear_for_us is not None:
            # runs under the level that end before `clear_for` leave the alert as it was: go to the
            # next tick above the level or the start of the next run under it that lasts `clear_for`
            above, lasting = self._firing(number)
            return min(_after(above, stepped, n), _after(lasting, stepped, n))
        nearest = _after(
            self.moves, stepped, n
        )  # under the level: below_level_since (and below_clear_since) are set
        for since in (alert.below_level_since, alert.below_clear_since):
            if since is not None:
                nearest = min(nearest, self._due(since, self.rule.clear_for, stepped))
        return nearest

    def _firing(self, number: int) -> tuple[list[int], list[int]]:
        """While firing at level `number`: the ticks above it (escalation), and the starts of the
        runs of ticks under it that last `clear_for` (within them the alert de-escalates or
        resolves)."""
        if number not in self._firing_at:
            under = self.band < number
            starts = under & ~np.concatenate(([False], under[:-1]))
            run_start = np.maximum.accumulate(np.where(starts, np.arange(len(under)), 0))
            elapsed = under & (self.ticks - self.ticks[run_start] >= self._clear_for_us)
            self._firing_at[number] = (
                np.flatnonzero(self.band > number).tolist(),
                np.unique(run_start[elapsed]).tolist(),
            )
        return self._firing_at[number]

    def _due(self, since: datetime, duration: DurationValue | None, stepped: int) -> int:
        """The first judged tick after `stepped` at or past since + duration."""
        if duration is None:
            return stepped + 1
        return bisect_left(self.tick_at, ((since + duration) - EPOCH) // _US, stepped + 1)


def _after(marks: list[int], stepped: int, n: int) -> int:
    """The first of the sorted `marks` after `stepped`, n if none."""
    k = bisect_right(marks, stepped)
    return marks[k] if k < len(marks) else n
