"""The history of a backtest as columns: the observations in event-time order, which scopes each
one reaches, and per scope and feed the contributions ordered so that a window is a range of starts.

Times are integer microseconds since EPOCH. A window at a tick holds the contributions that
started inside it and ended by the tick: for contributions of one period length that is a range
of start times, so a sum over the window at every tick is a difference of prefix sums.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import cached_property
from itertools import chain, repeat
from operator import attrgetter, floordiv, itemgetter, sub
from typing import TYPE_CHECKING, Any

import numpy as np

from schemas import Observation, Scope
from schemas.observation import report_id
from schemas.types import EPOCH, DurationValue

from .evaluation import MAX_EVIDENCE, Evaluation

if TYPE_CHECKING:
    from .engine import TriggerEngine

US = timedelta(microseconds=1)
# an observation's scopes are numbered below this in a route code (position * SLOTS + index)
SLOTS = 1024
_ROUTE = attrgetter(
    "feed", "location.kind", "location.id", "location.country", "source", "moved_from"
)
_FIELDS = attrgetter("__dict__")
Column = np.ndarray[Any, Any]


def micros(times: list[datetime]) -> Column:
    """Microseconds since EPOCH, exactly (timedelta arithmetic in C, no hashing of a million
    datetimes)."""
    return np.fromiter(
        map(floordiv, map(sub, times, repeat(EPOCH)), repeat(US)), np.int64, len(times)
    )


def moment(value: int) -> datetime:
    """The datetime of a time in microseconds since EPOCH."""
    return EPOCH + timedelta(microseconds=int(value))


class History:
    """The observations in event-time order, as columns, and which scopes each one reaches."""

    def __init__(self, engine: TriggerEngine, observations: Iterable[Observation]) -> None:
        given = list(observations)
        # each column in one pass of C-level getters over the models' field dicts (pydantic keeps a
        # model's fields in its __dict__): a million observations are read a field at a time
        fields = list(map(_FIELDS, given))
        end_times = list(map(itemgetter("period_end"), fields))
        ends = micros(end_times)
        order = np.argsort(
            ends, kind="stable"
        ).tolist()  # event-time order; ties keep the order given
        self.observations = list(map(given.__getitem__, order))
        fields = list(map(fields.__getitem__, order))
        self.end = ends[order]
        self.start = micros(list(map(itemgetter("observed_at"), fields)))
        distinct, first = np.unique(
            ends, return_index=True
        )  # the ticks, each with one of its datetimes
        self.moment = dict(
            zip(distinct.tolist(), map(end_times.__getitem__, first.tolist()), strict=True)
        )
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
        self.eid[:] = list(
            map(report_id, map(itemgetter("source"), fields), map(itemgetter("event_id"), fields))
        )
        self._fields = fields

        # which scopes each observation reaches: the engine's routing depends on these fields alone,
        # so ask it once per distinct route and group the observations by route
        route_keys = list(map(_ROUTE, self.observations))
        last_of = dict(
            zip(route_keys, range(len(route_keys)), strict=True)
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
            if len(scopes) > SLOTS:
                raise ValueError(
                    f"an observation counts towards {len(scopes)} scopes; at most {SLOTS} are "
                    "supported"
                )
        self._codes: dict[str, list[Column]] = {}
        self.scope: dict[str, Scope] = {}
        self.mixed: set[str] = (
            set()
        )  # keys reached with different scope descriptions (a source in two countries)
        for scopes, positions in routes:
            at = positions.astype(np.int64) * SLOTS
            for index, scope in enumerate(scopes):
                key = scope.key
                self._codes.setdefault(key, []).append(at + index)
                if self.scope.setdefault(key, scope) != scope:
                    self.mixed.add(key)
        self._metrics: dict[tuple[str, str], tuple[Column, Column] | None] = {}
        self._categories: dict[
            tuple[str, str], tuple[Column, Column, list[str], Column, Column] | None
        ] = {}
        self._duplicated: dict[str, set[str]] = {}
        self._fields_of_feed: dict[tuple[str, str], list[Any]] = {}

    def scope_keys(self) -> list[str]:
        return list(self._codes)

    def codes(self, key: str) -> Column:
        """Position * SLOTS + the scope's index among the observation's scopes, in event-time
        order."""
        parts = self._codes[key]
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))

    def _held(self, feed: str, field: str) -> list[Any]:
        """A field of each observation of a feed, in event-time order."""
        if (feed, field) not in self._fields_of_feed:
            self._fields_of_feed[feed, field] = list(
                map(itemgetter(field), map(self._fields.__getitem__, self._of_feed[feed].tolist()))
            )
        return self._fields_of_feed[feed, field]

    def metric(self, feed: str, name: str) -> tuple[Column, Column] | None:
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
    ) -> tuple[Column, Column, list[str], Column, Column] | None:
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
        """The reports (source/event_id) seen more than once in a feed: corrections, replayed by the
        engine."""
        if feed not in self._duplicated:
            ids = self.eid[self._of_feed[feed]].tolist()
            self._duplicated[feed] = (
                set()
                if len(set(ids)) == len(ids)
                else {e for e, n in Counter(ids).items() if n > 1}
            )
        return self._duplicated[feed]


class FeedColumns:
    """One feed's contributions at one scope: start and end times, per tick the earliest start so
    far, and per period length the contributions ordered by start (windows are ranges of starts)."""

    def __init__(self, history: History, feed: str, positions: Column) -> None:
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
            tuple[int, Column, Column]
        ] = []  # (period length, order by start, starts in that order)
        for length in np.unique(durations).tolist():
            members = np.flatnonzero(durations == length)
            order = members[np.argsort(self.start[members], kind="stable")]
            self.lengths.append((length, order, self.start[order]))

    @cached_property
    def tick_moments(self) -> list[datetime]:
        return list(map(self._history.moment.__getitem__, self.ticks.tolist()))

    @cached_property
    def eids(self) -> Column:
        return self._history.eid[self.positions]

    def window_sums(self, values: Column, low: Column, high: Column) -> Column:
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

    def inside(self, low: int, high: int, keep: Column | None = None) -> Column:
        """The contributions in one window (those `keep` marks, if given), in no
        particular order."""
        parts = []
        for length, order, starts in self.lengths:
            a = starts.searchsorted(low, "left")
            b = starts.searchsorted(high - length, "right")
            parts.append(order[a : max(a, b)])
        found = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return found if keep is None else found[keep[found]]

    def latest_eids(self, low: int, high: int, keep: Column | None = None) -> list[str]:
        """The event_ids an alert lists as evidence: the last MAX_EVIDENCE of the window's
        contributions ordered by start then event_id (the engine lists them all; an alert keeps the
        last ones)."""
        found = self.inside(low, high, keep)
        if len(found) > MAX_EVIDENCE:
            starts = self.start[found]
            cut = np.partition(starts, len(found) - MAX_EVIDENCE)[len(found) - MAX_EVIDENCE]
            found = found[starts >= cut]  # ties at the cut are sorted by event_id below
        return [
            eid
            for _, eid in sorted(
                zip(self.start[found].tolist(), self.eids[found].tolist(), strict=True)
            )
        ][-MAX_EVIDENCE:]


class Series:
    """A rule's value at each tick (NaN where it cannot be judged) and the full evaluation at one
    tick."""

    def __init__(self, values: Column, evaluation_at: Callable[[int, float], Evaluation]) -> None:
        self.values = values
        self.evaluation_at = evaluation_at


def starts(
    delta: DurationValue,
    minus: Callable[[datetime], datetime],
    ends: Column,
    history: History,
) -> Column:
    """`minus` (a rule's start_of_window, start_of_baseline or start_of_lookback, which subtracts
    `delta`) at every tick of `ends`, in microseconds; calendar durations a tick at a time."""
    if isinstance(delta, timedelta):
        return ends - delta // US
    out = np.empty(len(ends), np.int64)
    for i, end in enumerate(ends.tolist()):
        at = history.moment.get(end) or moment(end)
        start = minus(at)
        out[i] = (start - EPOCH) // US
        history.moment.setdefault(int(out[i]), start)
    return out


def rounded(values: Column, digits: int) -> Column:
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
