"""Run the same evaluation core over history: what would have fired, escalated and cleared."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas import AlertEvent, Observation

from .core import ScopeState, TriggerEngine


def in_event_time_order(observations: Iterable[Observation]) -> list[Observation]:
    return sorted(observations, key=lambda o: o.period_end)  # stable: ties keep their given order


class Backtest:
    """Scope states kept in memory; observations applied one at a time, exactly as the live worker does."""

    def __init__(self, engine: TriggerEngine) -> None:
        self.engine = engine
        self.states: dict[str, ScopeState] = {}
        self.alerts: list[AlertEvent] = []

    def apply(self, observation: Observation, now: datetime) -> list[AlertEvent]:
        produced: list[AlertEvent] = []
        states = self.states
        for scope in self.engine.scopes_for(observation):
            state = states.get(scope.key)
            if state is None:
                state = states[scope.key] = ScopeState()
            result = self.engine.apply(state, scope, observation, now)
            if result.alerts:
                produced.extend(result.alerts)
        for alert in list(produced):  # composites see member changes, as live through ews.alerts
            produced.extend(self._composites(alert, now))
        self.alerts.extend(produced)
        return produced

    def _composites(self, member: AlertEvent, now: datetime) -> list[AlertEvent]:
        out = []
        for scope in self.engine.composite_targets(member):
            state = self.states.setdefault(scope.key, ScopeState())
            out.extend(self.engine.apply_member(state, scope, member, now))
        return out


def run_backtest(observations: Iterable[Observation], engine: TriggerEngine, evaluated_at: datetime) -> list[AlertEvent]:
    """Apply observations in event-time order and return every transition.

    Observations ending at the same time keep the order they were given in (the order a
    partner sent them), as the live workers see them.
    """
    backtest = Backtest(engine)
    for observation in in_event_time_order(observations):
        backtest.apply(observation, evaluated_at)
    return backtest.alerts
