"""Bearer tokens with roles (admin, operator, partner), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from schemas.config import TokenEntry, TokensFile

from .config_files import ConfigError, load_model
from .settings import Settings


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenStore:
    def __init__(self, entries: list[TokenEntry]) -> None:
        self._entries = [
            (
                e.name,
                e.role,
                bytes.fromhex(e.token_sha256) if e.token_sha256 else _digest(e.token or ""),
            )
            for e in entries
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenStore:
        """Tokens from EWS_TOKENS_FILE (YAML) and EWS_TOKENS ("name:role:token;name:role:token")."""
        entries: list[TokenEntry] = []
        if settings.tokens_file is not None:
            entries.extend(load_model(settings.tokens_file, TokensFile).tokens)
        if settings.tokens is not None:
            for number, item in enumerate(
                filter(None, settings.tokens.get_secret_value().split(";")), start=1
            ):
                parts = item.strip().split(":", 2)
                if len(parts) != 3:
                    raise ConfigError([f"EWS_TOKENS: entry {number}: expected name:role:token"])
                name, role, token = parts
                try:
                    entries.append(TokenEntry(name=name, role=role, token=token))
                except ValueError as exc:
                    raise ConfigError([f"EWS_TOKENS: entry {number} ({name}): {exc}"]) from None
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

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
        for (
            name,
            role,
            digest,
        ) in self._entries:  # no early exit: time does not depend on which matched
            if hmac.compare_digest(presented, digest):
                found = Principal(name, role)
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
