"""The normalised form of every accepted feed report, on ews.observations keyed by location id."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .types import Duration, Identifier, UtcDateTime

FeedName = Literal["border_crossing", "displacement"]


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["site", "area", "country"]
    id: str
    country: str


class Observation(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: Identifier
    revision: int = Field(1, ge=1, description="raised when a partner corrects an event_id")
    feed: FeedName
    source: str
    observed_at: UtcDateTime
    period: Duration
    period_end: UtcDateTime
    location: Location
    metrics: dict[str, int] = Field(
        description="counts by metric name, e.g. count, newly_displaced"
    )
    categories: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="breakdowns, e.g. nationality"
    )
    ingested_at: datetime
    moved_from: Location | None = Field(
        None,
        description="set on a correction that moves the report: where the version it corrects "
        "was counted (its figure is withdrawn there)",
    )

    @property
    def key(self) -> str:
        return self.location.id

    @property
    def report_id(self) -> str:
        """The report's identity: event_ids are the partner's, unique per source."""
        return report_id(self.source, self.event_id)


def report_id(source: str, event_id: str) -> str:
    """ "source/event_id": one report (a source has no "/"), as windows, evidence and
    de-duplication know it."""
    return f"{source}/{event_id}"


def location_code(location: Location) -> str:
    """A location in one short string ("site:PA-X:PA"), as ingest remembers where a report was."""
    return f"{location.kind}:{location.id}:{location.country}"


def location_of_code(code: str) -> Location:
    kind, rest = code.split(":", 1)  # an id may hold ":"; a kind and a country never do
    id_, country = rest.rsplit(":", 1)
    return Location.model_validate({"kind": kind, "id": id_, "country": country})
