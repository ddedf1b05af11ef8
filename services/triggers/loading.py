"""Load the rules and geography a triggers worker (or a backtest) evaluates with."""

from __future__ import annotations

from pathlib import Path

from schemas import SitesFile, TriggersFile
from services.common.config_files import load_model
from services.common.geography import Geography

from .core import RuleSet, TriggerEngine


def load_engine(triggers_file: Path, sites_file: Path, allowed_lateness: str) -> TriggerEngine:
    rules = RuleSet(load_model(triggers_file, TriggersFile))
    geography = Geography(load_model(sites_file, SitesFile))
    return TriggerEngine(rules, geography, allowed_lateness)
