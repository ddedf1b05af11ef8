"""Run the same evaluation core over history: what would have fired, escalated and cleared."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas import AlertEvent, Observation

from .core import ScopeState, TriggerEngine


def run_backtest(observations: Iterable[Observation], engine: TriggerEngine, evaluated_at: datetime) -> list[AlertEvent]:
    """Apply observations in event-time order, scope by scope, exactly as the live worker does."""
    states: dict[str, ScopeState] = {}
    alerts: list[AlertEvent] = []
    ordered = sorted(observations, key=lambda o: (o.period_end, o.observed_at, o.event_id))
    for observation in ordered:
        for scope in engine.scopes_for(observation):
            state = states.setdefault(scope.key, ScopeState())
            alerts.extend(engine.apply(state, scope, observation, evaluated_at).alerts)
    return alerts
