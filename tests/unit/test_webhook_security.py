"""Webhook security: signatures that detect tampering and replay; private, loopback and plain-http
targets refused unless the deployment allows them; the address checked is the one connected to."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from services.notify.webhook import (
    WebhookTargetRefused,
    check_target,
    pinned,
    post_webhook,
    sign,
    verify,
)


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


async def test_the_address_used_is_the_address_checked(monkeypatch):
    """A host that resolves to a public address when checked and to a private one a moment later
    (DNS rebinding): the POST goes to the address that was checked, with the name as Host and as
    TLS server name, and nothing is resolved again."""
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    lookups: list[str] = []

    async def getaddrinfo(host, port, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    url = "https://hooks.example.org/ews?x=1"
    address = await check_target(url, allow_private=False)
    assert address == "93.184.216.34"
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://10.0.0.1/"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        result = await post_webhook(
            client, url, "s" * 20, b"{}", "k", "application/json", 0, address
        )
    [request] = seen  # the redirect is not followed
    assert not result.delivered and result.status_code == 302
    assert (request.url.host, request.url.path, request.url.query) == (
        "93.184.216.34",
        "/ews",
        b"x=1",
    )
    assert request.headers["Host"] == "hooks.example.org"
    assert request.extensions["sni_hostname"] == "hooks.example.org"
    assert lookups == ["hooks.example.org"]


def test_a_pinned_ipv6_address_is_bracketed_and_the_port_kept():
    target, headers, _ = pinned("https://hooks.example.org:8443/h", "2001:db8::1")
    assert str(target) == "https://[2001:db8::1]:8443/h"
    assert headers == {"Host": "hooks.example.org:8443"}
