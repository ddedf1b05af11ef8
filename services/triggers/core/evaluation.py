"""A rule's value at one moment, with the evidence and details an alert carries."""

from __future__ import annotations

from collections.abc import Callable, Sequence

MAX_EVIDENCE = 20  # event_ids an alert lists: the latest ones
MAX_RATIO = 1_000_000.0  # a ratio over a zero baseline reads as this (JSON has no infinity)


class Evaluation:
    """A rule's value at one moment; the evidence (which event_ids) and the details are only worked
    out when an alert needs them (either may be given as a function)."""

    __slots__ = ("value", "_evidence", "_details")

    def __init__(
        self,
        value: float,
        evidence: Sequence[str] | Callable[[], list[str]] = (),
        details: dict[str, float] | Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.value = value
        self._evidence = evidence
        self._details = details

    @property
    def evidence(self) -> list[str]:
        return self._evidence() if callable(self._evidence) else list(self._evidence)

    @property
    def details(self) -> dict[str, float]:
        return (self._details() if callable(self._details) else self._details) or {}
