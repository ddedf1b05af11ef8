"""new_value: a value of a category (an origin nationality) counted in the window and not once
during the lookback before it; the value judged is the largest such count.

Not judged until the history covers the whole lookback (everything would look new).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from ..columns import FeedColumns, History, Series, starts
from ..evaluation import MAX_EVIDENCE, Evaluation
from ..rules import NewValueRule
from ..windows import FeedWindow


def evaluate(rule: NewValueRule, window: FeedWindow, at: datetime) -> Evaluation | None:
    window_start = rule.start_of_window(at)
    lookback_start = rule.start_of_lookback(window_start)
    if window.earliest is None or window.earliest > lookback_start:
        return None
    category = rule.category
    current: dict[str, int] = {}
    for bucket in window.between(window_start, at):
        for name, n in bucket.category(category).items():
            if n > 0:
                current[name] = current.get(name, 0) + n
    new = {
        name: float(n)
        for name, n in current.items()
        if not window.seen_between(category, name, lookback_start, window_start)
    }

    def evidence() -> list[str]:
        return sorted(
            {
                eid
                for eid, c in window.inside(window_start, at)
                if any(n > 0 and name in new for name, n in c.categories.part(category).items())
            }
        )

    return Evaluation(max(new.values(), default=0.0), evidence, new)


def series(rule: NewValueRule, columns: FeedColumns, history: History) -> Series:
    ticks = columns.ticks
    window_start = starts(rule.window_delta, rule.start_of_window, ticks, history)
    lookback_start = starts(rule.lookback_delta, rule.start_of_lookback, window_start, history)
    found = history.category(columns.feed, rule.category)
    assert found is not None
    first, count, names, numbers, amounts = found
    mine_first, mine_count = first[columns.positions], count[columns.positions]
    total = int(mine_count.sum())
    rows = np.repeat(mine_first - np.cumsum(mine_count) + mine_count, mine_count) + np.arange(total)
    owner = np.repeat(np.arange(len(columns.positions)), mine_count)  # contribution of each row
    present = np.unique(numbers[rows])  # the values of the category reported at this scope
    counts = np.zeros((len(columns.positions), len(present)), np.int64)  # contribution × value
    counts[owner, np.searchsorted(present, numbers[rows])] = amounts[rows]
    current = columns.window_sums(counts, window_start, ticks)
    seen = columns.window_sums((counts > 0).astype(np.int64), lookback_start, window_start)
    new = np.where((current > 0) & (seen == 0), current, 0)  # tick × value: its count where new
    best = new.max(axis=1) if len(present) else np.zeros(len(ticks), np.int64)
    judged = np.where(columns.earliest <= lookback_start, best.astype(np.float64), np.nan)

    def new_at(i: int) -> dict[str, float]:
        return {names[present[v]]: float(new[i, v]) for v in np.flatnonzero(new[i]).tolist()}

    def evidence_at(i: int) -> list[str]:
        inside = columns.inside(int(window_start[i]), int(ticks[i]))
        carrying_new = (counts[inside][:, np.flatnonzero(new[i])] > 0).any(axis=1)
        eids: list[str] = columns.eids[inside[carrying_new]].tolist()
        return sorted(set(eids))[-MAX_EVIDENCE:]

    def at(i: int, value: float) -> Evaluation:
        return Evaluation(value, lambda: evidence_at(i), lambda: new_at(i))

    return Series(judged, at)
