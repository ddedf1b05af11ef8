"""rate_of_change: the window's total against what the baseline before it leads one to expect.

Not judged until the history covers the whole baseline. Below `min_value` the ratio is 0; over an
empty baseline it is MAX_RATIO; otherwise current / expected rounded to DIGITS, at most MAX_RATIO.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from ..columns import FeedColumns, History, Series, rounded, starts
from ..evaluation import MAX_RATIO, Evaluation
from ..rules import RateOfChangeRule
from ..windows import FeedWindow

DIGITS = 4


def details(current: float, expected: float) -> dict[str, float]:
    return {"current": current, "baseline_expected": round(expected, 2)}


def evaluate(rule: RateOfChangeRule, window: FeedWindow, at: datetime) -> Evaluation | None:
    window_start = rule.start_of_window(at)
    baseline_start = rule.start_of_baseline(window_start)
    if window.earliest is None or window.earliest > baseline_start:
        return None  # wait for a full baseline
    metric = rule.metric
    current = float(window.tally(metric, window_start, at)[0])
    base = window.tally(metric, baseline_start, window_start)[0]
    expected = base * rule.window_to_baseline
    if current < rule.min_value:
        ratio = 0.0
    elif expected <= 0:
        ratio = MAX_RATIO
    else:
        ratio = min(MAX_RATIO, round(current / expected, DIGITS))
    return Evaluation(
        ratio,
        lambda: [eid for eid, _ in window.inside(window_start, at)],
        details(current, expected),
    )


def series(rule: RateOfChangeRule, columns: FeedColumns, history: History) -> Series:
    """The same cut-offs as `evaluate`, at every tick at once."""
    ticks = columns.ticks
    window_start = starts(rule.window_delta, rule.start_of_window, ticks, history)
    baseline_start = starts(rule.baseline_delta, rule.start_of_baseline, window_start, history)
    found = history.metric(columns.feed, rule.metric)
    assert found is not None
    values, carried = found
    mine = np.where(carried[columns.positions], values[columns.positions], 0)
    current = columns.window_sums(mine, window_start, ticks).astype(np.float64)
    expected = columns.window_sums(mine, baseline_start, window_start) * rule.window_to_baseline
    judged = np.full(len(ticks), np.nan)
    full = columns.earliest <= baseline_start
    low = full & (current < rule.min_value)
    judged[low] = 0.0
    flat = full & ~low & (expected <= 0)
    judged[flat] = MAX_RATIO
    where = np.flatnonzero(full & ~low & ~flat)
    judged[where] = np.minimum(MAX_RATIO, rounded(current[where] / expected[where], DIGITS))

    def at(i: int, value: float) -> Evaluation:
        return Evaluation(
            value,
            lambda: columns.latest_eids(int(window_start[i]), int(ticks[i])),
            lambda: details(float(current[i]), float(expected[i])),
        )

    return Series(judged, at)
