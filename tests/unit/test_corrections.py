"""Corrections correct: a report sent again with other figures replaces the earlier figure, in
ingest's decisions and in `ews backtest` alike; re-sending an earlier version never reverts a
later correction (ingest remembers the versions it has seen of each event_id)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from services.cli import main
from services.common.settings import PROJECT_ROOT
from services.ingest.deduplication import SeenEvent, content_digest, decide, remember
from tests.helpers import NOW, crossing, observation


def test_an_earlier_version_sent_again_is_superseded_not_a_correction_back():
    first, second = observation(crossing(0, 1000)), observation(crossing(0, 1400))
    outcome, revision = decide(None, content_digest(first))
    entry = remember(None, content_digest(first), revision, NOW, 0, 1)
    assert (outcome, revision) == ("accepted", 1)
    outcome, revision = decide(entry, content_digest(second))
    assert (outcome, revision) == ("correction", 2)
    entry = remember(entry, content_digest(second), revision, NOW, 0, 2)
    assert decide(entry, content_digest(first)) == ("superseded", 2)
    assert decide(entry, content_digest(second)) == ("duplicate", 2)
    third = observation(crossing(0, 900))
    assert decide(entry, content_digest(third)) == ("correction", 3)
    # what a worker recovers from its changelog still knows the earlier version
    assert decide(SeenEvent.from_json(entry.to_json()), content_digest(first)) == ("superseded", 2)


def test_the_backtest_applies_a_correction_as_live_does_and_an_old_resend_does_not_revert_it(
    tmp_path,
):
    """Day 1 first reported as 900 (no alert), corrected to 9,000 (an emergency); the first
    version sent again afterwards changes nothing."""
    feed = tmp_path / "feed.jsonl"
    lines = [crossing(0, 500), crossing(1, 900), crossing(1, 9000), crossing(1, 900)]
    feed.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    rules = PROJECT_ROOT / "config" / "triggers.yaml"
    result = CliRunner().invoke(
        main, ["backtest", "--rules", str(rules), "--events", str(feed), "--json"]
    )
    assert result.exit_code == 0, result.output
    alerts = json.loads(result.stdout)
    surge = [a for a in alerts if a["alert_id"] == "crossing-surge/site/PA-LAJAS-BLANCAS"]
    assert [(a["status"], a["level"], a["value"]) for a in surge][:1] == [
        ("firing", "emergency", 9000.0)
    ]
    assert "1 correction, 1 earlier version sent again" in result.output
