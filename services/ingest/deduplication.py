"""Re-sends and corrections by event_id: the decision (pure: the entry and the time are passed in)
and the remembered entries per partition, expired after the retention period."""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

import orjson
from aiokafka.structs import ConsumerRecord

from schemas import Location, Observation
from schemas.observation import location_code, location_of_code
from services.common.relay import Out

Outcome = Literal["accepted", "duplicate", "correction", "superseded", "replayed"]
EARLIER_KEPT = 16  # earlier versions remembered per event_id (their short digests)
_SHORT = 16  # hex digits of an earlier version's digest: 64 bits, ample within one event_id


class SeenEvent(NamedTuple):
    """What ingest remembers of an event_id for the retention period. A tuple, not a model: a worker
    holds one per event_id of the retention period (a pydantic model measured ~1.4 KB each with its
    key, make bench scale group)."""

    digest: str
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
    if previous.digest == digest:
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
        if previous.digest != digest:
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


class SeenEvents:
    """The de-duplication stage's state (services.common.relay.StageState): per input partition,
    report id ("source/event_id") → SeenEvent, oldest first, so that expiring is a look at the
    front, not a sweep of every entry."""

    def __init__(self, changelog: str, retention: timedelta) -> None:
        self.changelogs = (changelog,)
        self.retention = retention
        self.held: dict[int, OrderedDict[str, SeenEvent]] = {}

    def partition(self, partition: int) -> OrderedDict[str, SeenEvent]:
        return self.held.setdefault(partition, OrderedDict())

    def get(self, partition: int, event_id: str, now: datetime) -> SeenEvent | None:
        entry = self.partition(partition).get(event_id)
        return None if entry is None or expired(entry, now, self.retention) else entry

    def put(self, partition: int, event_id: str, entry: SeenEvent) -> Out:
        """Remember (as the newest) and return the changelog record."""
        held = self.partition(partition)
        held.pop(event_id, None)
        held[event_id] = entry
        return Out(self.changelogs[0], event_id.encode(), entry.to_json(), partition)

    def expire(self, partition: int, now: datetime) -> list[Out]:
        """Forget the entries past retention at the front; their changelog tombstones."""
        held, out = self.partition(partition), []
        while held:
            event_id, entry = next(iter(held.items()))
            if not expired(entry, now, self.retention):
                break
            del held[event_id]
            out.append(Out(self.changelogs[0], event_id.encode(), None, partition))
        return out

    def restore(
        self, partition: int, changelog: str, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        held = self.partition(partition)
        for record in records:
            event_id = record.key.decode()
            held.pop(event_id, None)
            if record.value is not None:
                held[event_id] = SeenEvent.from_json(record.value)

    def restored(self, partitions: list[int]) -> None:
        pass

    def forget(self, partition: int) -> None:
        self.held.pop(partition, None)
