"""How a backtest shows what would have happened: a timeline per trigger and scope,
JSON, or a plot."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from schemas import LEVEL_RANK, AlertEvent, Level
from services.common.geography import Geography


def describe_transition(alert: AlertEvent) -> str:
    if alert.status == "resolved":
        return "cleared"
    if alert.previous_level is None:
        return "fired"
    return (
        "escalated"
        if LEVEL_RANK[alert.level] > LEVEL_RANK[alert.previous_level]
        else "de-escalated"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.4g}"


def timeline(alerts: list[AlertEvent]) -> list[str]:
    """Per trigger and scope, when it would have fired, escalated and cleared, with the values."""
    by_alert: dict[str, list[AlertEvent]] = defaultdict(list)
    for alert in alerts:
        by_alert[alert.alert_id].append(alert)
    lines = []
    for alert_id in sorted(by_alert):
        first = by_alert[alert_id][0]
        lines.append(f"{first.rule_id}  {first.scope.kind}/{first.scope.id}")
        for a in by_alert[alert_id]:
            bound = (
                f"clears below {_number(a.threshold)}"
                if a.status == "resolved"
                else f"{a.level} from {_number(a.threshold)}"
            )
            extra = (
                "".join(f"  {k}={_number(v)}" for k, v in a.details.items())
                if a.rule_id.startswith("new") or not a.details
                else ""
            )
            lines.append(
                f"  {a.observed_until:%Y-%m-%d %H:%M}  {describe_transition(a):<12} "
                f"{(a.level or ''):<9} "
                f"value {_number(a.value):>9}  ({bound}){extra}"
            )
    return lines


PANELS_PER_PAGE = 12


def pages_of(path: Path, pages: int) -> list[Path]:
    """plot.png, then plot-2.png, plot-3.png... when the fired scopes need more than one page."""
    return [path] + [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in range(2, pages + 1)]


def axis_label(alert: AlertEvent) -> str:
    """What the y axis measures, in words and units."""
    from services.notify.wording import unit, window_words

    window = window_words(alert.window, "en")
    if alert.kind == "ratio":
        return f"{alert.metric.replace('_', ' ')} / {alert.denominator.replace('_', ' ')}"
    if alert.kind == "rate_of_change":
        return (
            f"× the usual rate ({window} against the previous {window_words(alert.baseline, 'en')})"
        )
    if alert.kind == "silence":
        return "hours past the expected report"
    if alert.kind == "composite":
        return "member levels together (1 watch … 3 emergency)"
    if alert.kind == "new_value":
        return f"count of the new {alert.metric} in {window}"
    return f"{unit(alert.metric or 'count', 2, 'en')} in {window}"


def plot(
    path: Path,
    series: dict[tuple[str, str], list[tuple]],
    alerts: list[AlertEvent],
    levels: dict,
    geography: Geography | None = None,
) -> list[Path]:
    """Every fired (rule, scope)'s value at each tick, its levels as dashed lines, the periods it
    was active shaded by level, axes labelled with their units; twelve panels a page, as many
    pages as needed. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from services.notify.wording import place_name

    colours: dict[Level | None, str] = {
        "watch": "#e6b800",
        "warning": "#ff8000",
        "emergency": "#d62728",
    }
    fired = sorted({(a.rule_id, a.scope.key) for a in alerts})
    if not fired:
        return []
    pages = [fired[i : i + PANELS_PER_PAGE] for i in range(0, len(fired), PANELS_PER_PAGE)]
    written = []
    for page_path, page in zip(pages_of(path, len(pages)), pages, strict=True):
        fig, axes = plt.subplots(len(page), 1, figsize=(11, 2.9 * len(page)), squeeze=False)
        for ax, (rule_id, scope_key) in zip(axes[:, 0], page, strict=True):
            transitions = [a for a in alerts if a.rule_id == rule_id and a.scope.key == scope_key]
            first = transitions[0]
            points = sorted(series.get((rule_id, scope_key), []))
            handles = []
            if points:
                (line,) = ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    color="#1f77b4",
                    lw=1.5,
                    marker=".",
                    ms=3,
                    label="value at each tick",
                )
                handles.append(line)
            for level, threshold in levels.get((rule_id, scope_key), ()):
                handles.append(
                    ax.axhline(
                        threshold,
                        color=colours[level],
                        ls="--",
                        lw=1,
                        label=f"{level} level: {_number(threshold)}",
                    )
                )
            shaded = set()
            for a, b in zip(transitions, [*transitions[1:], None], strict=True):
                if a.status == "firing":
                    end = (
                        b.observed_until
                        if b is not None
                        else (points[-1][0] if points else a.observed_until)
                    )
                    ax.axvspan(a.observed_until, end, color=colours[a.level], alpha=0.15)
                    shaded.add(a.level)
            for level in ("watch", "warning", "emergency"):
                if level in shaded:
                    handles.append(
                        Patch(color=colours[level], alpha=0.15, label=f"shaded: active at {level}")
                    )
            where = place_name(first.scope, geography, "en") if geography else scope_key
            title = first.title.get("en") or rule_id
            ax.set_title(f"{title} — {where}  ({rule_id})", fontsize=10, loc="left")
            ax.set_ylabel(axis_label(first), fontsize=8)
            ax.set_xlabel("end of the period judged (UTC)", fontsize=8)
            ax.legend(handles=handles, loc="upper left", fontsize=7)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(page_path, dpi=90)
        plt.close(fig)
        written.append(page_path)
    return written
