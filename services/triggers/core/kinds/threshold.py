"""threshold: an aggregate of a metric over the window reaches a level.

An empty window sums to 0 and is judged; for the other aggregates nothing is there to judge.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from ..columns import FeedColumns, History, Series, starts
from ..evaluation import Evaluation
from ..rules import Aggregate, ThresholdRule
from ..windows import Contribution, FeedWindow

# Aggregates read from columns; max and last need each contribution: the engine replays them.
COLUMN_AGGREGATES: frozenset[Aggregate] = frozenset({"sum", "mean"})


def aggregate(kind: Aggregate, values: list[int] | list[float]) -> float:
    """One of a window's aggregates over the values of its contributions (in start order)."""
    if kind == "sum":
        return float(sum(values))
    if kind == "max":
        return float(max(values))
    if kind == "mean":
        return sum(values) / len(values)
    return float(values[-1])


def evaluate(rule: ThresholdRule, window: FeedWindow, at: datetime) -> Evaluation | None:
    """The aggregate at event time `at`, report by report."""
    metric = rule.metric
    window_start = rule.start_of_window(at)
    total, count = window.tally(metric, window_start, at)

    def carrying() -> list[tuple[str, Contribution]]:
        return [(eid, c) for eid, c in window.inside(window_start, at) if metric in c.metrics]

    if count == 0:
        return Evaluation(0.0) if rule.aggregate == "sum" else None
    if rule.aggregate == "sum":
        value = float(total)
    elif rule.aggregate == "mean":
        value = total / count
    else:
        value = aggregate(rule.aggregate, [c.metrics.number(metric) for _, c in carrying()])
    return Evaluation(value, lambda: [eid for eid, _ in carrying()])


def has_columns(rule: ThresholdRule) -> bool:
    return rule.aggregate in COLUMN_AGGREGATES


def series(rule: ThresholdRule, columns: FeedColumns, history: History) -> Series:
    """The aggregate at every tick of a scope, from columns (sum and mean)."""
    ticks = columns.ticks
    window_start = starts(rule.window_delta, rule.start_of_window, ticks, history)
    found = history.metric(columns.feed, rule.metric)
    assert found is not None  # has_columns and the metric's check came first
    values, carried = found[0][columns.positions], found[1][columns.positions]
    counts = columns.window_sums(carried.astype(np.int64), window_start, ticks)
    totals = columns.window_sums(np.where(carried, values, 0), window_start, ticks)
    if rule.aggregate == "sum":
        judged = totals.astype(np.float64)
    else:  # mean: nothing carries the metric → cannot be judged
        with np.errstate(divide="ignore", invalid="ignore"):
            judged = np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
    empty = counts == 0

    def at(i: int, value: float) -> Evaluation:
        if empty[i]:
            return Evaluation(value)
        return Evaluation(
            value, lambda: columns.latest_eids(int(window_start[i]), int(ticks[i]), carried)
        )

    return Series(judged, at)
