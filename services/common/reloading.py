"""A value loaded from configuration files and loaded again when they change: the triggers worker's
rules and sites, ingest's sites. A changed file that fails its check is refused with the same
`file:line: field: message` problems `ews rules check` prints, and the running value stays: a worker
never stops over a file."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, Literal, TypeVar

from .config_files import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
Reloaded = tuple[Literal["applied", "refused"], list[str]]


class Reloading(Generic[T]):
    """`load()` now, and again by `reload_if_changed` once one of `files` changes."""

    def __init__(self, files: Sequence[Path], load: Callable[[], T], what: str = "value") -> None:
        self.files = tuple(Path(f) for f in files)
        self._load = load
        self.what = what  # as the log and the problems name it: "rules", "sites"
        self.value = load()
        self.previous: T | None = None  # the value before the last reload applied
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

    def reload_if_changed(self) -> Reloaded | None:
        """None if nothing changed; ("applied", []) or ("refused", problems) otherwise."""
        stamps = self._read_stamps()
        if stamps == self._stamps:
            return None
        self._stamps = stamps
        try:
            value = self._load()
        except ConfigError as exc:
            return "refused", exc.problems
        except Exception as exc:
            log.exception("loading the changed %s failed", self.what)
            return "refused", [
                f"{' and '.join(map(str, self.files))}: could not be loaded "
                f"({type(exc).__name__}: {exc}); the running {self.what} stay"
            ]
        self.previous, self.value = self.value, value
        return "applied", []
