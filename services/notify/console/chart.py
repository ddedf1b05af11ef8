"""The chart of the values behind an alert, drawn on the server as SVG: the trigger's value at
each tick, its levels as lines, the periods it fired shaded by level, and the same values as a
table for screen readers and for copying."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas import LEVELS, AlertEvent

from ..wording import figure, tick_date
from .text import say

WIDTH, HEIGHT = 640.0, 240.0
LEFT, RIGHT, TOP, BOTTOM = 56.0, 12.0, 12.0, 28.0

MIN_SPAN = 6.0  # the narrowest shading drawn, in SVG units


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    lines: list[str]  # SVG points of each unbroken run of values
    dots: list[tuple[float, float]]  # lone values (a run of one)
    levels: list[tuple[float, str, str]]  # (y, level, its name and threshold)
    spans: list[tuple[float, float, str]]  # (x from, x to, level) while firing
    x_labels: list[tuple[float, str, str]]  # (x, text, anchor)
    y_labels: list[tuple[float, str]]
    rows: list[tuple[str, str]]  # (tick, value) for the table
    label: str


def firing_spans(
    transitions: list[AlertEvent], end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """(from, to, level) for each stretch the alert fired at one level, by the ticks concerned."""
    ordered = sorted(transitions, key=lambda a: (a.observed_until, a.transition))
    spans: list[tuple[datetime, datetime, str]] = []
    for this, following in zip(ordered, [*ordered[1:], None], strict=True):
        if this.status == "firing" and this.level is not None:
            until = following.observed_until if following is not None else end
            spans.append((this.observed_until, max(until, this.observed_until), this.level))
    return spans


def chart(
    points: list[tuple[datetime, float | None]],
    levels: dict[str, float],
    transitions: list[AlertEvent],
    title: str,
    language: str,
) -> Chart | None:
    """None when there is nothing to draw (fewer than two ticks)."""
    if len(points) < 2:
        return None
    start, end = points[0][0], points[-1][0]
    span_s = max((end - start).total_seconds(), 1.0)
    known = [v for _, v in points if v is not None]
    top = max([*known, *levels.values(), 1.0]) * 1.1
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + inner_w * (at - start).total_seconds() / span_s

    def y(value: float) -> float:
        return TOP + inner_h * (1 - value / top)

    runs: list[list[tuple[float, float]]] = [[]]
    for at, value in points:
        if value is None:
            runs.append([])
        else:
            runs[-1].append((x(at), y(value)))
    lines = [" ".join(f"{px:.1f},{py:.1f}" for px, py in run) for run in runs if len(run) > 1]
    dots = [run[0] for run in runs if len(run) == 1]
    drawn_levels: list[tuple[float, str, str]] = [
        (y(levels[level]), level, f"{say(language, level)}: {figure(levels[level], language)}")
        for level in LEVELS
        if level in levels
    ]

    def shaded(a: datetime, b: datetime) -> tuple[float, float]:
        """At least a few units wide, inside the frame: an alert that fired at the last tick
        shows."""
        x0 = min(x(max(a, start)), LEFT + inner_w - MIN_SPAN)
        return x0, max(x(min(b, end)), x0 + MIN_SPAN)

    spans = [
        (*shaded(a, b), level)
        for a, b, level in firing_spans(transitions, end)
        if b >= start and a <= end
    ]
    middle = points[len(points) // 2][0]
    # the day each tick closes, as reports are dated; the outer labels kept inside the frame
    x_labels = [
        (x(t), tick_date(t, language), anchor)
        for t, anchor in ((start, "start"), (middle, "middle"), (end, "end"))
    ]
    y_labels = [(y(v), figure(round(v), language)) for v in (0.0, top / 2, top / 1.1)]
    rows = [
        (f"{t:%Y-%m-%d %H:%M}", figure(v, language) if v is not None else "—") for t, v in points
    ]
    return Chart(WIDTH, HEIGHT, lines, dots, drawn_levels, spans, x_labels, y_labels, rows, title)
