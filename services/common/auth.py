"""Bearer tokens with roles (admin, operator, coordinator, partner) and countries, stored as
SHA-256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from schemas.config import TokenEntry, TokensFile

from .config_files import ConfigError, field_messages, load_model
from .reloading import Reloading
from .settings import Settings

log = logging.getLogger(__name__)


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """Who holds a token: its role, its country (None: regional) and, for a data partner, the
    sources it may publish for."""

    name: str
    role: str
    country: str | None = None
    sources: tuple[str, ...] = ()

    @property
    def regional(self) -> bool:
        return self.country is None

    def acts_for(self, country: str | None) -> bool:
        """Whether it manages what concerns `country` (None: what concerns no single country)."""
        return self.regional or (country is not None and country == self.country)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_sha256(token: str) -> str:
    return _digest(token).hex()


Entry = tuple[Principal, bytes]


def _entries(entries: list[TokenEntry]) -> list[Entry]:
    return [
        (
            Principal(
                e.name,
                e.role,
                e.country,
                e.publishes_for if e.role == "partner" else (),
            ),
            bytes.fromhex(e.token_sha256) if e.token_sha256 else _digest(e.token or ""),
        )
        for e in entries
    ]


def inline_tokens(value: str) -> list[TokenEntry]:
    """EWS_TOKENS: "name:role[@country][/source,source]:token;…", e.g.
    "ops:admin:…;ops-pa:operator@PA:…;PA-SNM:partner/PA-SNM,PA-MINGOB:…"."""
    entries: list[TokenEntry] = []
    for number, item in enumerate(filter(None, value.split(";")), start=1):
        parts = item.strip().split(":", 2)
        if len(parts) != 3:
            raise ConfigError(
                [f"EWS_TOKENS: entry {number}: expected name:role[@country][/sources]:token"]
            )
        name, spec, token = parts
        spec, _, sources = spec.partition("/")
        role, _, country = spec.partition("@")
        try:
            entries.append(
                TokenEntry.model_validate(
                    {
                        "name": name,
                        "role": role,
                        "token": token,
                        **({"country": country} if country else {}),
                        **({"sources": sources.split(",")} if sources else {}),
                    }
                )
            )
        except ValidationError as exc:
            raise ConfigError(
                [
                    f"EWS_TOKENS: entry {number} ({name}): {message}"
                    for message in field_messages(exc, "entry")
                ]
            ) from None
    return entries


class TokenStore:
    """The tokens of EWS_TOKENS_FILE and EWS_TOKENS. The file is read again when it changes
    (checked at most once a second), so tokens are added, rotated and revoked without a restart;
    a changed file that does not load is refused, logged, and the tokens before it stay."""

    def __init__(self, entries: list[TokenEntry], file: Path | None = None) -> None:
        self._inline = _entries(entries)
        self._file: Reloading[list[Entry]] | None = None
        if file is not None:
            self._file = Reloading(
                [file], lambda: _entries(load_model(file, TokensFile).tokens), "tokens"
            )
        self._checked = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenStore:
        """Tokens from EWS_TOKENS_FILE (YAML) and EWS_TOKENS."""
        inline = inline_tokens(settings.tokens.get_secret_value()) if settings.tokens else []
        return cls(inline, settings.tokens_file)

    @property
    def _all(self) -> list[Entry]:
        if self._file is not None and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            reloaded = self._file.reload_if_changed()
            if reloaded is not None:
                outcome, problems = reloaded
                if outcome == "applied":
                    log.warning(
                        "%s reloaded: %d tokens", self._file.files[0], len(self._file.value)
                    )
                else:
                    log.error(
                        "changed tokens file refused; the tokens before it stay:\n%s",
                        "\n".join(problems),
                    )
        return self._inline + (self._file.value if self._file is not None else [])

    def __len__(self) -> int:
        return len(self._all)

    def authenticate(self, authorization: str | None) -> Principal:
        """The holder of a valid `Authorization: Bearer <token>`, or AuthError(401) saying what is
        wrong."""
        if not authorization:
            raise AuthError(
                401, "missing Authorization header: send 'Authorization: Bearer <token>'"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "Authorization must be 'Bearer <token>'")
        presented = _digest(token.strip())
        found: Principal | None = None
        for principal, digest in self._all:  # no early exit: time does not say which matched
            if hmac.compare_digest(presented, digest):
                found = principal
        if found is None:
            raise AuthError(401, "unknown or revoked token")
        return found

    def require(self, authorization: str | None, *roles: str) -> Principal:
        principal = self.authenticate(authorization)
        if principal.role not in roles:
            raise AuthError(
                403, f"role {principal.role} may not do this; it needs one of: {', '.join(roles)}"
            )
        return principal
