"""The triggers worker: observations → scopes → windowed state in a Faust table → alert transitions.

- The routing stage sends each observation onto ews.triggers.scoped to the partition of every
  scope a rule watches (site, area, country, corridor, region, source), the partition a message
  keyed by the scope would take, so that everything about one scope meets in one partition: one
  message per partition, naming its scopes in the `ews-scopes` header. It also forwards the alert
  transitions composites combine. It keeps no state, so it runs on aiokafka directly, a batch at
  a time (services.common.relay).
- `evaluate_scope` keeps each scope's state in a changelog-backed table and publishes every
  transition to ews.alerts. Three kinds of message reach it: observations, member alerts
  for composites, and wall-clock silence checks; all state changes happen here, in-stream.
- Timers: the silence check, the active-alerts gauge, and the rule-file reload.
"""

from __future__ import annotations

import json
import logging
from collections import Counter as Tally
from datetime import datetime, timezone
from types import SimpleNamespace

import faust
from faust.serializers import codecs
from pydantic import ValidationError

from schemas import AlertEvent, Observation
from services.common.faust_app import ContinuityGuard, create_faust_app
from services.common.relay import Out, Relay
from services.common.settings import Settings
from services.common.table_writes import TableWrites
from services.common.topics import Topics

from . import metrics
from .core import ScopeState
from .core.engine import contribution_from_json, contribution_to_json
from .loading import ReloadingEngine

log = logging.getLogger(__name__)


class ScopeStateCodec(codecs.Codec):
    """Scope states live in the table as objects; only the changelog sees their JSON form, without the
    contributions: those are stored one per key in the contributions table, so an observation costs
    one small changelog write however many a country or corridor holds."""

    def _dumps(self, obj: ScopeState) -> bytes:
        return json.dumps(obj.to_json(contributions=False), separators=(",", ":")).encode()

    def _loads(self, s: bytes) -> ScopeState:
        return ScopeState.from_json(json.loads(s))


codecs.register("ews-scope-state", ScopeStateCodec())


class StoredScopeState:
    """The table's value type as Faust reads it: which codec the changelog uses; the codec already built the object."""

    _options = SimpleNamespace(serializer="ews-scope-state")

    @staticmethod
    def from_data(value: ScopeState, preferred_type: object = None) -> ScopeState:
        return value


SCOPES_HEADER = "ews-scopes"  # on a scoped observation: the scope keys it is for, one per line
CONTROL = (b'{"member_alert"', b'{"silence_check"', b'{"judge"')  # scoped messages that are not observations
BATCH_MAX = 1000  # messages judged together at most
BATCH_WITHIN_S = 0.02  # how long a batch waits to fill (reports sent together are judged together)


