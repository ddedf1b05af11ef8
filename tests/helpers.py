"""Builders shared by tests: feed reports, observations, engines with rules written inline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import yaml

from schemas import SitesFile, TriggersFile
from services.common.config_files import load_model
from services.common.geography import Geography
from services.common.settings import PROJECT_ROOT
from services.ingest.validation import parse_feed_message
from services.triggers.core import RuleSet, TriggerEngine

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GEOGRAPHY = Geography(load_model(PROJECT_ROOT / "config" / "sites.yaml", SitesFile))
TITLE = {"en": "Surge", "es": "Aumento", "fr": "Afflux", "pt": "Aumento"}


def crossing(
    day: int, count: int, site: str = "PA-LAJAS-BLANCAS", frm: str = "CO", to: str = "PA", **extra
) -> dict:
    observed = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=day)
    return {
        "event_id": f"{site.lower()}-{day}",
        "source": "PA-SNM",
        "observed_at": observed.isoformat().replace("+00:00", "Z"),
        "period": "P1D",
        "site_id": site,
        "from_country": frm,
        "to_country": to,
        "count": count,
        **extra,
    }


def observation(report: dict, feed: str = "border-crossings", revision: int = 1):
    obs = parse_feed_message(feed, json.dumps(report).encode(), GEOGRAPHY, NOW)
    return obs.model_copy(update={"revision": revision}) if revision != 1 else obs


def engine_with(rules_yaml: str, lateness: str = "P7D") -> TriggerEngine:
    file = TriggersFile.model_validate(yaml.safe_load(rules_yaml))
    return TriggerEngine(RuleSet(file), GEOGRAPHY, lateness)


def threshold_rule(**overrides) -> dict:
    rule = {
        "id": "surge",
        "kind": "threshold",
        "feed": "border_crossing",
        "metric": "count",
        "scope": "site",
        "window": "24h",
        "aggregate": "sum",
        "levels": {"watch": 1000, "warning": 2500, "emergency": 5000},
        "title": TITLE,
    }
    rule.update(overrides)
    return rule


def rules_yaml(*rules: dict, overrides: dict | None = None) -> str:
    return yaml.safe_dump({"version": 1, "triggers": list(rules), "overrides": overrides or {}})
