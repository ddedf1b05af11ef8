"""`ews backtest` reads history files as ingest reads feeds: a bad line or an unreadable file is
reported with its file and line and skipped; the rest of the history is still backtested."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from services.cli import main
from services.common.settings import PROJECT_ROOT
from tests.helpers import GEOGRAPHY, NOW, crossing

CONFIG = PROJECT_ROOT / "config"


def test_bad_lines_and_unreadable_files_are_reported_and_the_rest_backtested(tmp_path):
    history = tmp_path / "history"
    history.mkdir()
    good = [
        json.dumps(crossing(day, 9000)).encode() for day in range(3)
    ]  # a surge at Lajas Blancas
    (history / "feed.jsonl").write_bytes(
        b"\n".join(
            [
                b"\xef\xbb\xbf" + good[0],  # a UTF-8 byte order mark, as spreadsheet tools write
                b'{"event_id": "caf\xe9-1", "count": 5}',  # Latin-1, not UTF-8
                b"",
                b"{not json",
                json.dumps(
                    {"feed": ["border-crossings"], "raw": 5}
                ).encode(),  # a wrapper with nonsense in it
                b"[" * 100_000 + b"]" * 100_000,
                good[1],
                json.dumps({"feed": "border-crossings", "raw": good[2].decode()}).encode(),
            ]
        )
    )
    (history / "latin1.csv").write_bytes(
        "event_id,site_id,count\nañasco-1,PA-LAJAS-BLANCAS,5\n".encode("latin-1")
    )

    result = CliRunner().invoke(
        main, ["backtest", "--rules", str(CONFIG / "triggers.yaml"), "--events", str(history)]
    )

    assert result.exit_code == 0, result.output
    feed, csv = history / "feed.jsonl", history / "latin1.csv"
    assert (
        f"skipped {feed}:2: not UTF-8 text: invalid continuation byte at byte 17" in result.output
    )
    assert (
        f"skipped {feed}:4: not JSON: Expecting property name enclosed in double quotes"
        in result.output
    )
    assert f"skipped {feed}:5: unknown feed" in result.output
    assert (
        f"skipped {feed}:6: JSON is nested too deeply; a feed report is a flat object"
        in result.output
    )
    assert (
        f"skipped {csv}: not UTF-8 text: invalid continuation byte at byte 24; the whole file is "
        "skipped" in result.output
    )
    assert "3 observations from 2 files (5 skipped)" in result.output
    assert (
        "fired" in result.output and "PA-LAJAS-BLANCAS" in result.output
    )  # the good lines were backtested


def test_reading_a_long_history_reports_its_progress_up_to_the_files_size(tmp_path, monkeypatch):
    """What `ews backtest` shows as a progress bar (hidden under 10 MB): bytes read, every so many
    lines."""
    from services.triggers import history as history_module

    monkeypatch.setattr(history_module, "PROGRESS_LINES", 100)
    jsonl, csv = tmp_path / "long.jsonl", tmp_path / "short.csv"
    jsonl.write_bytes(
        b"\n".join(json.dumps(crossing(day, 10)).encode() for day in range(1000)) + b"\n"
    )
    csv.write_text(
        "event_id,source,site_id,observed_at,count,from_country,to_country\n"
        "lb-1,PA-SNM,PA-LAJAS-BLANCAS,2026-01-01,5,CO,PA\n"
    )
    told: list[int] = []
    later = NOW + timedelta(days=1000)  # the history runs to day 999: read it after that day
    read = history_module.load_history([tmp_path], GEOGRAPHY, later, told.append)
    assert len(read.observations) == 1001 and not read.problems
    assert len(told) >= 10 and sum(told) == jsonl.stat().st_size + csv.stat().st_size


def test_reports_at_the_ends_of_the_calendar_are_problem_lines_not_a_lost_run(tmp_path):
    """A date that cannot be added to, or one a century ahead, is one skipped line; the rest of the
    history is still backtested."""
    feed = tmp_path / "feed.jsonl"
    lines = [crossing(day, 9000) for day in range(3)]
    lines.insert(1, crossing(5, 10) | {"observed_at": "9999-12-31T12:00:00Z"})
    lines.insert(2, crossing(6, 10) | {"observed_at": "0001-01-01T00:00:00+05:00"})
    lines.insert(3, crossing(7, 10) | {"observed_at": "2126-11-01T00:00:00Z"})
    feed.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = CliRunner().invoke(
        main, ["backtest", "--rules", str(CONFIG / "triggers.yaml"), "--events", str(feed)]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"skipped {feed}:2: observed_at: 9999-12-31T12:00:00+00:00 is outside" in result.output
    assert f"skipped {feed}:3: observed_at: " in result.output
    assert f"skipped {feed}:4: observed_at: the period ends 2126-11-02" in result.output
    assert "3 observations from 1 file (3 skipped)" in result.output
