"""Reading history and backtesting hold off CPython's cyclic collector
(services/common/collector.py): a million observations read in half the time. That is safe only
while what they build has no reference cycles (those would wait in memory for the next collection),
and the collector must be back as it was afterwards."""

from __future__ import annotations

import gc
import json

import pytest

from services.common import collector
from services.common.settings import PROJECT_ROOT
from services.triggers.backtest import run_backtest
from services.triggers.history import load_history
from tests.helpers import GEOGRAPHY, NOW, WIDE_RULES, crossing, engine_with, wide_history


def test_the_collector_is_as_it_was_after_the_block_even_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        assert not gc.isenabled()
        raise RuntimeError("a backtest failing half-way")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_reading_history_and_backtesting_leave_no_cycles_behind(tmp_path):
    """Good and rejected lines, the bundled scenarios (JSON lines, CSV, HXL) and a columnar backtest
    of every kind of rule: nothing for the collector to find afterwards."""
    bad = tmp_path / "mixed.jsonl"
    bad.write_text(
        "\n".join(
            [
                json.dumps(crossing(0, 3000)),
                "{not json",
                json.dumps(crossing(1, -5)),
                json.dumps(crossing(2, 10, site="XX-NOWHERE")),
                json.dumps({"feed": "displacement", "raw": "[]"}),
            ]
        )
    )
    observations = wide_history(5, 75, 0.0, 0.0, 0.0)
    run_backtest(
        observations[:50], engine_with(WIDE_RULES), NOW
    )  # numpy imports numpy.ma on first use: cycles once
    gc.collect()
    gc.disable()
    try:
        read = load_history([PROJECT_ROOT / "scenarios", bad], GEOGRAPHY, NOW)
        alerts = run_backtest(observations, engine_with(WIDE_RULES), NOW)
        found = gc.collect()
    finally:
        gc.enable()
    assert (
        len(read.observations) > 100 and len(read.problems) >= 4 and len(alerts) > 100
    )  # not vacuous
    assert found == 0
