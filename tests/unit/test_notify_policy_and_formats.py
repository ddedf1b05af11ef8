"""Sharing policy, CAP 1.2 (validated against the OASIS schema), e-mail text,
silences, reminders."""

from datetime import timedelta

import pytest
import xmlschema

from schemas import Contact
from schemas.config import SharingFile
from schemas.notify import Acknowledgement, Silence
from services.common.settings import PROJECT_ROOT
from services.notify.picture import EPISODE_KEPT, AlertPicture, reminders_due
from services.notify.rendering import LANGUAGES, render_cap, render_email
from services.notify.routing import escalation_targets, silenced_by
from services.notify.sharing import share
from services.triggers.backtest import run_backtest
from tests.helpers import NOW, crossing, engine_with, observation, rules_yaml, threshold_rule

# The OASIS schema as shipped beside the project (../shared), else the copy kept with the tests.
CAP_XSD = next(
    p
    for p in (
        PROJECT_ROOT.parent / "shared" / "CAP-v1.2.xsd",
        PROJECT_ROOT / "tests" / "data" / "CAP-v1.2.xsd",
    )
    if p.exists()
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


def contact(cid="c", **fields) -> Contact:
    return Contact.model_validate(
        {
            "id": cid,
            "name": cid,
            "organisation": "org",
            **fields,
            "channels": [{"type": "webhook", "url": "https://example.org/h", "secret": "s" * 20}],
        }
    )


def episode(*counts, site="PA-LAJAS-BLANCAS", frm="CO", to="PA", **rule):
    engine = engine_with(rules_yaml(threshold_rule(**rule)))
    return run_backtest(
        [observation(crossing(d, c, site=site, frm=frm, to=to)) for d, c in enumerate(counts)],
        engine,
        NOW,
    )


def test_recipients_inside_the_country_get_full_figures():
    alert = episode(2600)[0]
    shared = share(alert, contact(country="PA"), POLICY)
    assert shared.alert.scope.kind == "site" and shared.alert.evidence and not shared.aggregated


def test_aggregates_only_hides_the_site_and_evidence_from_recipients_outside():
    alert = episode(2600)[0]
    shared = share(alert, contact(country="CR"), POLICY)
    assert shared.aggregated
    assert (shared.alert.scope.kind, shared.alert.scope.id) == ("country", "PA")
    assert shared.alert.evidence == []


def test_nothing_means_not_sent_outside_the_country():
    alert = episode(1200, site="HN-TROJES", frm="NI", to="HN")[0]
    assert share(alert, contact(country="GT"), POLICY) is None
    assert share(alert, contact(country="HN"), POLICY) is not None


def test_small_counts_read_below_the_floor():
    alert = episode(12, levels={"watch": 10})[0]
    shared = share(alert, contact(country="CR"), POLICY)
    assert shared.floored and shared.value_text == "<20"
    assert "12" not in shared.value_text


@pytest.fixture(scope="module")
def cap_schema():
    if not CAP_XSD.exists():
        pytest.skip(f"{CAP_XSD} is not present on this machine")
    return xmlschema.XMLSchema(str(CAP_XSD))


@pytest.mark.parametrize("language", LANGUAGES)
def test_cap_validates_and_maps_levels_to_severity(cap_schema, language):
    alerts = episode(1200, 2600, 5100, 100, clear=800)
    reader = contact(language=language, format="cap")
    severities = []
    for i, alert in enumerate(alerts):
        xml = render_cap(share(alert, reader, SharingFile()), reader, alerts[:i])
        cap_schema.validate(xml.decode())
        doc = cap_schema.to_dict(xml.decode())
        info = doc["cap:info"][0] if "cap:info" in doc else doc["info"][0]
        severities.append(info.get("cap:severity", info.get("severity")))
        text = xml.decode()
        assert "Z<" not in text and "+00:00</sent>" in text  # CAP dateTimes need an explicit offset
        if i == 0:
            assert "<msgType>Alert</msgType>" in text and "<references>" not in text
        else:
            assert "<msgType>Update</msgType>" in text and f"ews:{alert.alert_id}:{i}," in text
    assert severities == ["Moderate", "Severe", "Extreme", "Minor"]
    assert "<responseType>AllClear</responseType>" in text


@pytest.mark.parametrize(
    "language, words",
    [
        ("en", ("[EWS WARNING]", "Acknowledge")),
        ("es", ("[EWS ALERTA]", "Confirme")),
        ("fr", ("[EWS ALERTE]", "Accusez réception")),
        ("pt", ("[EWS ALERTA]", "Confirme o recebimento")),
    ],
)
def test_email_subject_and_body_in_the_contacts_language(language, words):
    alert = episode(2600)[0]
    reader = contact(language=language)
    subject, body = render_email(
        share(alert, reader, SharingFile()), reader, "https://ews.example.org/alerts/x/ack"
    )
    assert subject.startswith(words[0]) and "PA-LAJAS-BLANCAS" in subject
    assert words[1] in body and "https://ews.example.org/alerts/x/ack" in body


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


def test_the_floor_applies_to_counts_of_people_not_to_ratios_or_levels():
    alert = episode(12, levels={"watch": 10})[0].model_copy(
        update={"kind": "composite", "value": 1.0}
    )
    shared = share(alert, contact(country="CR"), POLICY)
    assert not shared.floored and shared.value_text == "1"
