"""The bundled scenarios, as the feed messages a data partner would publish."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import PROJECT_ROOT
from services.ingest.files import read_feed_rows

SCENARIOS = PROJECT_ROOT / "scenarios"
SYNTHETIC_CORRIDOR = SCENARIOS / "darien-corridor.synthetic.jsonl"
HONDURAS_ARRIVALS = (
    SCENARIOS / "honduras-irregular-arrivals.source.csv"
)  # as published (see .source.txt)
HONDURAS_ARRIVALS_HXL = (
    SCENARIOS / "honduras-irregular-arrivals.hxl.csv"
)  # the same figures, HXL-tagged


@dataclass(frozen=True)
class FeedMessage:
    feed: str  # "border-crossings" or "displacement"
    key: bytes  # site, area or country id: keeps one place's reports in order
    value: bytes
    origin: str  # file:line, for messages a person reads


def load_jsonl_scenario(path: Path) -> list[FeedMessage]:
    """Lines of {"feed": ..., "message": {...}} (a report) or {"feed": ..., "raw": "..."} (bytes as
    sent)."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if "message" in item:
            message = item["message"]
            value = json.dumps(message, ensure_ascii=False).encode()
            key = (
                message.get("site_id") or message.get("area_id") or message.get("to_country") or ""
            )
        else:
            value, key = item["raw"].encode(), ""
        out.append(FeedMessage(item["feed"], key.encode(), value, f"{path.name}:{number}"))
    return out


def load_honduras_arrivals(path: Path = HONDURAS_ARRIVALS_HXL) -> list[FeedMessage]:
    """INM Honduras monthly irregular arrivals as national border-crossing reports, read as `ews
    ingest` reads HXL."""
    feed, rows = read_feed_rows(path)
    return [
        FeedMessage(feed, b"HN", json.dumps(row.report).encode(), f"{path.name}:{row.number}")
        for row in rows
    ]


def bundled_scenario() -> list[FeedMessage]:
    """The real Honduras series first (2014–2025), then the synthetic corridor (2026)."""
    return load_honduras_arrivals() + load_jsonl_scenario(SYNTHETIC_CORRIDOR)
