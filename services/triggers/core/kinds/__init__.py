"""Each kind of trigger in a module of its own: its value at a tick, worked out report by report
(`evaluate`, what the live worker does) and, for backtests, at every tick of a scope from columns
(`series`), with the constants and cut-offs both share. `has_columns` says whether the columnar
path reproduces a rule; scopes with a rule it does not are replayed by the engine.
"""

from __future__ import annotations

from datetime import datetime

from ..columns import FeedColumns, History, Series
from ..evaluation import Evaluation
from ..rules import (
    FeedRule,
    NewValueRule,
    RateOfChangeRule,
    RatioRule,
    SilenceRule,
    ThresholdRule,
    WindowedRule,
)
from ..windows import FeedWindow
from . import composite, new_value, rate_of_change, ratio, silence, threshold

__all__ = ["composite", "evaluate", "has_columns", "series", "silence"]


def evaluate(rule: WindowedRule, window: FeedWindow, at: datetime) -> Evaluation | None:
    """The rule's value for the window ending at event time `at`; None when it cannot be judged."""
    if isinstance(rule, ThresholdRule):
        return threshold.evaluate(rule, window, at)
    if isinstance(rule, RateOfChangeRule):
        return rate_of_change.evaluate(rule, window, at)
    if isinstance(rule, RatioRule):
        return ratio.evaluate(rule, window, at)
    return new_value.evaluate(rule, window, at)


def has_columns(rule: FeedRule) -> bool:
    if isinstance(rule, ThresholdRule):
        return threshold.has_columns(rule)
    if isinstance(rule, RatioRule):
        return ratio.has_columns(rule)
    return isinstance(rule, RateOfChangeRule | NewValueRule | SilenceRule)


def series(rule: WindowedRule, columns: FeedColumns, history: History) -> Series:
    """The rule's value at every tick of a scope's feed (NaN where it cannot be judged)."""
    if isinstance(rule, ThresholdRule):
        return threshold.series(rule, columns, history)
    if isinstance(rule, RateOfChangeRule):
        return rate_of_change.series(rule, columns, history)
    if isinstance(rule, RatioRule):
        return ratio.series(rule, columns, history)
    return new_value.series(rule, columns, history)