def _scope_keys(event: faust.EventT) -> list[str]:
    """The scopes a scoped message is for: those its header names (all in this partition), else its key."""
    headers = event.message.headers or ()
    for name, value in (headers.items() if isinstance(headers, dict) else headers):
        if name == SCOPES_HEADER:
            return value.decode().split("\n")
    return [event.message.key.decode()]


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    holder = ReloadingEngine(settings.triggers_file, settings.sites_file, settings.allowed_lateness)
    metrics.RULES_INFO.labels(holder.engine.rules.version).set(1)

    def route_batch(records) -> list[Out]:
        """Observations, and the alerts composites combine, re-keyed by every scope that watches them."""
        engine, out = holder.engine, []
        for record in records:
            try:
                if record.topic == topics.observations:
                    # One message per partition the report's scopes live in, naming those scopes: the
                    # same partitions as one message per scope key, fewer messages.
                    observation = Observation.model_validate_json(record.value)
                    by_partition: dict[int, list[bytes]] = {}
                    for scope in engine.scopes_for(observation):
                        key = scope.key.encode()
                        by_partition.setdefault(routing.partition_for(topics.triggers_scoped, key), []).append(key)
                    out.extend(Out(topics.triggers_scoped, keys[0], record.value, partition,
                                   [(SCOPES_HEADER, b"\n".join(keys))]) for partition, keys in by_partition.items())
                else:
                    alert = AlertEvent.model_validate_json(record.value)
                    targets = engine.composite_targets(alert)
                    if targets:
                        value = b'{"member_alert":' + record.value + b"}"
                        out.extend(Out(topics.triggers_scoped, scope.key.encode(), value) for scope in targets)
            except ValidationError as exc:
                # Only ingest (and notify's own alerts) write these topics; a record that is not one is
                # a producer's bug: counted and logged, and still on its topic for whoever investigates.
                metrics.OBSERVATIONS.labels("unreadable").inc()
                log.error("%s/%d/%d is not a readable %s; skipped: %s", record.topic, record.partition, record.offset,
                          "observation" if record.topic == topics.observations else "alert", exc)
        return out

    routing = Relay.for_service(settings, "triggers", "routing", [topics.observations, topics.alerts], route_batch,
                                output_topics=[topics.triggers_scoped])
    app = create_faust_app("triggers", settings, settings.triggers_web_port, stages=[routing])

    scoped = app.topic(topics.triggers_scoped, key_serializer="raw", value_serializer="raw",
                       partitions=settings.topic_partitions)
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    guard = ContinuityGuard(app)
    contributions_table = app.Table(
        "scope-contributions", default=None, partitions=settings.topic_partitions, key_type=str,
        help="the observations each scope's windows hold, one per key: scope|feed|event_id")
    writes = TableWrites(app)
    index: dict[str, dict[str, list[str]]] = {}  # scope key → feed → event ids, built after a rebalance

    @app.on_partitions_revoked.connect
    async def _forget_index(sender=None, revoked=None, **kwargs) -> None:
        index.clear()

    def load_contributions(key: str, state: ScopeState) -> None:
        """A state restored from the changelog: put back the contributions its windows held."""
        if not index:
            index["\0built"] = {}
            for stored in list(contributions_table.keys()):
                scope_key, feed, eid = stored.split("|", 2)
                index.setdefault(scope_key, {}).setdefault(feed, []).append(eid)
        for window in state.feeds.values():
            window.journal = {}
        for feed, eids in index.get(key, {}).items():
            window = state.feeds.get(feed)
            if window is not None:
                for eid in eids:
                    data = contributions_table.get(f"{key}|{feed}|{eid}")
                    if data is not None:
                        window.contributions[eid] = contribution_from_json(data)
        state.complete = True

    def persist_contributions(key: str, state: ScopeState, partition: int) -> None:
        for feed, window in state.feeds.items():
            changes = window.journal if window.journal is not None else dict(window.contributions)
            for eid, contribution in changes.items():
                if contribution is None:
                    writes.delete(contributions_table, f"{key}|{feed}|{eid}", partition)
                else:
                    writes.set(contributions_table, f"{key}|{feed}|{eid}", contribution_to_json(contribution), partition)
            window.journal = {}

    state_table = app.Table("scope-state", default=None, partitions=settings.topic_partitions,
                            key_type=str, value_type=StoredScopeState, help="window contributions, member alerts and alert state per scope")

    settle = settings.evaluation_settle_s
    due: dict[str, float] = {}  # scope key → loop time its added observations are to be judged
    rescan = {"needed": True}  # after an assignment: find states with observations not yet judged
    waiting: dict[str, Observation] = {}  # per scope, the oldest observation not yet judged (latency metric)

    @app.on_partitions_revoked.connect
    async def _forget_due(sender=None, revoked=None, **kwargs) -> None:
        due.clear()
        waiting.clear()
        rescan["needed"] = True

    @app.agent(scoped)
    async def evaluate_scope(stream: faust.StreamT) -> None:
        """A batch at a time: observations are added to their scopes' windows, then each scope is
        judged once (now, or after EWS_EVALUATION_SETTLE_S), its alerts published and its state
        written once, however many of the batch's messages it received."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            engine = holder.engine
            now = datetime.now(timezone.utc)
            touched: dict[str, tuple[ScopeState, faust.EventT]] = {}
            to_judge: set[str] = set()
            produced: list[tuple[AlertEvent, Observation | None]] = []
            parsed: dict[bytes, Observation] = {}
            members: dict[str, list[AlertEvent]] = {}  # composite scope key → member transitions in this batch
            for event in events:
                if not await guard.check(event):
                    continue  # after a gap: the stream was sent back for what it dropped
                raw = event.message.value
                data = json.loads(raw) if raw.startswith(CONTROL) else None
                for key in _scope_keys(event):
                    entry = touched.get(key)
                    state = entry[0] if entry is not None else (state_table.get(key) or ScopeState())
                    if not state.complete:
                        load_contributions(key, state)
                    touched[key] = (state, event)
                    if data is None:
                        observation = parsed.get(raw)
                        if observation is None:  # one report reaches several of its scopes in one batch
                            observation = parsed[raw] = Observation.model_validate_json(raw)
                        outcome = engine.add(state, engine.scope_from_key(key, observation), observation, now)
                        metrics.OBSERVATIONS.labels(outcome).inc()
                        if outcome == "applied":
                            if settle <= 0:
                                to_judge.add(key)
                            else:
                                due.setdefault(key, app.loop.time() + settle)
                            waiting.setdefault(key, observation)
                    elif "member_alert" in data:
                        members.setdefault(key, []).append(AlertEvent.model_validate(data["member_alert"]))
                    elif "silence_check" in data:
                        if state.scope is not None:
                            produced.extend((a, None) for a in engine.check_silence(state, state.scope, now))
                    elif "judge" in data:
                        to_judge.add(key)
            for key, changes in members.items():  # a batch's member changes of one moment are combined together
                scope = next((s for s in engine.composite_targets(changes[0]) if s.key == key), None)
                if scope is not None:
                    produced.extend((a, None) for a in engine.apply_members(touched[key][0], scope, changes, now))
            for key in to_judge:
                state = touched[key][0]
                if state.scope is not None:
                    arrived = waiting.pop(key, None)
                    produced.extend((a, arrived) for a in engine.judge(state, state.scope, now))
            # Alerts first, acknowledged by the broker, then the states: a crash in between replays
            # the same (alert_id, transition) - a repeat downstream drops by its key - and never
            # leaves a state change whose alert was lost.
            sent = [await alerts.send(key=a.alert_id.encode(), value=a.model_dump_json().encode()) for a, _ in produced]
            for future in sent:
                await future
            for alert, arrived in produced:
                metrics.ALERTS.labels(alert.rule_id, alert.level or "none", alert.status).inc()
                if arrived is not None:
                    metrics.EVENT_TO_ALERT.observe((now - arrived.ingested_at).total_seconds())
                log.info("alert %s #%d %s %s value=%s", alert.alert_id, alert.transition, alert.status,
                         alert.level, alert.value)
            for key, (state, event) in touched.items():
                # the changelog partition is the one the key's messages came from
                writes.set(state_table, key, state, event.message.partition)  # the state, then what changed in its windows
                persist_contributions(key, state, event.message.partition)
            await writes.flush()  # before this batch's events are acknowledged, so before any commit covers them

    @app.timer(interval=max(0.05, min(1.0, settle / 4 if settle else 1.0)))
    async def request_judgements() -> None:
        """Ask scopes whose settle time is over to judge what was added, through the stream that owns them."""
        if rescan["needed"] and not app.rebalancing:
            rescan["needed"] = False
            for key, state in list(state_table.items()):
                if state is not None and any(w.pending for w in state.feeds.values()):
                    due.setdefault(key, 0.0)
        moment = app.loop.time()
        ready = [key for key, at in due.items() if at <= moment]
        for key in ready:
            del due[key]
            await scoped.send(key=key.encode(), value=b'{"judge":true}')

    @app.timer(interval=settings.silence_check_interval_s)
    async def request_silence_checks() -> None:
        """Ask every scope with a silence rule to check the wall clock, through the stream that owns it."""
        kinds = {r.scope_kind for r in map(holder.engine.rules.common, holder.engine.rules.ids) if r.kind == "silence"}
        now = datetime.now(timezone.utc).isoformat()
        for key in list(state_table.keys()):
            if key.split("/", 1)[0] in kinds:
                await scoped.send(key=key.encode(), value=json.dumps({"silence_check": now}).encode())

    @app.timer(interval=15.0)
    async def count_active_alerts() -> None:
        tally: Tally = Tally()
        for state in list(state_table.values()):
            country = (state.scope.country if state is not None and state.scope is not None else None) or ""
            for rule_id, alert in (state.alerts if state is not None else {}).items():
                if alert.status == "firing":
                    tally[(rule_id, alert.level, country)] += 1
        metrics.ACTIVE.clear()
        for (rule_id, level, country), count in tally.items():
            metrics.ACTIVE.labels(rule_id, level, country).set(count)

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
        else:
            log.error("changed rule files refused; the previous rules stay active:\n%s", "\n".join(problems))

    return app
