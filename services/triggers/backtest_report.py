"""How a backtest shows what would have happened: a timeline per trigger and scope,
JSON, or a plot."""

from __future__ import annotations

from collections import defaultdict

from schemas import LEVEL_RANK, AlertEvent, Level


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


def plot(
    path,
    series: dict[tuple[str, str], list[tuple]],
    alerts: list[AlertEvent],
    levels: dict,
    max_panels: int = 12,
) -> int:
    """Each fired (rule, scope)'s value over time, its levels as lines, firing periods shaded.
    Returns panels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours: dict[Level | None, str] = {
        "watch": "#e6b800",
        "warning": "#ff8000",
        "emergency": "#d62728",
    }
    fired = sorted({(a.rule_id, a.scope.key) for a in alerts})[:max_panels]
    if not fired:
        return 0
    fig, axes = plt.subplots(len(fired), 1, figsize=(11, 2.6 * len(fired)), squeeze=False)
    for ax, (rule_id, scope_key) in zip(axes[:, 0], fired, strict=True):
        points = sorted(series.get((rule_id, scope_key), []))
        if points:
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                color="#1f77b4",
                lw=1.5,
                marker=".",
                ms=3,
            )
        for level, threshold in levels.get((rule_id, scope_key), ()):
            ax.axhline(
                threshold,
                color=colours[level],
                ls="--",
                lw=1,
                label=f"{level} {_number(threshold)}",
            )
        transitions = [a for a in alerts if a.rule_id == rule_id and a.scope.key == scope_key]
        for a, b in zip(transitions, [*transitions[1:], None], strict=True):
            if a.status == "firing":
                end = (
                    b.observed_until
                    if b is not None
                    else (points[-1][0] if points else a.observed_until)
                )
                ax.axvspan(a.observed_until, end, color=colours[a.level], alpha=0.15)
        ax.set_title(f"{rule_id} — {scope_key}", fontsize=10, loc="left")
        ax.legend(loc="upper left", fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return len(fired)
