"""Which contacts an alert transition concerns. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from schemas import LEVELS, AlertEvent, Contact, Scope
from services.common.geography import Geography

_RANK = {level: i for i, level in enumerate(LEVELS)}


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
        return any(scope.id in geography.corridors[c].sites for c in contact.corridors if c in geography.corridors)
    return False


def route_to_contacts(alert: AlertEvent, contacts: Iterable[Contact], geography: Geography) -> list[Contact]:
    """Contacts that receive this transition: a resolution goes to whoever received the level it resolves."""
    level = alert.level if alert.status == "firing" else alert.previous_level
    if level is None:
        return []
    return [
        c for c in contacts
        if (not c.trigger_ids or alert.rule_id in c.trigger_ids)
        and _RANK[level] >= _RANK[c.min_level]
        and concerns_contact(c, alert.scope, geography)
    ]
