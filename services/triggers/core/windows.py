"""Event-time windows per scope: what each feed contributed there, summed per period.

State is one `ScopeState` per scope key ("site/PA-LAJAS-BLANCAS", "corridor/darien-northbound",
"source/PA-SNM"): per feed the observations still inside the retention period (keyed by report id,
"source/event_id", so a correction replaces what it corrects), the member alerts composites
combine, and one AlertState per rule. Pure: times are passed in.

Which version of a report counts is decided here too, so that it holds however long after the
original a correction arrives (ingest numbers revisions only while it remembers the report): a
version replaces the one held if ingest accepted it later (its `ingested_at`, then its revision)
and it says something else than the held version and the versions that one replaced. A report
moved elsewhere by a correction leaves a withdrawal where it was: a contribution without figures,
so that the old version arriving late still finds a later one in its place.
"""

from __future__ import annotations

import hashlib
import sys
from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from schemas import Scope

from .state_machine import AlertState, iso

JsonObject = dict[str, Any]


EARLIER_KEPT = 16  # versions a contribution remembers having replaced


class Counts(tuple[Any, ...]):
    """Counts by name as one flat tuple (name, n, name, n, …), read like a mapping: a report's
    figures, held in windows for their retention, in under half a dict's memory (make bench, scale
    group). Names are strings and counts never are, so the tuple's own search finds a name."""

    __slots__ = ()

    @classmethod
    def of(cls, mapping: Mapping[str, Any]) -> Counts:
        """From a mapping of counts, or of mappings of counts (a report's categories)."""
        return cls(
            item
            for name, value in mapping.items()
            for item in (sys.intern(name), cls.of(value) if isinstance(value, Mapping) else value)
        )

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[self.index(name) + 1]
        except ValueError:
            return default

    def number(self, name: str) -> int:
        """The count under `name` (0 if none)."""
        found: int = self.get(name, 0)
        return found

    def part(self, name: str) -> Counts:
        """The counts under `name`, of counts of counts (a category's values)."""
        found: Counts = self.get(name, NO_COUNTS)
        return found

    def names(self) -> tuple[str, ...]:
        """The names (iterating the tuple itself gives names and counts)."""
        return self[::2]

    def items(self) -> Iterator[tuple[str, Any]]:
        return zip(self[::2], self[1::2], strict=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            name: value.as_dict() if isinstance(value, Counts) else value
            for name, value in self.items()
        }


NO_COUNTS = Counts()


class Contribution(NamedTuple):
    revision: int
    start: datetime
    end: datetime
    metrics: Counts  # empty: a withdrawal (the report was moved elsewhere)
    categories: Counts  # category → Counts of its values
    accepted: float = 0.0  # when ingest accepted this version (POSIX seconds; 0 if unknown)
    earlier: tuple[int, ...] = ()  # the versions (`version_of`) it replaced here, oldest first

    @property
    def withdrawn(self) -> bool:
        return not self.metrics


def version_of(c: Contribution) -> int:
    """What a contribution says at its scope (period and figures), as a stable 64-bit number."""
    content = orjson.dumps(
        [iso(c.start), iso(c.end), c.metrics.as_dict(), c.categories.as_dict()],
        option=orjson.OPT_SORT_KEYS,
    )
    return int.from_bytes(hashlib.blake2b(content, digest_size=8).digest(), "big")


def replacing(new: Contribution, held: Contribution) -> Contribution | None:
    """`new` as it replaces the version held (remembering that one), or None if it must not: ingest
    accepted it earlier (an older version arriving late), or it says what the held version or one
    it replaced says (a re-send, or an old version sent again after ingest forgot the report)."""
    if (new.accepted, new.revision) <= (held.accepted, held.revision):
        return None
    seen, version = version_of(held), version_of(new)
    if version == seen or version in held.earlier:
        return None
    return new._replace(earlier=(*held.earlier, seen)[-EARLIER_KEPT:])


