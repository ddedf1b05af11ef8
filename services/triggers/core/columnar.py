"""Backtests over long histories with numpy: the transitions `TriggerEngine.add` then `judge` give
tick by tick, worked out a scope at a time from columns.

Replayed in event-time order, the window a rule reads at a scope's tick (a period end) holds the
contributions that started inside it and ended by the tick: for contributions of one period length
that is a range of start times, so a rule's value at every tick is a difference of prefix sums. The
alert state machine is the engine's own (`TriggerEngine.step`), called only at ticks that can
change the alert (`state_machine.Course`): a quiet alert jumps to the next tick whose value reaches
a level; a firing one to the next tick above its level or to the start of the next run under it
that lasts `clear_for`, and inside such a run from band to band until `clear_for` elapses. Evidence
and details are worked out for transitions only.

What this does not reproduce exactly is replayed observation by observation with the engine (per
scope, the transitions are the same either way): corrections (an event_id seen twice), the max and
last aggregates (and any but sum for ratios), negative category counts, a scope seen with two
different descriptions, metrics whose sums could pass 2**52 (`engine_scopes` names them). Each
kind's value at every tick is its module's `series` (core/kinds/), beside the same kind's
report-by-report `evaluate`. tests/unit/test_columnar.py holds the two to the same transitions.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from datetime import datetime

import numpy as np

from schemas import AlertEvent, Observation, Scope

from . import kinds
from .columns import SLOTS, Column, FeedColumns, History, moment
from .engine import TriggerEngine
from .kinds import silence
from .rules import FeedRule, SilenceRule
from .state_machine import AlertState, Course, is_quiet
from .windows import ScopeState

# An event's place in the order the engine's backtest produces them: (route code of the first
# observation of its tick that reached the scope - its position * SLOTS + the scope's index among
# its scopes -, the feed's order at the scope, the rule's order among the feed's rules * 2 + step).
Place = tuple[int, int, int]
Planned = list[tuple[FeedColumns, list[FeedRule]]]


def replay(
    engine: TriggerEngine,
    observations: Iterable[Observation],
    now: datetime,
    states: dict[str, ScopeState],
) -> list[AlertEvent]:
    """Every transition over this history, in the order `Backtest.replay` gives them; composites'
    states are left in `states` (the scopes' window states are not kept)."""
    history = History(engine, observations)
    placed: list[tuple[Place, AlertEvent]] = []
    for key in history.scope_keys():
        placed.extend(_replay_scope(engine, history, key, now))
    placed.sort(key=lambda item: item[0])
    alerts: list[AlertEvent] = []
    group = history.group_of_position
    i = 0
    # a tick's transitions, then what they change in composites (as Backtest does)
    while i < len(placed):
        tick = group[placed[i][0][0] // SLOTS]
        j = i
        while j < len(placed) and group[placed[j][0][0] // SLOTS] == tick:
            j += 1
        produced = [alert for _, alert in placed[i:j]]
        alerts.extend(produced)
        alerts.extend(engine.combine(states, produced, now))
        i = j
    return alerts


def engine_scopes(engine: TriggerEngine, observations: Iterable[Observation]) -> list[str]:
    """The scope keys this history's replay hands to the engine, observation by observation."""
    history = History(engine, observations)
    return [key for key in history.scope_keys() if _plan(engine, history, key) is None]


def _plan(engine: TriggerEngine, history: History, key: str) -> Planned | None:
    """The scope's feeds as columns with their rules, or None when the engine must replay it."""
    if key in history.mixed:
        return None
    positions = history.codes(key) // SLOTS
    numbers, first_seen = np.unique(history.feed_number[positions], return_index=True)
    # in the order the scope first saw them
    feeds = [history.feed_names[numbers[i]] for i in np.argsort(first_seen)]
    scope = history.scope[key]
    out: Planned = []
    feed_of = history.feed_number[positions] if len(feeds) > 1 else None
    for feed in feeds:
        rules = engine.rules_at(feed, scope)[0]
        for rule in rules:
            if not kinds.has_columns(rule):
                return None
            if any(history.metric(feed, metric) is None for metric in rule.metrics_read):
                return None
            category = rule.category_read
            if category is not None and history.category(feed, category) is None:
                return None
        mine = (
            positions if feed_of is None else positions[feed_of == history.feed_names.index(feed)]
        )
        duplicated = history.duplicated(feed)
        if duplicated and any(history.eid[p] in duplicated for p in mine.tolist()):
            return None
        out.append((FeedColumns(history, feed, mine), rules))
    return out


def _replay_scope(
    engine: TriggerEngine, history: History, key: str, now: datetime
) -> list[tuple[Place, AlertEvent]]:
    codes = history.codes(key)
    planned = _plan(engine, history, key)
    if planned is None:
        return _replay_scope_with_engine(engine, history, codes, now)
    positions = codes // SLOTS
    scope = history.scope[key]
    # where each tick's transitions go: the first observation of the tick that reached this scope
    _, first = np.unique(history.end[positions], return_index=True)
    tick_place = dict(
        zip(history.end[positions[first]].tolist(), codes[first].tolist(), strict=True)
    )
    state = ScopeState(scope=scope)
    placed: list[tuple[Place, AlertEvent]] = []
    for feed_order, (feed_columns, rules) in enumerate(planned):
        for rule_order, rule in enumerate(rules):
            for tick, step, alert in _rule_transitions(
                engine, state, scope, rule, feed_columns, history, now
            ):
                placed.append(((tick_place[tick], feed_order, rule_order * 2 + step), alert))
    return placed


def _replay_scope_with_engine(
    engine: TriggerEngine, history: History, codes: Column, now: datetime
) -> list[tuple[Place, AlertEvent]]:
    """One scope, observation by observation, a tick's observations added together then judged."""
    state = ScopeState()
    placed: list[tuple[Place, AlertEvent]] = []
    group = history.group_of_position
    items: list[int] = codes.tolist()
    i = 0
    while i < len(items):
        tick = group[items[i] // SLOTS]
        place: int | None = None
        scope: Scope | None = None
        while i < len(items) and group[items[i] // SLOTS] == tick:
            position, index = divmod(items[i], SLOTS)
            observation = history.observations[position]
            candidate = engine.scopes_for(observation)[index]
            if engine.add(state, candidate, observation, now) == "applied":
                place = items[i] if place is None else place
                scope = candidate  # the engine's backtest judges with the last one's description
            i += 1
        if scope is not None and place is not None:
            placed.extend(
                ((place, 0, n), alert) for n, alert in enumerate(engine.judge(state, scope, now))
            )
    return placed


def _alert_of(state: ScopeState, rule: FeedRule) -> AlertState:
    alert = state.alerts.get(rule.id)
    if alert is None:
        alert = state.alerts[rule.id] = AlertState()
    return alert


def _rule_transitions(
    engine: TriggerEngine,
    state: ScopeState,
    scope: Scope,
    rule: FeedRule,
    columns: FeedColumns,
    history: History,
    now: datetime,
) -> Iterator[tuple[int, int, AlertEvent]]:
    """(tick, step, alert) for every transition of this rule at this scope, in tick order."""
    if isinstance(rule, SilenceRule):
        yield from _silence_transitions(engine, state, scope, rule, columns, now)
        return
    series = kinds.series(rule, columns, history)
    judged = np.flatnonzero(~np.isnan(series.values))
    course = Course(rule, series.values[judged], columns.ticks[judged])
    judged_at: list[int] = judged.tolist()
    value_at: list[float] = course.values.tolist()
    alert = _alert_of(state, rule)
    i, n = 0, len(value_at)
    while i < n:
        tick = judged_at[i]
        changed = False
        for event in engine.step(
            state,
            scope,
            rule,
            series.evaluation_at(tick, value_at[i]),
            columns.tick_moments[tick],
            now,
        ):
            changed = True
            yield int(columns.ticks[tick]), 0, event
        i = course.next_step(alert, i, changed)


def _silence_transitions(
    engine: TriggerEngine,
    state: ScopeState,
    scope: Scope,
    rule: SilenceRule,
    columns: FeedColumns,
    now: datetime,
) -> Iterator[tuple[int, int, AlertEvent]]:
    """A gap between one tick and the next report's start fires and resolves (as the engine's
    `_silence_at_tick`, through the same `silence` module)."""
    alert = _alert_of(state, rule)
    ticks = columns.ticks
    started = np.minimum.reduceat(columns.start, columns.first)
    gaps = np.zeros(len(ticks))
    gaps[1:] = silence.hours_of(started[1:] - ticks[:-1])
    gapped = [i for i in np.flatnonzero(gaps >= rule.lowest_threshold).tolist() if i > 0]
    i, n = 0, len(ticks)
    while i < n:
        if is_quiet(alert):
            k = bisect_left(gapped, i)
            if k == len(gapped):
                return
            i = gapped[k]
        tick = int(ticks[i])
        if i > 0 and alert.status == "ok" and rule.level_for(gaps[i]) is not None:
            evaluation = silence.silent(float(gaps[i]))
            for event in engine.step(state, scope, rule, evaluation, moment(started[i]), now):
                yield tick, 0, event
        low = int(columns.first[i])
        high = int(columns.first[i + 1]) if i + 1 < n else len(columns.eids)
        arrived = silence.arrived(columns.eids[low:high].tolist())
        for event in engine.step(state, scope, rule, arrived, columns.tick_moments[i], now):
            yield tick, 1, event
        i += 1
