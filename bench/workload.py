"""Seeded synthetic workloads: a geography of N sites on the real areas and corridors, and feeds
over it: daily reports per site, or more frequent ones when that many days would run past today
(ingest refuses reports from the future: a million reports from ten sites are ten-minute counts
over some 700 days, not daily counts over 270 years).

Every benchmark and the reliability scenarios draw from here, so a figure can be reproduced from its
seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from schemas.config import SitesFile
from services.common.settings import PROJECT_ROOT

MAX_SPAN = timedelta(days=1100)  # how far back a workload's history starts (about three years)
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - MAX_SPAN
CADENCES = (
    ("P1D", timedelta(days=1)),
    ("PT1H", timedelta(hours=1)),
    ("PT10M", timedelta(minutes=10)),
    ("PT1M", timedelta(minutes=1)),
)
NATIONALITIES = ["VE", "EC", "CO", "HT", "CU", "CN", "PE", "AF", "IN", "CM", "AO", "SN"]
_NORTHBOUND = {"PA", "CR", "NI", "HN", "GT", "MX"}


def geography(n_sites: int) -> SitesFile:
    """N synthetic sites spread over the areas of config/sites.yaml, each on the corridor of its
    country."""
    real = SitesFile.model_validate(
        yaml.safe_load((PROJECT_ROOT / "config" / "sites.yaml").read_text())
    )
    areas = real.areas
    sites: list[dict[str, Any]] = []
    corridors: dict[str, list[str]] = {"darien-northbound": [], "andean-southbound": []}
    for i in range(n_sites):
        area = areas[i % len(areas)]
        site_id = f"{area.country}-B{i:05d}"
        sites.append(
            {
                "id": site_id,
                "name": f"Bench site {i}",
                "country": area.country,
                "kind": "crossing",
                "area": area.id,
            }
        )
        northbound = area.country in _NORTHBOUND or (area.country == "CO" and i % 2 == 0)
        corridors["darien-northbound" if northbound else "andean-southbound"].append(site_id)
    return SitesFile.model_validate(
        {
            "region": real.region,
            "sites": sites,
            "areas": [a.model_dump() for a in areas],
            "corridors": [
                {"id": cid, "name": cid, "sites": members}
                for cid, members in corridors.items()
                if members
            ],
        }
    )


def write_geography(n_sites: int, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            geography(n_sites).model_dump(mode="json", exclude_none=True), sort_keys=False
        )
    )
    return path


def cadence(n_events: int, n_sites: int) -> tuple[str, timedelta]:
    """The reporting period of a workload: daily, unless its history would then start more than
    MAX_SPAN ago."""
    rounds = -(-n_events // n_sites)
    for period, step in CADENCES:
        if rounds * step <= MAX_SPAN:
            return period, step
    return CADENCES[-1]


def feed_messages(n_events: int, n_sites: int, seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """(feed, JSON bytes) as partners publish them: one border-crossing report per site and period
    (`cadence`), and a displacement report for every tenth site, with counts that wander across the
    shipped levels."""
    rng = random.Random(seed)
    sites = geography(n_sites).sites
    level = [rng.randint(100, 3000) for _ in sites]
    period, step = cadence(n_events, n_sites)
    produced, day = 0, 0
    while True:
        date = START + step * day
        for i, site in enumerate(sites):
            if produced >= n_events:
                return
            level[i] = min(
                9000, max(0, int(level[i] * rng.uniform(0.7, 1.45)) + rng.randint(-50, 50))
            )
            children = level[i] // rng.randint(40, 200)
            nationality = dict.fromkeys(rng.sample(NATIONALITIES, 3), level[i] // 4)
            if rng.random() < 0.02:
                nationality[rng.choice(["SO", "ER", "NP", "BD"])] = level[i] // 5
            body = {
                "event_id": f"bc-{site.id}-{day}",
                "source": f"BENCH-{site.country}",
                "site_id": site.id,
                "observed_at": date.isoformat(),
                "period": period,
                "count": level[i],
                "from_country": "CO" if site.country != "CO" else "VE",
                "to_country": site.country,
                "unaccompanied_children": children,
                "by_nationality": nationality,
            }
            yield "border-crossings", json.dumps(body).encode()
            produced += 1
            if i % 10 == 0 and produced < n_events:
                capacity = 500 + (i % 7) * 100
                body = {
                    "event_id": f"dp-{site.id}-{day}",
                    "source": f"BENCH-{site.country}-DP",
                    "area_id": site.area,
                    "country": site.country,
                    "observed_at": date.isoformat(),
                    "period": period,
                    "newly_displaced": rng.randint(0, 2500),
                    "shelter_occupancy": rng.randint(200, capacity + 150),
                    "shelter_capacity": capacity,
                }
                yield "displacement", json.dumps(body).encode()
                produced += 1
        day += 1
