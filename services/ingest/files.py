"""CSV and HXL-tagged CSV files → feed reports, one per row, with row numbers for every problem.

Plain CSV uses the report's field names as headers (`event_id, source, observed_at, ...`;
`nationality_VE` columns fill `by_nationality`). HXL files carry a row of hashtags, either
as the header or right under it; the tags below are mapped to fields, attributes in any order
(`#affected+nationality_ve` or `#affected+nationality+ve` fill `by_nationality`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# (feed, normalised HXL tag) → report field. Normalised: base tag + sorted attributes.
HXL_FIELDS: dict[str, dict[str, str]] = {
    "common": {
        "#meta+id": "event_id",
        "#meta+source": "source",
        "#org": "source",
        "#date": "observed_at",
        "#date+start": "observed_at",
        "#meta+period": "period",
    },
    "border-crossings": {
        "#loc+code": "site_id",
        "#loc+id": "site_id",
        "#country+code+origin": "from_country",
        "#country+origin": "from_country",
        "#country+code+dest": "to_country",
        "#country+code": "to_country",
        "#affected": "count",
        "#affected+total": "count",
        "#affected+children": "children",
        "#affected+children+unaccompanied": "unaccompanied_children",
    },
    "displacement": {
        "#adm1+code": "area_id",
        "#adm2+code": "area_id",
        "#loc+code": "area_id",
        "#country+code": "country",
        "#affected+idps": "newly_displaced",
        "#affected+displaced": "newly_displaced",
        "#cause": "cause",
        "#crisis+type": "cause",
        "#affected+sheltered": "shelter_occupancy",
        "#capacity": "shelter_capacity",
        "#capacity+shelter": "shelter_capacity",
    },
}
INTEGER_FIELDS = {
    "count",
    "children",
    "unaccompanied_children",
    "newly_displaced",
    "shelter_occupancy",
    "shelter_capacity",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_INTEGER = re.compile(r"^-?\d{1,3}(,\d{3})+$|^-?\d+$")


class FileFormatError(ValueError):
    """The file as a whole cannot be read (not UTF-8, no header, unknown columns);
    names the file."""


NESTED_TOO_DEEPLY = "JSON is nested too deeply; a feed report is a flat object"


def unreadable(exc: Exception) -> str:
    """Why bytes could not be read as text or JSON, for a person."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc.reason} at byte {exc.start}"
    if isinstance(exc, RecursionError):
        return NESTED_TOO_DEEPLY
    if isinstance(exc, OSError):
        return f"cannot be read: {exc.strerror or exc}"
    return str(exc)


@dataclass(frozen=True)
class FileRow:
    number: int  # 1-based line in the file, as a spreadsheet shows it
    report: dict


def _normalise_tag(tag: str) -> str:
    parts = [p.strip().lower() for p in tag.strip().split("+") if p.strip()]
    return "+".join([parts[0]] + sorted(parts[1:])) if parts else ""


def detect_feed(columns: list[str]) -> str:
    if any(
        c in ("newly_displaced", "displacement")
        or c.startswith("#affected+displaced")
        or _normalise_tag(c) in ("#affected+idps", "#affected+displaced")
        for c in columns
    ):
        return "displacement"
    return "border-crossings"


# The columns that say which report a row is (all but its figures), in the order a generated id
# names them after the source, the date and the place.
_IDENTIFYING = ("from_country", "to_country", "country", "cause", "period")
_NOT_IN_ID = re.compile(r"[^a-z0-9._:/-]+")


def generated_id(report: dict) -> str:
    """An event_id for a row of a file without one: the source, the start (the date, with its time
    and offset unless it is midnight UTC), the place and every other identifying column, so rows
    that differ in any of them (two origins at one site on one day) are different reports, and the
    same row in a file sent again is the same report."""
    observed = str(report["observed_at"])
    rest = observed[10:].removesuffix("Z").removesuffix("+00:00")
    when = observed[:10] if not re.search(r"[1-9]", rest) else observed
    where = report.get("site_id") or report.get("area_id")
    parts = [report["source"], when, where or report.get("to_country") or report.get("country")]
    parts += [str(report[f]) for f in _IDENTIFYING if f in report and report[f] not in parts]
    return _NOT_IN_ID.sub("-", "-".join(str(p) for p in parts if p).lower())[:200]


