"""Feed message → Observation or RejectedMessage. Pure: the time of ingestion is passed in."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
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
from schemas.types import DurationValue, as_timedelta, parse_duration
from services.common.config_files import field_and_message
from services.common.geography import Geography

from .files import NESTED_TOO_DEEPLY

MAX_MESSAGE_BYTES = 1_000_000
# Reports outside these years are typing errors or a partner's placeholder (0001-01-01, 9999-12-31).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What a plausible report is, besides its fields' own checks: its period ends at most
    `max_future` after the wall clock (EWS_MAX_FUTURE) and lasts at most `max_period`
    (EWS_MAX_PERIOD), both durations such as 'P1D'."""

    max_future: str = "P1D"
    max_period: str = "P1Y"

    def __post_init__(self) -> None:
        self.future, self.period  # noqa: B018 (a bad setting fails here, not on the first report)

    @cached_property
    def future(self) -> DurationValue:
        return parse_duration(self.max_future)

    @cached_property
    def period(self) -> timedelta:
        return as_timedelta(parse_duration(self.max_period))


DEFAULT_LIMITS = Limits()


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
        field, message = field_and_message(err, "(message)")
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
    feed: str,
    raw: bytes,
    geography: Geography,
    ingested_at: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> Observation:
    """Validate one message of `feed` received at `ingested_at` (the wall clock); raise
    FeedRejection naming what is wrong, and nothing else: a failure of ews itself on one message
    is that message's `internal` rejection (logged with its traceback), never the caller's."""
    try:
        return _parse_feed_message(feed, raw, geography, ingested_at, limits)
    except FeedRejection:
        raise
    except Exception as exc:
        log.exception("could not validate a %s message (%d bytes)", feed, len(raw))
        raise FeedRejection(
            "internal",
            f"ews failed on this message ({type(exc).__name__}: {exc}); it is kept on the "
            "rejected topic for the maintainers",
        ) from exc


def _parse_feed_message(
    feed: str, raw: bytes, geography: Geography, ingested_at: datetime, limits: Limits
) -> Observation:
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
        out_of_range = any(err["type"] == "out_of_range" for err in exc.errors())
        reason = "out_of_range" if out_of_range else "validation"
        raise FeedRejection(reason, describe_validation_error(exc)) from None
    period_end = plausible_end(report.observed_at, report.period, ingested_at, limits)
    return to_observation(report, geography, ingested_at, period_end)


def plausible_end(observed_at: datetime, period: str, now: datetime, limits: Limits) -> datetime:
    """The end of a report's period, once its start and length are checked to be plausible
    (before any arithmetic that could overflow); raise FeedRejection (`out_of_range`, `future`)."""
    if not EARLIEST <= observed_at < LATEST:
        raise FeedRejection(
            "out_of_range",
            f"observed_at: {observed_at.isoformat()} is outside the years "
            f"{EARLIEST.year}-{LATEST.year - 1} ews accepts; check the date",
        )
    length = parse_duration(period)
    if as_timedelta(length) > limits.period:
        raise FeedRejection(
            "out_of_range",
            f"period: {period} is longer than the longest period ews accepts "
            f"(EWS_MAX_PERIOD, {limits.max_period}); send one report per shorter period",
        )
    end: datetime = observed_at + length
    if end > now + limits.future:
        raise FeedRejection(
            "future",
            f"observed_at: the period ends {end.isoformat()}, more than EWS_MAX_FUTURE "
            f"({limits.max_future}) after now ({now.isoformat(timespec='seconds')}); "
            "check the date and the year",
        )
    return end


def to_observation(
    report: BorderCrossingReport | DisplacementReport,
    geography: Geography,
    ingested_at: datetime,
    period_end: datetime,
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
        period_end=period_end,
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
