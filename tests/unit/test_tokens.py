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


def test_inline_tokens_carry_country_and_sources():
    tokens = TokenStore.from_settings(
        Settings(
            tokens=SecretStr(
                "ops:admin:admin-token-0123456789abcdefgh;"
                "ops-pa:operator@PA:operator-token-0123456789abcdef;"
                "hn-centre:coordinator@HN:coordinator-token-0123456789ab;"
                "PA-SNM:partner/PA-SNM,PA-MINGOB:partner-token-0123456789abcdef;"
                "CR-DGME:partner:partner-token-CR-0123456789abcdef"
            )
        )
    )
    admin = tokens.authenticate("Bearer admin-token-0123456789abcdefgh")
    assert admin.regional and admin.acts_for("HN")
    operator = tokens.authenticate("Bearer operator-token-0123456789abcdef")
    assert (operator.role, operator.country) == ("operator", "PA")
    assert operator.acts_for("PA") and not operator.acts_for("HN") and not operator.acts_for(None)
    coordinator = tokens.authenticate("Bearer coordinator-token-0123456789ab")
    assert (coordinator.role, coordinator.country) == ("coordinator", "HN")
    partner = tokens.authenticate("Bearer partner-token-0123456789abcdef")
    assert partner.sources == ("PA-SNM", "PA-MINGOB")
    # a partner named after its source publishes for it without saying so
    assert tokens.authenticate("Bearer partner-token-CR-0123456789abcdef").sources == ("CR-DGME",)


def test_a_country_admin_or_an_unknown_country_is_refused_with_the_entry_named():
    from services.common.config_files import ConfigError

    for value, words in [
        ("root:admin@PA:admin-token-0123456789abcdefgh", "an admin is regional"),
        ("ops:operator@XX:operator-token-0123456789abcdef", r"entry 1 \(ops\): country: .*'XX'"),
        ("ops:operator/PA-SNM:operator-token-0123456789abcdef", "only partner tokens"),
    ]:
        with pytest.raises(ConfigError, match=words):
            TokenStore.from_settings(Settings(tokens=SecretStr(value)))


def test_the_tokens_file_keeps_digests_only(tmp_path):
    from services.common.config_files import ConfigError

    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(
        "version: 1\ntokens:\n"
        "  - {name: root, role: admin, token: admin-token-0123456789abcdefgh}\n"
    )
    with pytest.raises(ConfigError, match="token_sha256"):
        TokenStore.from_settings(Settings(tokens_file=tokens_file))


def test_the_tokens_file_is_reloaded_rotation_and_revocation_without_restart(tmp_path, monkeypatch):
    import os
    import time

    tokens_file = tmp_path / "tokens.yaml"

    def write(*entries: tuple[str, str, str]) -> None:
        lines = [
            f"  - {{name: {n}, role: {r}, token_sha256: {hashlib.sha256(t.encode()).hexdigest()}}}"
            for n, r, t in entries
        ]
        tokens_file.write_text("version: 1\ntokens:\n" + "\n".join(lines) + "\n")
        stamp = time.time() + len(tokens_file.read_text())  # a distinct mtime for each version
        os.utime(tokens_file, (stamp, stamp))

    old, new = "old-token-0123456789abcdefghij", "new-token-0123456789abcdefghij"
    write(("ops", "operator", old))
    tokens = TokenStore.from_settings(Settings(tokens_file=tokens_file))
    assert tokens.authenticate(f"Bearer {old}").name == "ops"
    clock = [time.monotonic()]
    monkeypatch.setattr("services.common.auth.time.monotonic", lambda: clock[0])
    write(("ops", "operator", new))  # rotated: the old one revoked
    clock[0] += 2
    assert tokens.authenticate(f"Bearer {new}").name == "ops"
    with pytest.raises(AuthError, match="unknown or revoked"):
        tokens.authenticate(f"Bearer {old}")
    tokens_file.write_text("version: 1\ntokens: [{name: broken}]\n")  # refused: the last stay
    os.utime(tokens_file, (1, 1))
    clock[0] += 2
    assert tokens.authenticate(f"Bearer {new}").name == "ops"
