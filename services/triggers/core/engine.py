"""Event-time windows per scope and the evaluation of every rule at that scope.

State is one `ScopeState` per scope key ("site/PA-LAJAS-BLANCAS", "corridor/darien-northbound",
"source/PA-SNM"): the observations still inside the retention period (keyed by event_id, so a
correction replaces what it corrects), the member alerts composites combine, and one
AlertState per rule. Time is always passed in: `at` is event time, `now` the wall clock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Literal, NamedTuple

from schemas import LEVELS, AlertEvent, Location, Observation, Scope
from schemas.types import parse_duration
from services.common.geography import Geography

from .rules import CompiledRule, RuleSet, as_timedelta
from .state_machine import AlertState, Transition, iso, step_alert

MAX_EVIDENCE = 20
MAX_RATIO = (
    1_000_000.0  # a spike over a zero baseline reads as this, not infinity (JSON has no infinity)
)
_RANK = {level: i + 1 for i, level in enumerate(LEVELS)}


class Contribution(NamedTuple):
    revision: int
    start: datetime
    end: datetime
    metrics: dict[str, int]
    categories: dict[str, dict[str, int]]


@dataclass(slots=True)
class Bucket:
    """Everything contributed over one (start, end) period at a scope: sums per metric and per
    category value, how many contributions carry each metric, and which event_ids they are. Windows
    add buckets, not observations, so a country with thousands of daily site reports costs a few
    dictionary reads."""

    sums: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    eids: set[str] = field(default_factory=set)

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
    judged: datetime | None = None  # the latest tick (period end) the rules were evaluated at
    pending: set[Span] = field(default_factory=set)  # spans changed since the rules last looked
    contributions: dict[str, Contribution] = field(default_factory=dict)
    buckets: dict[Span, Bucket] = field(default_factory=dict)
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
        bucket = self.buckets.get(span)
        if bucket is None:
            bucket = self.buckets[span] = Bucket()
            insort(self.spans, span)
        bucket.add(eid, contribution, 1, kept)
        if kept.categories:
            self._index(span, bucket, contribution)

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
        bucket = self.buckets[span]
        bucket.add(eid, old, -1, self.kept)
        if self.kept.categories:
            self._index(span, bucket, old)
        if not bucket.eids:
            del self.buckets[span]
            self.spans.remove(span)

    def _index(self, span: Span, bucket: Bucket, changed: Contribution) -> None:
        for category, values in changed.categories.items():
            if category not in self.kept.categories:
                continue
            totals = bucket.categories[category]
            for name in values:
                spans = self.seen.setdefault((category, name), [])
                i = bisect_left(spans, span)
                present = i < len(spans) and spans[i] == span
                if totals[name] > 0 and not present:
                    spans.insert(i, span)
                elif totals[name] <= 0 and present:
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

    def between(self, start: datetime, end: datetime) -> Iterator[Bucket]:
        """Buckets of contributions that started at or after `start` and ended at
        or before `end`."""
        spans, buckets = self.spans, self.buckets
        for i in range(bisect_left(spans, (start,)), len(spans)):
            span = spans[i]
            if span[0] > end:
                return
            if span[1] <= end:
                yield buckets[span]

    def inside(self, start: datetime, end: datetime) -> list[tuple[str, Contribution]]:
        """The contributions themselves, ordered by start then event_id (evidence, and the rarer
        aggregates)."""
        found = [
            (c.start, eid, c)
            for b in self.between(start, end)
            for eid in b.eids
            for c in (self.contributions[eid],)
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
                bucket = self.buckets.pop(span)
                for eid in bucket.eids:
                    del self.contributions[eid]
                    if self.journal is not None:
                        self.journal[eid] = None
                for category, totals in bucket.categories.items():
                    for name in totals:
                        seen = self.seen.get((category, name))
                        if seen is not None and span in seen:
                            seen.remove(span)
                            if not seen:
                                del self.seen[(category, name)]
            else:
                i += 1

    def to_json(self, contributions: bool = True) -> dict:
        data = {
            "watermark": iso(self.watermark),
            "earliest": iso(self.earliest),
            "last_arrival": iso(self.last_arrival),
            "last_period": self.last_period,
            "judged": iso(self.judged),
            "pending": sorted([iso(s), iso(e)] for s, e in self.pending),
        }
        if contributions:
            data["contributions"] = {
                eid: contribution_to_json(c) for eid, c in self.contributions.items()
            }
        return data

    @classmethod
    def from_json(cls, data: dict) -> FeedWindow:
        window = cls(
            watermark=_dt(data.get("watermark")),
            earliest=_dt(data.get("earliest")),
            last_arrival=_dt(data.get("last_arrival")),
            last_period=data.get("last_period"),
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

    def to_json(self, contributions: bool = True) -> dict:
        """Plain JSON, buckets rebuilt on load; without contributions when they are stored one by
        one."""
        return {
            "scope": self.scope.model_dump(mode="json") if self.scope is not None else None,
            "feeds": {feed: w.to_json(contributions) for feed, w in self.feeds.items()},
            "alerts": {rule_id: a.to_json() for rule_id, a in self.alerts.items()},
            "members": self.members,
        }

    @classmethod
    def from_json(cls, data: dict) -> ScopeState:
        return cls(
            scope=Scope.model_validate(data["scope"]) if data.get("scope") else None,
            feeds={feed: FeedWindow.from_json(w) for feed, w in data.get("feeds", {}).items()},
            alerts={
                rule_id: AlertState.from_json(a) for rule_id, a in data.get("alerts", {}).items()
            },
            members={m: dict(v) for m, v in data.get("members", {}).items()},
        )


def contribution_to_json(c: Contribution) -> list:
    return [c.revision, iso(c.start), iso(c.end), c.metrics, c.categories]


def contribution_from_json(data: list) -> Contribution:
    revision, start, end, metrics, categories = data
    return Contribution(
        revision, datetime.fromisoformat(start), datetime.fromisoformat(end), metrics, categories
    )


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


Outcome = Literal["applied", "stale_revision", "too_late"]


@dataclass
class ApplyResult:
    outcome: Outcome
    alerts: list[AlertEvent] = field(default_factory=list)


class Evaluation:
    """A rule's value at one moment; the evidence (which event_ids) and the details are only worked
    out when an alert needs them (either may be given as a function)."""

    __slots__ = ("value", "_evidence", "_details")

    def __init__(
        self,
        value: float,
        evidence: list[str] | Callable[[], list[str]] = (),
        details: dict[str, float] | Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.value = value
        self._evidence = evidence
        self._details = details

    @property
    def evidence(self) -> list[str]:
        return self._evidence() if callable(self._evidence) else list(self._evidence)

    @property
    def details(self) -> dict[str, float]:
        return (self._details() if callable(self._details) else self._details) or {}


class TriggerEngine:
    def __init__(self, rules: RuleSet, geography: Geography, allowed_lateness: str = "P7D") -> None:
        self.rules = rules
        self.geography = geography
        self.allowed_lateness = as_timedelta(parse_duration(allowed_lateness))
        # Called with (rule, scope, value, at) at every evaluation; backtest plots use it.
        self.trace: Callable[[CompiledRule, Scope, float, datetime], None] | None = None
        # Memoised lookups: a few entries per site and scope, rebuilt with the engine on a rule
        # reload.
        self._scopes: dict[tuple, tuple[list[Scope], list[Scope], dict[str, Scope]]] = {}
        self._rules_at: dict[tuple[str, str], tuple[list[CompiledRule], timedelta, Kept]] = {}
        self._targets: dict[tuple, list[Scope]] = {}
        self._last_contribution: tuple[Observation, Contribution] | None = None

    # --- where observations and member alerts go --------------------------------------

    def _routes(
        self, observation: Observation
    ) -> tuple[list[Scope], list[Scope], dict[str, Scope]]:
        location = observation.location
        memo = (observation.feed, location.kind, location.id, location.country, observation.source)
        routes = self._scopes.get(memo)
        if routes is None:
            every = self.geography.scopes_of(location)
            if "source" in self.rules.scope_kinds:
                every.append(Scope(kind="source", id=observation.source, country=location.country))
            watched = [s for s in every if self.rules.applies_to(observation.feed, s.kind)]
            routes = self._scopes[memo] = (every, watched, {s.key: s for s in every})
        return routes

    def scopes_for(self, observation: Observation) -> list[Scope]:
        """The scopes this observation counts towards that at least one rule watches."""
        return self._routes(observation)[1]

    def scope_from_key(self, key: str, observation: Observation) -> Scope:
        """Rebuild a scope from its key (what the repartition topic carries)."""
        scope = self._routes(observation)[2].get(key)
        if scope is not None:
            return scope
        raise KeyError(f"observation {observation.event_id} does not count towards scope {key}")

    def composite_targets(self, alert: AlertEvent) -> list[Scope]:
        """The scopes of composites that combine this alert's rule: its own scope or one enclosing
        it."""
        memo = (alert.rule_id, alert.scope.kind, alert.scope.id, alert.scope.country)
        found = self._targets.get(memo)
        if found is None:
            found = self._targets[memo] = self._composite_targets(alert)
        return found

    def _composite_targets(self, alert: AlertEvent) -> list[Scope]:
        composites = self.rules.composites_of(alert.rule_id)
        if not composites:
            return []
        if alert.scope.kind in ("corridor", "region", "source"):
            enclosing = [alert.scope] + (
                [Scope(kind="region", id=self.geography.region)]
                if alert.scope.kind == "corridor"
                else []
            )
        else:
            location = Location(
                kind=alert.scope.kind, id=alert.scope.id, country=alert.scope.country or ""
            )
            enclosing = self.geography.scopes_of(location)
        kinds = {c.scope_kind for c in composites}
        return [s for s in enclosing if s.kind in kinds]

    def _rules_at_scope(
        self, feed: str, scope: Scope
    ) -> tuple[list[CompiledRule], timedelta, Kept]:
        """The rules watching this feed at this scope, how long they look back, and
        what they read."""
        memo = (feed, scope.key)
        found = self._rules_at.get(memo)
        if found is None:
            rules = self.rules.rules_for(feed, scope)
            retention = (
                max((r.retention for r in rules), default=timedelta(0)) + self.allowed_lateness
            )
            kept = Kept(
                frozenset(m for r in rules for m in (r.metric, r.denominator) if m),
                frozenset(r.category for r in rules if r.category),
            )
            found = self._rules_at[memo] = (rules, retention, kept)
        return found

    # --- observations -------------------------------------------------------------------

    def apply(
        self, state: ScopeState, scope: Scope, observation: Observation, now: datetime
    ) -> ApplyResult:
        """Add one observation and judge the scope at once (`add` then `judge`)."""
        outcome = self.add(state, scope, observation, now)
        if outcome != "applied":
            return ApplyResult(outcome)
        return ApplyResult(outcome, self.judge(state, scope, now))

    def add(
        self, state: ScopeState, scope: Scope, observation: Observation, now: datetime
    ) -> Outcome:
        """Put an observation in the scope's windows without judging: `judge` evaluates what
        changed.

        Adding several observations and then judging once gives the same transitions whatever
        order they were added in: the rules look at each new period end (tick) in event-time order.
        """
        state.scope = scope
        feed = observation.feed
        window = state.feeds.get(feed)
        if window is None:
            window = state.feeds[feed] = FeedWindow()
        _, retention, kept = self._rules_at_scope(feed, scope)
        previous = window.contributions.get(observation.event_id)
        if previous is not None and previous.revision >= observation.revision:
            return "stale_revision"
        if window.judged is not None and observation.period_end < window.judged - retention:
            return "too_late"  # its windows were judged and forgotten
        if previous is not None:
            window.pending.add(
                (previous.start, previous.end)
            )  # a correction changes the old span too
        window.put(observation.event_id, self._contribution_of(observation), kept)
        window.pending.add((observation.observed_at, observation.period_end))
        if window.watermark is None or observation.period_end > window.watermark:
            window.watermark = observation.period_end
            window.last_period = observation.period
        window.last_arrival = now
        return "applied"

    def _contribution_of(self, observation: Observation) -> Contribution:
        """What an observation adds to a window: one object shared by the scopes it is added to in a
        row (a report counts towards ~4 scopes; the live worker also writes it to the changelog
        once)."""
        last = self._last_contribution
        if last is not None and last[0] is observation:
            return last[1]
        contribution = Contribution(
            observation.revision,
            observation.observed_at,
            observation.period_end,
            observation.metrics,
            observation.categories,
        )
        self._last_contribution = (observation, contribution)
        return contribution

    def judge(self, state: ScopeState, scope: Scope, now: datetime) -> list[AlertEvent]:
        """Evaluate every rule at each tick (period end) added since the last judgement, oldest
        first.

        Data that arrived late, for a tick already judged, is judged again at the latest tick.
        """
        state.scope = scope
        events: list[AlertEvent] = []
        for feed, window in state.feeds.items():
            if not window.pending:
                continue
            rules, retention, kept = self._rules_at_scope(feed, scope)
            judged = window.judged
            ticks = sorted({end for _, end in window.pending if judged is None or end > judged})
            if not ticks:
                ticks = [judged]
            pending = window.pending
            for tick in ticks:
                arriving = [span for span in pending if span[1] <= tick]
                if arriving:
                    first = min(start for start, _ in arriving)
                    if window.earliest is None or first < window.earliest:
                        window.earliest = first
                for rule in rules:
                    if rule.kind == "silence":
                        at_tick = [span for span in arriving if span[1] == tick]
                        events.extend(
                            self._silence_at_tick(
                                state, scope, rule, window, at_tick, judged, tick, now
                            )
                        )
                        continue
                    evaluation = evaluate(rule, window, tick)
                    if evaluation is not None:
                        events.extend(self._step(state, scope, rule, evaluation, tick, now))
                window.prune(tick - retention)
                pending = {span for span in pending if span[1] > tick}
                judged = tick
            window.judged = judged
            window.pending = set()
        return events

    # --- silence --------------------------------------------------------------------------

    def _silence_at_tick(
        self,
        state: ScopeState,
        scope: Scope,
        rule: CompiledRule,
        window: FeedWindow,
        spans: list[Span],
        previous: datetime | None,
        tick: datetime,
        now: datetime,
    ) -> list[AlertEvent]:
        """Data arrived: a silence the timer saw resolves; a gap in history fires and resolves at
        once. `spans` are the new reports' periods ending at this tick; the gap is measured from the
        tick before."""
        alert = state.alerts.get(rule.id)
        if alert is None:
            alert = state.alerts[rule.id] = AlertState()
        reports = [
            eid for span in spans if span in window.buckets for eid in window.buckets[span].eids
        ]
        events = []
        if previous is not None and spans and previous < tick:
            started = min(start for start, _ in spans)
            gap_hours = max(0.0, (started - previous).total_seconds() / 3600)
            if alert.status == "ok" and rule.level_for(gap_hours) is not None:
                events.extend(
                    self._step(
                        state,
                        scope,
                        rule,
                        Evaluation(gap_hours, details={"silent_hours": round(gap_hours, 2)}),
                        started,
                        now,
                    )
                )
        evidence = sorted(reports)[:MAX_EVIDENCE]
        events.extend(self._step(state, scope, rule, Evaluation(0.0, evidence), tick, now))
        return events

    def check_silence(self, state: ScopeState, scope: Scope, now: datetime) -> list[AlertEvent]:
        """Wall-clock check: hours since the next report was due, for every silence rule at this
        scope."""
        events = []
        for feed, window in state.feeds.items():
            if window.last_arrival is None or window.watermark is None:
                continue
            for rule in self.rules.rules_for(feed, scope):
                if rule.kind != "silence":
                    continue
                due = window.last_arrival + as_timedelta(
                    parse_duration(window.last_period or "P1D")
                )
                silent_hours = max(0.0, (now - due).total_seconds() / 3600)
                if (
                    silent_hours < rule.levels[0][1]
                    and state.alerts.get(rule.id, AlertState()).status == "ok"
                ):
                    continue
                evaluation = Evaluation(
                    silent_hours, details={"silent_hours": round(silent_hours, 2)}
                )
                events.extend(
                    self._step(state, scope, rule, evaluation, window.watermark, now, clock=now)
                )
        return events

    # --- composites -----------------------------------------------------------------------

    def combine(
        self, states: dict[str, ScopeState], members: list[AlertEvent], now: datetime
    ) -> list[AlertEvent]:
        """The composites these member transitions (of one tick, in backtests) change, each
        composite scope taking all of its members' changes together; states are created in `states`
        as needed."""
        by_scope: dict[str, tuple[Scope, list[AlertEvent]]] = {}
        for member in members:
            for scope in self.composite_targets(member):
                by_scope.setdefault(scope.key, (scope, []))[1].append(member)
        events = []
        for key, (scope, group) in by_scope.items():
            events.extend(
                self.apply_members(states.setdefault(key, ScopeState()), scope, group, now)
            )
        return events

    def apply_members(
        self, state: ScopeState, scope: Scope, members: list[AlertEvent], now: datetime
    ) -> list[AlertEvent]:
        """Member triggers changed inside this scope: record every change of one moment
        (observed_until), then re-evaluate once each composite that uses them, moment by moment.
        Members that changed at the same moment are combined whatever order their alerts arrived in.
        """
        state.scope = scope
        events = []
        for at, group in groupby(
            sorted(members, key=lambda m: m.observed_until), key=lambda m: m.observed_until
        ):
            changed: dict[str, CompiledRule] = {}
            for member in group:
                rank = _RANK[member.level] if member.status == "firing" and member.level else 0
                state.members.setdefault(member.rule_id, {})[member.scope.key] = rank
                changed.update(
                    (c.id, c)
                    for c in self.rules.composites_of(member.rule_id)
                    if c.scope_kind == scope.kind
                )
            for composite in changed.values():
                ranks = [
                    max(state.members.get(m, {}).values(), default=0) for m in composite.members
                ]
                value = float(min(ranks) if composite.mode == "all" else max(ranks))
                firing = sorted(
                    f"{m}@{k}"
                    for m in composite.members
                    for k, r in state.members.get(m, {}).items()
                    if r
                )
                evaluation = Evaluation(
                    value,
                    evidence=firing[:MAX_EVIDENCE],
                    details={m: float(r) for m, r in zip(composite.members, ranks)},
                )
                events.extend(self._step(state, scope, composite, evaluation, at, now))
        return events

    # --- the state machine and the alert it produces ------------------------------------

    def _step(
        self,
        state: ScopeState,
        scope: Scope,
        rule: CompiledRule,
        evaluation: Evaluation,
        at: datetime,
        now: datetime,
        clock: datetime | None = None,
    ) -> list[AlertEvent]:
        if self.trace is not None:
            self.trace(rule, scope, evaluation.value, at)
        alert = state.alerts.get(rule.id)
        if alert is None:
            alert = state.alerts[rule.id] = AlertState()
        if (
            alert.status == "ok"
            and alert.pending_since is None
            and evaluation.value < rule.lowest_threshold
        ):
            return []  # nothing reached, nothing pending: the common case, decided without the state machine
        change = step_alert(alert, rule, evaluation.value, clock or at)
        if change is None:
            return []
        return [self._event(rule, scope, change, evaluation, at, now)]

    @staticmethod
    def _event(
        rule: CompiledRule,
        scope: Scope,
        change: Transition,
        evaluation: Evaluation,
        at: datetime,
        now: datetime,
    ) -> AlertEvent:
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
            title=rule.titles,
            details=evaluation.details,
        )


# --- the value each kind of rule computes over the windows ----------------------------------


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
    """The rule's value for the window ending at event time `at`; None when it cannot
    be judged yet."""
    kind = rule.kind
    window_start = rule.start_of_window(at)
    if kind == "threshold":
        metric = rule.metric
        assert metric is not None
        total = count = 0
        for bucket in window.between(window_start, at):
            total += bucket.sums.get(metric, 0)
            count += bucket.counts.get(metric, 0)

        def carrying() -> list[tuple[str, Contribution]]:
            return [(eid, c) for eid, c in window.inside(window_start, at) if metric in c.metrics]

        if count == 0:
            return Evaluation(0.0) if rule.aggregate == "sum" else None
        if rule.aggregate == "sum":
            value = float(total)
        elif rule.aggregate == "mean":
            value = total / count
        else:
            value = aggregate(rule.aggregate, [c.metrics[metric] for _, c in carrying()])
        return Evaluation(value, lambda: [eid for eid, _ in carrying()])

    if kind == "rate_of_change":
        baseline_start = rule.start_of_baseline(window_start)
        if window.earliest is None or window.earliest > baseline_start:
            return None  # wait for a full baseline
        metric = rule.metric
        current_sum = float(sum(b.sums.get(metric, 0) for b in window.between(window_start, at)))
        base = sum(b.sums.get(metric, 0) for b in window.between(baseline_start, window_start))
        expected = base * rule.window_to_baseline
        if current_sum < rule.min_value:
            ratio = 0.0
        elif expected <= 0:
            ratio = MAX_RATIO
        else:
            ratio = min(MAX_RATIO, round(current_sum / expected, 4))
        return Evaluation(
            ratio,
            lambda: [eid for eid, _ in window.inside(window_start, at)],
            {"current": current_sum, "baseline_expected": round(expected, 2)},
        )

    if kind == "ratio":
        inside = [
            (eid, c)
            for eid, c in window.inside(window_start, at)
            if rule.metric in c.metrics and rule.denominator in c.metrics
        ]
        if not inside:
            return None
        numerator = aggregate(rule.aggregate, [c.metrics[rule.metric] for _, c in inside])
        denominator = aggregate(rule.aggregate, [c.metrics[rule.denominator] for _, c in inside])
        if denominator <= 0:
            return None
        return Evaluation(
            round(numerator / denominator, 4),
            [eid for eid, _ in inside],
            {rule.metric: numerator, rule.denominator: denominator},
        )

    if kind == "new_value":
        lookback_start = rule.start_of_lookback(window_start)
        if window.earliest is None or window.earliest > lookback_start:
            return None  # without the whole lookback, everything would look new
        category = rule.category
        current: dict[str, int] = {}
        for bucket in window.between(window_start, at):
            for name, n in bucket.categories.get(category, {}).items():
                if n > 0:
                    current[name] = current.get(name, 0) + n
        new = {
            name: float(n)
            for name, n in current.items()
            if not window.seen_between(category, name, lookback_start, window_start)
        }

        def evidence() -> list[str]:
            return sorted(
                {
                    eid
                    for eid, c in window.inside(window_start, at)
                    if any(
                        n > 0 and name in new for name, n in c.categories.get(category, {}).items()
                    )
                }
            )

        return Evaluation(max(new.values(), default=0.0), evidence, new)

    raise ValueError(f"rule {rule.id}: kind {rule.kind} is not evaluated over observation windows")
