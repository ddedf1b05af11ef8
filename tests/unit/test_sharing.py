"""The sharing policy, the one function deciding what of an alert a reader may see: full figures,
aggregates only (no place, no figure under a national label, no evidence, an identifier naming no
site), nothing; small counts floored in values and details; corridors and regions; and, as a
property, that nothing rendered for an outside reader in any format or header carries a withheld
site, area, source or evidence id or an unfloored small count."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import AlertEvent, Scope
from schemas.config import SharingFile
from services.notify.cap import render_cap
from services.notify.console.views import alert_href
from services.notify.rendering import render_email, render_json, render_summary
from services.notify.sharing import Reader
from tests.helpers import (
    COUNTRIES,
    GEOGRAPHY,
    PLACES_OF,
    contact,
    episode,
    policies,
    shared,
    shared_alerts,
    sharing,
)

POLICY = SharingFile.model_validate(
    {
        "default": {"outside": "full", "small_count_floor": 5},
        "countries": {
            "PA": {"outside": "aggregates", "small_count_floor": 20},
            "HN": {"outside": "nothing"},
        },
    }
)
# The reproduction: Honduras shares aggregates, Mexico counts floored at 10.
SHIPPED = SharingFile.model_validate(
    {
        "default": {"outside": "full", "small_count_floor": 5},
        "countries": {
            "HN": {"outside": "aggregates", "small_count_floor": 10},
            "MX": {"outside": "full", "small_count_floor": 10},
        },
    }
)


def everything_sent(alert: AlertEvent, reader_contact, policy: SharingFile) -> str:
    """Every byte a recipient gets about this alert: JSON body, CAP, e-mail, the delivery key."""
    seen = shared(alert, reader_contact, policy)
    key = seen.shown_key(f"{alert.alert_id}:{alert.transition}:{reader_contact.id}")
    console = "https://ews.example.org" + alert_href(seen.alert.alert_id)
    email = render_email(seen, reader_contact, GEOGRAPHY, None, console_url=console)
    return "\n".join(
        [
            render_json(seen, reader_contact, GEOGRAPHY, console_url=console).decode(),
            render_cap(seen, reader_contact.language, [], GEOGRAPHY).decode(),
            email.subject,
            email.text,
            email.html,
            key,
        ]
    )


def test_recipients_inside_the_country_get_full_figures():
    alert = episode(2600)[0]
    seen = shared(alert, contact(country="PA"), POLICY)
    assert seen.alert.scope.kind == "site" and seen.alert.evidence and not seen.aggregated
    assert seen.value == 2600 and seen.alert.alert_id == alert.alert_id


def test_a_site_alert_of_an_aggregates_country_names_no_site_and_shows_no_site_figure_outside():
    """The issue: a Panamanian contact got `crossing-surge/site/HN-TROJES` in the body, the
    Idempotency-Key, CAP and e-mail, and the site's 3,000 presented as Honduras's figure."""
    alert = episode(3000, site="HN-TROJES", frm="NI", to="HN")[0]
    reader = contact("pa-focal", country="PA")
    sent = everything_sent(alert, reader, SHIPPED)
    for withheld in ("HN-TROJES", "HN-EP", alert.alert_id, *alert.evidence):
        assert withheld not in sent
    assert "3000" not in sent and "3,000" not in sent
    body = json.loads(render_json(shared(alert, reader, SHIPPED), reader, GEOGRAPHY))
    assert body["scope"] == {"kind": "country", "id": "HN", "country": "HN"}
    assert body["value"] is None and body["threshold"] is None and body["evidence"] == []
    assert "sharing policy" in body["summary"]
    # Stable and distinct: repeats and all-clears of one site match, two sites do not.
    other = episode(3000, site="HN-DANLI", frm="NI", to="HN")[0]
    ids = {shared(a, reader, SHIPPED).alert.alert_id for a in (alert, alert, other)}
    assert len(ids) == 2


def test_a_withheld_identifier_depends_on_the_deployment_key():
    alert = episode(3000, site="HN-TROJES", frm="NI", to="HN")[0]
    one = sharing(SHIPPED).view(alert, Reader("PA"))
    two = type(sharing(SHIPPED))(SHIPPED, GEOGRAPHY, b"another-key" * 3).view(alert, Reader("PA"))
    assert one is not None and two is not None and one.alert.alert_id != two.alert.alert_id


def test_nothing_means_not_sent_outside_the_country():
    alert = episode(1200, site="HN-TROJES", frm="NI", to="HN")[0]
    policy = sharing(POLICY)
    assert policy.view(alert, Reader("GT")) is None
    assert policy.view(alert, Reader(None)) is None
    assert policy.view(alert, Reader("HN")) is not None
    assert policy.view(alert, Reader(None, sees_all=True)) is not None  # an admin


def test_a_corridor_through_a_country_that_shares_nothing_is_withheld_outside_it():
    corridor = corridor_alert(["HN-INM/e1", "PA-SNM/e2"])
    policy = sharing(POLICY)
    assert policy.view(corridor, Reader("CR")) is None
    assert policy.view(corridor, Reader("HN")) is not None  # Honduras's own readers see it
    assert sharing(SHIPPED).view(corridor, Reader("CR")) is not None


def corridor_alert(evidence: list[str], value: float = 8000, **update) -> AlertEvent:
    base = episode(8000)[0]
    return base.model_copy(
        update={
            "alert_id": "crossing-surge/corridor/darien-northbound",
            "scope": Scope(kind="corridor", id="darien-northbound"),
            "evidence": evidence,
            "value": value,
            **update,
        }
    )


def test_corridor_alerts_carry_evidence_only_of_countries_that_share_it():
    """The issue: corridor alerts carried Honduran evidence ids to everyone."""
    corridor = corridor_alert(["HN-INM/e1", "PA-SNM/e2", "UNKNOWN-SRC/e3"])
    seen = sharing(SHIPPED).view(corridor, Reader("PA"))
    assert seen is not None and seen.alert.evidence == ["PA-SNM/e2"]
    assert seen.withheld_evidence == 2
    inside = sharing(SHIPPED).view(corridor, Reader("HN"))
    assert inside is not None and "HN-INM/e1" in inside.alert.evidence


def test_counts_in_details_are_floored_for_outside_readers():
    """The issue: new_value details showed a count of 3 under Mexico's floor of 10, and
    rate_of_change details were never floored."""
    base = episode(3000, site="MX-TAPACHULA", frm="GT", to="MX")[0]
    new_value = base.model_copy(
        update={"kind": "new_value", "value": 12.0, "details": {"AF": 3.0, "VE": 12.0}}
    )
    seen = shared(new_value, contact(country="GT"), SHIPPED)
    assert seen.alert.details == {"VE": 12.0} and seen.below_floor == ("AF",)
    rate = base.model_copy(
        update={
            "kind": "rate_of_change",
            "value": 2.5,
            "details": {"current": 7.0, "baseline_expected": 2.8},
        }
    )
    seen = shared(rate, contact(country="GT"), SHIPPED)
    assert seen.alert.details == {} and seen.value == 2.5  # a ratio is not a count
    assert shared(rate, contact(country="MX"), SHIPPED).alert.details == rate.details


def test_small_counts_read_below_the_floor():
    alert = episode(12, levels={"watch": 10})[0]
    seen = shared(alert, contact(country="CR"), SharingFile(default={"small_count_floor": 20}))
    assert seen.floored and seen.value_text == "<20" and seen.value is None
    assert "12" not in seen.value_text


def test_the_floor_applies_to_counts_of_people_not_to_ratios_or_levels():
    alert = episode(12, levels={"watch": 10})[0].model_copy(
        update={"kind": "composite", "value": 1.0}
    )
    seen = shared(alert, contact(country="CR"), SharingFile(default={"small_count_floor": 20}))
    assert not seen.floored and seen.value_text == "1"


# --- the property: nothing withheld reaches an outside reader, in any format ------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alert=shared_alerts(), policy=policies, country=st.sampled_from([None, *COUNTRIES]))
def test_nothing_withheld_reaches_an_outside_reader_in_any_format(alert, policy, country):
    reader = contact("reader", country=country)
    view = sharing(policy)
    seen = view.view(alert, Reader.of_contact(reader))
    members = view.countries_of(alert.scope)
    outside = {c: view.rule(c) for c in members if c != country}
    if any(r.outside == "nothing" for r in outside.values()):
        assert seen is None
        return
    assert seen is not None
    sent = everything_sent(alert, reader, policy)
    # no site, area or source of a country that withholds from this reader, in any byte sent
    for c, rule in outside.items():
        if rule.outside != "full":
            for place in PLACES_OF.get(c, ()):
                assert not re.search(rf"(?<![A-Z-]){re.escape(place)}(?![A-Z-])", sent), place
    # evidence only from sources whose country shares in full with this reader
    for eid in seen.alert.evidence:
        source = GEOGRAPHY.sources.get(eid.split("/")[0])
        if alert.scope.country is None or outside:
            assert source is not None or alert.scope.country is not None
            if source is not None and source.country != country:
                assert view.rule(source.country).outside == "full"
    # no count below the floor, in the structured fields
    floor = max((r.small_count_floor for r in outside.values()), default=0)
    body = json.loads(render_json(seen, reader, GEOGRAPHY))
    if alert.kind in ("threshold", "new_value") and body["value"] is not None:
        assert body["value"] == 0 or body["value"] >= floor
    if alert.kind in ("rate_of_change", "ratio", "new_value"):
        assert all(v == 0 or v >= floor for v in body["details"].values())
    # never a site's figure under a national label
    if alert.scope.kind != body["scope"]["kind"]:
        assert body["value"] is None and body["threshold"] is None
    assert render_summary(seen, GEOGRAPHY, reader.language)


def test_the_check_notes_corridors_a_country_that_shares_nothing_withholds(tmp_path):
    from click.testing import CliRunner

    from services.cli import main
    from services.common.settings import PROJECT_ROOT

    sharing_file = tmp_path / "sharing.yaml"
    sharing_file.write_text(
        "version: 1\ndefault: {outside: full, small_count_floor: 5}\n"
        "countries:\n  HN: {outside: nothing}\n  MX: {outside: aggregates}\n"
    )
    sites_file = PROJECT_ROOT / "config" / "sites.yaml"
    result = CliRunner().invoke(main, ["rules", "check", str(sites_file), str(sharing_file)])
    assert result.exit_code == 0, result.output
    assert (
        f"{sharing_file}:4: countries.HN: note: HN shares nothing, so alerts of the region and of "
        "corridor darien-northbound" in result.output
    )
    assert "MX shares nothing" not in result.output
