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

    @property
    def key(self) -> str:
        return self.location.id
