"""The current picture of alerts as notify sees it: latest transition per alert, its episode,
acknowledgements. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import AlertEvent
from schemas.notify import Acknowledgement

EPISODE_KEPT = (
    20  # transitions of an episode kept for CAP <references>: memory follows alerts, not history
)


@dataclass
class AlertPicture:
    latest: dict[str, AlertEvent] = field(default_factory=dict)
    episodes: dict[str, list[AlertEvent]] = field(
        default_factory=dict
    )  # transitions since the last resolution
    partitions: dict[str, int] = field(default_factory=dict)

    def record(self, alert: AlertEvent, partition: int) -> None:
        current = self.latest.get(alert.alert_id)
        if current is not None and current.transition >= alert.transition:
            return  # a repeat or an older transition
        episode = self.episodes.get(alert.alert_id, [])
        if current is not None and current.status == "resolved":
            episode = []
        # An alert that never resolves would otherwise keep every transition it ever had; a CAP
        # Update references the earlier messages of its episode, of which the latest matter to a
        # receiver.
        self.episodes[alert.alert_id] = [*episode[-(EPISODE_KEPT - 1) :], alert]
        self.latest[alert.alert_id] = alert
        self.partitions[alert.alert_id] = partition

    def earlier_in_episode(self, alert: AlertEvent) -> list[AlertEvent]:
        return [a for a in self.episodes.get(alert.alert_id, []) if a.transition < alert.transition]


def is_acknowledged(alert: AlertEvent, ack: Acknowledgement | None) -> bool:
    """An acknowledgement covers the transition it was given for and any later de-escalation, not an
    escalation."""
    return ack is not None and ack.transition >= alert.transition


def reminders_due(
    alert: AlertEvent,
    ack: Acknowledgement | None,
    now: datetime,
    repeat_interval: timedelta,
    escalate_after: timedelta,
) -> tuple[int, bool]:
    """(how many repeats are due by now, whether escalation is due) for a firing, unacknowledged
    alert."""
    if alert.status != "firing" or is_acknowledged(alert, ack):
        return 0, False
    elapsed = now - alert.evaluated_at
    repeats = int(elapsed / repeat_interval) if repeat_interval.total_seconds() > 0 else 0
    return repeats, elapsed >= escalate_after
