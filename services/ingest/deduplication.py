"""Re-sends and corrections by event_id. Pure: the state entry and the time are passed in."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from schemas import Observation

Outcome = Literal["accepted", "duplicate", "correction", "replayed"]


class SeenEvent(BaseModel):
    """What ingest remembers of an event_id for the retention period."""

    digest: str
    revision: int
    seen_at: datetime
    partition: int
    offset: int = -1  # of the de-duplication input message that recorded it


def content_digest(observation: Observation) -> str:
    """A fingerprint of what the report says (not when it arrived or its revision)."""
    content = observation.model_dump(mode="json", exclude={"ingested_at", "revision"})
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def decide(previous: SeenEvent | None, digest: str, partition: int = -1, offset: int = -2) -> tuple[Outcome, int]:
    """Same content again is a duplicate; different content under a known event_id is a correction.

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
    return "correction", previous.revision + 1


def expired(entry: SeenEvent, now: datetime, retention) -> bool:
    return entry.seen_at + retention < now