class One:
    """The bucket of a period only one contribution covers at a scope (a site's daily report, the
    common case): read straight from the contribution, without sums of its own. What rules read of
    it is what a `Bucket` of that one contribution would say (they read only kept metrics)."""

    __slots__ = ("eid", "contribution")

    def __init__(self, eid: str, contribution: Contribution) -> None:
        self.eid, self.contribution = eid, contribution

    @property
    def eids(self) -> tuple[str, ...]:
        return (self.eid,)

    def total(self, metric: str) -> int:
        return self.contribution.metrics.number(metric)

    def count(self, metric: str) -> int:
        return 1 if metric in self.contribution.metrics else 0

    def category(self, category: str) -> Counts:
        return self.contribution.categories.part(category)

    def counted(self) -> Iterator[tuple[str, str]]:
        """(category, value) pairs it counts."""
        for category, values in self.contribution.categories.items():
            for name in values.names():
                yield category, name


_NONE: dict[str, int] = {}  # read only


@dataclass(slots=True)
class Bucket:
    """Everything two or more contributions contributed over one (start, end) period at a scope:
    sums per metric and per category value, how many contributions carry each metric, and which
    event_ids they are. Windows add buckets, not observations, so a country with thousands of daily
    site reports costs a few dictionary reads."""

    sums: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    eids: set[str] = field(default_factory=set)

    def total(self, metric: str) -> int:
        return self.sums.get(metric, 0)

    def count(self, metric: str) -> int:
        return self.counts.get(metric, 0)

    def category(self, category: str) -> dict[str, int]:
        return self.categories.get(category, _NONE)

    def counted(self) -> Iterator[tuple[str, str]]:
        for category, totals in self.categories.items():
            for name in totals:
                yield category, name

    def add(self, eid: str, c: Contribution, sign: int, kept: Kept) -> None:
        sums, counts = self.sums, self.counts
        for metric, value in c.metrics.items():
            if metric in kept.metrics:
                sums[metric] = sums.get(metric, 0) + sign * value
                counts[metric] = counts.get(metric, 0) + sign
        for category, values in c.categories.items():
            if category not in kept.categories:
                continue
            into = self.categories.setdefault(category, {})
            for name, n in values.items():
                into[name] = into.get(name, 0) + sign * n
        if sign > 0:
            self.eids.add(eid)
        else:
            self.eids.discard(eid)


Cell = One | Bucket  # what a window holds per period


Span = tuple[datetime, datetime]


class Kept(NamedTuple):
    """Which metrics and categories the rules at a scope read: only those are
    summed into buckets."""

    metrics: frozenset[str]
    categories: frozenset[str]


