"""Field types shared by the models: country codes, counts, UTC timestamps, ISO 8601 durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, TypeAlias

import isodate
import pycountry
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StrictInt
from pydantic_core import PydanticCustomError

MAX_COUNT = 1_000_000_000  # no real count of people reaches a billion; larger is an error
# The one fixed moment ews measures from: the span of a calendar duration (P1M from here is 31 days,
# P1Y 366) and the integer times of the columnar backtest.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# a fixed span, or a calendar one (P1M) that isodate keeps apart
DurationValue: TypeAlias = timedelta | isodate.Duration


def _check_country(code: str) -> str:
    if (
        not isinstance(code, str)
        or len(code) != 2
        or pycountry.countries.get(alpha_2=code.upper()) is None
    ):
        raise ValueError(
            f"expected an ISO 3166-1 alpha-2 country code such as 'PA' or 'HN', got {code!r}"
        )
    return code.upper()


def _check_subdivision(code: str) -> str:
    if pycountry.subdivisions.get(code=code.upper()) is None:  # type: ignore[no-untyped-call]
        raise ValueError(f"expected an ISO 3166-2 subdivision code such as 'HN-CR', got {code!r}")
    return code.upper()


def _timestamp_text(value: object) -> object:
    if not isinstance(value, (str, datetime)):
        raise ValueError(
            "expected an ISO 8601 timestamp with an offset such as '2026-11-20T00:00:00Z', got "
            f"{value!r}"
        )
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before the calendar's first day in UTC
        raise PydanticCustomError(
            "out_of_range",
            "{value} lies outside the calendar once converted to UTC",
            {"value": str(value)},
        ) from None


_SHORT = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SHORT_ISO = {"s": "PT{}S", "m": "PT{}M", "h": "PT{}H", "d": "P{}D", "w": "P{}W"}


@lru_cache(maxsize=1024)
def parse_duration(text: str) -> DurationValue:
    """Parse '24h', '7d', 'PT24H' or 'P1M' into a duration that can be added to a datetime."""
    parsed: DurationValue = isodate.parse_duration(normalise_duration(text))
    return parsed


def duration_text(duration: DurationValue) -> str:
    """A parsed duration back as ISO 8601 (P28D, PT24H, P1M)."""
    return str(isodate.duration_isoformat(duration))


def as_timedelta(duration: DurationValue) -> timedelta:
    """A calendar duration (P1M) as the timedelta it spans from EPOCH; for retention sums."""
    return (EPOCH + duration) - EPOCH


def normalise_duration(text: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as '24h', '7d' or ISO 8601 'P1M', got {text!r}")
    return _normalise_duration(text)


@lru_cache(maxsize=4096)  # every report names its period: a handful of distinct texts
def _normalise_duration(text: str) -> str:
    short = _SHORT.match(text)
    if short:
        text = _SHORT_ISO[short.group(2)].format(int(short.group(1)))
    try:
        value = isodate.parse_duration(text.strip().upper())
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(
            f"expected a duration such as '24h', '7d' or ISO 8601 'P1M', got {text!r}"
        ) from None
    except OverflowError:  # PT1000000000000H: more days than a timedelta holds
        raise _too_long(text) from None
    try:
        end = EPOCH + value
    except (OverflowError, ValueError):  # P9999Y: past the calendar's last year
        raise _too_long(text) from None
    if end <= EPOCH:
        raise ValueError(f"expected a positive duration, got {text!r}")
    return text.strip().upper()


def _too_long(text: str) -> PydanticCustomError:
    return PydanticCustomError(
        "out_of_range",
        "{text} is longer than a date can be moved by (years 1 to 9999)",
        {"text": repr(text)},
    )


CountryCode = Annotated[str, AfterValidator(_check_country), Field(examples=["PA"])]
SubdivisionCode = Annotated[str, AfterValidator(_check_subdivision), Field(examples=["HN-CR"])]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_timestamp_text), AfterValidator(_to_utc)]
Duration = Annotated[
    str, BeforeValidator(normalise_duration), Field(examples=["P1D", "PT24H", "P1M"])
]
# How often a source reports: a word or a duration ("monthly", "P1M", "7d").
CYCLES = {"hourly": "PT1H", "daily": "P1D", "weekly": "P7D", "monthly": "P1M", "yearly": "P1Y"}


def _cycle(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() in CYCLES:
        return CYCLES[value.strip().lower()]
    return normalise_duration(value)  # type: ignore[arg-type]


def cycle_name(period: str) -> str:
    """A reporting cycle as people say it: "monthly", else "every P14D"."""
    return next((word for word, iso in CYCLES.items() if iso == period), f"every {period}")


ReportingPeriod = Annotated[
    str, BeforeValidator(_cycle), Field(examples=["daily", "weekly", "monthly", "P1M"])
]
Identifier = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
]
# A publishing organisation: an identifier without "/", so that "source/event_id" names one report
# (event_ids are unique per source) and "source/PA-SNM" one scope.
SourceId = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