def _nationality_field(tag: str) -> str | None:
    """`#affected+nationality_ve` or `#affected+nationality+ve` (attributes in any order): the
    people of one nationality among those counted, as the plain CSV's `nationality_VE` column."""
    base, *attributes = tag.split("+")
    if base != "#affected":
        return None
    for attribute in attributes:
        if attribute.startswith("nationality_") and len(attributes) == 1:
            return "nationality_" + attribute.removeprefix("nationality_").upper()
    if "nationality" in attributes and len(attributes) == 2:
        [code] = [a for a in attributes if a != "nationality"]
        return "nationality_" + code.upper()
    return None


def _field_map(
    header: list[str], tags: list[str] | None, feed: str, path: Path
) -> list[str | None]:
    mapping = {**HXL_FIELDS["common"], **HXL_FIELDS[feed]}
    fields: list[str | None] = []
    for index, name in enumerate(header):
        tag = tags[index] if tags else name
        if tag.strip().startswith("#"):
            normalised = _normalise_tag(tag)
            fields.append(mapping.get(normalised) or _nationality_field(normalised))
        else:
            fields.append(name.strip() or None)
    if not any(fields):
        raise FileFormatError(
            f"{path}: no column maps to a report field; expected field names or HXL tags such as "
            "#date, #affected"
        )
    if "observed_at" not in fields:
        raise FileFormatError(
            f"{path}: no date column; expected an observed_at column or an HXL #date tag"
        )
    return fields


def _convert(field: str, value: str) -> object:
    value = value.strip()
    if field in INTEGER_FIELDS and _INTEGER.match(value):
        return int(value.replace(",", ""))
    if field == "observed_at" and _DATE.match(value):
        return f"{value}T00:00:00Z"
    if field == "observed_at" and _MONTH.match(value):
        return f"{value}-01T00:00:00Z"
    return value


def read_feed_rows(
    path: Path, feed: str | None = None, source: str | None = None
) -> tuple[str, Iterator[FileRow]]:
    """The feed the file holds and its rows as report dicts (validation happens after)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise FileFormatError(f"{path}: {unreadable(exc)}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as exc:  # a field over the csv module's 128 KiB limit, say
        raise FileFormatError(f"{path}:{reader.line_num}: not readable as CSV: {exc}") from None
    if not rows:
        raise FileFormatError(f"{path}: the file is empty")
    header, start, tags = rows[0], 1, None
    if all(c.strip().startswith("#") for c in header if c.strip()):
        tags = header
    elif len(rows) > 1 and sum(c.strip().startswith("#") for c in rows[1]) >= max(
        1, len([c for c in rows[1] if c.strip()]) // 2
    ):
        tags, start = rows[1], 2
    feed = feed or detect_feed(tags or header)
    fields = _field_map(header, tags, feed, path)

    def generate() -> Iterator[FileRow]:
        for offset, row in enumerate(rows[start:], start=start + 1):
            if not any(cell.strip() for cell in row):
                continue
            report: dict = {}
            for field, value in zip(fields, row, strict=False):
                if field is None or not value.strip():
                    continue
                if field.startswith("nationality_"):
                    report.setdefault("by_nationality", {})[field.removeprefix("nationality_")] = (
                        _convert("count", value)
                    )
                else:
                    report[field] = _convert(field, value)
            if source and "source" not in report:
                report["source"] = source
            if (
                "observed_at" in report
                and _MONTH.match(row[fields.index("observed_at")].strip())
                and "period" not in report
            ):
                report["period"] = "P1M"
            if "event_id" not in report and {"source", "observed_at"} <= report.keys():
                report["event_id"] = generated_id(report)
            yield FileRow(offset, report)

    return feed, generate()
