"""Load the rules and geography a triggers worker (or a backtest) evaluates with, and reload them
live."""

from __future__ import annotations

import logging
from pathlib import Path

from schemas import SitesFile, TriggersFile
from services.common.config_files import ConfigError, load_model
from services.common.geography import Geography

from .core import RuleSet, TriggerEngine

log = logging.getLogger(__name__)


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


class ReloadingEngine:
    """The engine a worker uses, swapped for a new one when the rule or site files change and pass
    the check."""

    def __init__(self, triggers_file: Path, sites_file: Path, allowed_lateness: str) -> None:
        self.files = (Path(triggers_file), Path(sites_file))
        self.allowed_lateness = allowed_lateness
        self.engine = load_engine(*self.files, allowed_lateness)
        self._stamps = self._read_stamps()

    def _read_stamps(self) -> tuple[tuple[int, int] | None, ...]:
        stamps: list[tuple[int, int] | None] = []
        for file in self.files:
            try:
                found = file.stat()
            except (
                OSError
            ):  # gone (an editor replacing it) or unreadable: a change, checked on load
                stamps.append(None)
            else:
                stamps.append((found.st_mtime_ns, found.st_size))
        return tuple(stamps)

    def reload_if_changed(self) -> tuple[str, list[str]] | None:
        """None if nothing changed; ("applied", []) or ("refused", problems) otherwise."""
        stamps = self._read_stamps()
        if stamps == self._stamps:
            return None
        self._stamps = stamps
        try:
            engine = load_engine(*self.files, self.allowed_lateness)
        except ConfigError as exc:
            return "refused", exc.problems
        except (
            Exception
        ) as exc:  # a bug the check missed: the running rules stay, and so does the worker
            log.exception("loading the changed rule files failed")
            return "refused", [
                f"{' and '.join(map(str, self.files))}: could not be loaded "
                f"({type(exc).__name__}: {exc}); the running rules stay"
            ]
        self.engine = engine
        return "applied", []
