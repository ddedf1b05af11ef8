"""The pure evaluation core: no Kafka, no HTTP, no clock reads. Runs live, in backtests, tests and
benchmarks."""

from .engine import ApplyResult, ScopeState, TriggerEngine
from .rules import CompiledRule, RuleSet
from .state_machine import AlertState, step_alert

__all__ = [
    "ApplyResult",
    "ScopeState",
    "TriggerEngine",
    "CompiledRule",
    "RuleSet",
    "AlertState",
    "step_alert",
]
