"""Notify's pure parts: routing, rendering in four languages, signatures, webhook target checks."""

import json
import time

import pytest

from schemas import AlertEvent, Contact
from schemas.config import SharingFile
from services.notify.rendering import LANGUAGES, render_json
from services.notify.routing import route_to_contacts
from services.notify.sharing import share
from services.notify.webhook import WebhookTargetRefused, check_target, sign, verify
from services.triggers.backtest import run_backtest
from tests.helpers import (
    GEOGRAPHY,
    NOW,
    crossing,
    engine_with,
    observation,
    rules_yaml,
    threshold_rule,
)


def contact(cid: str, **fields) -> Contact:
    return Contact.model_validate(
        {
            "id": cid,
            "name": cid,
            "organisation": "org",
            **fields,
            "channels": [{"type": "webhook", "url": "https://example.org/h", "secret": "s" * 20}],
        }
    )


def alerts_for(*reports, **rule) -> list[AlertEvent]:
    engine = engine_with(rules_yaml(threshold_rule(**rule)))
    return run_backtest([observation(r) for r in reports], engine, NOW)


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


@pytest.mark.parametrize(
    "language, words",
    [
        ("en", "WARNING: Surge at site PA-LAJAS-BLANCAS"),
        ("es", "ALERTA: Aumento en punto PA-LAJAS-BLANCAS"),
        ("fr", "ALERTE : Afflux – site PA-LAJAS-BLANCAS"),
        ("pt", "ALERTA: Aumento em ponto PA-LAJAS-BLANCAS"),
    ],
)
def test_webhook_body_is_the_alert_plus_text_in_the_contacts_language(language, words):
    alert = alerts_for(crossing(0, 2600))[0]
    reader = contact("c", language=language)
    body = json.loads(render_json(share(alert, reader, SharingFile()), reader))
    assert body["alert_id"] == "surge/site/PA-LAJAS-BLANCAS" and body["transition"] == 1
    assert body["language"] == language
    assert body["summary"].startswith(words)
    assert {"en": "2,600", "es": "2.600", "fr": "2 600", "pt": "2.600"}[language] in body["summary"]


def test_every_language_has_a_template():
    alert = alerts_for(crossing(0, 2600), crossing(1, 10), clear=800)[-1]
    for language in LANGUAGES:
        reader = contact("c", language=language)
        assert json.loads(render_json(share(alert, reader, SharingFile()), reader))["summary"]


def test_signature_verifies_and_detects_tampering_and_replay():
    body = b'{"alert_id": "a", "transition": 1}'
    now = int(time.time())
    header = sign("shared-secret-0123456789", body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify("shared-secret-0123456789", body, header, now)
    assert not verify("shared-secret-0123456789", body + b" ", header, now)
    assert not verify("another-secret-0123456789", body, header, now)
    assert not verify("shared-secret-0123456789", body, header, now + 3600)
    assert not verify("shared-secret-0123456789", body, "garbage", now)


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://example.org/hook", "must use https"),
        ("https://127.0.0.1/hook", "private or loopback"),
        ("https://10.1.2.3/hook", "private or loopback"),
        ("https://[::1]/hook", "private or loopback"),
        ("https://169.254.169.254/latest", "private or loopback"),
        ("https://localhost/hook", "private or loopback"),
        ("ftp://example.org/x", "absolute https:// URL"),
    ],
)
async def test_private_and_plain_http_targets_are_refused(url, words):
    with pytest.raises(WebhookTargetRefused, match=words):
        await check_target(url, allow_private=False)


async def test_private_targets_are_allowed_when_the_deployment_says_so():
    await check_target("http://127.0.0.1:8080/hook", allow_private=True)
