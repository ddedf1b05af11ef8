"""The pure evaluation core: no Kafka, no HTTP, no clock reads. Runs live, in backtests, tests and
benchmarks.

- rules.py: the compiled triggers, one class per kind; RuleSet with the national overrides.
- windows.py: what a scope keeps per feed (contributions, buckets by period) and its JSON form.
- kinds/: each kind's value at a tick, report by report (`evaluate`) and at every tick (`series`).
- state_machine.py: an alert's state and `step_alert`; `Course`, where a series can change it.
- engine.py: routing to scopes, windows, judging ticks, stepping alerts (the live worker's path).
- columns.py, columnar.py: backtests from numpy columns, through the same kinds and state machine.
"""

from .engine import ApplyResult, TriggerEngine
from .rules import CompiledRule, RuleSet
from .state_machine import AlertState, step_alert
from .windows import ScopeState

__all__ = [
    "AlertState",
    "ApplyResult",
    "CompiledRule",
    "RuleSet",
    "ScopeState",
    "TriggerEngine",
    "step_alert",
]
