"""Read history for a backtest: JSON lines, CSV or HXL files, or a folder of them."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from schemas import Observation
from services.common import collector
from services.common.geography import Geography
from services.ingest.deduplication import Versions
from services.ingest.files import FileFormatError, read_feed_rows, unreadable
from services.ingest.validation import DEFAULT_LIMITS, FeedRejection, Limits, parse_feed_message

SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv")
PROGRESS_LINES = 10_000  # how often reading a long file reports its progress


@dataclass
class History:
    observations: list[Observation] = field(default_factory=list)
    problems: list[str] = field(
        default_factory=list
    )  # "file:line: detail", as ingest would reject them
    files: list[Path] = field(default_factory=list)
    # the de-duplication ingest does live: re-sends dropped, corrections with their revision,
    # earlier versions sent again after a correction dropped
    versions: Versions = field(default_factory=Versions)

    @property
    def corrections(self) -> int:
        return self.versions.counts["correction"]

    @property
    def superseded(self) -> int:
        return self.versions.counts["superseded"]

    @property
    def duplicates(self) -> int:
        return self.versions.counts["duplicate"]


def _feed_of(report: dict) -> str:
    return (
        "displacement" if "area_id" in report or "newly_displaced" in report else "border-crossings"
    )


def history_files(paths: list[Path]) -> list[Path]:
    """The files a backtest reads: those given, and the history files inside the folders given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            # a scenario's data as published and where it came from (`*.source.*`) are not feeds
            files.extend(
                sorted(
                    p for p in path.rglob("*") if p.suffix in SUFFIXES and ".source." not in p.name
                )
            )
        else:
            files.append(path)
    return files


def load_history(
    paths: list[Path],
    geography: Geography,
    now: datetime,
    progress: Callable[[int], None] = lambda read: None,
    limits: Limits = DEFAULT_LIMITS,
) -> History:
    """Every report in these files (and folders) as an observation; `progress` is told how many more
    bytes were read, every PROGRESS_LINES lines."""
    history = History()
    with (
        collector.paused()
    ):  # a million observations are kept: the collector rescanning them was half the reading time
        for path in history_files(paths):
            _read_file(path, geography, now, history, progress, limits)
    return history


def _read_file(
    path: Path,
    geography: Geography,
    now: datetime,
    history: History,
    progress: Callable[[int], None],
    limits: Limits,
) -> None:
    """One file's reports into `history`: each line or row validated as ingest would, a bad one a
    problem naming its line, an unreadable file a problem naming the file."""
    history.files.append(path)
    if path.suffix == ".csv":
        try:
            feed, rows = read_feed_rows(path)
            items = [(row.number, feed, json.dumps(row.report).encode()) for row in rows]
        except FileFormatError as exc:  # it names the file
            history.problems.append(f"{exc}; the whole file is skipped")
            return
        _add(path, items, geography, now, history, limits)
        progress(size_of(path))
        return
    try:
        with path.open(
            "rb"
        ) as lines:  # a line at a time: one that is not UTF-8 is its own problem, not the file's
            _add(path, _json_lines(path, lines, history, progress), geography, now, history, limits)
    except OSError as exc:
        history.problems.append(f"{path}: {unreadable(exc)}; the rest of the file is skipped")


def _json_lines(
    path: Path, lines: Iterable[bytes], history: History, progress: Callable[[int], None]
) -> Iterator[tuple[int, str, bytes]]:
    """(line number, feed, the report's bytes) of each line holding a report, a line either a report
    or {"feed": ..., "message": {...}} / {"feed": ..., "raw": "..."}."""
    read = 0
    for number, line in enumerate(lines, start=1):
        read += len(line)
        if number % PROGRESS_LINES == 0:
            progress(read)
            read = 0
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)  # as spreadsheet tools on Windows save UTF-8
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if isinstance(item, dict) and "feed" in item and ("message" in item or "raw" in item):
                raw = (
                    json.dumps(item["message"]).encode()
                    if "message" in item
                    else str(item["raw"]).encode()
                )
                feed = str(item["feed"])
            else:
                feed, raw = (
                    _feed_of(item) if isinstance(item, dict) else "border-crossings",
                    line.rstrip(b"\r\n"),
                )
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            history.problems.append(f"{path}:{number}: {unreadable(exc)}")
            continue
        yield number, feed, raw
    progress(read)


def _add(
    path: Path,
    items: Iterable[tuple[int, str, bytes]],
    geography: Geography,
    now: datetime,
    history: History,
    limits: Limits,
) -> None:
    for number, feed, raw in items:
        try:
            observation = parse_feed_message(feed, raw, geography, now, limits)
        except FeedRejection as error:
            history.problems.append(f"{path}:{number}: {error.detail}")
            continue
        admitted = history.versions.admit(observation)
        if admitted is not None:
            history.observations.append(admitted)


def size_of(path: Path) -> int:
    """Its size in bytes, 0 if it cannot be read (reading it says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
