"""Which contacts an alert transition concerns, and which of them a silence mutes. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas import LEVEL_RANK, AlertEvent, Contact, Level, Scope
from schemas.notify import Silence
from services.common.geography import Geography


def concerns_contact(contact: Contact, scope: Scope, geography: Geography) -> bool:
    """A contact with no countries and no corridors follows the whole region."""
    if not contact.countries and not contact.corridors:
        return True
    if scope.kind == "region":
        return False
    if scope.kind == "corridor":
        if scope.id in contact.corridors:
            return True
        return bool(set(contact.countries) & set(geography.countries_of(scope)))
    if scope.country in contact.countries:
        return True
    if scope.kind == "site":
        return any(
            scope.id in geography.corridors[c].sites
            for c in contact.corridors
            if c in geography.corridors
        )
    return False


def route_to_contacts(
    alert: AlertEvent,
    contacts: Iterable[Contact],
    geography: Geography,
    peak: Level | None = None,
) -> list[Contact]:
    """Contacts that receive this transition. `min_level` gates the opening only: every later
    transition of the episode, its de-escalations and resolution included, goes to whoever the
    episode's highest level so far (`peak`, from AlertPicture.peak_at) reached."""
    level = peak or (alert.level if alert.status == "firing" else alert.previous_level)
    if level is None:
        return []
    return [
        c
        for c in contacts
        if (not c.trigger_ids or alert.rule_id in c.trigger_ids)
        and LEVEL_RANK[level] >= LEVEL_RANK[c.min_level]
        and concerns_contact(c, alert.scope, geography)
    ]


def silenced_by(alert: AlertEvent, silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The first active silence that matches the alert, if any."""
    return next((s for s in silences if s.expired_by is None and s.matches(alert, now)), None)


def escalation_targets(contacts: Iterable[Contact], by_id: dict[str, Contact]) -> list[Contact]:
    """The escalation contacts of these contacts, each once, skipping unknown ids and the contacts
    themselves."""
    seen = {c.id for c in contacts}
    out = []
    for contact in contacts:
        for target in contact.escalation_contacts:
            if target not in seen and target in by_id:
                seen.add(target)
                out.append(by_id[target])
    return out
