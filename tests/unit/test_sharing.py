"""The sharing policy: what a country lets recipients outside it see (full figures, aggregates only,
nothing) and the floor under which small counts of people read as "<N"."""

from __future__ import annotations

from schemas.config import SharingFile
from services.notify.sharing import share
from tests.helpers import contact, episode, shared

POLICY = SharingFile.model_validate(
    {
        "default": {"outside": "full", "small_count_floor": 5},
        "countries": {
            "PA": {"outside": "aggregates", "small_count_floor": 20},
            "HN": {"outside": "nothing"},
        },
    }
)


def test_recipients_inside_the_country_get_full_figures():
    alert = episode(2600)[0]
    seen = shared(alert, contact(country="PA"), POLICY)
    assert seen.alert.scope.kind == "site" and seen.alert.evidence and not seen.aggregated


def test_aggregates_only_hides_the_site_and_evidence_from_recipients_outside():
    alert = episode(2600)[0]
    seen = shared(alert, contact(country="CR"), POLICY)
    assert seen.aggregated
    assert (seen.alert.scope.kind, seen.alert.scope.id) == ("country", "PA")
    assert seen.alert.evidence == []


def test_nothing_means_not_sent_outside_the_country():
    alert = episode(1200, site="HN-TROJES", frm="NI", to="HN")[0]
    assert share(alert, contact(country="GT"), POLICY) is None
    assert share(alert, contact(country="HN"), POLICY) is not None


def test_small_counts_read_below_the_floor():
    alert = episode(12, levels={"watch": 10})[0]
    seen = shared(alert, contact(country="CR"), POLICY)
    assert seen.floored and seen.value_text == "<20"
    assert "12" not in seen.value_text


def test_the_floor_applies_to_counts_of_people_not_to_ratios_or_levels():
    alert = episode(12, levels={"watch": 10})[0].model_copy(
        update={"kind": "composite", "value": 1.0}
    )
    seen = shared(alert, contact(country="CR"), POLICY)
    assert not seen.floored and seen.value_text == "1"
