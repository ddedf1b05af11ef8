"""The alert picture notify keeps: the latest transition of each alert and the recent transitions of
its episode, bounded however long it fires."""

from __future__ import annotations

from services.notify.picture import EPISODE_KEPT, AlertPicture
from tests.helpers import episode


def test_the_picture_keeps_the_latest_transition_and_its_episode():
    picture = AlertPicture()
    alerts = episode(1200, 2600, 100, 1300, clear=800)
    for a in alerts + [alerts[1]]:  # a late repeat changes nothing
        picture.record(a, 0)
    latest = picture.latest[alerts[0].alert_id]
    assert latest.transition == 4 and latest.status == "firing"
    assert [
        a.transition for a in picture.earlier_in_episode(latest)
    ] == []  # a new episode after the resolution


def test_an_alert_that_never_resolves_keeps_only_the_latest_transitions_of_its_episode():
    picture = AlertPicture()
    alerts = episode(
        *([1200, 2600] * 20)
    )  # watch, warning, watch, ... forty transitions, never resolved
    assert len(alerts) == 40 and all(a.status == "firing" for a in alerts)
    for a in alerts:
        picture.record(a, 0)
    latest = picture.latest[alerts[0].alert_id]
    assert len(picture.episodes[latest.alert_id]) == EPISODE_KEPT
    assert [a.transition for a in picture.earlier_in_episode(latest)] == list(
        range(41 - EPISODE_KEPT, 40)
    )
