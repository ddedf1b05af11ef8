"""Silences match alerts by rule, scope and country, within their window, until expired."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.notify import Silence
from services.notify.routing import silenced_by
from tests.helpers import NOW, episode


def silence(**matchers) -> Silence:
    return Silence(
        id="s1",
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=1),
        comment="maintenance",
        created_by="ops",
        created_at=NOW,
        **matchers,
    )


def test_silences_match_by_rule_scope_and_country_within_their_window():
    alert = episode(2600)[0]
    assert silenced_by(alert, [silence(rule_id="surge")], NOW)
    assert silenced_by(alert, [silence(country="PA", scope_kind="site")], NOW)
    assert not silenced_by(alert, [silence(country="CR")], NOW)
    assert not silenced_by(alert, [silence(rule_id="surge")], NOW + timedelta(hours=2))
    assert not silenced_by(
        alert, [silence(rule_id="surge").model_copy(update={"expired_by": "ops"})], NOW
    )
    with pytest.raises(ValueError, match="at least one matcher"):
        silence()
