"""Re-sends and corrections by event_id: the decision (pure: the entry and the time are passed in)
and the remembered entries per partition, expired after the retention period."""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

import orjson
from aiokafka.structs import ConsumerRecord

from schemas import Location, Observation
from schemas.observation import location_code, location_of_code
from services.common.relay import Out

Outcome = Literal["accepted", "duplicate", "correction", "superseded", "replayed"]
EARLIER_KEPT = 16  # earlier versions remembered per event_id (their short digests)
_SHORT = 16  # hex digits of a digest compared and remembered: 64 bits, ample within one event_id


class SeenEvent(NamedTuple):
    """What ingest remembers of an event_id for the retention period, as the decisions read it (held
    packed in one int: SeenEvents)."""

    digest: str  # of the content (content_digest); its first 16 hex digits are what is compared
    revision: int
    seen_at: datetime
    partition: int
    offset: int = -1  # of the de-duplication input message that recorded it
    earlier: tuple[str, ...] = ()  # short digests of the versions this one corrected, oldest first
    # where this version was counted (location_code, interned: one string per place), so that a
    # correction moving the report withdraws it there
    location: str = ""

    def to_json(self) -> bytes:
        """The changelog's form (the same JSON object earlier versions wrote, with `earlier` once
        the event was corrected)."""
        data: dict[str, object] = {
            "digest": self.digest,
            "revision": self.revision,
            "seen_at": self.seen_at.isoformat(),
            "partition": self.partition,
            "offset": self.offset,
        }
        if self.earlier:
            data["earlier"] = list(self.earlier)
        if self.location:
            data["location"] = self.location
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> SeenEvent:
        data = orjson.loads(raw)
        return cls(
            data["digest"],
            int(data["revision"]),
            _utc(data["seen_at"]),
            int(data["partition"]),
            int(data.get("offset", -1)),
            tuple(data.get("earlier", ())),
            sys.intern(data.get("location", "")),
        )


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def content_digest(observation: Observation) -> str:
    """A fingerprint of what the report says (not when it arrived or its revision)."""
    content = observation.model_dump(mode="json", exclude={"ingested_at", "revision", "moved_from"})
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    if (
        not canonical.isascii() or b"\x7f" in canonical
    ):  # earlier versions' digests: json's \u escapes
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def decide(
    previous: SeenEvent | None, digest: str, partition: int = -1, offset: int = -2
) -> tuple[Outcome, int]:
    """Same content again is a duplicate; different content under a known event_id is a correction,
    unless it is a version the event had before it was corrected: then it is superseded (dropped, so
    re-sending an old file never reverts a correction). "Later" is what ingest saw later.

        The very message that recorded the entry, seen again after a crash (its offset was not
        committed), is a replay: published again rather than dropped, since its output may not have
        reached the broker; downstream drops the repeat by event_id and revision.
    """
    if previous is None:
        return "accepted", 1
    if previous.partition == partition and previous.offset == offset:
        return "replayed", previous.revision
    if previous.digest[:_SHORT] == digest[:_SHORT]:
        return "duplicate", previous.revision
    if digest[:_SHORT] in previous.earlier:
        return "superseded", previous.revision
    return "correction", previous.revision + 1


def remember(
    previous: SeenEvent | None,
    digest: str,
    revision: int,
    seen_at: datetime,
    partition: int,
    offset: int = -1,
    location: Location | None = None,
) -> SeenEvent:
    """The entry after accepting a version: a correction keeps the digest it replaces among the
    earlier versions (the last EARLIER_KEPT)."""
    earlier: tuple[str, ...] = ()
    if previous is not None:
        earlier = previous.earlier
        if previous.digest[:_SHORT] != digest[:_SHORT]:
            earlier = (*earlier, previous.digest[:_SHORT])[-EARLIER_KEPT:]
    code = sys.intern(location_code(location)) if location is not None else ""
    return SeenEvent(digest, revision, seen_at, partition, offset, earlier, code)


