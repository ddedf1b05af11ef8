"""Routing: which contacts an alert goes to, by country, level, trigger and corridor; resolutions
to whoever received the level they resolve."""

from __future__ import annotations

from services.notify.routing import route_to_contacts
from tests.helpers import GEOGRAPHY, alerts_for, contact, crossing


def test_routing_by_country_level_trigger_and_corridor():
    firing = alerts_for(crossing(0, 2600))[0]  # warning at PA-LAJAS-BLANCAS
    contacts = [
        contact("regional"),
        contact("panama", countries=["PA"]),
        contact("costa-rica", countries=["CR"]),
        contact("emergencies-only", min_level="emergency"),
        contact("other-trigger", trigger_ids=["mass-displacement"]),
        contact("darien", corridors=["darien-northbound"]),
        contact("andean", corridors=["andean-southbound"]),
    ]
    assert [c.id for c in route_to_contacts(firing, contacts, GEOGRAPHY)] == [
        "regional",
        "panama",
        "darien",
    ]


def test_a_resolution_goes_to_whoever_received_the_level_it_resolves():
    alerts = alerts_for(crossing(0, 2600), crossing(1, 100), clear=800)
    resolved = alerts[-1]
    assert resolved.status == "resolved"
    warning_and_up = contact("warning-up", min_level="warning")
    emergency_only = contact("emergency-only", min_level="emergency")
    assert [
        c.id for c in route_to_contacts(resolved, [warning_and_up, emergency_only], GEOGRAPHY)
    ] == ["warning-up"]


def test_a_corridor_alert_reaches_countries_along_the_corridor():
    alert = alerts_for(crossing(0, 1200), id="corridor", scope="corridor")[0]
    assert [
        c.id
        for c in route_to_contacts(
            alert, [contact("hn", countries=["HN"]), contact("cl", countries=["CL"])], GEOGRAPHY
        )
    ] == ["hn"]
