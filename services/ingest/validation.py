"""Feed message → Observation or RejectedMessage. Pure: the time of ingestion is passed in."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas import (
    FEED_MODELS,
    BorderCrossingReport,
    DisplacementReport,
    Location,
    Observation,
    RejectedMessage,
)
from schemas.types import parse_duration
from services.common.geography import Geography

from .files import NESTED_TOO_DEEPLY

MAX_MESSAGE_BYTES = 1_000_000


class FeedRejection(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def describe_limit(limit: int) -> str:
    return f"body is larger than {limit} bytes; split it into several requests"


def _refuse_constant(name: str) -> Any:
    raise FeedRejection("invalid_json", f"{name} is not a number JSON allows; send a finite count")


def describe_validation_error(error: ValidationError) -> str:
    """'count: Input should be greater than or equal to 0 (got -5); to_country: ...'"""
    parts = []
    for err in error.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(message)"
        message = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = (
            ""
            if err["type"] == "missing" or isinstance(got, (dict, list))
            else f" (got {_short(got)})"
        )
        parts.append(f"{field}: {message}{shown}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_feed_message(
    feed: str, raw: bytes, geography: Geography, ingested_at: datetime
) -> Observation:
    """Validate one message of `feed`; raise FeedRejection naming what is wrong."""
    model = FEED_MODELS.get(feed)
    if model is None:
        raise FeedRejection(
            "unknown_feed", f"unknown feed {feed!r}; expected one of {', '.join(FEED_MODELS)}"
        )
    if len(raw) > MAX_MESSAGE_BYTES:
        raise FeedRejection(
            "too_large", f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeedRejection(
            "not_utf8", f"message is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise FeedRejection(
            "invalid_json", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise FeedRejection("invalid_json", NESTED_TOO_DEEPLY) from None
    if not isinstance(data, dict):
        raise FeedRejection(
            "not_an_object", f"expected one JSON object per message, got {type(data).__name__}"
        )
    try:
        report = model.model_validate(data)
    except ValidationError as exc:
        raise FeedRejection("validation", describe_validation_error(exc)) from None
    return to_observation(report, geography, ingested_at)


def to_observation(
    report: BorderCrossingReport | DisplacementReport, geography: Geography, ingested_at: datetime
) -> Observation:
    if isinstance(report, BorderCrossingReport):
        location = _crossing_location(report, geography)
        metrics = {"count": report.count}
        if report.children is not None:
            metrics["children"] = report.children
        if report.unaccompanied_children is not None:
            metrics["unaccompanied_children"] = report.unaccompanied_children
        categories = {"nationality": dict(report.by_nationality)} if report.by_nationality else {}
    else:
        location = _displacement_location(report, geography)
        metrics = {"newly_displaced": report.newly_displaced}
        if report.shelter_occupancy is not None and report.shelter_capacity is not None:
            metrics["shelter_occupancy"] = report.shelter_occupancy
            metrics["shelter_capacity"] = report.shelter_capacity
        categories = {"cause": {report.cause: report.newly_displaced}}
    return Observation(
        event_id=report.event_id,
        feed=report.feed,
        source=report.source,
        observed_at=report.observed_at,
        period=report.period,
        period_end=report.observed_at + parse_duration(report.period),
        location=location,
        metrics=metrics,
        categories=categories,
        ingested_at=ingested_at,
    )


def _crossing_location(report: BorderCrossingReport, geography: Geography) -> Location:
    if report.site_id is None:
        return Location(kind="country", id=report.to_country, country=report.to_country)
    site = geography.sites.get(report.site_id)
    if site is None:
        raise FeedRejection(
            "unknown_site", f"site_id: {report.site_id!r} is not a site in config/sites.yaml"
        )
    if site.country not in (report.to_country, report.from_country):
        raise FeedRejection(
            "validation",
            f"site_id: {site.id} is in {site.country}, but the report says from "
            f"{report.from_country} to {report.to_country}",
        )
    return Location(kind="site", id=site.id, country=site.country)


def _displacement_location(report: DisplacementReport, geography: Geography) -> Location:
    area = geography.areas.get(report.area_id)
    site = geography.sites.get(report.area_id)
    if area is None and site is None:
        raise FeedRejection(
            "unknown_area",
            f"area_id: {report.area_id!r} is not an area or shelter in config/sites.yaml",
        )
    where = area or site
    assert where is not None
    if where.country != report.country:
        raise FeedRejection(
            "validation", f"area_id: {report.area_id} is in {where.country}, not {report.country}"
        )
    return Location(kind="area" if area else "site", id=report.area_id, country=report.country)


def rejection(
    feed: str, raw: bytes, error: FeedRejection, rejected_at: datetime, **source: Any
) -> RejectedMessage:
    return RejectedMessage(
        feed=feed,
        reason=error.reason,
        detail=error.detail,
        original_base64=base64.b64encode(raw).decode("ascii"),
        rejected_at=rejected_at,
        **source,
    )
