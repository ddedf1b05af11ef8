"""Console accounts, sessions, CSRF tokens and the login rate limit.

Accounts live in EWS_ACCOUNTS_FILE (argon2id hashes only), reloaded when it changes. A session is a
signed cookie (username, expiry, a random nonce, a fingerprint of the password hash): it works on
every notify worker that shares EWS_CONSOLE_SECRET, ends when it expires, when the account leaves
the file or when its password changes. Each form carries a CSRF token derived from the session's
nonce (the sign-in form: from a nonce in a cookie of its own)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from schemas.config import AccountEntry, AccountsFile
from services.common.auth import Principal
from services.common.config_files import load_model
from services.common.reloading import Reloading

log = logging.getLogger(__name__)
HASHER = PasswordHasher()
# verified against when the username is unknown, so the answer takes as long either way
_UNKNOWN = HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def principal_of(account: AccountEntry) -> Principal:
    return Principal(account.username, account.role, account.country)


class AccountStore:
    """The accounts of EWS_ACCOUNTS_FILE; the file is read again when it changes (checked at most
    once a second); a changed file that does not load is refused and the accounts before it stay."""

    def __init__(self, file: Path | None) -> None:
        self._file: Reloading[dict[str, AccountEntry]] | None = None
        if file is not None:
            self._file = Reloading([file], lambda: _accounts(file), "accounts")
        self._checked = time.monotonic()

    @property
    def configured(self) -> bool:
        return self._file is not None

    @property
    def accounts(self) -> dict[str, AccountEntry]:
        if self._file is None:
            return {}
        if time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            reloaded = self._file.reload_if_changed()
            if reloaded is not None and reloaded[0] == "applied":
                log.warning("%s reloaded: %d accounts", self._file.files[0], len(self._file.value))
            elif reloaded is not None:
                log.error(
                    "changed accounts file refused; the accounts before it stay:\n%s",
                    "\n".join(reloaded[1]),
                )
        return self._file.value

    def verify(self, username: str, password: str) -> AccountEntry | None:
        """The account if the password is its own; as slow for an unknown username."""
        account = self.accounts.get(username)
        try:
            HASHER.verify(account.password_hash if account else _UNKNOWN, password)
        except (VerificationError, InvalidHashError):
            return None
        return account


def _accounts(file: Path) -> dict[str, AccountEntry]:
    return {a.username: a for a in load_model(file, AccountsFile).accounts}


# --- sessions and CSRF -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, message: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}\x00{message}".encode(), hashlib.sha256)
    return _b64(digest.digest())


def fingerprint(account: AccountEntry) -> str:
    """Changes with the password: a session signed before a password change no longer opens."""
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Session:
    username: str
    expires: int  # epoch seconds
    nonce: str
    fingerprint: str


def sign_session(secret: str, account: AccountEntry, lifetime_s: float, now: float) -> str:
    payload = "|".join(
        (
            account.username,
            str(int(now + lifetime_s)),
            secrets.token_urlsafe(16),
            fingerprint(account),
        )
    )
    encoded = _b64(payload.encode())
    return f"{encoded}.{_mac(secret, 'session', encoded)}"


def open_session(secret: str, cookie: str | None, now: float) -> Session | None:
    """The session a cookie carries, if its signature holds and it has not expired."""
    if not cookie or "." not in cookie:
        return None
    encoded, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature, _mac(secret, "session", encoded)):
        return None
    try:
        username, expires, nonce, print_ = _unb64(encoded).decode().split("|")
        session = Session(username, int(expires), nonce, print_)
    except ValueError:
        return None
    return session if session.expires > now else None


def csrf_token(secret: str, nonce: str) -> str:
    return _mac(secret, "csrf", nonce)


def csrf_holds(secret: str, nonce: str | None, presented: str | None) -> bool:
    if not nonce or not presented:
        return False
    return hmac.compare_digest(presented, csrf_token(secret, nonce))


# --- sign-in attempts --------------------------------------------------------------------


@dataclass
class LoginLimiter:
    """At most `failures` failed sign-ins per username and per client address in `window_s`; then
    that username or address waits until the oldest failure leaves the window. Kept per worker."""

    failures: int = 5
    window_s: float = 900.0
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def wait_s(self, keys: list[str], now: float) -> float:
        """How long these keys must wait before another attempt (0: they may try now)."""
        longest = 0.0
        for key in keys:
            recent = self._recent(key, now)
            if len(recent) >= self.failures:
                longest = max(longest, recent[0] + self.window_s - now)
        return longest

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        self._seen.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        recent = self._seen.setdefault(key, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if not recent and len(self._seen) > 10_000:  # memory follows attackers' keys, bounded
            self._seen.pop(key, None)
            recent = self._seen.setdefault(key, deque())
        return recent
