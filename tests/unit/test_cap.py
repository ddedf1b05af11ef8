"""CAP 1.2 messages validate against the OASIS schema, map levels to severity, and reference the
earlier messages of their episode."""

from __future__ import annotations

from datetime import datetime

import pytest
import xmlschema

from schemas import Scope
from services.common.settings import PROJECT_ROOT
from services.notify.cap import render_cap
from services.notify.rendering import LANGUAGES
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


# --- what alert hubs require (Google Public Alerts, IFRC Alert Hub, WMO's register) -----------

KINDS = {  # each trigger kind with a scope it watches and figures it produces
    "threshold": ("site", "PA-LAJAS-BLANCAS", {}),
    "ratio": ("area", "PA-5", {}),
    "rate_of_change": ("site", "CR-PASO-CANOAS", {"current": 900, "baseline_expected": 300}),
    "new_value": ("site", "HN-TROJES", {"AF": 60}),
    "silence": ("source", "PA-SNM", {"silent_hours": 60, "expected_every_hours": 24}),
    "composite": ("area", "PA-5", {"crossing-surge": 2, "shelter-saturation": 1}),
}


def hub_alerts():
    from tests.unit.test_wording import alert

    for kind, (scope_kind, scope_id, details) in KINDS.items():
        country = scope_id[:2]
        scope = {"kind": scope_kind, "id": scope_id, "country": country}
        for level in ("watch", "warning", "emergency", None):
            yield alert(
                kind,
                0.9 if kind == "ratio" else 4000,
                0.85 if kind == "ratio" else 3000,
                scope=Scope.model_validate(scope),
                level=level,
                status="firing" if level else "resolved",
                previous_level=None if level else "warning",
                details=details,
                metric={"new_value": "nationality", "ratio": "shelter_occupancy"}.get(
                    kind, "count"
                ),
                denominator="shelter_capacity" if kind == "ratio" else "",
                baseline="P28D" if kind in ("rate_of_change", "new_value") else "",
                title={
                    "en": "Corridor-wide surge across countries and more words",
                    "es": "Aumento a lo largo del corredor en varios países",
                    "fr": "Afflux sur l'ensemble du corridor",
                    "pt": "Aumento ao longo do corredor entre países",
                },
            )


def infos_of(doc: dict) -> list[dict]:
    return doc.get("cap:info", doc.get("info", []))


def field_of(item: dict, name: str):
    return item.get(f"cap:{name}", item.get(name))


@pytest.mark.parametrize("all_languages", [False, True])
def test_cap_meets_what_alert_hubs_require_for_every_kind_and_level(cap_schema, all_languages):
    from services.notify.cap import CapProfile

    profile = CapProfile(
        sender="alertas@snm.gob.pa", oid="2.49.0.1.591.0", all_languages=all_languages
    )
    reader = contact(language="es", format="cap")
    for a in hub_alerts():
        xml = render_cap(shared(a, reader), "es", [], GEOGRAPHY, profile=profile).decode()
        cap_schema.validate(xml)
        doc = cap_schema.to_dict(xml)
        assert field_of(doc, "sender") == "alertas@snm.gob.pa"
        assert field_of(doc, "identifier").startswith("urn:oid:2.49.0.1.591.0.2026.11.13.0.0.0.")
        assert field_of(doc, "status") == "Actual"
        infos = infos_of(doc)
        languages = [field_of(i, "language") for i in infos]
        assert languages == (["es", "en", "fr", "pt"] if all_languages else ["es"])
        assert len(set(languages)) == len(languages)  # one <info> per language
        for info in infos:
            for name in ("urgency", "severity", "certainty"):
                assert field_of(info, name) != "Unknown", (a.kind, a.level, name)
            assert len(field_of(info, "event")) < 35, field_of(info, "event")
            assert field_of(info, "description")
            expires = datetime.fromisoformat(field_of(info, "expires"))
            assert expires > a.evaluated_at  # a hub does not drop it on arrival
            [area] = field_of(info, "area")
            assert len(field_of(area, "areaDesc")) < 50
            assert (
                field_of(area, "polygon") or field_of(area, "circle") or field_of(area, "geocode")
            )
            if a.scope.kind == "site":
                assert field_of(area, "circle"), a.alert_id  # sites are placed by a circle
            if a.scope.kind == "country":
                assert field_of(area, "polygon")
    # emergencies expire sooner than watches (EWS_CAP_EXPIRES)
    watch, *_, emergency = [a for a in hub_alerts() if a.kind == "threshold" and a.level]
    ends = []
    for a in (watch, emergency):
        xml = render_cap(shared(a, reader), "es", [], GEOGRAPHY, profile=profile).decode()
        ends.append(
            datetime.fromisoformat(field_of(infos_of(cap_schema.to_dict(xml))[0], "expires"))
        )
    assert ends[1] < ends[0]


def test_a_country_and_a_configured_area_get_polygons_and_the_identifier_is_stable(tmp_path):
    import json

    from services.notify.cap import CapProfile, load_area_shapes

    shape = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": "PA-5"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[-78.0, 7.2], [-77.2, 7.2], [-77.2, 8.7], [-78.0, 8.7], [-78.0, 7.2]]
                    ],
                },
            }
        ],
    }
    (tmp_path / "areas.geojson").write_text(json.dumps(shape))
    profile = CapProfile(area_shapes=load_area_shapes(tmp_path / "areas.geojson"))
    reader = contact(format="cap")
    area = next(a for a in hub_alerts() if a.scope.kind == "area" and a.kind == "ratio")
    xml = render_cap(shared(area, reader), "en", [], GEOGRAPHY, profile=profile).decode()
    assert "<polygon>7.2,-78.0 7.2,-77.2 8.7,-77.2 8.7,-78.0 7.2,-78.0</polygon>" in xml
    assert "<areaDesc>Darién (Panama)</areaDesc>" in xml
    country = area.model_copy(update={"scope": Scope(kind="country", id="HN", country="HN")})
    xml = render_cap(shared(country, reader), "en", [], GEOGRAPHY, profile=profile).decode()
    assert xml.count("<polygon>") >= 1 and "<areaDesc>Honduras</areaDesc>" in xml
    again = render_cap(shared(country, reader), "en", [], GEOGRAPHY, profile=profile).decode()
    assert again == xml  # the same transition, the same message
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"features": [{"properties": {}, "geometry": {"type": "Point"}}]}))
    with pytest.raises(ValueError, match=r"bad.geojson: features\[0\]: properties.id"):
        load_area_shapes(bad)


def test_a_place_withheld_from_the_reader_is_placed_by_its_country_only():
    from schemas.config import SharingFile

    policy = SharingFile.model_validate({"countries": {"HN": {"outside": "aggregates"}}})
    trojes = next(a for a in hub_alerts() if a.scope.id == "HN-TROJES" and a.level == "warning")
    reader = contact(format="cap", country="PA")
    xml = render_cap(shared(trojes, reader, policy), "en", [], GEOGRAPHY).decode()
    assert "<circle>" not in xml and "TROJES" not in xml and "Trojes" not in xml
    assert "<areaDesc>Honduras</areaDesc>" in xml and "<polygon>" in xml
