"""Repeats and escalation: due until acknowledged; an escalation needs a new acknowledgement; each
escalation contact once."""

from __future__ import annotations

from datetime import timedelta

from schemas.notify import Acknowledgement
from services.notify.picture import reminders_due
from services.notify.routing import escalation_targets
from tests.helpers import NOW, contact, episode


def test_repeats_and_escalation_until_acknowledged():
    alert = episode(2600)[0]
    later = alert.evaluated_at + timedelta(hours=9)
    assert reminders_due(alert, None, later, timedelta(hours=4), timedelta(hours=1)) == (2, True)
    ack = Acknowledgement(alert_id=alert.alert_id, transition=alert.transition, by="pa", at=NOW)
    assert reminders_due(alert, ack, later, timedelta(hours=4), timedelta(hours=1)) == (0, False)
    escalated = episode(2600, 5100)[1]
    assert reminders_due(
        escalated,
        ack,
        escalated.evaluated_at + timedelta(hours=5),
        timedelta(hours=4),
        timedelta(hours=1),
    ) == (1, True)  # an escalation needs a new acknowledgement


def test_escalation_targets_are_known_others_once():
    a = contact("a", escalation_contacts=["boss", "ghost", "b"])
    b = contact("b", escalation_contacts=["boss"])
    boss = contact("boss")
    assert [c.id for c in escalation_targets([a, b], {"a": a, "b": b, "boss": boss})] == ["boss"]
