"""Backtests over long histories with numpy: the transitions `TriggerEngine.add` then `judge` give
tick by tick, worked out a scope at a time from columns.

Replayed in event-time order, the window a rule reads at a scope's tick (a period end) holds the
contributions that started inside it and ended by the tick: for contributions of one period length
that is a range of start times, so a rule's value at every tick is a difference of prefix sums. The
alert state machine is the engine's own (`TriggerEngine._step`), called only at ticks that can
change the alert (`_Course`): a quiet alert jumps to the next tick whose value reaches a level; a
firing one to the next tick above its level or to the start of the next run under it that lasts
`clear_for`, and inside such a run from band to band until `clear_for` elapses. Evidence and details
are worked out for transitions only.

What this does not reproduce exactly is replayed observation by observation with the engine (per
scope, the transitions are the same either way): corrections (an event_id seen twice), the max and
last aggregates (and any but sum for ratios), negative category counts, a scope seen with two
different descriptions, metrics whose sums could pass 2**52. tests/unit/test_columnar.py holds the
two to the same transitions.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import chain, repeat
from operator import attrgetter, floordiv, itemgetter, sub

import numpy as np

from schemas import AlertEvent, Observation, Scope

from .engine import MAX_EVIDENCE, MAX_RATIO, Evaluation, ScopeState, TriggerEngine
from .rules import CompiledRule
from .state_machine import AlertState

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SLOTS = 1024  # an observation's scopes are numbered below this in a route code (position * _SLOTS + index)
# (kind, aggregate) pairs evaluated from columns; any other rule at a scope sends that scope to the
# engine
_COLUMNAR = {("threshold", "sum"), ("threshold", "mean"), ("ratio", "sum")}
_COLUMNAR_KINDS = {"rate_of_change", "new_value", "silence"}
_ROUTE = attrgetter("feed", "location.kind", "location.id", "location.country", "source")
_FIELDS = attrgetter("__dict__")

# An event's place in the order the engine's backtest produces them: (route code of the first
# observation of its tick that reached the scope - its position * _SLOTS + the scope's index among
# its scopes -, the feed's order at the scope, the rule's order among the feed's rules * 2 + step).
Place = tuple[int, int, int]


def _micros(times: list[datetime]) -> np.ndarray:
    """Microseconds since the epoch, exactly (timedelta arithmetic in C, no hashing of a million
    datetimes)."""
    return np.fromiter(
        map(floordiv, map(sub, times, repeat(_EPOCH)), repeat(_US)), np.int64, len(times)
    )


def replay(
    engine: TriggerEngine,
    observations: Iterable[Observation],
    now: datetime,
    states: dict[str, ScopeState],
) -> list[AlertEvent]:
    """Every transition over this history, in the order `Backtest.replay` gives them; composites'
    states are left in `states` (the scopes' window states are not kept)."""
    history = _History(engine, observations)
    placed: list[tuple[Place, AlertEvent]] = []
    for key in history.scope_keys():
        placed.extend(_replay_scope(engine, history, key, now))
    placed.sort(key=lambda item: item[0])
    alerts: list[AlertEvent] = []
    group = history.group_of_position
    i = 0
    while i < len(
        placed
    ):  # a tick's transitions, then what they change in composites (as Backtest does)
        tick = group[placed[i][0][0] // _SLOTS]
        j = i
        while j < len(placed) and group[placed[j][0][0] // _SLOTS] == tick:
            j += 1
        produced = [alert for _, alert in placed[i:j]]
        alerts.extend(produced)
        alerts.extend(engine.combine(states, produced, now))
        i = j
    return alerts


class _History:
    """The observations in event-time order, as columns, and which scopes each one reaches."""

    def __init__(self, engine: TriggerEngine, observations: Iterable[Observation]) -> None:
        given = list(observations)
        # each column in one pass of C-level getters over the models' field dicts (pydantic keeps a
        # model's fields in its __dict__): a million observations are read a field at a time
        fields = list(map(_FIELDS, given))
        end_times = list(map(itemgetter("period_end"), fields))
        ends = _micros(end_times)
        order = np.argsort(
            ends, kind="stable"
        ).tolist()  # event-time order; ties keep the order given
        self.observations = list(map(given.__getitem__, order))
        fields = list(map(fields.__getitem__, order))
        self.end = ends[order]
        self.start = _micros(list(map(itemgetter("observed_at"), fields)))
        distinct, first = np.unique(
            ends, return_index=True
        )  # the ticks, each with one of its datetimes
        self.moment = dict(zip(distinct.tolist(), map(end_times.__getitem__, first.tolist())))
        self.group_of_position = np.concatenate(
            ([0], np.cumsum(self.end[1:] != self.end[:-1]))
        )  # the tick's number
        self.feed = list(map(itemgetter("feed"), fields))
        self.feed_names = sorted(set(self.feed))
        number_of_feed = {name: number for number, name in enumerate(self.feed_names)}
        self.feed_number = np.fromiter(
            map(number_of_feed.__getitem__, self.feed), np.int64, len(given)
        )
        self._of_feed = {
            name: np.flatnonzero(self.feed_number == number)
            for name, number in number_of_feed.items()
        }
        self.eid = np.empty(len(given), object)
        self.eid[:] = list(map(itemgetter("event_id"), fields))
        self._fields = fields

        # which scopes each observation reaches: the engine's routing depends on these fields alone,
        # so ask it once per distinct route and group the observations by route
        route_keys = list(map(_ROUTE, self.observations))
        last_of = dict(
            zip(route_keys, range(len(route_keys)))
        )  # route → an observation that takes it
        number = {key: n for n, key in enumerate(last_of)}
        route_of = np.fromiter(map(number.__getitem__, route_keys), np.int64, len(route_keys))
        by_route = np.argsort(route_of, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(route_of, minlength=len(number)))))
        routes = [
            (engine.scopes_for(self.observations[i]), by_route[bounds[n] : bounds[n + 1]])
            for n, i in enumerate(last_of.values())
        ]
        for scopes, _ in routes:
            if len(scopes) > _SLOTS:
                raise ValueError(
                    f"an observation counts towards {len(scopes)} scopes; at most {_SLOTS} are "
                    "supported"
                )
        self._codes: dict[str, list[np.ndarray]] = {}
        self.scope: dict[str, Scope] = {}
        self.mixed: set[str] = (
            set()
        )  # keys reached with different scope descriptions (a source in two countries)
        for scopes, positions in routes:
            at = positions.astype(np.int64) * _SLOTS
            for index, scope in enumerate(scopes):
                key = scope.key
                self._codes.setdefault(key, []).append(at + index)
                if self.scope.setdefault(key, scope) != scope:
                    self.mixed.add(key)
        self._metrics: dict[tuple[str, str], tuple[np.ndarray, np.ndarray] | None] = {}
        self._categories: dict[
            tuple[str, str], tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray] | None
        ] = {}
        self._duplicated: dict[str, set[str]] = {}
        self._fields_of_feed: dict[tuple[str, str], list] = {}

    def scope_keys(self) -> list[str]:
        return list(self._codes)

    def codes(self, key: str) -> np.ndarray:
        """Position * _SLOTS + the scope's index among the observation's scopes, in event-time
        order."""
        parts = self._codes[key]
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))

    def _held(self, feed: str, field: str) -> list:
        """A field of each observation of a feed, in event-time order."""
        if (feed, field) not in self._fields_of_feed:
            self._fields_of_feed[feed, field] = list(
                map(itemgetter(field), map(self._fields.__getitem__, self._of_feed[feed].tolist()))
            )
        return self._fields_of_feed[feed, field]

    def metric(self, feed: str, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Every observation's value of a metric (0 where absent or of another feed) and whether it
        carries it; None when the feed's sums could leave the range where integers and floats are
        exact."""
        if (feed, name) not in self._metrics:
            held = self._held(feed, "metrics")
            positions = self._of_feed[feed]
            mine = np.fromiter(
                map(dict.get, held, repeat(name), repeat(np.nan)), np.float64, len(held)
            )
            absent = np.isnan(mine)
            mine[absent] = 0.0
            carried = np.zeros(len(self.feed), bool)
            carried[positions] = ~absent
            # sums and their float forms are exact only below 2**53
            if np.abs(mine).sum() < 2.0**52:
                values = np.zeros(len(self.feed), np.int64)
                values[positions] = mine
                self._metrics[feed, name] = (values, carried)
            else:
                self._metrics[feed, name] = None
        return self._metrics[feed, name]

    def category(
        self, feed: str, name: str
    ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray] | None:
        """A category's counts in long form: per observation its first row and row count (none for
        other feeds), the value names, and per row the name's number and the count. None if a count
        is negative or too large."""
        if (feed, name) not in self._categories:
            positions = self._of_feed[feed]
            held = list(map(dict.get, self._held(feed, "categories"), repeat(name), repeat({})))
            values = list(chain.from_iterable(held))  # every (observation, value) pair, in order
            number_of = {value: i for i, value in enumerate(dict.fromkeys(values))}
            try:
                amounts = np.fromiter(
                    chain.from_iterable(map(dict.values, held)), np.int64, len(values)
                )
            except OverflowError:
                amounts = None
            if amounts is None or (amounts < 0).any():
                self._categories[feed, name] = None
            else:
                counts = np.zeros(len(self.feed), np.int64)
                counts[positions] = np.fromiter(map(len, held), np.int64, len(held))
                first = np.zeros(len(self.feed), np.int64)
                first[positions] = np.concatenate(([0], np.cumsum(counts[positions])[:-1]))
                numbers = np.fromiter(map(number_of.__getitem__, values), np.int64, len(values))
                self._categories[feed, name] = (first, counts, list(number_of), numbers, amounts)
        return self._categories[feed, name]

    def duplicated(self, feed: str) -> set[str]:
        """The event_ids seen more than once in a feed: corrections, replayed by the engine."""
        if feed not in self._duplicated:
            ids = self.eid[self._of_feed[feed]].tolist()
            self._duplicated[feed] = (
                set()
                if len(set(ids)) == len(ids)
                else {e for e, n in Counter(ids).items() if n > 1}
            )
        return self._duplicated[feed]


def _replay_scope(
    engine: TriggerEngine, history: _History, key: str, now: datetime
) -> list[tuple[Place, AlertEvent]]:
    codes = history.codes(key)
    positions = codes // _SLOTS
    scope = history.scope[key]
    numbers, first_seen = np.unique(history.feed_number[positions], return_index=True)
    feeds = [
        history.feed_names[numbers[i]] for i in np.argsort(first_seen)
    ]  # in the order the scope first saw them
    columns = (
        None if key in history.mixed else _columns_of(engine, history, scope, positions, feeds)
    )
    if columns is None:
        return _replay_scope_with_engine(engine, history, key, codes, now)
    # where each tick's transitions go: the first observation of the tick that reached this scope
    _, first = np.unique(history.end[positions], return_index=True)
    tick_place = dict(zip(history.end[positions[first]].tolist(), codes[first].tolist()))
    state = ScopeState(scope=scope)
    placed: list[tuple[Place, AlertEvent]] = []
    for feed_order, (feed_columns, rules) in enumerate(columns):
        for rule_order, rule in enumerate(rules):
            for tick, step, alert in _rule_transitions(
                engine, state, scope, rule, feed_columns, history, now
            ):
                placed.append(((tick_place[tick], feed_order, rule_order * 2 + step), alert))
    return placed


def _replay_scope_with_engine(
    engine: TriggerEngine, history: _History, key: str, codes: np.ndarray, now: datetime
) -> list[tuple[Place, AlertEvent]]:
    """One scope, observation by observation, a tick's observations added together then judged."""
    state = ScopeState()
    placed: list[tuple[Place, AlertEvent]] = []
    group = history.group_of_position
    items = codes.tolist()
    i = 0
    while i < len(items):
        tick = group[items[i] // _SLOTS]
        place, scope = None, None
        while i < len(items) and group[items[i] // _SLOTS] == tick:
            position, index = divmod(items[i], _SLOTS)
            observation = history.observations[position]
            candidate = engine.scopes_for(observation)[index]
            if engine.add(state, candidate, observation, now) == "applied":
                place = items[i] if place is None else place
                scope = candidate  # the engine's backtest judges with the last one's description
            i += 1
        if scope is not None:
            placed.extend(
                ((place, 0, n), alert) for n, alert in enumerate(engine.judge(state, scope, now))
            )
    return placed


class _FeedColumns:
    """One feed's contributions at one scope: start and end times, per tick the earliest start so
    far, and per period length the contributions ordered by start (windows are ranges of starts)."""

    def __init__(self, history: _History, feed: str, positions: np.ndarray) -> None:
        self.feed = feed
        self.positions = positions
        self.start = history.start[positions]
        self.end = history.end[positions]
        self.ticks, first = np.unique(self.end, return_index=True)
        self.first = first
        self.earliest = np.minimum.accumulate(np.minimum.reduceat(self.start, first))
        self._history = history
        durations = self.end - self.start
        self.lengths: list[
            tuple[int, np.ndarray, np.ndarray]
        ] = []  # (period length, order by start, starts in that order)
        for length in np.unique(durations).tolist():
            members = np.flatnonzero(durations == length)
            order = members[np.argsort(self.start[members], kind="stable")]
            self.lengths.append((length, order, self.start[order]))

    @cached_property
    def tick_moments(self) -> list[datetime]:
        return list(map(self._history.moment.__getitem__, self.ticks.tolist()))

    @cached_property
    def eids(self) -> np.ndarray:
        return self._history.eid[self.positions]

    def window_sums(self, values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Per tick, the sum of `values` (one row per contribution, one column or several) over the
        contributions starting at or after low and ending by high."""
        total = np.zeros((len(low),) + values.shape[1:], np.int64)
        for length, order, starts in self.lengths:
            prefix = np.cumsum(values[order], axis=0)
            prefix = np.concatenate((np.zeros((1,) + values.shape[1:], np.int64), prefix))
            a = np.searchsorted(starts, low, "left")
            b = np.maximum(np.searchsorted(starts, high - length, "right"), a)
            total += prefix[b] - prefix[a]
        return total

    def inside(self, low: int, high: int, keep: np.ndarray | None = None) -> np.ndarray:
        """The contributions in one window (those `keep` marks, if given), in no
        particular order."""
        parts = []
        for length, order, starts in self.lengths:
            a = starts.searchsorted(low, "left")
            b = starts.searchsorted(high - length, "right")
            parts.append(order[a : max(a, b)])
        found = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return found if keep is None else found[keep[found]]

    def latest_eids(self, low: int, high: int, keep: np.ndarray | None = None) -> list[str]:
        """The event_ids an alert lists as evidence: the last MAX_EVIDENCE of the window's
        contributions ordered by start then event_id (the engine lists them all; an alert keeps the
        last ones)."""
        found = self.inside(low, high, keep)
        if len(found) > MAX_EVIDENCE:
            starts = self.start[found]
            cut = np.partition(starts, len(found) - MAX_EVIDENCE)[len(found) - MAX_EVIDENCE]
            found = found[starts >= cut]  # ties at the cut are sorted by event_id below
        return [
            eid for _, eid in sorted(zip(self.start[found].tolist(), self.eids[found].tolist()))
        ][-MAX_EVIDENCE:]


def _columns_of(
    engine: TriggerEngine, history: _History, scope: Scope, positions: np.ndarray, feeds: list[str]
) -> list[tuple[_FeedColumns, list[CompiledRule]]] | None:
    """The scope's feeds as columns with their rules, or None when the engine must
    replay the scope."""
    out = []
    feed_of = history.feed_number[positions] if len(feeds) > 1 else None
    for feed in feeds:
        rules = engine._rules_at_scope(feed, scope)[0]
        for rule in rules:
            if (rule.kind, rule.aggregate) not in _COLUMNAR and rule.kind not in _COLUMNAR_KINDS:
                return None
            for metric in (rule.metric, rule.denominator):
                if metric and history.metric(feed, metric) is None:
                    return None
            if rule.kind == "new_value" and history.category(feed, rule.category) is None:
                return None
        mine = (
            positions if feed_of is None else positions[feed_of == history.feed_names.index(feed)]
        )
        duplicated = history.duplicated(feed)
        if duplicated and any(history.eid[p] in duplicated for p in mine.tolist()):
            return None
        out.append((_FeedColumns(history, feed, mine), rules))
    return out


# --- values of a rule at every tick, and the transitions they cause ----------------------------


class _Series:
    """A rule's value at each tick (NaN where it cannot be judged) and the full evaluation at one
    tick."""

    def __init__(
        self, values: np.ndarray, evaluation_at: Callable[[int, float], Evaluation]
    ) -> None:
        self.values = values
        self.evaluation_at = evaluation_at


def _starts(rule: CompiledRule, which: str, ends: np.ndarray, history: _History) -> np.ndarray:
    """start_of_window / start_of_baseline / start_of_lookback for every tick, in microseconds."""
    delta = {
        "window": rule.window_delta,
        "baseline": rule.baseline_delta,
        "lookback": rule.lookback_delta,
    }[which]
    if isinstance(delta, timedelta):
        return ends - delta // _US
    minus = {
        "window": rule.start_of_window,
        "baseline": rule.start_of_baseline,
        "lookback": rule.start_of_lookback,
    }[which]
    out = np.empty(len(ends), np.int64)
    for i, end in enumerate(ends.tolist()):
        at = history.moment.get(end) or _EPOCH + timedelta(microseconds=end)
        start = minus(at)
        out[i] = (start - _EPOCH) // _US
        history.moment.setdefault(int(out[i]), start)
    return out


def _series(rule: CompiledRule, columns: _FeedColumns, history: _History) -> _Series:
    ticks = columns.ticks
    window_start = _starts(rule, "window", ticks, history)
    kind = rule.kind
    if kind == "threshold" or kind == "ratio":
        metric = history.metric(columns.feed, rule.metric)
        values, carried = metric[0][columns.positions], metric[1][columns.positions]
        if kind == "ratio":
            denominator = history.metric(columns.feed, rule.denominator)
            d_values = denominator[0][columns.positions]
            carried = carried & denominator[1][columns.positions]
        counts = columns.window_sums(carried.astype(np.int64), window_start, ticks)
        totals = columns.window_sums(np.where(carried, values, 0), window_start, ticks)

        def carrying(i: int) -> list[str]:
            return columns.latest_eids(int(window_start[i]), int(ticks[i]), carried)

        if kind == "threshold":
            if rule.aggregate == "sum":
                series = totals.astype(np.float64)
            else:  # mean: nothing carries the metric → cannot be judged
                with np.errstate(divide="ignore", invalid="ignore"):
                    series = np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
            empty = counts == 0
            return _Series(
                series,
                lambda i, value: Evaluation(value, [] if empty[i] else (lambda: carrying(i))),
            )
        d_totals = columns.window_sums(np.where(carried, d_values, 0), window_start, ticks)
        judged = (counts > 0) & (d_totals > 0)
        series = np.full(len(ticks), np.nan)
        where = np.flatnonzero(judged)
        quotients = totals[where].astype(np.float64) / d_totals[where].astype(np.float64)
        series[where] = _rounded(quotients, 4)

        def ratio_at(i: int, value: float) -> Evaluation:
            return Evaluation(
                value,
                lambda: carrying(i),
                lambda: {rule.metric: float(totals[i]), rule.denominator: float(d_totals[i])},
            )

        return _Series(series, ratio_at)

    if kind == "rate_of_change":
        baseline_start = _starts(rule, "baseline", window_start, history)
        values, carried = history.metric(columns.feed, rule.metric)
        mine = np.where(carried[columns.positions], values[columns.positions], 0)
        current = columns.window_sums(mine, window_start, ticks).astype(np.float64)
        expected = columns.window_sums(mine, baseline_start, window_start) * rule.window_to_baseline
        series = np.full(len(ticks), np.nan)
        full = columns.earliest <= baseline_start
        low = full & (current < rule.min_value)
        series[low] = 0.0
        flat = full & ~low & (expected <= 0)
        series[flat] = MAX_RATIO
        where = np.flatnonzero(full & ~low & ~flat)
        quotients = current[where] / expected[where]
        series[where] = np.minimum(MAX_RATIO, _rounded(quotients, 4))
        return _Series(
            series,
            lambda i, value: Evaluation(
                value,
                lambda: columns.latest_eids(int(window_start[i]), int(ticks[i])),
                lambda: {
                    "current": float(current[i]),
                    "baseline_expected": round(float(expected[i]), 2),
                },
            ),
        )

    if kind == "new_value":
        lookback_start = _starts(rule, "lookback", window_start, history)
        first, count, names, numbers, amounts = history.category(columns.feed, rule.category)
        mine_first, mine_count = first[columns.positions], count[columns.positions]
        total = int(mine_count.sum())
        rows = np.repeat(mine_first - np.cumsum(mine_count) + mine_count, mine_count) + np.arange(
            total
        )
        owner = np.repeat(np.arange(len(columns.positions)), mine_count)  # contribution of each row
        present = np.unique(numbers[rows])  # the values of the category reported at this scope
        counts = np.zeros((len(columns.positions), len(present)), np.int64)  # contribution × value
        counts[owner, np.searchsorted(present, numbers[rows])] = amounts[rows]
        current = columns.window_sums(counts, window_start, ticks)
        seen = columns.window_sums((counts > 0).astype(np.int64), lookback_start, window_start)
        new = np.where(
            (current > 0) & (seen == 0), current, 0
        )  # tick × value: its count where it is new
        best = new.max(axis=1) if len(present) else np.zeros(len(ticks), np.int64)
        series = np.where(columns.earliest <= lookback_start, best.astype(np.float64), np.nan)

        def new_at(i: int) -> dict[str, float]:
            return {names[present[v]]: float(new[i, v]) for v in np.flatnonzero(new[i]).tolist()}

        def evidence_at(i: int) -> list[str]:
            found = columns.inside(int(window_start[i]), int(ticks[i]))
            carrying_new = (counts[found][:, np.flatnonzero(new[i])] > 0).any(axis=1)
            return sorted(set(columns.eids[found[carrying_new]].tolist()))[-MAX_EVIDENCE:]

        return _Series(
            series, lambda i, value: Evaluation(value, lambda: evidence_at(i), lambda: new_at(i))
        )

    raise ValueError(f"rule {rule.id}: kind {kind} has no columnar form")


def _rounded(values: np.ndarray, digits: int) -> np.ndarray:
    """`round(value, digits)` of each value, exactly as Python rounds: numpy's scaled rounding
    agrees except where the scaled value sits within its rounding error of a half, and those go to
    Python."""
    scale = 10.0**digits
    scaled = values * scale
    out = np.rint(scaled) / scale
    halfway = np.abs(scaled - np.floor(scaled) - 0.5) <= 1e-7 * np.maximum(1.0, np.abs(scaled))
    doubtful = np.flatnonzero(halfway | ~np.isfinite(scaled))
    out[doubtful] = [round(value, digits) for value in values[doubtful].tolist()]
    return out


def _rule_transitions(
    engine: TriggerEngine,
    state: ScopeState,
    scope: Scope,
    rule: CompiledRule,
    columns: _FeedColumns,
    history: _History,
    now: datetime,
) -> Iterator[tuple[int, int, AlertEvent]]:
    """(tick, step, alert) for every transition of this rule at this scope, in tick order."""
    if rule.kind == "silence":
        yield from _silence_transitions(engine, state, scope, rule, columns, now)
        return
    series = _series(rule, columns, history)
    judged = np.flatnonzero(~np.isnan(series.values))
    course = _Course(rule, series.values[judged], columns.ticks[judged])
    judged_at, value_at = judged.tolist(), course.values.tolist()
    alert = state.alerts.get(rule.id)
    if alert is None:
        alert = state.alerts[rule.id] = AlertState()
    i, n = 0, len(value_at)
    while i < n:
        tick = judged_at[i]
        changed = False
        for event in engine._step(
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


class _Course:
    """A rule's judged values at one scope, and where among them the alert can change.

    Between two such ticks the state machine would see values that leave it as it is, so they are
    skipped: below the lowest level while nothing is pending; a level reached while `for` has not
    yet elapsed; while firing, values in the band of the level it holds or in runs under it shorter
    than
    `clear_for`, and inside a run under it, values in one band until `clear_for` elapses."""

    def __init__(self, rule: CompiledRule, values: np.ndarray, ticks: np.ndarray) -> None:
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
            if alert.pending_since is None:
                return _after(self.can_fire, stepped, n)
            return min(
                _after(self.drops, stepped, n),
                self._due(alert.pending_since, self.rule.for_, stepped),
            )
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

    def _due(self, since: datetime, duration, stepped: int) -> int:
        """The first judged tick after `stepped` at or past since + duration."""
        if duration is None:
            return stepped + 1
        return bisect_left(self.tick_at, ((since + duration) - _EPOCH) // _US, stepped + 1)


def _after(marks: list[int], stepped: int, n: int) -> int:
    """The first of the sorted `marks` after `stepped`, n if none."""
    k = bisect_right(marks, stepped)
    return marks[k] if k < len(marks) else n


def _silence_transitions(
    engine: TriggerEngine,
    state: ScopeState,
    scope: Scope,
    rule: CompiledRule,
    columns: _FeedColumns,
    now: datetime,
) -> Iterator[tuple[int, int, AlertEvent]]:
    """A gap between one tick and the next report's start fires and resolves (as
    `_silence_at_tick`)."""
    alert = state.alerts.get(rule.id)
    if alert is None:
        alert = state.alerts[rule.id] = AlertState()
    ticks = columns.ticks
    started = np.minimum.reduceat(columns.start, columns.first)
    gaps = np.zeros(len(ticks))
    gaps[1:] = np.maximum(0.0, (started[1:] - ticks[:-1]) / 1e6 / 3600)
    gapped = [i for i in np.flatnonzero(gaps >= rule.lowest_threshold).tolist() if i > 0]
    i, n = 0, len(ticks)
    while i < n:
        if alert.status == "ok" and alert.pending_since is None:
            k = bisect_left(gapped, i)
            if k == len(gapped):
                return
            i = gapped[k]
        tick = int(ticks[i])
        if i > 0 and alert.status == "ok" and rule.level_for(gaps[i]) is not None:
            hours = float(gaps[i])
            at = _moment(columns, started[i])
            for event in engine._step(
                state,
                scope,
                rule,
                Evaluation(hours, details={"silent_hours": round(hours, 2)}),
                at,
                now,
            ):
                yield tick, 0, event
        low = int(columns.first[i])
        high = int(columns.first[i + 1]) if i + 1 < n else len(columns.eids)
        reports = sorted(columns.eids[low:high].tolist())[:MAX_EVIDENCE]
        for event in engine._step(
            state, scope, rule, Evaluation(0.0, reports), columns.tick_moments[i], now
        ):
            yield tick, 1, event
        i += 1


def _moment(columns: _FeedColumns, micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))
