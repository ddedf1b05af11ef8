"""API tokens: from the tokens file (hashed) and the environment, each with a role; short tokens
refused at load; clear 401 and 403 errors."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import SecretStr

from services.common.auth import AuthError, TokenStore
from services.common.settings import Settings


def store(tmp_path) -> TokenStore:
    tokens_file = tmp_path / "tokens.yaml"
    hashed = hashlib.sha256(b"admin-token-0123456789abcdefgh").hexdigest()
    tokens_file.write_text(
        f"version: 1\ntokens:\n  - {{name: root, role: admin, token_sha256: {hashed}}}\n"
    )
    return TokenStore.from_settings(
        Settings(
            tokens_file=tokens_file,
            tokens=SecretStr("PA-SNM:partner:partner-token-0123456789abcdef"),
        )
    )


def test_tokens_from_file_and_environment_with_roles(tmp_path):
    tokens = store(tmp_path)
    assert tokens.require("Bearer admin-token-0123456789abcdefgh", "admin").name == "root"
    assert tokens.require("Bearer partner-token-0123456789abcdef", "partner").name == "PA-SNM"
    with pytest.raises(AuthError) as info:
        tokens.require("Bearer partner-token-0123456789abcdef", "admin")
    assert info.value.status == 403 and "role partner" in info.value.message
    for header, words in [
        (None, "missing Authorization"),
        ("Basic abc", "Bearer"),
        ("Bearer nope", "unknown"),
    ]:
        with pytest.raises(AuthError) as info:
            tokens.authenticate(header)
        assert info.value.status == 401 and words in info.value.message


def test_short_tokens_are_refused_at_load(tmp_path):
    from services.common.config_files import ConfigError

    with pytest.raises(ConfigError, match="EWS_TOKENS: entry 1"):
        TokenStore.from_settings(Settings(tokens=SecretStr("x:partner:short")))
