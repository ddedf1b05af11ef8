"""Trigger rules compiled for evaluation: durations parsed, national overrides applied, versions
hashed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import isodate
from pydantic import TypeAdapter

from schemas import LEVELS, Level, Scope, TriggersFile
from schemas.config import CompositeRule, SilenceRule, Texts, TriggerRule
from schemas.types import parse_duration

DurationValue = timedelta | isodate.Duration
_RULE = TypeAdapter(TriggerRule)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def as_timedelta(duration: DurationValue) -> timedelta:
    """A calendar duration (P1M) as the timedelta it spans from a fixed reference; for retention
    sums."""
    return (_EPOCH + duration) - _EPOCH


@dataclass(frozen=True)
class CompiledRule:
    """One trigger as it applies to one scope (with that scope's national override, if any)."""

    id: str
    version: str
    kind: str
    feed: str | None
    scope_kind: str
    levels: tuple[tuple[Level, float], ...]
    clear: float
    clear_for: DurationValue | None
    for_: DurationValue | None
    title: Texts
    window: str | None = None
    window_delta: DurationValue | None = None
    metric: str | None = None
    aggregate: str = "sum"
    denominator: str | None = None
    baseline_delta: DurationValue | None = None
    min_value: float = 0.0
    category: str | None = None
    lookback_delta: DurationValue | None = None
    members: tuple[str, ...] = ()
    mode: str = "all"
    _starts: dict = field(
        default_factory=dict, compare=False, repr=False
    )  # memo: calendar arithmetic is slow

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

    @cached_property
    def window_to_baseline(self) -> float:
        """How many baselines fit in the window: the baseline total times this is the expected
        window total."""
        return as_timedelta(self.window_delta) / as_timedelta(self.baseline_delta)

    def _minus(self, which: str, delta: DurationValue, at: datetime) -> datetime:
        if isinstance(delta, timedelta):
            return at - delta
        memo = (which, at)
        found = self._starts.get(memo)
        if found is None:
            if len(self._starts) > 4096:
                self._starts.clear()
            found = self._starts[memo] = at - delta
        return found

    def start_of_window(self, at: datetime) -> datetime:
        return self._minus("window", self.window_delta, at)

    def start_of_baseline(self, window_start: datetime) -> datetime:
        return self._minus("baseline", self.baseline_delta, window_start)

    def start_of_lookback(self, window_start: datetime) -> datetime:
        return self._minus("lookback", self.lookback_delta, window_start)

    def threshold_of(self, level: Level) -> float:
        return dict(self.levels)[level]

    @property
    def lowest_level(self) -> Level:
        return self.levels[0][0]

    @property
    def retention(self) -> timedelta:
        """How far back from the newest observation this rule looks."""
        spans = [self.window_delta, self.baseline_delta, self.lookback_delta]
        return sum((as_timedelta(s) for s in spans if s is not None), timedelta(0))


def _hours(duration: str) -> float:
    return as_timedelta(parse_duration(duration)).total_seconds() / 3600


def compile_rule(rule) -> CompiledRule:
    canonical = json.dumps(
        rule.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    if isinstance(rule, SilenceRule):  # levels are hours silent past the next expected report
        levels = tuple(
            (name, _hours(getattr(rule.levels, name)))
            for name in LEVELS
            if getattr(rule.levels, name)
        )
        clear = levels[0][1]
    else:
        levels = tuple(rule.levels.items())
        clear = rule.clear_level
    fields = dict(
        id=rule.id,
        version="sha256:" + hashlib.sha256(canonical.encode()).hexdigest(),
        kind=rule.kind,
        feed=getattr(rule, "feed", None),
        scope_kind=rule.scope,
        levels=levels,
        clear=clear,
        clear_for=parse_duration(rule.clear_for) if rule.clear_for else None,
        for_=parse_duration(rule.for_) if rule.for_ else None,
        title=rule.title,
    )
    window = getattr(rule, "window", None)
    if window is not None:
        fields.update(window=window, window_delta=parse_duration(window))
    for name in ("metric", "aggregate", "denominator", "min_value", "category", "mode"):
        if getattr(rule, name, None) is not None:
            fields[name] = getattr(rule, name)
    if getattr(rule, "baseline", None):
        fields["baseline_delta"] = parse_duration(rule.baseline)
    if getattr(rule, "lookback", None):
        fields["lookback_delta"] = parse_duration(rule.lookback)
    if isinstance(rule, CompositeRule):
        fields["members"] = tuple(rule.members)
    return CompiledRule(**fields)


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
            for rule_id, override in overrides.items():
                base = next(r for r in file.triggers if r.id == rule_id)
                merged = base.model_dump(by_alias=True)
                merged.update(override.model_dump(by_alias=True, exclude_none=True))
                self._national[(country, rule_id)] = compile_rule(_RULE.validate_python(merged))
        self._by_feed_scope: dict[tuple[str, str], list[str]] = {}
        self._composites_of: dict[str, list[str]] = {}
        for rule in self._common.values():
            if rule.feed is not None:
                self._by_feed_scope.setdefault((rule.feed, rule.scope_kind), []).append(rule.id)
            for member in rule.members:
                self._composites_of.setdefault(member, []).append(rule.id)
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

    def composites_of(self, rule_id: str) -> list[CompiledRule]:
        return [self._common[c] for c in self._composites_of.get(rule_id, [])]

    def for_scope(self, rule_id: str, scope: Scope) -> CompiledRule:
        """The rule as it applies at this scope: a national override only for that country's own
        scopes."""
        if scope.country is not None and scope.kind in ("site", "area", "country", "source"):
            national = self._national.get((scope.country, rule_id))
            if national is not None:
                return national
        return self._common[rule_id]

    def rules_for(self, feed: str, scope: Scope) -> list[CompiledRule]:
        return [self.for_scope(rule_id, scope) for rule_id in self.rule_ids_for(feed, scope.kind)]
