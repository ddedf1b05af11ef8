"""De-duplication: a resend is a duplicate, changed content a correction; digests stable across
versions; what a crash leaves is replayed; remembered ids expire after retention."""

from __future__ import annotations

import hashlib

from services.ingest.deduplication import content_digest, decide
from tests.helpers import crossing, observation


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
    # entries as json; their observations had no `moved_from`
    for source in ["PA-SNM", "Migración Panamá", 'tab\tquote"del\x7f', "línea\u2028"]:
        report = observation(crossing(0, 1000)).model_copy(update={"source": source})
        content = report.model_dump(mode="json", exclude={"ingested_at", "revision", "moved_from"})
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
    found = recovered.get(1, "x", NOW)
    assert found is not None and found.seen_at == NOW - timedelta(days=2)
