"""Trigger rules compiled for evaluation: durations parsed, national overrides applied, versions hashed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

import isodate

from schemas import Level, Scope, TriggerRule, TriggersFile
from schemas.config import Texts
from schemas.types import parse_duration

DurationValue = timedelta | isodate.Duration


@dataclass(frozen=True)
class CompiledRule:
    """One trigger as it applies to one scope (with that scope's national override, if any)."""

    id: str
    version: str
    feed: str
    metric: str
    scope_kind: str
    window: str
    window_delta: DurationValue
    aggregate: str
    levels: tuple[tuple[Level, float], ...]
    clear: float
    clear_for: DurationValue | None
    for_: DurationValue | None
    title: Texts

    def level_for(self, value: float) -> Level | None:
        """The highest level whose threshold the value reaches (a value exactly at a level fires it)."""
        reached = None
        for level, threshold in self.levels:
            if value >= threshold:
                reached = level
        return reached

    def threshold_of(self, level: Level) -> float:
        return dict(self.levels)[level]

    @property
    def lowest_level(self) -> Level:
        return self.levels[0][0]


def _compile(rule: TriggerRule) -> CompiledRule:
    canonical = json.dumps(rule.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return CompiledRule(
        id=rule.id,
        version="sha256:" + hashlib.sha256(canonical.encode()).hexdigest(),
        feed=rule.feed,
        metric=rule.metric,
        scope_kind=rule.scope,
        window=rule.window,
        window_delta=parse_duration(rule.window),
        aggregate=rule.aggregate,
        levels=tuple(rule.levels.items()),
        clear=rule.clear_level,
        clear_for=parse_duration(rule.clear_for) if rule.clear_for else None,
        for_=parse_duration(rule.for_) if rule.for_ else None,
        title=rule.title,
    )


class RuleSet:
    """The loaded triggers file: the common set plus national overrides, compiled once."""

    def __init__(self, file: TriggersFile) -> None:
        self.file = file
        self.version = "sha256:" + hashlib.sha256(
            file.model_dump_json(by_alias=True).encode()
        ).hexdigest()
        self._common = {rule.id: _compile(rule) for rule in file.triggers}
        self._national: dict[tuple[str, str], CompiledRule] = {}
        for country, overrides in file.overrides.items():
            for rule_id, override in overrides.items():
                base = next(r for r in file.triggers if r.id == rule_id)
                changes = override.model_dump(exclude_none=True)
                merged = base.model_copy(update={k: getattr(override, k) for k in changes})
                self._national[(country, rule_id)] = _compile(TriggerRule.model_validate(merged.model_dump(by_alias=True)))
        self._by_feed_scope: dict[tuple[str, str], list[str]] = {}
        for rule in self._common.values():
            self._by_feed_scope.setdefault((rule.feed, rule.scope_kind), []).append(rule.id)

    @property
    def ids(self) -> list[str]:
        return list(self._common)

    def rule_ids_for(self, feed: str, scope_kind: str) -> list[str]:
        return self._by_feed_scope.get((feed, scope_kind), [])

    def applies_to(self, feed: str, scope_kind: str) -> bool:
        return (feed, scope_kind) in self._by_feed_scope

    def for_scope(self, rule_id: str, scope: Scope) -> CompiledRule:
        """The rule as it applies at this scope: a national override only for that country's own scopes."""
        if scope.country is not None and scope.kind in ("site", "area", "country"):
            national = self._national.get((scope.country, rule_id))
            if national is not None:
                return national
        return self._common[rule_id]

    def rules_for(self, feed: str, scope: Scope) -> list[CompiledRule]:
        return [self.for_scope(rule_id, scope) for rule_id in self.rule_ids_for(feed, scope.kind)]