@dataclass(slots=True)
class FeedWindow:
    """The observations of one feed at one scope that may still fall in a window."""

    watermark: datetime | None = None  # the latest period end seen at this scope
    earliest: datetime | None = (
        None  # the earliest period start ever seen (is a baseline full yet?)
    )
    last_arrival: datetime | None = None  # wall clock of the latest observation (silence)
    last_period: str | None = None  # its period: when the next report is due
    watched_since: datetime | None = None  # a declared source's first silence check (no report yet)
    judged: datetime | None = None  # the latest tick (period end) the rules were evaluated at
    pending: set[Span] = field(default_factory=set)  # spans changed since the rules last looked
    contributions: dict[str, Contribution] = field(default_factory=dict)
    buckets: dict[Span, Cell] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)  # the buckets' keys, sorted
    # (category, value) → the sorted spans where it was counted: "seen during the lookback?" in one
    # bisect
    seen: dict[tuple[str, str], list[Span]] = field(default_factory=dict)
    kept: Kept = Kept(frozenset(), frozenset())
    # When a dict, every contribution put (eid → contribution) or dropped (eid → None) since it was
    # emptied: the live worker persists contributions one by one from it. None in backtests.
    journal: dict[str, Contribution | None] | None = None

    def put(self, eid: str, contribution: Contribution, kept: Kept) -> None:
        """Add a contribution, replacing the one with the same event_id (a correction)."""
        if (
            kept != self.kept
        ):  # other rules since the buckets were built (a reload): build them again
            self._rebuild(kept)
        self.discard(eid)
        self.contributions[eid] = contribution
        if self.journal is not None:
            self.journal[eid] = contribution
        span = (contribution.start, contribution.end)
        cell = self.buckets.get(span)
        if cell is None:
            cell = self.buckets[span] = One(eid, contribution)
            insort(self.spans, span)
        else:
            if isinstance(cell, One):  # a second contribution over this period: sums of its own
                alone, cell = cell, Bucket()
                cell.add(alone.eid, alone.contribution, 1, kept)
                self.buckets[span] = cell
            cell.add(eid, contribution, 1, kept)
        if kept.categories:
            self._index(span, cell, contribution)

    def _rebuild(self, kept: Kept) -> None:
        contributions, journal = self.contributions, self.journal
        self.contributions, self.buckets, self.spans, self.seen, self.kept = {}, {}, [], {}, kept
        self.journal = None  # the same contributions, re-indexed: nothing to persist
        for eid, contribution in contributions.items():
            self.put(eid, contribution, kept)
        self.journal = journal

    def discard(self, eid: str) -> None:
        old = self.contributions.pop(eid, None)
        if old is None:
            return
        if self.journal is not None:
            self.journal[eid] = None
        span = (old.start, old.end)
        cell = self.buckets[span]
        if isinstance(cell, One):
            del self.buckets[span]
            self.spans.remove(span)
            if self.kept.categories:
                self._unindex(span, old)
            return
        cell.add(eid, old, -1, self.kept)
        if self.kept.categories:
            self._index(span, cell, old)
        if not cell.eids:
            del self.buckets[span]
            self.spans.remove(span)

    def _index(self, span: Span, cell: Cell, changed: Contribution) -> None:
        """Where `changed` was counted, whether each of its category values is still seen in this
        period (`cell`: the period's bucket, a removed one is not)."""
        for category, values in changed.categories.items():
            if category not in self.kept.categories:
                continue
            totals = cell.category(category)
            for name in values.names():
                self._mark(category, name, span, totals.get(name, 0) > 0)

    def _unindex(self, span: Span, removed: Contribution) -> None:
        for category, values in removed.categories.items():
            if category in self.kept.categories:
                for name in values.names():
                    self._mark(category, name, span, False)

    def _mark(self, category: str, name: str, span: Span, present: bool) -> None:
        spans = self.seen.get((category, name))
        if spans is None:
            if present:
                self.seen[(category, name)] = [span]
            return
        i = bisect_left(spans, span)
        held = i < len(spans) and spans[i] == span
        if present and not held:
            spans.insert(i, span)
        elif not present and held:
            del spans[i]
            if not spans:
                del self.seen[(category, name)]

    def seen_between(self, category: str, name: str, start: datetime, end: datetime) -> bool:
        """Was this category value counted in a contribution that started at or after `start` and
        ended by `end`?"""
        spans = self.seen.get((category, name))
        if not spans:
            return False
        for i in range(bisect_left(spans, (start,)), len(spans)):
            if spans[i][0] > end:
                return False
            if spans[i][1] <= end:
                return True
        return False

    def between(self, start: datetime, end: datetime) -> Iterator[Cell]:
        """Buckets of contributions that started at or after `start` and ended at
        or before `end`."""
        spans, buckets = self.spans, self.buckets
        for i in range(bisect_left(spans, (start,)), len(spans)):
            span = spans[i]
            if span[0] > end:
                return
            if span[1] <= end:
                yield buckets[span]

    def tally(self, metric: str, start: datetime, end: datetime) -> tuple[int, int]:
        """The sum of `metric` over the contributions that started at or after `start` and ended by
        `end`, and how many carry it: one loop over the periods, a lone report read in place (a
        24-hour window of ten-minute reports is 144 periods, each judged at every tick)."""
        total = count = 0
        spans, buckets = self.spans, self.buckets
        for i in range(bisect_left(spans, (start,)), len(spans)):
            span = spans[i]
            if span[0] > end:
                break
            if span[1] > end:
                continue
            cell = buckets[span]
            if type(cell) is One:
                figures = cell.contribution.metrics
                if metric in figures:
                    total += figures[figures.index(metric) + 1]
                    count += 1
            else:
                assert isinstance(cell, Bucket)
                total += cell.sums.get(metric, 0)
                count += cell.counts.get(metric, 0)
        return total, count

    def inside(self, start: datetime, end: datetime) -> list[tuple[str, Contribution]]:
        """The contributions themselves, ordered by start then report id (evidence, and the rarer
        aggregates); withdrawals are not among them."""
        found = [
            (c.start, eid, c)
            for b in self.between(start, end)
            for eid in b.eids
            for c in (self.contributions[eid],)
            if c.metrics
        ]
        found.sort(key=lambda item: (item[0], item[1]))
        return [(eid, c) for _, eid, c in found]

    def prune(self, horizon: datetime) -> None:
        """Forget contributions that ended before `horizon`: no window can reach them any more."""
        spans = self.spans
        i = 0
        while i < len(spans) and spans[i][0] < horizon:
            if spans[i][1] < horizon:
                span = spans.pop(i)
                cell = self.buckets.pop(span)
                for eid in cell.eids:
                    del self.contributions[eid]
                    if self.journal is not None:
                        self.journal[eid] = None
                for category, name in cell.counted():
                    seen = self.seen.get((category, name))
                    if seen is not None and span in seen:
                        seen.remove(span)
                        if not seen:
                            del self.seen[(category, name)]
            else:
                i += 1

    def to_json(self, contributions: bool = True) -> JsonObject:
        data: JsonObject = {
            "watermark": iso(self.watermark),
            "earliest": iso(self.earliest),
            "last_arrival": iso(self.last_arrival),
            "last_period": self.last_period,
            "watched_since": iso(self.watched_since),
            "judged": iso(self.judged),
            "pending": sorted([iso(s), iso(e)] for s, e in self.pending),
        }
        if contributions:
            data["contributions"] = {
                eid: contribution_to_json(c) for eid, c in self.contributions.items()
            }
        return data

    @classmethod
    def from_json(cls, data: JsonObject) -> FeedWindow:
        window = cls(
            watermark=_dt(data.get("watermark")),
            earliest=_dt(data.get("earliest")),
            last_arrival=_dt(data.get("last_arrival")),
            last_period=data.get("last_period"),
            watched_since=_dt(data.get("watched_since")),
            judged=_dt(data.get("judged")),
            pending={
                (datetime.fromisoformat(a), datetime.fromisoformat(b))
                for a, b in data.get("pending", ())
            },
        )
        # buckets are built on the first put, when the rules say what to keep
        window.contributions = {
            eid: contribution_from_json(c) for eid, c in data.get("contributions", {}).items()
        }
        window.kept = Kept(frozenset(["\0unbuilt"]), frozenset())
        return window


