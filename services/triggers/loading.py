"""Load the rules and geography a triggers worker (or a backtest) evaluates with, and reload them
live."""

from __future__ import annotations

from pathlib import Path

from schemas import SitesFile, TriggersFile
from services.common.config_files import ConfigError, load_model
from services.common.geography import Geography
from services.common.reloading import Reloading

from .core import RuleSet, TriggerEngine


def load_engine(triggers_file: Path, sites_file: Path, allowed_lateness: str) -> TriggerEngine:
    """Load both files; ConfigError lists every problem as file:line: field: message."""
    problems: list[str] = []
    rules: RuleSet | None = None
    geography: Geography | None = None
    try:
        rules = RuleSet(load_model(triggers_file, TriggersFile))
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        geography = Geography(load_model(sites_file, SitesFile))
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or rules is None or geography is None:
        raise ConfigError(problems)
    return TriggerEngine(rules, geography, allowed_lateness)


class ReloadingEngine(Reloading[TriggerEngine]):
    """The engine a worker uses, swapped for a new one when the rule or site files change and pass
    the check."""

    def __init__(self, triggers_file: Path, sites_file: Path, allowed_lateness: str) -> None:
        super().__init__(
            (triggers_file, sites_file),
            lambda: load_engine(triggers_file, sites_file, allowed_lateness),
            "rules",
        )

    @property
    def engine(self) -> TriggerEngine:
        return self.value
