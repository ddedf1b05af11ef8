"""The bundled scenarios, as the feed messages a data partner would publish."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import PROJECT_ROOT

SCENARIOS = PROJECT_ROOT / "scenarios"
SYNTHETIC_CORRIDOR = SCENARIOS / "darien-corridor.synthetic.jsonl"
HONDURAS_ARRIVALS = SCENARIOS / "honduras-irregular-arrivals.csv"


@dataclass(frozen=True)
class FeedMessage:
    feed: str  # "border-crossings" or "displacement"
    key: bytes  # site, area or country id: keeps one place's reports in order
    value: bytes
    origin: str  # file:line, for messages a person reads


def load_jsonl_scenario(path: Path) -> list[FeedMessage]:
    """Lines of {"feed": ..., "message": {...}} (a report) or {"feed": ..., "raw": "..."} (bytes as sent)."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if "message" in item:
            message = item["message"]
            value = json.dumps(message, ensure_ascii=False).encode()
            key = message.get("site_id") or message.get("area_id") or message.get("to_country") or ""
        else:
            value, key = item["raw"].encode(), ""
        out.append(FeedMessage(item["feed"], key.encode(), value, f"{path.name}:{number}"))
    return out


def load_honduras_arrivals(path: Path = HONDURAS_ARRIVALS) -> list[FeedMessage]:
    """INM Honduras monthly irregular arrivals (period,value) as national border-crossing reports."""
    out = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            report = {
                "event_id": f"hn-inm-irregular-arrivals-{row['period']}",
                "source": "HN-INM",
                "observed_at": f"{row['period']}-01T00:00:00-06:00",
                "period": "P1M",
                "to_country": "HN",
                "count": int(row["value"]),
            }
            out.append(FeedMessage("border-crossings", b"HN", json.dumps(report).encode(), f"{path.name}:{number}"))
    return out


def bundled_scenario() -> list[FeedMessage]:
    """The real Honduras series first (2014–2025), then the synthetic corridor (2026)."""
    return load_honduras_arrivals() + load_jsonl_scenario(SYNTHETIC_CORRIDOR)
