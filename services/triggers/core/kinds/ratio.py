"""ratio: one metric over another (shelter occupancy over capacity), each aggregated over the
window.

Judged only where some contribution carries both and the denominator is above zero; rounded to
DIGITS.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from ..columns import FeedColumns, History, Series, rounded, starts
from ..evaluation import Evaluation
from ..rules import RatioRule
from ..windows import FeedWindow
from .threshold import aggregate

DIGITS = 4


def evaluate(rule: RatioRule, window: FeedWindow, at: datetime) -> Evaluation | None:
    inside = [
        (eid, c)
        for eid, c in window.inside(rule.start_of_window(at), at)
        if rule.metric in c.metrics and rule.denominator in c.metrics
    ]
    if not inside:
        return None
    numerator = aggregate(rule.aggregate, [c.metrics.number(rule.metric) for _, c in inside])
    denominator = aggregate(rule.aggregate, [c.metrics.number(rule.denominator) for _, c in inside])
    if denominator <= 0:
        return None
    return Evaluation(
        round(numerator / denominator, DIGITS),
        [eid for eid, _ in inside],
        {rule.metric: numerator, rule.denominator: denominator},
    )


def has_columns(rule: RatioRule) -> bool:
    return rule.aggregate == "sum"  # the others need each contribution: the engine replays them


def series(rule: RatioRule, columns: FeedColumns, history: History) -> Series:
    ticks = columns.ticks
    window_start = starts(rule.window_delta, rule.start_of_window, ticks, history)
    numerator, denominator = (
        history.metric(columns.feed, rule.metric),
        history.metric(columns.feed, rule.denominator),
    )
    assert numerator is not None and denominator is not None
    carried = numerator[1][columns.positions] & denominator[1][columns.positions]
    counts = columns.window_sums(carried.astype(np.int64), window_start, ticks)
    totals = columns.window_sums(
        np.where(carried, numerator[0][columns.positions], 0), window_start, ticks
    )
    d_totals = columns.window_sums(
        np.where(carried, denominator[0][columns.positions], 0), window_start, ticks
    )
    judged = np.full(len(ticks), np.nan)
    where = np.flatnonzero((counts > 0) & (d_totals > 0))
    quotients = totals[where].astype(np.float64) / d_totals[where].astype(np.float64)
    judged[where] = rounded(quotients, DIGITS)

    def at(i: int, value: float) -> Evaluation:
        return Evaluation(
            value,
            lambda: columns.latest_eids(int(window_start[i]), int(ticks[i]), carried),
            lambda: {rule.metric: float(totals[i]), rule.denominator: float(d_totals[i])},
        )

    return Series(judged, at)
