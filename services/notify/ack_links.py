"""One-click acknowledgement links: signed, expiring, bound to (alert, transition, contact).

Every message carries one (`{EWS_PUBLIC_URL}/ack/{token}`), so e-mail and CAP recipients can
acknowledge without a bearer token. The token is the claims as URL-safe base64 JSON and an
HMAC-SHA256 over them with EWS_LINK_SECRET, compared in constant time; it names the transition and
its level, so a link to a warning cannot acknowledge a later emergency. The alert is named by an
opaque reference (`alert_ref`), not its id: a link never shows a reader what the sharing policy
keeps from them (a site's id in an aggregated country).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas import AlertEvent, Level


class LinkRefused(ValueError):
    """The link is not valid (tampered, expired, malformed); the message says which."""


@dataclass(frozen=True)
class LinkClaims:
    alert_ref: str  # alert_ref(secret, alert_id)
    transition: int
    contact_id: str
    level: Level | None
    started_at: datetime
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest())


def alert_ref(secret: str, alert_id: str) -> str:
    """An alert's reference in links: opaque to readers, the same for every link to it."""
    return _b64(
        hmac.new(secret.encode(), b"alert:" + alert_id.encode(), hashlib.sha256).digest()[:15]
    )


def sign_link(secret: str, alert: AlertEvent, contact_id: str, expires: datetime) -> str:
    """The token of a link acknowledging this transition for this contact until `expires`."""
    claims = {
        "a": alert_ref(secret, alert.alert_id),
        "t": alert.transition,
        "c": contact_id,
        "l": alert.level,
        "s": alert.started_at.isoformat(),
        "e": int(expires.timestamp()),
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_link(secret: str, token: str, now: datetime) -> LinkClaims:
    """The claims of a valid, unexpired token, or LinkRefused saying why not."""
    payload, _, mac = token.partition(".")
    if not payload or not mac:
        raise LinkRefused("this acknowledgement link is incomplete; open it from the message")
    if not hmac.compare_digest(_mac(secret, payload), mac):
        raise LinkRefused("this acknowledgement link is not one ews signed (altered or mistyped)")
    try:
        claims = json.loads(_unb64(payload))
        found = LinkClaims(
            alert_ref=str(claims["a"]),
            transition=int(claims["t"]),
            contact_id=str(claims["c"]),
            level=claims["l"],
            started_at=datetime.fromisoformat(str(claims["s"])),
            expires=datetime.fromtimestamp(int(claims["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise LinkRefused(f"this acknowledgement link cannot be read: {exc}") from None
    if now >= found.expires:
        raise LinkRefused(
            f"this acknowledgement link expired on {found.expires:%Y-%m-%d %H:%M} UTC; "
            "acknowledge from a newer message"
        )
    return found
