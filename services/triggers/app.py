"""The triggers worker: observations → scopes → windowed state → alert transitions.

- The routing stage sends each observation onto ews.triggers.scoped to the partition of every
  scope a rule watches (site, area, country, corridor, region, source), the partition a message
  keyed by the scope would take, so that everything about one scope meets in one partition: one
  message per partition, naming its scopes in the `ews-scopes` header. It also forwards the alert
  transitions composites combine. It keeps no state, so it runs on aiokafka directly, a batch at
  a time (services.common.relay).
- The evaluation stage keeps each scope's state in memory, backed by compacted changelogs
  (services.common.relay, stages with state), and publishes every transition to ews.alerts.
  Four kinds of message reach it: observations, member alerts for composites, requests to judge
  after the settle time, and wall-clock silence checks; all state changes happen there, in-stream.
  It also runs on aiokafka directly: Faust's per-event stream and table machinery was most of the
  worker's time (make bench).
- Timers: the silence check, the active-alerts gauge, and the rule-file reload.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter as Tally
from collections.abc import Callable
from datetime import UTC, datetime

import faust
import orjson
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from schemas import AlertEvent, Observation
from services.common.faust_app import broker_health, create_faust_app
from services.common.outage import riding_out
from services.common.relay import Out, Relay, Step, header
from services.common.settings import Settings
from services.common.topics import Topics

from . import metrics
from .core import ScopeState
from .core.windows import (
    Contribution,
    FeedWindow,
    contribution_from_json,
    contribution_to_json,
)
from .loading import ReloadingEngine

log = logging.getLogger(__name__)


Encoded = dict[
    int, tuple[Contribution, bytes]
]  # a batch's contributions by id, with their changelog value


class ScopeStates:
    """The evaluation stage's state (services.common.relay.StageState): per input partition, scope
    key → ScopeState. Two changelogs hold it: the states without their contributions (key: the scope
    key), and the contributions one per key (scope|feed|event_id), so an observation costs one small
    write however many a country or corridor holds. Recovery reads the states, then puts each
    contribution back into its scope's window."""

    def __init__(
        self, topics: Topics, on_forget: Callable[[int], None] = lambda partition: None
    ) -> None:
        self.changelogs = (topics.triggers_state_changelog, topics.triggers_contributions_changelog)
        self.held: dict[int, dict[str, ScopeState]] = {}
        self.on_forget = on_forget  # told when a partition's state is dropped
        self.rescan = (
            False  # set when partitions were recovered: some may hold observations not yet judged
        )
        self.decoded: dict[bytes, Contribution] = {}  # while recovering: changelog value → its own
        self.written: dict[int, dict[str, bytes | None]] = {}  # while recovering: the last states

    def partition(self, partition: int) -> dict[str, ScopeState]:
        return self.held.setdefault(partition, {})

    def items(self) -> list[tuple[str, ScopeState]]:
        return [item for held in list(self.held.values()) for item in list(held.items())]

    def restore(
        self, partition: int, changelog: str, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        if changelog == self.changelogs[0]:
            # a scope's state is written at every batch that touched it: only the last is read
            latest = self.written.setdefault(partition, {})
            for record in records:
                latest[record.key.decode()] = record.value
            return
        self._read_states(partition)
        held = self.partition(partition)
        for (
            record
        ) in records:  # the states are all back: contributions go straight into their windows
            scope_key, feed, eid = record.key.decode().split("|", 2)
            state = held.get(scope_key)
            window = state.feeds.get(feed) if state is not None else None
            if window is None:
                continue
            if record.value is None:
                window.contributions.pop(eid, None)
                continue
            # one object for the scopes a report counts towards, as when it arrived live
            contribution = self.decoded.get(record.value)
            if contribution is None:
                contribution = contribution_from_json(orjson.loads(record.value))
                self.decoded[record.value] = contribution
            window.contributions[eid] = contribution

    def _read_states(self, partition: int) -> None:
        """The partition's scope states from their last changelog values, once all are read."""
        latest = self.written.pop(partition, None)
        if latest is None:
            return
        held = self.partition(partition)
        for key, value in latest.items():
            if value is None:
                held.pop(key, None)
            else:
                held[key] = ScopeState.from_json(orjson.loads(value))

    def restored(self, partitions: list[int]) -> None:
        self.decoded = {}
        for partition in partitions:
            self._read_states(partition)
        for partition in partitions:
            for state in self.partition(partition).values():
                for window in state.feeds.values():
                    window.journal = {}
        self.rescan = True

    def forget(self, partition: int) -> None:
        self.held.pop(partition, None)
        self.written.pop(partition, None)
        self.on_forget(partition)

    def changes(self, key: str, state: ScopeState, partition: int, encoded: Encoded) -> list[Out]:
        """The changelog records of a scope touched by a batch: its state, then what changed in its
        windows. `encoded` holds the batch's contributions already encoded, by id (with the
        contribution, so that an id is never reused within the batch): one report's contribution is
        shared by its scopes."""
        out = [
            Out(
                self.changelogs[0],
                key.encode(),
                orjson.dumps(state.to_json(contributions=False)),
                partition,
            )
        ]
        contributions = self.changelogs[1]
        for feed, window in state.feeds.items():
            changed = window.journal if window.journal is not None else dict(window.contributions)
            for eid, contribution in changed.items():
                if contribution is None:
                    value = None
                else:
                    known = encoded.get(id(contribution))
                    if known is None:
                        value = orjson.dumps(contribution_to_json(contribution))
                        encoded[id(contribution)] = (contribution, value)
                    else:
                        value = known[1]
                out.append(Out(contributions, f"{key}|{feed}|{eid}".encode(), value, partition))
            window.journal = {}
        return out


SCOPES_HEADER = "ews-scopes"  # on a scoped message: the scope keys it is for, one per line
CONTROL = (
    b'{"member_alert"',
    b'{"silence_check"',
    b'{"judge"',
    b'{"retire"',
)  # scoped messages that are not observations
BATCH_MAX = 2000  # messages judged together at most
SCOPES_PER_MESSAGE = 1000  # scope keys one message names at most (its header stays well under 1 MB)


def _scope_keys(record: ConsumerRecord[bytes, bytes]) -> list[str]:
    """The scopes a scoped message is for: those its header names (all in this partition), else its
    key."""
    named = header(record, SCOPES_HEADER)
    return named.decode().split("\n") if named is not None else [record.key.decode()]


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    holder = ReloadingEngine(settings.triggers_file, settings.sites_file, settings.allowed_lateness)
    metrics.RULES_INFO.labels(holder.engine.rules.version).set(1)

    def addressed(keys: list[str], value: bytes) -> list[Out]:
        """A message for many scopes: one per partition they live in (and per SCOPES_PER_MESSAGE),
        naming them in its header: a report reaches each partition its scopes live in once, and a
        silence check of 10,000 sites is a few messages, not 10,000."""
        by_partition: dict[int, list[bytes]] = {}
        for key in keys:
            encoded = key.encode()
            by_partition.setdefault(
                routing.partition_for(topics.triggers_scoped, encoded), []
            ).append(encoded)
        return [
            Out(
                topics.triggers_scoped,
                chunk[0],
                value,
                partition,
                [(SCOPES_HEADER, b"\n".join(chunk))],
            )
            for partition, named in by_partition.items()
            for chunk in (
                named[i : i + SCOPES_PER_MESSAGE] for i in range(0, len(named), SCOPES_PER_MESSAGE)
            )
        ]

    def route_batch(records: list[ConsumerRecord[bytes, bytes]]) -> list[Out]:
        """Observations, and the alerts composites combine, re-keyed by every scope that watches
        them."""
        engine, out = holder.engine, []
        for record in records:
            try:
                if record.topic == topics.observations:
                    # One message per partition the report's scopes live in, naming those scopes:
                    # the same partitions as one message per scope key, fewer messages.
                    observation = Observation.model_validate_json(record.value)
                    for rule_id in engine.too_long_for(observation.feed, observation.period):
                        metrics.UNCOUNTED.labels(rule_id, observation.period).inc()
                    out.extend(
                        addressed(
                            [scope.key for scope in engine.scopes_for(observation)], record.value
                        )
                    )
                else:
                    alert = AlertEvent.model_validate_json(record.value)
                    targets = engine.composite_targets(alert)
                    if targets:
                        value = b'{"member_alert":' + record.value + b"}"
                        out.extend(
                            Out(topics.triggers_scoped, scope.key.encode(), value)
                            for scope in targets
                        )
            except ValidationError as exc:
                # Only ingest (and notify's own alerts) write these topics; a record that is not one
                # is a producer's bug: counted and logged, and still on its topic for whoever
                # investigates.
                metrics.OBSERVATIONS.labels("unreadable").inc()
                log.error(
                    "%s/%d/%d is not a readable %s; skipped: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    "observation" if record.topic == topics.observations else "alert",
                    exc,
                )
        return out

    routing = Relay.for_service(
        settings,
        "triggers",
        "routing",
        [topics.observations, topics.alerts],
        route_batch,
        output_topics=[topics.triggers_scoped],
    )

    settle = settings.evaluation_settle_s
    waiting: dict[
        str, Observation
    ] = {}  # per scope, the oldest observation not yet judged (latency metric)
    states = ScopeStates(topics, on_forget=lambda partition: waiting.clear())
    metrics.SCOPES_HELD.set_function(lambda: sum(len(held) for held in states.held.values()))
    metrics.CONTRIBUTIONS_HELD.set_function(
        lambda: sum(
            len(window.contributions)
            for _, state in states.items()
            for window in state.feeds.values()
        )
    )
    due: dict[str, float] = {}  # scope key → loop time its added observations are to be judged

    def evaluate_batch(records: list[ConsumerRecord[bytes, bytes]]) -> Step:
        """Observations are added to their scopes' windows, then each scope is judged once (now, or
        after EWS_EVALUATION_SETTLE_S), its alerts published, and its state and changed
        contributions written once, however many of the batch's messages it received."""
        engine, previous = holder.engine, holder.previous
        now = datetime.now(UTC)
        clock = asyncio.get_running_loop().time()
        touched: dict[str, tuple[ScopeState, int]] = {}
        to_judge: set[str] = set()
        produced: list[tuple[AlertEvent, Observation | None]] = []
        parsed: dict[bytes, Observation] = {}
        members: dict[
            str, list[AlertEvent]
        ] = {}  # composite scope key → member transitions in this batch
        outcomes: Tally = Tally()
        for record in records:
            raw, held = record.value, states.partition(record.partition)
            data = orjson.loads(raw) if raw.startswith(CONTROL) else None
            for key in _scope_keys(record):
                entry = touched.get(key)
                state = entry[0] if entry is not None else held.get(key)
                if state is None:
                    state = held[key] = ScopeState()
                touched[key] = (state, record.partition)
                if data is None:
                    observation = parsed.get(raw)
                    if observation is None:  # one report reaches several of its scopes in one batch
                        observation = parsed[raw] = Observation.model_validate_json(raw)
                    outcome = engine.add(
                        state, engine.scope_from_key(key, observation), observation, now
                    )
                    outcomes[outcome] += 1
                    if outcome == "too_late":
                        metrics.TOO_LATE.labels(observation.source, key).inc()
                    elif outcome == "applied":
                        if settle <= 0:
                            to_judge.add(key)
                        else:
                            due.setdefault(key, clock + settle)
                        waiting.setdefault(key, observation)
                elif "member_alert" in data:
                    members.setdefault(key, []).append(
                        AlertEvent.model_validate(data["member_alert"])
                    )
                elif "silence_check" in data:
                    scope = state.scope or engine.declared_scope(key)  # declared: watched at once
                    if scope is not None:
                        produced.extend((a, None) for a in engine.retire(state, now, previous))
                        produced.extend((a, None) for a in engine.check_silence(state, scope, now))
                elif "retire" in data:  # the rules were reloaded
                    produced.extend((a, None) for a in engine.retire(state, now, previous))
                elif "judge" in data:
                    to_judge.add(key)
        for (
            key,
            changes,
        ) in members.items():  # a batch's member changes of one moment are combined together
            scope = next((s for s in engine.composite_targets(changes[0]) if s.key == key), None)
            if scope is not None:
                produced.extend(
                    (a, None) for a in engine.apply_members(touched[key][0], scope, changes, now)
                )
        for key in to_judge:
            state = touched[key][0]
            if state.scope is not None:
                arrived = waiting.pop(key, None)
                produced.extend((a, arrived) for a in engine.judge(state, state.scope, now))
        for outcome, count in outcomes.items():
            metrics.OBSERVATIONS.labels(outcome).inc(count)
        outputs: list[Out] = []
        for alert, arrived in produced:
            outputs.append(
                Out(topics.alerts, alert.alert_id.encode(), alert.model_dump_json().encode())
            )
            held_state = touched.get(alert.scope.key)
            series = engine.series(held_state[0], alert) if held_state is not None else None
            if series is not None:  # the values behind it, for the console's chart
                outputs.append(
                    Out(
                        topics.alert_series,
                        alert.alert_id.encode(),
                        series.model_dump_json().encode(),
                    )
                )
            metrics.ALERTS.labels(alert.rule_id, alert.level or "none", alert.status).inc()
            if arrived is not None:
                metrics.EVENT_TO_ALERT.observe((now - arrived.ingested_at).total_seconds())
            log.info(
                "alert %s #%d %s %s value=%s",
                alert.alert_id,
                alert.transition,
                alert.status,
                alert.level,
                alert.value,
            )
        # Alerts first, acknowledged by the broker, then the states (the stage's order): a crash in
        # between replays the same (alert_id, transition) - a repeat downstream drops by its key -
        # and never leaves a state change whose alert was lost.
        encoded: Encoded = {}
        records = [
            change
            for key, (state, partition) in touched.items()
            for change in states.changes(key, state, partition, encoded)
        ]
        return Step(outputs, records)

    evaluation = Relay.for_service(
        settings,
        "triggers",
        "evaluation",
        [topics.triggers_scoped],
        evaluate_batch,
        state=states,
        max_records=BATCH_MAX,
    )
    app = create_faust_app(
        "triggers", settings, settings.triggers_web_port, stages=[routing, evaluation]
    )

    health = broker_health(app)

    @app.timer(interval=max(0.05, min(1.0, settle / 4 if settle else 1.0)))
    @riding_out(health, "requesting judgements")
    async def request_judgements() -> None:
        """Ask scopes whose settle time is over to judge what was added, through the stream that
        owns them."""
        if states.rescan and not evaluation.restoring:
            states.rescan = False
            for key, state in states.items():
                if any(w.pending for w in state.feeds.values()):
                    due.setdefault(key, 0.0)
        moment = asyncio.get_running_loop().time()
        ready = [key for key, at in due.items() if at <= moment]
        await evaluation.send(*addressed(ready, b'{"judge":true}'))  # kept due if this fails
        for key in ready:
            due.pop(key, None)

    @app.timer(interval=settings.silence_check_interval_s)
    @riding_out(health, "requesting silence checks")
    async def request_silence_checks() -> None:
        """Ask every scope with a silence rule to check the wall clock, through the stream that owns
        it."""
        kinds = {
            r.scope_kind
            for r in map(holder.engine.rules.common, holder.engine.rules.ids)
            if r.kind == "silence"
        }
        keys = {key for key, _ in states.items() if key.split("/", 1)[0] in kinds}
        # declared sources that never reported: each asked for by the worker that holds its
        # partition (the first check creates its state)
        if routing.knows_partitions(topics.triggers_scoped):
            keys.update(
                key
                for key in holder.engine.watched_sources()
                if routing.partition_for(topics.triggers_scoped, key.encode()) in states.held
            )
        check = json.dumps({"silence_check": datetime.now(UTC).isoformat()}).encode()
        await evaluation.send(*addressed(sorted(keys), check))

    @app.timer(interval=15.0)
    async def export_gauges() -> None:
        """Alerts firing, and each watched source's newest period and next due report, from the
        state this worker holds now."""
        engine = holder.engine
        tally: Tally = Tally()
        sources: list[tuple[str, str, FeedWindow, datetime | None]] = []
        for _, state in states.items():
            scope = state.scope
            country = (scope.country if scope is not None else None) or ""
            for rule_id, alert in state.alerts.items():
                if alert.status == "firing":
                    tally[(rule_id, alert.level, country)] += 1
            if scope is not None and scope.kind == "source":
                for feed, window in state.feeds.items():
                    sources.append((scope.id, feed, window, engine.next_due(scope, feed, window)))
        metrics.ACTIVE.clear()
        for (rule_id, level, country), count in tally.items():
            metrics.ACTIVE.labels(rule_id, level, country).set(count)
        metrics.SOURCE_PERIOD_END.clear()
        metrics.SOURCE_DUE.clear()
        for source, feed, window, due in sources:
            if window.watermark is not None:
                metrics.SOURCE_PERIOD_END.labels(source, feed).set(window.watermark.timestamp())
            if due is not None:
                metrics.SOURCE_DUE.labels(source, feed).set(due.timestamp())

    @app.timer(interval=settings.rules_reload_interval_s)
    async def reload_rules() -> None:
        outcome = holder.reload_if_changed()
        if outcome is None:
            return
        status, problems = outcome
        metrics.RULES_RELOADS.labels(status).inc()
        if status == "applied":
            metrics.RULES_INFO.clear()
            metrics.RULES_INFO.labels(holder.engine.rules.version).set(1)
            log.warning("rules reloaded: version %s", holder.engine.rules.version)
            # alerts of triggers the new rules no longer have resolve, through the stage that
            # owns their scopes
            await evaluation.send(*addressed([key for key, _ in states.items()], b'{"retire":1}'))
        else:
            log.error(
                "changed rule files refused; the previous rules stay active:\n%s",
                "\n".join(problems),
            )

    return app
