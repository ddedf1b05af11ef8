"""The current picture of alerts as notify sees it: latest transition per alert, its episode,
acknowledgements. Pure."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import LEVEL_RANK, AlertEvent, Level
from schemas.notify import Acknowledgement, ack_key

EPISODE_KEPT = (
    20  # transitions of an episode kept for CAP <references>: memory follows alerts, not history
)
PEAKS_KEPT = 8  # (transition, peak) changes kept per alert: a few episodes' worth
# GET /alerts/history covers this long before the newest transition (memory follows it, not the
# topic's whole history)
HISTORY_KEPT = timedelta(days=90)


def _higher(a: Level | None, b: Level | None) -> Level | None:
    if a is None or b is None:
        return a or b
    return a if LEVEL_RANK[a] >= LEVEL_RANK[b] else b


@dataclass
class AlertPicture:
    latest: dict[str, AlertEvent] = field(default_factory=dict)
    episodes: dict[str, list[AlertEvent]] = field(
        default_factory=dict
    )  # transitions since the last resolution
    partitions: dict[str, int] = field(default_factory=dict)
    # per alert, each transition where its episode's highest level so far changed, with that level
    peaks: dict[str, list[tuple[int, Level | None]]] = field(default_factory=dict)
    # every transition of the last HISTORY_KEPT, in the order read
    history: deque[AlertEvent] = field(default_factory=deque)

    def record(self, alert: AlertEvent, partition: int) -> None:
        current = self.latest.get(alert.alert_id)
        if current is not None and current.transition >= alert.transition:
            return  # a repeat or an older transition
        self.history.append(alert)
        while self.history and self.history[0].evaluated_at < alert.evaluated_at - HISTORY_KEPT:
            self.history.popleft()
        changes = self.peaks.setdefault(alert.alert_id, [])
        opening = current is None or current.status == "resolved" or not changes
        was = None if opening else changes[-1][1]
        peak = _higher(was, _higher(alert.level, alert.previous_level))
        if opening or peak != was:
            changes.append((alert.transition, peak))
            del changes[:-PEAKS_KEPT]
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

    def peak_at(self, alert: AlertEvent) -> Level | None:
        """The highest level the alert's episode had reached by this transition (recorded or
        older): whoever that level reached hears the episode to its end. Without a record (older
        than those kept), the transition's own levels."""
        own = _higher(alert.level, alert.previous_level)
        known = [p for t, p in self.peaks.get(alert.alert_id, []) if t <= alert.transition]
        return _higher(known[-1], own) if known else own


def is_acknowledged(alert: AlertEvent, ack: Acknowledgement | None) -> bool:
    """An acknowledgement covers the transition it was given for, and the later transitions of the
    same episode that are no higher than the level acknowledged (de-escalations); an escalation
    above it, or a new episode, needs a new one."""
    if ack is None:
        return False
    if ack.transition >= alert.transition:
        return True
    if ack.level is None or ack.started_at is None or alert.status != "firing":
        return False
    return (
        ack.started_at == alert.started_at
        and alert.level is not None
        and LEVEL_RANK[alert.level] <= LEVEL_RANK[ack.level]
    )


def ack_of(
    acks: Mapping[str, Acknowledgement], alert_id: str, contact_id: str
) -> Acknowledgement | None:
    """This contact's acknowledgement of the alert (or one given for every contact, as before
    acknowledgements were per contact)."""
    return acks.get(ack_key(alert_id, contact_id)) or acks.get(alert_id)


def acknowledged_by(
    acks: Mapping[str, Acknowledgement], alert: AlertEvent, contact_id: str
) -> bool:
    return is_acknowledged(alert, ack_of(acks, alert.alert_id, contact_id))


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
