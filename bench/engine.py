"""The trigger engine alone, fed the bench workload's reports tick by tick as parsed models (as the
evaluation stage gets them): reports/s, and the resident memory its windows take per report held.
No broker, no workers: what a change to the windows costs, measured in a minute.

    .venv/bin/python -m bench.engine [--sites 10000] [--events 300000]

Against earlier code, from a git worktree of it (the script itself from this checkout):

    git worktree add /tmp/before <commit> && cd /tmp/before
    PYTHONPATH=/tmp/before /path/to/ews/.venv/bin/python /path/to/ews/bench/engine.py
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))  # run by path from a worktree: its code, not this checkout's

from bench.workload import feed_messages, write_geography
from schemas import Observation, SitesFile
from services.common.config_files import load_model
from services.common.geography import Geography
from services.ingest.validation import parse_feed_message
from services.triggers.backtest import Backtest, by_tick
from services.triggers.loading import load_engine


def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sites = write_geography(args.sites, Path(tmp) / "sites.yaml")
        geography = Geography(load_model(sites, SitesFile))
        engine = load_engine(Path.cwd() / "config" / "triggers.yaml", sites, "P7D")
    now = datetime.now(UTC)
    print(f"validating {args.events:,} reports over {args.sites:,} sites (not timed) ...")
    observations = [
        parse_feed_message(feed, value, geography, now)
        for feed, value in feed_messages(args.events, args.sites)
    ]
    ticks = [[o.model_dump_json().encode() for o in group] for group in by_tick(observations)]
    del observations
    backtest = Backtest(engine)
    gc.collect()
    before = resident()
    started = time.perf_counter()
    for group in ticks:  # parsed here, so that what the windows keep of a report is counted
        backtest.apply_together([Observation.model_validate_json(raw) for raw in group], now)
        backtest.alerts.clear()
    elapsed = time.perf_counter() - started
    gc.collect()
    held = sum(len(w.contributions) for s in backtest.states.values() for w in s.feeds.values())
    grown = resident() - before
    print(
        f"{Path.cwd()}: {args.events / elapsed:,.0f} reports/s; {held:,} reports held at their "
        f"scopes, {grown / 2**20:,.0f} MB resident, {grown / held:,.0f} bytes per report held"
    )


if __name__ == "__main__":
    main()
