"""Webhook delivery: target checks, the signature receivers verify, and one POST attempt."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx


class WebhookTargetRefused(ValueError):
    """The URL is not an allowed webhook target; the message says why."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """`X-EWS-Signature` value: t={unix},v1={hex HMAC-SHA256(secret, "{t}.{body}")}."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute the HMAC, compare in constant time, refuse
    stale timestamps."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def refused_as_written(url: str, allow_private: bool) -> str | None:
    """Why a webhook URL would be refused whatever its host resolves to (not https, a private or
    loopback address written as such, localhost), or None: what `ews rules check` can say without
    DNS."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"webhook URL must be an absolute https:// URL, got {url!r}"
    if allow_private:
        return None
    if parts.scheme != "https":
        return (
            f"webhook URL must use https, got {parts.scheme}:// (set EWS_ALLOW_PRIVATE_WEBHOOKS=1 "
            "only for tests)"
        )
    host = parts.hostname
    try:
        private = _refused_address(host)
    except ValueError:  # a name, not an address
        private = host == "localhost" or host.endswith(".localhost")
    if private:
        return (
            f"webhook host {host} is a private or loopback address; ews only posts to public "
            "addresses unless EWS_ALLOW_PRIVATE_WEBHOOKS is set"
        )
    return None


async def check_target(url: str, allow_private: bool) -> str:
    """Refuse non-https URLs and hosts resolving to private or loopback addresses, unless allowed;
    the address checked, which the attempt then connects to (`post_webhook(address=...)`): a name
    that resolves differently a moment later (DNS rebinding) cannot slip past the check."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookTargetRefused(f"webhook URL must be an absolute https:// URL, got {url!r}")
    if not allow_private and parts.scheme != "https":
        raise WebhookTargetRefused(
            f"webhook URL must use https, got {parts.scheme}:// (set "
            "EWS_ALLOW_PRIVATE_WEBHOOKS=1 only for tests)"
        )
    default_port = 443 if parts.scheme == "https" else 80
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            parts.hostname, parts.port or default_port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise WebhookTargetRefused(
            f"webhook host {parts.hostname} does not resolve: {exc.strerror}"
        ) from None
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if _refused_address(address):
                raise WebhookTargetRefused(
                    f"webhook host {parts.hostname} resolves to {address}, a private or loopback "
                    "address; ews only posts to public addresses unless EWS_ALLOW_PRIVATE_WEBHOOKS "
                    "is set"
                )
    if not addresses:
        raise WebhookTargetRefused(f"webhook host {parts.hostname} resolves to no address")
    return addresses[0]


def pinned(url: str, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The request that reaches `address` for `url`: the URL with the address for its host, the
    Host header it had, and for https the host name as TLS server name (the certificate is still
    verified against the name, not the address)."""
    original = httpx.URL(url)
    headers = {"Host": original.netloc.decode("ascii")}
    extensions = {"sni_hostname": original.host} if original.scheme == "https" else {}
    return original.copy_with(host=address), headers, extensions


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header in either form: seconds (fractions allowed) or an HTTP-date; None when
    absent or unreadable, 0 for a date already past."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, (when - now).total_seconds())
    return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None


@dataclass(frozen=True)
class AttemptResult:
    delivered: bool
    status_code: int | None
    detail: str
    duration_s: float
    retry_after_s: float | None = None


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    body: bytes,
    idempotency_key: str,
    content_type: str,
    now_unix: int,
    address: str | None = None,
) -> AttemptResult:
    """One POST (to `address` when given: the one `check_target` checked); a 2xx is delivered,
    anything else (or no answer, or a redirect, which is not followed) is not."""
    headers = {
        "Content-Type": content_type,
        "Idempotency-Key": idempotency_key,
        "X-EWS-Signature": sign(secret, body, now_unix),
        "User-Agent": "ews-notify",
    }
    target: str | httpx.URL = url
    extensions: dict[str, str] = {}
    if address is not None:
        target, host, extensions = pinned(url, address)
        headers.update(host)
    started = time.monotonic()
    try:
        request = client.build_request(
            "POST", target, content=body, headers=headers, extensions=extensions
        )
        response = await client.send(request, follow_redirects=False)
    except httpx.HTTPError as exc:
        return AttemptResult(
            False, None, f"{type(exc).__name__}: {exc}"[:300], time.monotonic() - started
        )
    elapsed = time.monotonic() - started
    if 200 <= response.status_code < 300:
        return AttemptResult(True, response.status_code, "", elapsed)
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
    return AttemptResult(
        False, response.status_code, f"HTTP {response.status_code}", elapsed, retry_after
    )
