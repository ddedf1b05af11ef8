"""Read history for a backtest: JSON lines, CSV or HXL files, or a folder of them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from schemas import Observation
from services.common import collector
from services.common.geography import Geography
from services.ingest.files import FileFormatError, read_feed_rows
from services.ingest.validation import FeedRejection, parse_feed_message

SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv")


@dataclass
class History:
    observations: list[Observation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "file:line: detail", as ingest would reject them
    files: list[Path] = field(default_factory=list)


def _feed_of(report: dict) -> str:
    return "displacement" if "area_id" in report or "newly_displaced" in report else "border-crossings"


def load_history(paths: list[Path], geography: Geography, now: datetime) -> History:
    history = History()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and not p.name.endswith(".source.txt")))
        else:
            files.append(path)
    with collector.paused():  # a million observations are kept: the collector rescanning them was half the reading time
        for path in files:
            _read_file(path, geography, now, history)
    return history


def _read_file(path: Path, geography: Geography, now: datetime, history: History) -> None:
    history.files.append(path)
    if path.suffix == ".csv":
        try:
            feed, rows = read_feed_rows(path)
            items = [(row.number, feed, json.dumps(row.report).encode()) for row in rows]
        except FileFormatError as exc:
            history.problems.append(f"{path}: skipped: {exc}")
            return
    else:
        items = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                history.problems.append(f"{path}:{number}: not JSON: {exc.msg}")
                continue
            if isinstance(item, dict) and "feed" in item and ("message" in item or "raw" in item):
                raw = json.dumps(item["message"]).encode() if "message" in item else item["raw"].encode()
                items.append((number, item["feed"], raw))
            else:
                items.append((number, _feed_of(item) if isinstance(item, dict) else "border-crossings", line.encode()))
    for number, feed, raw in items:
        try:
            history.observations.append(parse_feed_message(feed, raw, geography, now))
        except FeedRejection as error:
            history.problems.append(f"{path}:{number}: {error.detail}")
