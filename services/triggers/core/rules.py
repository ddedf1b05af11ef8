"""Trigger rules compiled for evaluation: durations parsed, national overrides applied, versions
hashed. One class per kind (a tagged union on `kind`), each holding only the fields its kind has."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal, TypeAlias

from schemas import LEVELS, Level, Scope, TriggersFile
from schemas import config as model
from schemas.types import DurationValue, as_timedelta, parse_duration

Aggregate = Literal["sum", "max", "mean", "last"]
_STARTS_KEPT = (
    4096  # calendar starts memoised per rule (a month back from a tick is slow to work out)
)


@dataclass(frozen=True, kw_only=True)
class _Rule:
    """What every trigger has, as it applies to one scope (with that scope's national override)."""

    id: str
    version: str
    scope_kind: str
    levels: tuple[tuple[Level, float], ...]
    clear: float
    clear_for: DurationValue | None
    for_: DurationValue | None
    title: model.Texts

    def level_for(self, value: float) -> Level | None:
        """The highest level whose threshold the value reaches (a value exactly at a level fires
        it)."""
        reached = None
        for level, threshold in self.levels:
            if value >= threshold:
                reached = level
        return reached

    @cached_property
    def titles(self) -> dict[str, str]:
        """The title in each language, as alerts carry it."""
        return self.title.model_dump()

    @cached_property
    def lowest_threshold(self) -> float:
        return min(threshold for _, threshold in self.levels)

    def threshold_of(self, level: Level) -> float:
        return dict(self.levels)[level]

    @property
    def lowest_level(self) -> Level:
        return self.levels[0][0]


@dataclass(frozen=True, kw_only=True)
class _FeedRule(_Rule):
    """A trigger over the reports of one feed."""

    feed: str

    @property
    def metrics_read(self) -> tuple[str, ...]:
        """The metrics the rule reads: windows keep sums of these only."""
        return ()

    @property
    def category_read(self) -> str | None:
        return None

    @property
    def retention(self) -> timedelta:
        """How far back from the newest observation this rule looks."""
        return timedelta(0)


@dataclass(frozen=True, kw_only=True)
class _WindowedRule(_FeedRule):
    """A trigger judged over a window of event time ending at each tick."""

    window: str
    window_delta: DurationValue
    _starts: dict[tuple[str, datetime], datetime] = field(
        default_factory=dict, compare=False, repr=False
    )

    def _minus(self, which: str, delta: DurationValue, at: datetime) -> datetime:
        if isinstance(delta, timedelta):
            return at - delta
        memo = (which, at)
        found = self._starts.get(memo)
        if found is None:
            if len(self._starts) > _STARTS_KEPT:
                self._starts.clear()
            found = self._starts[memo] = at - delta
        return found

    def start_of_window(self, at: datetime) -> datetime:
        return self._minus("window", self.window_delta, at)

    @property
    def retention(self) -> timedelta:
        return as_timedelta(self.window_delta)


@dataclass(frozen=True, kw_only=True)
class ThresholdRule(_WindowedRule):
    kind: Literal["threshold"] = "threshold"
    metric: str
    aggregate: Aggregate

    @property
    def metrics_read(self) -> tuple[str, ...]:
        return (self.metric,)


@dataclass(frozen=True, kw_only=True)
class RateOfChangeRule(_WindowedRule):
    kind: Literal["rate_of_change"] = "rate_of_change"
    metric: str
    baseline_delta: DurationValue
    min_value: float

    @property
    def metrics_read(self) -> tuple[str, ...]:
        return (self.metric,)

    @cached_property
    def window_to_baseline(self) -> float:
        """How many baselines fit in the window: the baseline total times this is the expected
        window total."""
        return as_timedelta(self.window_delta) / as_timedelta(self.baseline_delta)

    def start_of_baseline(self, window_start: datetime) -> datetime:
        return self._minus("baseline", self.baseline_delta, window_start)

    @property
    def retention(self) -> timedelta:
        return as_timedelta(self.window_delta) + as_timedelta(self.baseline_delta)


@dataclass(frozen=True, kw_only=True)
class RatioRule(_WindowedRule):
    kind: Literal["ratio"] = "ratio"
    metric: str
    denominator: str
    aggregate: Aggregate

    @property
    def metrics_read(self) -> tuple[str, ...]:
        return (self.metric, self.denominator)


@dataclass(frozen=True, kw_only=True)
class NewValueRule(_WindowedRule):
    kind: Literal["new_value"] = "new_value"
    category: str
    lookback_delta: DurationValue

    @property
    def category_read(self) -> str | None:
        return self.category

    def start_of_lookback(self, window_start: datetime) -> datetime:
        return self._minus("lookback", self.lookback_delta, window_start)

    @property
    def retention(self) -> timedelta:
        return as_timedelta(self.window_delta) + as_timedelta(self.lookback_delta)


@dataclass(frozen=True, kw_only=True)
class SilenceRule(_FeedRule):
    """Levels are hours silent past the next expected report; it clears when data arrives."""

    kind: Literal["silence"] = "silence"


@dataclass(frozen=True, kw_only=True)
class CompositeRule(_Rule):
    """Levels are the members' combined rank (1 watch, 2 warning, 3 emergency)."""

    kind: Literal["composite"] = "composite"
    members: tuple[str, ...]
    mode: Literal["all", "any"]


WindowedRule: TypeAlias = ThresholdRule | RateOfChangeRule | RatioRule | NewValueRule
FeedRule: TypeAlias = WindowedRule | SilenceRule
CompiledRule: TypeAlias = FeedRule | CompositeRule


def _hours(duration: str) -> float:
    return as_timedelta(parse_duration(duration)).total_seconds() / 3600


def compile_rule(rule: model.TriggerRule) -> CompiledRule:
    """The rule as the evaluator reads it: durations parsed, levels as (level, threshold) pairs."""
    canonical = json.dumps(
        rule.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    common: dict[str, Any] = {
        "id": rule.id,
        "version": "sha256:" + hashlib.sha256(canonical.encode()).hexdigest(),
        "scope_kind": rule.scope,
        "clear_for": parse_duration(rule.clear_for) if rule.clear_for else None,
        "for_": parse_duration(rule.for_) if rule.for_ else None,
        "title": rule.title,
    }
    if isinstance(rule, model.SilenceRule):
        silent = tuple(
            (name, _hours(hours))
            for name in LEVELS
            if (hours := getattr(rule.levels, name)) is not None
        )
        return SilenceRule(**common, levels=silent, clear=silent[0][1], feed=rule.feed)
    levels = tuple(rule.levels.items())
    common.update(levels=levels, clear=rule.clear_level)
    if isinstance(rule, model.CompositeRule):
        return CompositeRule(**common, members=tuple(rule.members), mode=rule.mode)
    windowed = {**common, "feed": rule.feed, "window": rule.window}
    windowed["window_delta"] = parse_duration(rule.window)
    if isinstance(rule, model.ThresholdRule):
        return ThresholdRule(**windowed, metric=rule.metric, aggregate=rule.aggregate)
    if isinstance(rule, model.RateOfChangeRule):
        return RateOfChangeRule(
            **windowed,
            metric=rule.metric,
            baseline_delta=parse_duration(rule.baseline),
            min_value=rule.min_value,
        )
    if isinstance(rule, model.RatioRule):
        return RatioRule(
            **windowed,
            metric=rule.metric,
            denominator=rule.denominator,
            aggregate=rule.aggregate,
        )
    return NewValueRule(
        **windowed,
        category=rule.category,
        lookback_delta=parse_duration(rule.lookback),
    )


class RuleSet:
    """The loaded triggers file: the common set plus national overrides, compiled once."""

    def __init__(self, file: TriggersFile) -> None:
        self.file = file
        self.version = (
            "sha256:" + hashlib.sha256(file.model_dump_json(by_alias=True).encode()).hexdigest()
        )
        self._common = {rule.id: compile_rule(rule) for rule in file.triggers}
        self._national: dict[tuple[str, str], CompiledRule] = {}
        for country, overrides in file.overrides.items():
            for rule_id in overrides:
                self._national[(country, rule_id)] = compile_rule(file.merged(country, rule_id))
        self._by_feed_scope: dict[tuple[str, str], list[str]] = {}
        self._composites_of: dict[str, list[str]] = {}
        for rule in self._common.values():
            if isinstance(rule, CompositeRule):
                for member in rule.members:
                    self._composites_of.setdefault(member, []).append(rule.id)
            else:
                self._by_feed_scope.setdefault((rule.feed, rule.scope_kind), []).append(rule.id)
        self.scope_kinds = {rule.scope_kind for rule in self._common.values()}

    @property
    def ids(self) -> list[str]:
        return list(self._common)

    def common(self, rule_id: str) -> CompiledRule:
        return self._common[rule_id]

    def rule_ids_for(self, feed: str, scope_kind: str) -> list[str]:
        return self._by_feed_scope.get((feed, scope_kind), [])

    def applies_to(self, feed: str, scope_kind: str) -> bool:
        return (feed, scope_kind) in self._by_feed_scope

    def composites_of(self, rule_id: str) -> list[CompositeRule]:
        found = [self._common[c] for c in self._composites_of.get(rule_id, [])]
        return [c for c in found if isinstance(c, CompositeRule)]

    def for_scope(self, rule_id: str, scope: Scope) -> CompiledRule:
        """The rule as it applies at this scope: a national override only for that country's own
        scopes."""
        if scope.country is not None and scope.kind in ("site", "area", "country", "source"):
            national = self._national.get((scope.country, rule_id))
            if national is not None:
                return national
        return self._common[rule_id]

    @property
    def every(self) -> list[CompiledRule]:
        """Every compiled rule: the common ones and each national version."""
        return [*self._common.values(), *self._national.values()]

    @property
    def reach(self) -> timedelta:
        """How far back the longest-looking rule reads (its window, baseline or lookback),
        national overrides included: how long a correction can still change a window."""
        rules = [*self._common.values(), *self._national.values()]
        return max((r.retention for r in rules if isinstance(r, _FeedRule)), default=timedelta(0))

    def rules_for(self, feed: str, scope: Scope) -> list[FeedRule]:
        """The rules watching this feed at this scope (composites watch alerts, not feeds)."""
        found = [self.for_scope(rule_id, scope) for rule_id in self.rule_ids_for(feed, scope.kind)]
        return [r for r in found if not isinstance(r, CompositeRule)]