def moved(previous: SeenEvent | None, observation: Observation) -> Observation:
    """A correction counted somewhere else than the version it corrects names where that was
    (`moved_from`), so that the trigger engine withdraws the old figure there."""
    if previous is None or not previous.location:
        return observation
    if previous.location == location_code(observation.location):
        return observation
    return observation.model_copy(update={"moved_from": location_of_code(previous.location)})


class Versions:
    """The same decisions over a whole history at once (`ews backtest`): which reports are
    duplicates, which correct an earlier one (with their revision), which are superseded. Digests
    are worked out only for event_ids seen more than once."""

    def __init__(self) -> None:
        self.latest: dict[str, Observation] = {}
        self.entries: dict[str, SeenEvent] = {}
        self.counts: Counter[Outcome] = Counter()

    def admit(self, observation: Observation) -> Observation | None:
        """The observation to replay (with its revision, and where it moved from), or None if it is
        dropped."""
        key = observation.report_id
        before = self.latest.get(key)
        if before is None:
            self.latest[key] = observation
            self.counts["accepted"] += 1
            return observation
        entry = self.entries.get(key) or remember(
            None, content_digest(before), before.revision, observation.ingested_at, 0
        )
        digest = content_digest(observation)
        outcome, revision = decide(entry, digest)
        self.counts[outcome] += 1
        if outcome != "correction":
            return None
        update: dict[str, object] = {"revision": revision}
        if before.location != observation.location:
            update["moved_from"] = before.location
        observation = observation.model_copy(update=update)
        self.entries[key] = remember(entry, digest, revision, observation.ingested_at, 0)
        self.latest[key] = observation
        return observation


def expired(entry: SeenEvent, now: datetime, retention) -> bool:
    return entry.seen_at + retention < now


