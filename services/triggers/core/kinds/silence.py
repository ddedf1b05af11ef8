"""silence: hours without reports past the moment the next one was due.

Seen in history, a gap between one tick and the start of the next reports fires (if it reaches a
level) and data arriving resolves it at once; on the wall clock, the value is the hours since the
next report was due (TriggerEngine.next_due: the source's declared cycle, else the last report's
period).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from ..columns import Column
from ..evaluation import MAX_EVIDENCE, Evaluation

_US = timedelta(microseconds=1)


def hours(microseconds: int) -> float:
    """Hours in a span of microseconds, never negative."""
    return max(0.0, microseconds / 1e6 / 3600)


def hours_of(microseconds: Column) -> Column:
    """`hours` of every span in a column, to the last bit."""
    return np.maximum(0.0, microseconds / 1e6 / 3600)


def gap_hours(previous_tick: datetime, started: datetime) -> float:
    """Hours from the tick before to the start of the next reports (in history)."""
    return hours((started - previous_tick) // _US)


def hours_past_due(due: datetime, now: datetime) -> float:
    """On the wall clock: hours since the next report was due."""
    return hours((now - due) // _US)


def silent(value: float, every: timedelta | None = None) -> Evaluation:
    """The evaluation of a silence of `value` hours (on the wall clock: past the moment the next
    report was due, the source reporting every `every`)."""
    details = {"silent_hours": round(value, 2)}
    if every is not None:
        details["expected_every_hours"] = round(every / timedelta(hours=1), 2)
    return Evaluation(value, details=details)


def arrived(event_ids: list[str]) -> Evaluation:
    """Reports arrived: the silence is over (value 0), their event_ids as evidence."""
    return Evaluation(0.0, sorted(event_ids)[:MAX_EVIDENCE])
