"""The triggers worker: observations → scopes → windowed state in a Faust table → alert transitions.

Two hops: `route_observation` re-keys each observation by every scope a rule watches
(site, area, country, corridor, region) onto ews.triggers.scoped, so that all observations
of one scope meet in one partition; `evaluate_scope` keeps that scope's state in a
changelog-backed table and publishes every transition to ews.alerts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import faust

from schemas import Observation
from services.common.faust_app import create_faust_app
from services.common.settings import Settings
from services.common.topics import Topics

from . import metrics
from .core import ScopeState
from .loading import load_engine

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    engine = load_engine(settings.triggers_file, settings.sites_file, settings.allowed_lateness)
    app = create_faust_app("triggers", settings, settings.triggers_web_port)

    observations = app.topic(topics.observations, key_serializer="raw", value_serializer="raw")
    scoped = app.topic(topics.triggers_scoped, key_serializer="raw", value_serializer="raw",
                       partitions=settings.topic_partitions)
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    state_table = app.Table("scope-state", default=None, partitions=settings.topic_partitions,
                            key_type=str, help="window contributions and alert state per scope")

    @app.agent(observations)
    async def route_observation(stream: faust.StreamT) -> None:
        async for raw in stream:
            observation = Observation.model_validate_json(raw)
            for scope in engine.scopes_for(observation):
                await scoped.send(key=scope.key.encode(), value=raw)

    @app.agent(scoped)
    async def evaluate_scope(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key = event.message.key.decode()
            observation = Observation.model_validate_json(event.message.value)
            scope = engine.scope_from_key(key, observation)
            stored = state_table.get(key)
            state = ScopeState.model_validate(stored) if stored is not None else ScopeState()
            now = datetime.now(timezone.utc)
            result = engine.apply(state, scope, observation, now)
            metrics.OBSERVATIONS.labels(result.outcome).inc()
            if result.outcome != "applied":
                continue
            state_table[key] = state.model_dump(mode="json")
            for alert in result.alerts:
                await alerts.send(key=alert.alert_id.encode(), value=alert.model_dump_json().encode())
                metrics.ALERTS.labels(alert.rule_id, alert.level or "none", alert.status).inc()
                if alert.previous_level:
                    metrics.ACTIVE.labels(alert.rule_id, alert.previous_level).dec()
                if alert.status == "firing":
                    metrics.ACTIVE.labels(alert.rule_id, alert.level).inc()
                metrics.EVENT_TO_ALERT.observe((now - observation.ingested_at).total_seconds())
                log.info("alert %s #%d %s %s value=%s", alert.alert_id, alert.transition, alert.status,
                         alert.level, alert.value)

    return app