def key_of(report_id: str) -> int:
    """A report id as a 60-bit number (a 60-bit int is 32 bytes, the id itself ~75): what the
    de-duplication state and its changelog are keyed by. Among a million remembered ids, two share a
    number with odds of about one in two million."""
    digest = hashlib.blake2b(report_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 4


def changelog_key(key: int) -> bytes:
    """ "#" and 15 hex digits: no report id starts with "#" (ids begin with a letter or digit), so
    records written before ids were hashed (keyed by the report id itself) are told apart."""
    return b"#%015x" % key


# A remembered entry packed into one int (its fields from the low bits; the offset last, unbounded):
# a tuple of seven fields with a datetime and a 64-character digest was ~450 bytes an id, this ~48.
_DIGEST_BITS, _SECONDS_BITS, _REVISION_BITS, _PLACE_BITS = 64, 34, 24, 24
_SECONDS_AT = _DIGEST_BITS
_REVISION_AT = _SECONDS_AT + _SECONDS_BITS
_PLACE_AT = _REVISION_AT + _REVISION_BITS
_OFFSET_AT = _PLACE_AT + _PLACE_BITS


def _seen_at(packed: int) -> int:
    """When a packed entry was seen (POSIX seconds)."""
    return (packed >> _SECONDS_AT) & ((1 << _SECONDS_BITS) - 1)


class SeenEvents:
    """The de-duplication stage's state (services.common.relay.StageState): per input partition,
    report id → what is remembered of it, oldest first, so that expiring is a look at the front, not
    a sweep of every entry. Held compactly (make bench, scale group): keyed by `key_of` the report
    id, each entry one packed int; the earlier versions of corrected reports beside them, and the
    places (location codes) numbered once for all entries."""

    def __init__(self, changelog: str, retention: timedelta) -> None:
        self.changelogs = (changelog,)
        self.retention = retention
        self.held: dict[int, dict[int, int]] = {}
        self.earlier: dict[int, dict[int, tuple[str, ...]]] = {}
        self.places: list[str] = [""]  # number → location code ("": none)
        self.place_numbers: dict[str, int] = {"": 0}
        self.legacy: dict[int, list[bytes]] = {}  # records keyed by report id, to write again

    def partition(self, partition: int) -> dict[int, int]:
        return self.held.setdefault(partition, {})

    def get(self, partition: int, event_id: str, now: datetime) -> SeenEvent | None:
        entry = self._entry(partition, key_of(event_id))
        return None if entry is None or expired(entry, now, self.retention) else entry

    def _entry(self, partition: int, key: int) -> SeenEvent | None:
        packed = self.partition(partition).get(key)
        if packed is None:
            return None
        earlier = self.earlier.get(partition, {}).get(key, ())
        return SeenEvent(
            f"{packed & ((1 << _DIGEST_BITS) - 1):016x}",
            (packed >> _REVISION_AT) & ((1 << _REVISION_BITS) - 1),
            datetime.fromtimestamp(_seen_at(packed), UTC),
            partition,
            (packed >> _OFFSET_AT) - 1,
            earlier,
            self.places[(packed >> _PLACE_AT) & ((1 << _PLACE_BITS) - 1)],
        )

    def _hold(self, partition: int, key: int, entry: SeenEvent) -> None:
        held = self.partition(partition)
        held.pop(key, None)  # a plain dict keeps insertion order: the entry is now the newest
        held[key] = self._pack(entry)
        if entry.earlier:
            self.earlier.setdefault(partition, {})[key] = entry.earlier
        else:
            self.earlier.get(partition, {}).pop(key, None)

    def _pack(self, entry: SeenEvent) -> int:
        place = self.place_numbers.get(entry.location)
        if place is None:
            place = self.place_numbers[entry.location] = len(self.places)
            self.places.append(entry.location)
        if entry.revision >> _REVISION_BITS or place >> _PLACE_BITS:
            raise ValueError(f"revision {entry.revision} or place {place} beyond what is packed")
        return (
            int(entry.digest[:_SHORT], 16)
            | int(entry.seen_at.timestamp()) << _SECONDS_AT
            | entry.revision << _REVISION_AT
            | place << _PLACE_AT
            | (entry.offset + 1) << _OFFSET_AT
        )

    def put(self, partition: int, event_id: str, entry: SeenEvent) -> Out:
        """Remember (as the newest) and return the changelog record."""
        key = key_of(event_id)
        self._hold(partition, key, entry)
        return Out(self.changelogs[0], changelog_key(key), entry.to_json(), partition)

    def expire(self, partition: int, now: datetime) -> list[Out]:
        """Forget the entries past retention at the front; their changelog tombstones (and, once,
        the records written before ids were hashed, again under their new keys)."""
        held, out = self.partition(partition), []
        horizon = (now - self.retention).timestamp()
        gone = []
        for key, packed in held.items():  # one pass from the front: the oldest first
            if _seen_at(packed) >= horizon:
                break
            gone.append(key)
        earlier = self.earlier.get(partition, {})
        for key in gone:
            del held[key]
            earlier.pop(key, None)
            out.append(Out(self.changelogs[0], changelog_key(key), None, partition))
        for old in self.legacy.pop(partition, ()):
            out.append(Out(self.changelogs[0], old, None, partition))
            key = key_of(old.decode())
            entry = self._entry(partition, key)
            if entry is not None:
                out.append(Out(self.changelogs[0], changelog_key(key), entry.to_json(), partition))
        return out

    def restore(
        self, partition: int, changelog: str, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        held = self.partition(partition)
        for record in records:
            if record.key.startswith(b"#"):
                key = int(record.key[1:], 16)
            else:  # keyed by the report id (written before ids were hashed)
                key = key_of(record.key.decode())
                self.legacy.setdefault(partition, []).append(record.key)
            if record.value is None:
                held.pop(key, None)
                self.earlier.get(partition, {}).pop(key, None)
            else:
                self._hold(partition, key, SeenEvent.from_json(record.value))

    def restored(self, partitions: list[int]) -> None:
        pass

    def forget(self, partition: int) -> None:
        self.held.pop(partition, None)
        self.earlier.pop(partition, None)
        self.legacy.pop(partition, None)
