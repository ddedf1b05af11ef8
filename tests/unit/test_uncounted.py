"""Say what did not count: reports whose period is longer than a rule's window never lie inside
one, and `ews backtest` says so instead of a bare "0 transitions"."""

from __future__ import annotations

import json

from click.testing import CliRunner

from services.cli import main
from tests.helpers import engine_with, rules_yaml, threshold_rule


def test_a_daily_rule_never_counts_monthly_reports_and_the_backtest_says_so(tmp_path):
    rules = tmp_path / "triggers.yaml"
    rules.write_text(
        rules_yaml(threshold_rule(window="24h"), threshold_rule(id="monthly", window="P1M"))
    )
    engine = engine_with(rules.read_text())
    assert engine.too_long_for("border_crossing", "P1M") == ["surge"]
    assert engine.too_long_for("border_crossing", "P1D") == []
    feed = tmp_path / "monthly.jsonl"
    months = [
        {
            "event_id": f"m-{m}",
            "source": "PA-SNM",
            "observed_at": f"2026-{m:02d}-01T00:00:00Z",
            "period": "P1M",
            "site_id": "PA-LAJAS-BLANCAS",
            "to_country": "PA",
            "count": 90000,
        }
        for m in (7, 8, 9)
    ]
    feed.write_text("\n".join(json.dumps(m) for m in months) + "\n")
    result = CliRunner().invoke(
        main, ["backtest", "--rules", str(rules), "--events", str(feed), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert {a["rule_id"] for a in json.loads(result.stdout)} == {"monthly"}
    assert "3 reports of period P1M not counted by surge: longer than its window (PT24H)" in (
        result.stderr
    )
