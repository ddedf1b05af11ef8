"""CAP 1.2 messages validate against the OASIS schema, map levels to severity, and reference the
earlier messages of their episode."""

from __future__ import annotations

import pytest
import xmlschema

from services.common.settings import PROJECT_ROOT
from services.notify.rendering import LANGUAGES, render_cap
from tests.helpers import GEOGRAPHY, contact, episode, shared

# The OASIS schema as shipped beside the project (../shared), else the copy kept with the tests.
CAP_XSD = next(
    p
    for p in (
        PROJECT_ROOT.parent / "shared" / "CAP-v1.2.xsd",
        PROJECT_ROOT / "tests" / "data" / "CAP-v1.2.xsd",
    )
    if p.exists()
)


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
        xml = render_cap(shared(alert, reader), reader.language, alerts[:i], GEOGRAPHY)
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


def test_cap_carries_the_contacts_acknowledgement_link(cap_schema):
    warning = episode(2600)[0]
    reader = contact(format="cap")
    link = "https://ews.example.org/ack/abc.def"
    xml = render_cap(shared(warning, reader), reader.language, [], GEOGRAPHY, link).decode()
    cap_schema.validate(xml)
    assert f"<valueName>ack_url</valueName><value>{link}</value>" in xml
    assert (
        "ack_url"
        not in render_cap(shared(warning, reader), reader.language, [], GEOGRAPHY).decode()
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_test_message_in_cap_is_valid_and_marked_as_a_test(cap_schema, language):
    from datetime import UTC, datetime

    from services.notify.probe import render_probe_cap

    reader = contact(language=language, format="cap", country="PA")
    xml = render_probe_cap(
        reader, "op.pa", datetime(2026, 12, 4, 9, 30, tzinfo=UTC), "ews-test:c:1"
    )
    cap_schema.validate(xml.decode())
    text = xml.decode()
    assert (
        "<status>Test</status>" in text and "<expires>2026-12-04T10:30:00+00:00</expires>" in text
    )
    assert "op.pa" in text and "<value>PA</value>" in text
