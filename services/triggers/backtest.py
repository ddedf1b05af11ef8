"""Run the same evaluation core over history: what would have fired, escalated and cleared."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import groupby

from schemas import AlertEvent, Observation, Scope
from schemas.types import cycle_name
from services.common import collector

from .core import ScopeState, TriggerEngine, columnar
from .core.kinds.silence import hours_past_due
from .core.windows import FeedWindow


def in_event_time_order(observations: Iterable[Observation]) -> list[Observation]:
    return sorted(observations, key=lambda o: o.period_end)  # stable: ties keep their given order


def by_tick(observations: Iterable[Observation]) -> Iterator[list[Observation]]:
    """Observations grouped by period end (the tick the rules judge them at), oldest first."""
    for _, group in groupby(in_event_time_order(observations), key=lambda o: o.period_end):
        yield list(group)


class Backtest:
    """Scope states kept in memory; the same add-then-judge steps as the live worker.

    Live, the worker adds every observation of a batch and then judges each scope once, tick
    by tick in event-time order; here each tick's observations are added together and then
    judged, which is what the worker does whenever a period's reports reach it together
    (within EWS_EVALUATION_SETTLE_S of each other).
    """

    def __init__(self, engine: TriggerEngine) -> None:
        self.engine = engine
        self.states: dict[str, ScopeState] = {}
        self.alerts: list[AlertEvent] = []

    def apply(self, observation: Observation, now: datetime) -> list[AlertEvent]:
        """One observation, judged at once."""
        return self.apply_together([observation], now)

    def apply_together(self, observations: list[Observation], now: datetime) -> list[AlertEvent]:
        """Add observations that arrived together, then judge every scope they touched."""
        engine, states = self.engine, self.states
        touched: dict[str, Scope] = {}
        for observation in observations:
            for scope in engine.scopes_for(observation):
                state = states.get(scope.key)
                if state is None:
                    state = states[scope.key] = ScopeState()
                if engine.add(state, scope, observation, now) == "applied":
                    touched[scope.key] = scope
        produced: list[AlertEvent] = []
        for key, scope in touched.items():
            produced.extend(engine.judge(states[key], scope, now))
        produced.extend(
            engine.combine(states, list(produced), now)
        )  # composites, as live through ews.alerts
        self.alerts.extend(produced)
        return produced

    def replay(
        self, observations: Iterable[Observation], now: datetime, exact: bool = False
    ) -> list[AlertEvent]:
        """History in event-time order, each tick's observations together.

        Worked out from columns (core/columnar.py: the same transitions, many times faster) unless
        `exact` asks for the engine observation by observation, a trace is set (plots need every
        value), or states are already held from earlier calls.
        """
        if exact or self.engine.trace is not None or self.states:
            for group in by_tick(observations):
                self.apply_together(group, now)
        else:
            with (
                collector.paused()
            ):  # millions of columns and lists beside the observations, none cyclic
                self.alerts.extend(columnar.replay(self.engine, observations, now, self.states))
        return self.alerts


def run_backtest(
    observations: Iterable[Observation],
    engine: TriggerEngine,
    evaluated_at: datetime,
    exact: bool = False,
) -> list[AlertEvent]:
    """Every transition the rules would have produced over this history (any input order)."""
    return Backtest(engine).replay(observations, evaluated_at, exact)


def declared_sources_report(engine: TriggerEngine, observations: list[Observation]) -> list[str]:
    """What a backtest says of the declared sources a silence rule watches (the sites file's
    `sources:`): those with no reports in this history, and those whose next report would be
    overdue past a silence level at the history's end (the newest period end of any report)."""
    watched = {key.split("/", 1)[1] for key in engine.watched_sources()}
    if not watched or not observations:
        return []
    end = max(o.period_end for o in observations)
    newest: dict[tuple[str, str], Observation] = {}
    for o in observations:
        if o.source in watched and (
            (o.source, o.feed) not in newest or o.period_end > newest[(o.source, o.feed)].period_end
        ):
            newest[(o.source, o.feed)] = o
    lines, unheard = [], []
    for source_id in sorted(watched):
        declared = engine.geography.sources[source_id]
        scope = Scope(kind="source", id=source_id, country=declared.country)
        for feed in declared.feeds:
            rules = [r for r in engine.rules.rules_for(feed, scope) if r.kind == "silence"]
            if not rules:
                continue
            last = newest.get((source_id, feed))
            if last is None:
                unheard.append(f"{source_id} ({feed})")
                continue
            # in history the arrival is not known: taken as the period's end
            window = FeedWindow(
                watermark=last.period_end, last_period=last.period, last_arrival=last.period_end
            )
            due = engine.next_due(scope, feed, window)
            overdue = hours_past_due(due, end) if due is not None else 0.0
            if overdue >= min(r.lowest_threshold for r in rules):
                lines.append(
                    f"declared source {source_id}: its newest {feed} report ends "
                    f"{last.period_end:%Y-%m-%d}; reporting {cycle_name(declared.period)}, the "
                    f"next was due {due:%Y-%m-%d} and is {overdue / 24:,.0f} days overdue at the "
                    f"history's end ({end:%Y-%m-%d})"
                )
    if unheard:
        lines.insert(0, f"declared sources with no reports in this history: {', '.join(unheard)}")
    return lines
