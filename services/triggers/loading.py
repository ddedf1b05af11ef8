"""Load the rules and geography a triggers worker (or a backtest) evaluates with, and reload them
live."""

from __future__ import annotations

from pathlib import Path

from services.common.config_check import Checked
from services.common.config_files import ConfigError
from services.common.geography import Geography
from services.common.reloading import Reloading

from .core import RuleSet, TriggerEngine


def load_engine(triggers_file: Path, sites_file: Path, allowed_lateness: str) -> TriggerEngine:
    """Load both files and check them together (services.common.config_check, as `ews rules check`
    does); ConfigError lists every problem as file:line: field: message."""
    checked = Checked()
    checked.load(triggers_file, "triggers")
    checked.load(sites_file, "sites")
    checked.cross_check(allow_private_webhooks=True)
    rules, sites = checked.first("triggers"), checked.first("sites")
    if checked.problems or rules is None or sites is None:
        raise ConfigError(checked.problems)
    return TriggerEngine(RuleSet(rules[1]), Geography(sites[1]), allowed_lateness)


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
