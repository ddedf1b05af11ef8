"""Webhook security: signatures that detect tampering and replay; private, loopback and plain-http
targets refused unless the deployment allows them."""

from __future__ import annotations

import time

import pytest

from services.notify.webhook import WebhookTargetRefused, check_target, sign, verify


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
