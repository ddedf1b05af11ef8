"""One way to build a service's Faust app: broker, timeouts, web server, /metrics, /healthz, /readyz."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from .settings import Settings
from .topics import REJECTED_MAX_BYTES

log = logging.getLogger(__name__)


def create_faust_app(service: str, settings: Settings, web_port: int,
                     readiness: Callable[[], list[str]] | None = None, **overrides: Any) -> faust.App:
    """A Faust app for `service` with the deployment's broker, timeouts and health endpoints."""
    datadir = settings.data_dir / f"{settings.topic_namespace}-{service}"
    datadir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = dict(
        broker=settings.kafka_url,
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_max_request_size=REJECTED_MAX_BYTES,
        # On a rebalance, finish and commit in-flight events before giving partitions away, so
        # the next owner never recovers table state that the previous one is still changing.
        stream_wait_empty=True,
        # Table state is recovered from its changelog by the new owner; no standby copies whose
        # promotion could race with the changelog.
        table_standby_replicas=0,
        web_enabled=True,
        web_host=settings.web_host,
        web_port=web_port,
        web_in_thread=False,
    )
    options.update(overrides)
    app = EwsApp(f"{settings.topic_namespace}-{service}", **options)
    setup_prometheus_sensors(app, name_prefix="faust")
    _add_health_endpoints(app, readiness)
    _add_stall_watchdog(app, settings.stall_timeout_s)
    return app


EXIT_STALLED = 75


def _add_stall_watchdog(app: faust.App, stall_timeout_s: float) -> None:
    """Notice a worker that has assigned partitions with messages waiting and makes no progress.

    faust-streaming can leave a consumer idle after a rebalance (open upstream issues #175,
    #523): the worker reports ready and never fetches again. The watchdog first resumes the
    partitions and the flow; if that does not help, it stops the worker (exit 75) so that its
    supervisor restarts it from the last commit, instead of the stream silently standing still.
    """
    last: dict[Any, tuple[int, float]] = {}
    state = {"resumed_at": 0.0}

    @app.timer(interval=max(1.0, stall_timeout_s / 4))
    async def watch_progress() -> None:
        if app.rebalancing or getattr(app, "in_recovery", False):
            last.clear()
            return
        consumer = app.consumer
        changelogs = set(app.tables.changelog_topics)
        assigned = [tp for tp in consumer.assignment() if tp.topic not in changelogs and "__assignor" not in tp.topic]
        if not assigned:
            return
        now = app.loop.time()
        highwaters = await consumer.highwaters(*assigned)
        stalled = []
        for tp in assigned:
            position = await consumer.position(tp)
            highwater = highwaters.get(tp)
            if position is None or highwater is None or position >= highwater:
                last.pop(tp, None)
                continue
            seen = last.get(tp)
            if seen is None or seen[0] != position:
                last[tp] = (position, now)
            elif now - seen[1] >= stall_timeout_s:
                stalled.append((tp, position, highwater))
        if not stalled:
            return
        described = ", ".join(f"{tp.topic}/{tp.partition} at {pos} of {hw}" for tp, pos, hw in stalled)
        if now - state["resumed_at"] > stall_timeout_s * 2:
            log.error("no progress for %.0fs with messages waiting (%s); resuming partitions and flow",
                      stall_timeout_s, described)
            consumer.resume_partitions([tp for tp, _, _ in stalled])
            consumer.resume_flow()
            app.flow_control.resume()
            state["resumed_at"] = now
            for tp, _, _ in stalled:
                last.pop(tp, None)
            return
        log.critical("still no progress after resuming (%s); stopping the worker so it restarts", described)
        logging.shutdown()
        os._exit(EXIT_STALLED)


EXIT_AGENT_FAILED = 70


class EwsApp(faust.App):
    """A Faust app whose agents never fail silently.

    Faust restarts a failed agent in place and carries on; ews instead stops the worker
    (exit 70): the message that failed was not committed, so the restarted worker processes
    it again (at least once), and a supervisor or alert rule sees the worker go down.
    Bad input never reaches this path: it is rejected with a reason before.
    """

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        log.critical("agent %s failed, stopping the worker so it restarts from the last commit: %r",
                     getattr(agent, "name", agent), exc, exc_info=exc)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(EXIT_AGENT_FAILED)


def _add_health_endpoints(app: faust.App, readiness: Callable[[], list[str]] | None) -> None:
    state = {"assigned": False}

    @app.on_rebalance_complete.connect
    async def _assigned(sender: Any = None, **kwargs: Any) -> None:
        state["assigned"] = True

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        reasons = []
        if not state["assigned"]:
            reasons.append("waiting for the first partition assignment")
        if app.rebalancing:
            reasons.append("rebalancing")
        if getattr(app, "in_recovery", False):
            reasons.append("recovering table state")
        if readiness is not None:
            reasons.extend(readiness())
        if reasons:
            return web.json({"status": "not ready", "reasons": reasons}, status=503)
        return web.json({"status": "ready"})