@dataclass(slots=True)
class ScopeState:
    scope: Scope | None = None  # set on first use, so a timer can evaluate a scope with no new data
    feeds: dict[str, FeedWindow] = field(default_factory=dict)
    alerts: dict[str, AlertState] = field(default_factory=dict)
    # member rule id → member scope key → level rank (0 resolved, 1 watch, 2 warning, 3 emergency)
    members: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self, contributions: bool = True) -> JsonObject:
        """Plain JSON, buckets rebuilt on load; without contributions when they are stored one by
        one."""
        return {
            "scope": self.scope.model_dump(mode="json") if self.scope is not None else None,
            "feeds": {feed: w.to_json(contributions) for feed, w in self.feeds.items()},
            "alerts": {rule_id: a.to_json() for rule_id, a in self.alerts.items()},
            "members": self.members,
        }

    @classmethod
    def from_json(cls, data: JsonObject) -> ScopeState:
        return cls(
            scope=Scope.model_validate(data["scope"]) if data.get("scope") else None,
            feeds={feed: FeedWindow.from_json(w) for feed, w in data.get("feeds", {}).items()},
            alerts={
                rule_id: AlertState.from_json(a) for rule_id, a in data.get("alerts", {}).items()
            },
            members={m: dict(v) for m, v in data.get("members", {}).items()},
        )


def contribution_to_json(c: Contribution) -> list[Any]:
    data = [
        c.revision,
        iso(c.start),
        iso(c.end),
        c.metrics.as_dict(),
        c.categories.as_dict(),
        c.accepted,
    ]
    return [*data, list(c.earlier)] if c.earlier else data


def contribution_from_json(data: list[Any]) -> Contribution:
    """Also the five-element form written before versions were ordered (accepted unknown)."""
    revision, start, end, metrics, categories, *more = data
    return Contribution(
        revision,
        datetime.fromisoformat(start),
        datetime.fromisoformat(end),
        Counts.of(metrics),
        Counts.of(categories),
        float(more[0]) if more else 0.0,
        tuple(more[1]) if len(more) > 1 else (),
    )


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
