"""What data partners publish on the feed topics (and POST over HTTP, and upload as CSV/HXL)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .types import Count, CountryCode, Duration, Identifier, SourceId, UtcDateTime


class FeedReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier = Field(
        description="unique per report of a source; a re-send with the same id is a duplicate, "
        "other figures under it a correction"
    )
    source: SourceId = Field(description="the publishing organisation, e.g. PA-SNM (no '/')")
    observed_at: UtcDateTime = Field(description="start of the period the counts cover")
    period: Duration = Field("P1D", description="ISO 8601 duration the counts cover")


class BorderCrossingReport(FeedReport):
    """People counted crossing at a site (or, without site_id, into a country) during a period."""

    feed: Literal["border_crossing"] = "border_crossing"
    site_id: Identifier | None = Field(
        None, description="crossing point from config/sites.yaml; omit for a national total"
    )
    from_country: CountryCode | None = None
    to_country: CountryCode
    count: Count
    by_nationality: dict[CountryCode, Count] = Field(default_factory=dict)
    children: Count | None = None
    unaccompanied_children: Count | None = None

    @model_validator(mode="after")
    def _breakdowns_within_total(self) -> BorderCrossingReport:
        if sum(self.by_nationality.values()) > self.count:
            raise ValueError(
                f"by_nationality adds up to {sum(self.by_nationality.values())}, more than count "
                f"{self.count}"
            )
        if self.children is not None and self.children > self.count:
            raise ValueError(f"children ({self.children}) is more than count ({self.count})")
        if self.unaccompanied_children is not None:
            ceiling = self.children if self.children is not None else self.count
            if self.unaccompanied_children > ceiling:
                what = "children" if self.children is not None else "count"
                raise ValueError(
                    f"unaccompanied_children ({self.unaccompanied_children}) is more than {what} "
                    f"({ceiling})"
                )
        return self


class DisplacementReport(FeedReport):
    """People newly displaced in an area, and shelter occupancy there, during a period."""

    feed: Literal["displacement"] = "displacement"
    area_id: Identifier = Field(description="ISO 3166-2 area or shelter id from config/sites.yaml")
    country: CountryCode
    newly_displaced: Count
    cause: Literal["violence", "disaster", "conflict", "economic", "other", "unknown"] = "unknown"
    shelter_occupancy: Count | None = None
    shelter_capacity: Count | None = None

    @model_validator(mode="after")
    def _shelter_consistent(self) -> DisplacementReport:
        if (self.shelter_occupancy is None) != (self.shelter_capacity is None):
            raise ValueError(
                "shelter_occupancy and shelter_capacity go together: give both or neither"
            )
        if self.shelter_capacity == 0 and self.shelter_occupancy:
            raise ValueError("shelter_capacity is 0 but shelter_occupancy is not")
        return self


FEED_MODELS: dict[str, type[BorderCrossingReport] | type[DisplacementReport]] = {
    "border-crossings": BorderCrossingReport,
    "displacement": DisplacementReport,
}
