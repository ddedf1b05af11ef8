"""JSON Schema files stay in step with the models; tokens are checked with roles; de-duplication
decisions."""

import hashlib

import pytest
from pydantic import SecretStr

from schemas.export import JSON_DIR, render_schemas
from services.common.auth import AuthError, TokenStore
from services.common.settings import Settings
from services.ingest.deduplication import content_digest, decide
from tests.helpers import crossing, observation


def test_checked_in_json_schemas_match_the_models():
    rendered = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.schema.json")}
    assert on_disk.keys() == rendered.keys(), "run `ews schemas export` and commit schemas/json/"
    for name, text in rendered.items():
        assert on_disk[name] == text, (
            f"schemas/json/{name} is out of date: run `ews schemas export`"
        )


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


def test_resend_is_duplicate_and_changed_content_is_a_correction():
    first = observation(crossing(0, 1000))
    outcome, revision = decide(None, content_digest(first))
    assert (outcome, revision) == ("accepted", 1)
    from services.ingest.deduplication import SeenEvent
    from tests.helpers import NOW

    seen = SeenEvent(digest=content_digest(first), revision=1, seen_at=NOW, partition=0)
    resent = first.model_copy(update={"ingested_at": NOW.replace(hour=23)})
    assert decide(seen, content_digest(resent)) == ("duplicate", 1)
    assert decide(seen, content_digest(observation(crossing(0, 1001)))) == ("correction", 2)


def test_digests_and_entries_match_earlier_versions_so_a_resend_after_an_upgrade_is_a_duplicate():
    import json

    from services.ingest.deduplication import SeenEvent
    from tests.helpers import NOW

    # earlier versions hashed json.dumps(sort_keys, compact, ASCII with \u escapes) and stored
    # entries as json
    for source in ["PA-SNM", "Migración Panamá", 'tab\tquote"del\x7f', "línea\u2028"]:
        report = observation(crossing(0, 1000)).model_copy(update={"source": source})
        content = report.model_dump(mode="json", exclude={"ingested_at", "revision"})
        earlier = hashlib.sha256(
            json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        assert content_digest(report) == earlier, source
    entry = SeenEvent(digest="ab" * 32, revision=3, seen_at=NOW, partition=2, offset=41)
    earlier_form = json.dumps(
        {
            "digest": entry.digest,
            "revision": 3,
            "seen_at": NOW.isoformat(),
            "partition": 2,
            "offset": 41,
        },
        separators=(",", ":"),
    ).encode()
    assert SeenEvent.from_json(earlier_form) == entry == SeenEvent.from_json(entry.to_json())


def test_the_message_that_recorded_an_event_seen_again_after_a_crash_is_replayed_not_dropped():
    from services.ingest.deduplication import SeenEvent
    from tests.helpers import NOW

    first = observation(crossing(0, 1000))
    seen = SeenEvent(digest=content_digest(first), revision=1, seen_at=NOW, partition=2, offset=41)
    assert decide(seen, content_digest(first), partition=2, offset=41) == ("replayed", 1)
    assert decide(seen, content_digest(first), partition=2, offset=42) == ("duplicate", 1)


def test_remembered_event_ids_expire_after_retention_oldest_first_and_leave_tombstones():
    from datetime import timedelta
    from types import SimpleNamespace

    from services.ingest.deduplication import SeenEvent, SeenEvents
    from tests.helpers import NOW

    seen = SeenEvents("ns-ingest-event-ids-changelog", retention=timedelta(days=3))

    def entry(days_ago: float) -> SeenEvent:
        return SeenEvent(
            digest="d", revision=1, seen_at=NOW - timedelta(days=days_ago), partition=1
        )

    seen.put(1, "a", entry(5))
    seen.put(1, "b", entry(4))
    seen.put(1, "c", entry(1))
    seen.put(1, "a", entry(0))  # seen again (a correction): now the newest
    seen.put(2, "z", entry(9))  # another partition is another worker's business until its own batch
    assert (
        seen.get(1, "b", NOW) is None
    )  # past retention: a re-send is new again, even before it is forgotten
    tombstones = seen.expire(1, NOW)
    assert [(t.topic, t.key, t.value, t.partition) for t in tombstones] == [
        ("ns-ingest-event-ids-changelog", b"b", None, 1)
    ]
    assert list(seen.held[1]) == ["c", "a"] and seen.get(1, "a", NOW) is not None
    assert list(seen.held[2]) == ["z"]

    # what the changelog holds comes back in the same order, deletions applied
    recovered = SeenEvents("ns-ingest-event-ids-changelog", retention=timedelta(days=3))
    records = [
        SimpleNamespace(key=o.key, value=o.value)
        for o in [seen.put(1, "x", entry(2)), *tombstones, seen.put(1, "b", entry(0))]
    ]
    recovered.restore(1, "ns-ingest-event-ids-changelog", records)
    assert list(recovered.held[1]) == ["x", "b"]
    assert recovered.get(1, "x", NOW).seen_at == NOW - timedelta(days=2)
