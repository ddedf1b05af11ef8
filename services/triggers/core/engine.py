"""The trigger engine: routes observations to their scopes, puts them in the scopes' windows, judges
every rule at each new tick, and steps each (rule, scope)'s alert. Pure: `at` is event time, `now`
the wall clock, both passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal, NamedTuple

from schemas import LEVEL_RANK, AlertEvent, AlertSeries, Location, Observation, Scope
from schemas.types import as_timedelta, duration_text, parse_duration
from services.common.geography import Geography

from . import kinds
from .evaluation import MAX_EVIDENCE, Evaluation
from .kinds import composite, silence
from .rules import (
    CompiledRule,
    CompositeRule,
    FeedRule,
    NewValueRule,
    RateOfChangeRule,
    RatioRule,
    RuleSet,
    SilenceRule,
    ThresholdRule,
    WindowedRule,
)
from .state_machine import WAITED, AlertState, Told, Transition, can_change, step_alert
from .windows import NO_COUNTS, Contribution, Counts, FeedWindow, Kept, ScopeState, Span, replacing

SERIES_POINTS = 60  # ticks of a trigger's value published with each transition, for the chart
INSTANTS_KEPT = 4096  # distinct period instants shared at once (see TriggerEngine._instant)
RECENT_KEPT = 16384  # reports' contributions recognised when another copy of them arrives

Outcome = Literal["applied", "stale_revision", "too_late"]


def _step(alert: AlertState, rule: CompiledRule, value: float, at: datetime) -> Transition | None:
    """`step_alert`, keeping in the alert's history the state before each change (so that late
    data can take it back): each transition, and each start or reset of a wait (`for`,
    `clear_for`), which late data must also be able to undo."""
    if not can_change(alert, rule, value):
        return None
    before = alert.copy()
    change = step_alert(alert, rule, value, at)
    if change is not None:
        alert.remember(Told(at, change.status, change.level, before))
    elif alert.timers() != before.timers():
        alert.remember(Told(at, WAITED, None, before))
    return change


# what routing depends on: feed, location kind, location id, country, source, where it moved from
Route = tuple[str, str, str, str, str, Location | None]


class Routes(NamedTuple):
    watched: list[Scope]  # the scopes at least one rule watches
    by_key: dict[str, Scope]  # every scope the observation reaches
    withdrawn: frozenset[str]  # keys of the scopes it is withdrawn from (it moved away)


@dataclass
class ApplyResult:
    outcome: Outcome
    alerts: list[AlertEvent] = field(default_factory=list)


def measured(rule: CompiledRule) -> dict[str, Any]:
    """What an alert of this rule measures, for messages to say it in words."""
    clearing: dict[str, Any] = {"clear": rule.clear}
    if rule.clear_for is not None:
        clearing["clear_for"] = duration_text(rule.clear_for)
    if isinstance(rule, (ThresholdRule, RatioRule)):
        extra = {"denominator": rule.denominator} if isinstance(rule, RatioRule) else {}
        return {"metric": rule.metric} | extra | clearing
    if isinstance(rule, RateOfChangeRule):
        return {"metric": rule.metric, "baseline": duration_text(rule.baseline_delta)} | clearing
    if isinstance(rule, NewValueRule):
        return {"metric": rule.category, "baseline": duration_text(rule.lookback_delta)}
    return {}


class TriggerEngine:
    def __init__(self, rules: RuleSet, geography: Geography, allowed_lateness: str = "P7D") -> None:
        self.rules = rules
        self.geography = geography
        self.allowed_lateness = as_timedelta(parse_duration(allowed_lateness))
        # Called with (rule, scope, value, at) at every evaluation; backtest plots use it.
        self.trace: Callable[[CompiledRule, Scope, float, datetime], None] | None = None
        # Memoised lookups: a few entries per site and scope, rebuilt with the engine on a rule
        # reload.
        self._scopes: dict[Route, Routes] = {}
        self._rules_at: dict[tuple[str, str], tuple[list[FeedRule], timedelta, Kept]] = {}
        self._targets: dict[tuple[str, str, str, str | None], list[Scope]] = {}
        self._last_contribution: tuple[Observation, str, Contribution] | None = None
        self._instants: dict[datetime, datetime] = {}
        self._recent: dict[tuple[Any, ...], tuple[str, Contribution]] = {}
        self._too_long: dict[tuple[str, str], list[str]] = {}

    # --- where observations and member alerts go --------------------------------------

    def _routes(self, observation: Observation) -> Routes:
        location, moved_from = observation.location, observation.moved_from
        memo = (
            observation.feed,
            location.kind,
            location.id,
            location.country,
            observation.source,
            moved_from,
        )
        routes = self._scopes.get(memo)
        if routes is None:
            every = self._scopes_of(location, observation.source)
            withdrawn: list[Scope] = []
            if moved_from is not None:  # where the corrected version counted and this one does not
                keys = {s.key for s in every}
                withdrawn = [
                    s for s in self._scopes_of(moved_from, observation.source) if s.key not in keys
                ]
            watched = [
                s for s in every + withdrawn if self.rules.applies_to(observation.feed, s.kind)
            ]
            routes = self._scopes[memo] = Routes(
                watched, {s.key: s for s in every + withdrawn}, frozenset(s.key for s in withdrawn)
            )
        return routes

    def _scopes_of(self, location: Location, source: str) -> list[Scope]:
        every = self.geography.scopes_of(location)
        if "source" in self.rules.scope_kinds:
            every.append(Scope(kind="source", id=source, country=location.country))
        return every

    def scopes_for(self, observation: Observation) -> list[Scope]:
        """The scopes this observation counts towards that at least one rule watches (and, for a
        correction that moved the report, those it is withdrawn from)."""
        return self._routes(observation).watched

    def scope_from_key(self, key: str, observation: Observation) -> Scope:
        """Rebuild a scope from its key (what the repartition topic carries)."""
        scope = self._routes(observation).by_key.get(key)
        if scope is not None:
            return scope
        raise KeyError(f"observation {observation.report_id} does not count towards scope {key}")

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

    def too_long_for(self, feed: str, period: str) -> list[str]:
        """The rules reading this feed (common or national) whose window is shorter than this
        period: a report covering it never lies inside one of their windows, so they never count
        it (a 24-hour rule over monthly reports)."""
        memo = (feed, period)
        found = self._too_long.get(memo)
        if found is None:
            length = as_timedelta(parse_duration(period))
            found = self._too_long[memo] = sorted(
                {
                    r.id
                    for r in self.rules.every
                    if isinstance(r, WindowedRule)
                    and r.feed == feed
                    and as_timedelta(r.window_delta) < length
                }
            )
        return found

    def rules_at(self, feed: str, scope: Scope) -> tuple[list[FeedRule], timedelta, Kept]:
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
                frozenset(m for r in rules for m in r.metrics_read),
                frozenset(c for r in rules if (c := r.category_read) is not None),
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
        _, retention, kept = self.rules_at(feed, scope)
        key, contribution = self._contribution_of(observation)
        withdrawal = observation.moved_from is not None and (
            scope.key in self._routes(observation).withdrawn
        )
        if withdrawal:
            contribution = contribution._replace(metrics=NO_COUNTS, categories=NO_COUNTS)
        previous = window.contributions.get(key)
        if previous is None and observation.event_id in window.contributions:
            key = (
                observation.event_id
            )  # held under its bare event_id, as before ids were per source
            previous = window.contributions[key]
        if previous is not None:
            replacement = replacing(contribution, previous)
            if replacement is None:
                return "stale_revision"
            contribution = replacement
        if (
            window.judged is not None
            and observation.period_end < window.judged - self.allowed_lateness
        ):
            return "too_late"  # more than the lateness bound behind what the scope judged
        if previous is not None:
            window.pending.add(
                (previous.start, previous.end)
            )  # a correction changes the old span too
            if key != observation.report_id:
                window.discard(key)
                key = observation.report_id
        window.put(key, contribution, kept)
        window.pending.add((observation.observed_at, observation.period_end))
        if withdrawal:
            return "applied"  # not an arrival here: the watermark and silence clock stay
        if window.watermark is None or observation.period_end > window.watermark:
            window.watermark = observation.period_end
            window.last_period = observation.period
        window.last_arrival = now
        return "applied"

    def _contribution_of(self, observation: Observation) -> tuple[str, Contribution]:
        """What an observation adds to a window, and under which report id: one object and one id
        string for every scope it counts towards (a report counts towards ~4 scopes; live, those in
        other partitions get copies of it in messages of their own, read moments apart). Its
        period's two instants are shared with every other report over the same period."""
        last = self._last_contribution
        if last is not None and last[0] is observation:
            return last[1], last[2]
        accepted = observation.ingested_at.timestamp()
        memo = (  # everything a contribution is made of: copies of one version of a report
            observation.report_id,
            observation.revision,
            accepted,
            observation.observed_at,
            observation.period_end,
            tuple(observation.metrics.items()),
            tuple((name, tuple(values.items())) for name, values in observation.categories.items()),
        )
        found = self._recent.get(memo)
        if found is None:
            contribution = Contribution(
                observation.revision,
                self._instant(observation.observed_at),
                self._instant(observation.period_end),
                Counts.of(observation.metrics),
                Counts.of(observation.categories),
                accepted,
            )
            if len(self._recent) >= RECENT_KEPT:
                self._recent.clear()
            found = self._recent[memo] = (memo[0], contribution)
        self._last_contribution = (observation, *found)
        return found

    def _instant(self, at: datetime) -> datetime:
        """One datetime object per instant among the recent ones (10,000 sites' daily reports hold
        two, not 20,000)."""
        instants = self._instants
        held = instants.get(at)
        if held is None:
            if len(instants) >= INSTANTS_KEPT:
                instants.clear()
            held = instants[at] = at
        return held

    def judge(self, state: ScopeState, scope: Scope, now: datetime) -> list[AlertEvent]:
        """Evaluate every rule at each tick (period end) added since the last judgement, oldest
        first.

        Data that arrived late, for ticks already judged, is judged again from the earliest tick it
        changed: the rules step through every tick held from there to the latest one judged, so a
        late surge fires (or escalates) at the tick it concerns, marked late, and clears as the
        later ticks say. Silence rules are judged at the latest tick only.
        """
        state.scope = scope
        events: list[AlertEvent] = []
        for feed, window in state.feeds.items():
            if not window.pending:
                continue
            rules, retention, kept = self.rules_at(feed, scope)
            judged = window.judged
            pending = window.pending
            ticks = sorted({end for _, end in pending if judged is None or end > judged})
            late_from = (
                min((end for _, end in pending if end < judged), default=None)
                if judged is not None
                else None
            )
            again: list[datetime] = []  # ticks judged before, stepped again (late data)
            if late_from is not None:
                assert judged is not None
                held = {end for _, end in window.spans if late_from <= end < judged}
                again = [*sorted(held | {late_from}), judged]
                first = min(start for start, end in pending if end <= judged)
                if window.earliest is None or first < window.earliest:
                    window.earliest = first
                for rule in rules:
                    if not isinstance(rule, SilenceRule):  # silence is judged at the latest tick
                        events.extend(self._judge_again(state, scope, rule, window, again, now))
            if judged is not None and (again or not ticks):
                ticks.insert(0, judged)
            for tick in ticks:
                arriving = [span for span in pending if span[1] <= tick]
                if arriving:
                    first = min(start for start, _ in arriving)
                    if window.earliest is None or first < window.earliest:
                        window.earliest = first
                for rule in rules:
                    if isinstance(rule, SilenceRule):
                        at_tick = [span for span in arriving if span[1] == tick]
                        events.extend(
                            self._silence_at_tick(
                                state, scope, rule, window, at_tick, judged, tick, now
                            )
                        )
                        continue
                    if again and tick == judged:
                        continue  # judged again above, with the ticks before it
                    evaluation = kinds.evaluate(rule, window, tick)
                    if evaluation is not None:
                        events.extend(self.step(state, scope, rule, evaluation, tick, now))
                window.prune(tick - retention)
                pending = {span for span in pending if span[1] > tick}
                judged = tick
            window.judged = judged
            window.pending = set()
        return events

    def _judge_again(
        self,
        state: ScopeState,
        scope: Scope,
        rule: WindowedRule,
        window: FeedWindow,
        ticks: list[datetime],
        now: datetime,
    ) -> list[AlertEvent]:
        """Late data changed ticks judged before (`ticks`, oldest first, ending with the latest one
        judged): the alert is taken back to where it stood before the first of them (undoing the
        transitions it made since, from its history) and stepped through them all again. What
        receivers are told: each level higher than the one they hold (marked late when its tick is
        before the latest), then, if the alert ends elsewhere than they were last told, where it
        is now; the transitions are numbered after those already sent."""
        latest = ticks[-1]
        alert = state.alerts.get(rule.id)
        if alert is None:
            alert = state.alerts[rule.id] = AlertState()
        undone = [t for t in alert.history if t.at >= ticks[0]]
        trial = undone[0].before if undone else alert.copy()
        trial.history = alert.history[: len(alert.history) - len(undone)]
        told = {(t.at, t.status, t.level) for t in undone}
        holding = alert.level if alert.status == "firing" else None  # what receivers were told
        changes: list[tuple[Transition, Evaluation, datetime]] = []
        evaluation: Evaluation | None = None
        for tick in ticks:
            evaluation = kinds.evaluate(rule, window, tick)
            if evaluation is None:
                continue
            if self.trace is not None:
                self.trace(rule, scope, evaluation.value, tick)
            change = _step(trial, rule, evaluation.value, tick)
            if (
                change is not None
                and change.status == "firing"
                and LEVEL_RANK[change.level or "watch"] > (LEVEL_RANK[holding] if holding else 0)
                and (tick, change.status, change.level) not in told
            ):
                changes.append((change, evaluation, tick))
                holding = change.level
        final = trial.level if trial.status == "firing" else None
        if final != holding and evaluation is not None:
            started = trial.started_at or alert.started_at or latest
            threshold = rule.threshold_of(final) if final is not None else rule.clear
            status: Literal["firing", "resolved"] = "firing" if final is not None else "resolved"
            changes.append(
                (Transition(0, status, final, holding, threshold, started), evaluation, latest)
            )
        events: list[AlertEvent] = []
        for number, (change, with_value, tick) in enumerate(changes, start=alert.transition + 1):
            previous = events[-1].level if events else alert.level
            if not events and alert.status != "firing":
                previous = None
            told_as = Transition(
                number, change.status, change.level, previous, change.threshold, change.started_at
            )
            events.append(
                self._event(rule, scope, told_as, with_value, tick, now, late=tick < latest)
            )
        trial.transition = alert.transition + len(events)
        state.alerts[rule.id] = trial
        return events

    # --- silence --------------------------------------------------------------------------

    def _silence_at_tick(
        self,
        state: ScopeState,
        scope: Scope,
        rule: SilenceRule,
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
            eid
            for span in spans
            if span in window.buckets
            for eid in window.buckets[span].eids
            if not window.contributions[eid].withdrawn
        ]
        events = []
        if previous is not None and spans and previous < tick:
            started = min(start for start, _ in spans)
            gap = silence.gap_hours(previous, started)
            if alert.status == "ok" and rule.level_for(gap) is not None:
                events.extend(self.step(state, scope, rule, silence.silent(gap), started, now))
        events.extend(self.step(state, scope, rule, silence.arrived(reports), tick, now))
        return events

    def declared_scope(self, key: str) -> Scope | None:
        """The scope of a declared source (`source/<id>`), watched before it ever reports."""
        kind, _, ident = key.partition("/")
        declared = self.geography.sources.get(ident) if kind == "source" else None
        return Scope(kind="source", id=ident, country=declared.country) if declared else None

    def watched_sources(self) -> list[str]:
        """The scope keys of the declared sources a silence rule watches (for one of their
        feeds)."""
        rules = map(self.rules.common, self.rules.ids)
        silent = {r.feed for r in rules if isinstance(r, SilenceRule) and r.scope_kind == "source"}
        return [
            f"source/{declared.id}"
            for declared in self.geography.sources.values()
            if silent.intersection(declared.feeds)
        ]

    def cycle(self, scope: Scope, feed: str, window: FeedWindow) -> tuple[str, str | None, bool]:
        """How often this feed reports at this scope, and its usual delay: the declaration of the
        source if it has one for this feed (True), else the latest report's period."""
        declared = self.geography.sources.get(scope.id) if scope.kind == "source" else None
        if declared is not None and feed in declared.feeds:
            return declared.period, declared.delay, True
        return window.last_period or "P1D", None, False

    def next_due(self, scope: Scope, feed: str, window: FeedWindow) -> datetime | None:
        """When the next report of this feed is due at this scope: one period after the last one
        arrived, and for a declared source never before the end of the period after the latest one
        seen plus its usual delay; for a declared source that never reported, one period (and
        delay) after it was first watched. None when the scope has neither reported nor been
        declared."""
        every, delay_text, declared = self.cycle(scope, feed, window)
        period = parse_duration(every)
        delay = as_timedelta(parse_duration(delay_text)) if delay_text else timedelta(0)
        if window.last_arrival is not None and window.watermark is not None:
            due = window.last_arrival + period
            return max(due, window.watermark + period + delay) if declared else due
        if declared and window.watched_since is not None:
            return window.watched_since + period + delay
        return None

    def check_silence(self, state: ScopeState, scope: Scope, now: datetime) -> list[AlertEvent]:
        """Wall-clock check: hours since the next report was due (`next_due`), for every silence
        rule at this scope. A declared source is watched from its first check, before it ever
        reports; one no longer declared that never reported is no longer watched (its silence
        resolves)."""
        events = []
        declared = self.declared_scope(scope.key)
        if declared is not None:
            state.scope = state.scope or scope
            for declared_feed in self.geography.sources[scope.id].feeds:
                if declared_feed not in state.feeds and any(
                    isinstance(rule, SilenceRule)
                    for rule in self.rules.rules_for(declared_feed, scope)
                ):
                    state.feeds[declared_feed] = FeedWindow(watched_since=now)
        for feed, window in list(state.feeds.items()):
            due = self.next_due(scope, feed, window)
            silent_hours = silence.hours_past_due(due, now) if due is not None else 0.0
            every = as_timedelta(parse_duration(self.cycle(scope, feed, window)[0]))
            tick = window.watermark or window.watched_since or now
            for rule in self.rules.rules_for(feed, scope):
                if not isinstance(rule, SilenceRule):
                    continue
                firing = state.alerts.get(rule.id, AlertState()).status == "firing"
                if silent_hours < rule.lowest_threshold and not firing:
                    continue
                evaluation = silence.silent(silent_hours, every)
                events.extend(self.step(state, scope, rule, evaluation, tick, now, clock=now))
            if due is None and window.last_arrival is None and not window.contributions:
                del state.feeds[feed]  # an undeclared source that never reported
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
            changed: dict[str, CompositeRule] = {}
            for member in group:
                rank = composite.member_rank(member)
                state.members.setdefault(member.rule_id, {})[member.scope.key] = rank
                changed.update(
                    (c.id, c)
                    for c in self.rules.composites_of(member.rule_id)
                    if c.scope_kind == scope.kind
                )
            for rule in changed.values():
                evaluation = composite.evaluate(rule, state.members)
                events.extend(self.step(state, scope, rule, evaluation, at, now))
        return events

    # --- triggers removed from the rules ---------------------------------------------------

    def retire(
        self, state: ScopeState, now: datetime, previous: TriggerEngine | None = None
    ) -> list[AlertEvent]:
        """After a reload: the alerts of triggers no longer in the rules leave the state, and those
        firing resolve (`cause` says why), with the removed rule's titles and version when the
        engine it was removed from (`previous`) is known."""
        scope = state.scope
        gone = [rule_id for rule_id in state.alerts if rule_id not in self.rules.ids]
        events = []
        for rule_id in gone:
            alert = state.alerts.pop(rule_id)
            state.members.pop(rule_id, None)
            if alert.status != "firing" or scope is None:
                continue
            old = (
                previous.rules.for_scope(rule_id, scope)
                if previous is not None and rule_id in previous.rules.ids
                else None
            )
            watermark = max(
                (w.watermark for w in state.feeds.values() if w.watermark is not None),
                default=now,
            )
            events.append(
                AlertEvent(
                    alert_id=f"{rule_id}/{scope.kind}/{scope.id}",
                    transition=alert.transition + 1,
                    rule_id=rule_id,
                    rule_version=old.version if old is not None else "",
                    kind=old.kind if old is not None else "threshold",
                    status="resolved",
                    level=None,
                    previous_level=alert.level,
                    scope=scope,
                    value=0.0,
                    threshold=0.0,
                    window=old.window if isinstance(old, WindowedRule) else "",
                    started_at=alert.started_at or watermark,
                    observed_until=watermark,
                    evaluated_at=now,
                    evidence=[],
                    title=old.titles if old is not None else {},
                    cause="trigger_removed",
                    **(measured(old) if old is not None else {}),
                )
            )
        return events

    # --- the state machine and the alert it produces ------------------------------------

    def step(
        self,
        state: ScopeState,
        scope: Scope,
        rule: CompiledRule,
        evaluation: Evaluation,
        at: datetime,
        now: datetime,
        clock: datetime | None = None,
    ) -> list[AlertEvent]:
        """Step the rule's alert at this scope with an evaluation at event time `at` (or `clock`, on
        the wall clock); the transition, if any, as an AlertEvent."""
        if self.trace is not None:
            self.trace(rule, scope, evaluation.value, at)
        alert = state.alerts.get(rule.id)
        if alert is None:
            alert = state.alerts[rule.id] = AlertState()
        change = _step(alert, rule, evaluation.value, clock or at)
        if change is None:
            return []
        return [self._event(rule, scope, change, evaluation, at, now)]

    def series(
        self, state: ScopeState, alert: AlertEvent, points: int = SERIES_POINTS
    ) -> AlertSeries | None:
        """The rule's value at this scope's last `points` ticks up to the alert's, from the
        reports the window still holds (for the console's chart; None for composites, silences
        and rules no longer in force)."""
        scope = state.scope
        if scope is None or alert.rule_id not in self.rules.ids:
            return None
        rule = self.rules.for_scope(alert.rule_id, scope)
        if not isinstance(rule, WindowedRule):
            return None
        window = state.feeds.get(rule.feed)
        if window is None:
            return None
        until = alert.observed_until
        ticks = sorted({c.end for c in window.contributions.values() if c.end <= until})
        held_from = min((c.start for c in window.contributions.values()), default=until)
        if window.earliest is not None and held_from > window.earliest:
            # older reports have left the window: a tick is drawn only if all it reads is held
            ticks = [t for t in ticks if t - rule.retention >= held_from]
        ticks = ticks[-points:]
        if not ticks or ticks[-1] != until:
            ticks = [*ticks[-(points - 1) :], until]
        values: list[tuple[datetime, float | None]] = []
        for tick in ticks:
            evaluation = kinds.evaluate(rule, window, tick)
            values.append((tick, evaluation.value if evaluation is not None else None))
        return AlertSeries(
            alert_id=alert.alert_id,
            rule_id=rule.id,
            kind=rule.kind,
            scope=scope,
            window=rule.window,
            levels=dict(rule.levels),
            clear=rule.clear,
            points=values,
            until=until,
        )

    @staticmethod
    def _event(
        rule: CompiledRule,
        scope: Scope,
        change: Transition,
        evaluation: Evaluation,
        at: datetime,
        now: datetime,
        late: bool = False,
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
            window=rule.window if isinstance(rule, WindowedRule) else "",
            started_at=change.started_at,
            observed_until=at,
            evaluated_at=now,
            evidence=evaluation.evidence[-MAX_EVIDENCE:],
            title=rule.titles,
            details=evaluation.details,
            late=late,
            **measured(rule),
        )
