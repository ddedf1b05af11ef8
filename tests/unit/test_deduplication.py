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

    from services.ingest.deduplication import SeenEvent, SeenEvents, changelog_key, key_of
    from tests.helpers import NOW

    seen = SeenEvents("ns-ingest-event-ids-changelog", retention=timedelta(days=3))

    def entry(days_ago: float) -> SeenEvent:
        return SeenEvent(
            digest="d" * 64, revision=1, seen_at=NOW - timedelta(days=days_ago), partition=1
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
        ("ns-ingest-event-ids-changelog", changelog_key(key_of("b")), None, 1)
    ]
    assert list(seen.held[1]) == [key_of("c"), key_of("a")] and seen.get(1, "a", NOW) is not None
    assert list(seen.held[2]) == [key_of("z")]

    # what the changelog holds comes back in the same order, deletions applied
    recovered = SeenEvents("ns-ingest-event-ids-changelog", retention=timedelta(days=3))
    records = [
        SimpleNamespace(key=o.key, value=o.value)
        for o in [seen.put(1, "x", entry(2)), *tombstones, seen.put(1, "b", entry(0))]
    ]
    recovered.restore(1, "ns-ingest-event-ids-changelog", records)
    assert list(recovered.held[1]) == [key_of("x"), key_of("b")]
    found = recovered.get(1, "x", NOW)
    assert found is not None and found.seen_at == NOW - timedelta(days=2)


def test_a_remembered_entry_comes_back_as_it_was_put_corrections_and_places_included():
    from datetime import timedelta

    from services.ingest.deduplication import SeenEvent, SeenEvents
    from tests.helpers import NOW

    seen = SeenEvents("ns-ingest-event-ids-changelog", retention=timedelta(days=3))
    entry = SeenEvent(
        digest="0123456789abcdef" + "f" * 48,
        revision=4,
        seen_at=NOW - timedelta(hours=5),
        partition=3,
        offset=2**41 + 7,  # offsets are not bounded by the packing
        earlier=("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"),
        location="site:PA-LAJAS-BLANCAS:PA",
    )
    seen.put(3, "PA-SNM/ev-1", entry)
    seen.put(3, "PA-SNM/ev-2", entry._replace(earlier=(), location="", offset=-1))
    assert seen.get(3, "PA-SNM/ev-1", NOW) == entry._replace(digest="0123456789abcdef")
    second = seen.get(3, "PA-SNM/ev-2", NOW)
    assert second is not None and (second.earlier, second.location, second.offset) == ((), "", -1)
    assert seen.get(3, "PA-SNM/ev-3", NOW) is None and seen.get(2, "PA-SNM/ev-1", NOW) is None


def test_changelog_records_keyed_by_report_id_are_read_and_written_again_under_their_new_keys():
    """A worker upgraded over a changelog of the earlier form (keyed by the report id, full
    digests) still knows every report, and moves the records to the new keys on its first batch."""
    from datetime import timedelta
    from types import SimpleNamespace

    from services.ingest.deduplication import SeenEvent, SeenEvents, changelog_key, key_of
    from tests.helpers import NOW

    old = SeenEvent(digest="ab" * 32, revision=2, seen_at=NOW - timedelta(days=1), partition=0)
    seen = SeenEvents("log", retention=timedelta(days=3))
    seen.restore(0, "log", [SimpleNamespace(key=b"HN-INM/e-9", value=old.to_json())])
    found = seen.get(0, "HN-INM/e-9", NOW)
    assert found is not None and found.revision == 2 and found.digest == "ab" * 8
    written = [(o.key, o.value) for o in seen.expire(0, NOW)]
    assert written[0] == (b"HN-INM/e-9", None)
    key, value = written[1]
    assert key == changelog_key(key_of("HN-INM/e-9"))
    assert value is not None and SeenEvent.from_json(value).revision == 2
    assert seen.expire(0, NOW) == []  # once


def test_remembered_event_ids_cost_under_150_bytes_each():
    """Memory follows retention: a million remembered ids are what ingest holds at a month of a
    large feed, so each must be small (make bench measures the live worker)."""
    import tracemalloc
    from datetime import timedelta

    from services.ingest.deduplication import SeenEvent, SeenEvents
    from tests.helpers import NOW

    seen = SeenEvents("log", retention=timedelta(days=30))
    places = [f"site:PA-B{i:05d}:PA" for i in range(1000)]
    n = 50_000
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        seen.put(
            i % 4,
            f"BENCH-PA/bc-PA-B{i % 1000:05d}-{i // 1000}",
            SeenEvent(f"{i:064x}", 1, NOW, i % 4, 1_000_000 + i, (), places[i % 1000]),
        )
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert sum(len(h) for h in seen.held.values()) == n
    assert held / n < 150, f"{held / n:.0f} bytes per remembered id"
