"""One way to build a service's Faust app: broker, timeouts, web server, /metrics, /healthz,
/readyz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import faust
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import MS_LATENCY_BUCKETS, FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, Histogram, generate_latest

from .exits import EXIT_FAILED, EXIT_GAP, EXIT_STALLED, stop_worker
from .library_internals import forget_unacked, make_buffer_flush_wait_for_delivery
from .outage import CONNECTION_ERRORS, BrokerHealth, quiet_connection_errors
from .relay import LAG, Relay
from .settings import Settings
from .topics import REJECTED_MAX_BYTES

make_buffer_flush_wait_for_delivery()
T = TypeVar("T")


@dataclass
class _AppExtras:
    """What ews keeps beside a Faust app: one admin client, and the app's continuity guard."""

    admin: AIOKafkaAdminClient | None = None
    guard: ContinuityGuard | None = None
    health: BrokerHealth | None = None


_EXTRAS: WeakKeyDictionary[faust.App, _AppExtras] = WeakKeyDictionary()


def _extras(app: faust.App) -> _AppExtras:
    found = _EXTRAS.get(app)
    if found is None:
        found = _EXTRAS[app] = _AppExtras()
    return found


READY = Gauge(
    "ews_worker_ready",
    "1 when the worker has its partitions, its state recovered and its views loaded",
    ["service"],
)

log = logging.getLogger(__name__)


def create_faust_app(
    service: str,
    settings: Settings,
    web_port: int,
    readiness: Callable[[], list[str]] | None = None,
    stages: Sequence[Relay] = (),
    **overrides: Any,
) -> faust.App:
    """A Faust app for `service` with the deployment's broker, timeouts and health endpoints,
    running its batch `stages` (services.common.relay) for the life of the worker and counting them
    in /readyz."""
    quiet_connection_errors()
    datadir = settings.data_dir / f"{settings.topic_namespace}-{service}"
    datadir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "broker": settings.kafka_url,
        "store": "memory://",
        "datadir": str(datadir),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": settings.broker_session_timeout_s,
        "broker_heartbeat_interval": settings.broker_heartbeat_interval_s,
        "broker_rebalance_timeout": settings.broker_rebalance_timeout_s,
        # Commit by time: each commit waits until every buffered write is delivered, so committing
        # every 100 events throttled the stream (make bench). A crash replays up to a second of
        # events; downstream drops repeats by their keys.
        "broker_commit_every": 100_000,
        "broker_commit_interval": 1.0,
        "producer_acks": -1,
        # Stages send a batch's messages at once and then wait for them: a millisecond lets them
        # share produce requests; the 5 ms used before only added to every hop's latency (make
        # bench).
        "producer_linger_ms": 1,
        "producer_max_request_size": REJECTED_MAX_BYTES,
        # On a rebalance, finish and commit in-flight events before giving partitions away, so
        # the next owner never recovers table state that the previous one is still changing.
        "stream_wait_empty": True,
        # Table state is recovered from its changelog by the new owner; no standby copies whose
        # promotion could race with the changelog.
        "table_standby_replicas": 0,
        "web_enabled": True,
        "web_host": settings.web_host,
        "web_bind": settings.web_host,  # Faust would listen on every interface (0.0.0.0)
        "web_port": web_port,
        "web_in_thread": False,
    }
    if settings.instance_id:  # static membership, as the stages (services.common.relay)
        options["consumer_group_instance_id"] = settings.instance_id
    options.update(overrides)
    app = EwsApp(f"{settings.topic_namespace}-{service}", **options)
    separate = settings.monitoring_host is not None
    _add_prometheus_sensor(app, metrics_page=not separate)

    def not_ready() -> list[str]:
        return [
            *(readiness() if readiness else []),
            *(r for stage in stages for r in stage.not_ready()),
        ]

    for stage in stages:
        app.task(stage.run)
    not_ready_because = _add_health_endpoints(app, service, not_ready)
    if settings.monitoring_host is not None:
        port = web_port + settings.monitoring_port_offset
        _serve_monitoring(app, service, settings.monitoring_host, port, not_ready_because)
    _add_stall_watchdog(app, settings.stall_timeout_s)
    return app


def _serve_monitoring(
    app: faust.App, service: str, host: str, port: int, not_ready: Callable[[], list[str]]
) -> None:
    """/metrics, /healthz and /readyz on an address of their own (EWS_MONITORING_HOST), for a
    monitoring network that must not reach the APIs, nor the APIs' network the metrics."""
    from aiohttp import web as aioweb

    async def metrics(request: aioweb.Request) -> aioweb.Response:
        return aioweb.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(request: aioweb.Request) -> aioweb.Response:
        return aioweb.json_response({"status": "ok"})

    async def readyz(request: aioweb.Request) -> aioweb.Response:
        reasons = not_ready()
        READY.labels(service).set(0 if reasons else 1)
        if reasons:
            return aioweb.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return aioweb.json_response({"status": "ready"})

    @app.task
    async def monitoring() -> None:
        web_app = aioweb.Application()
        web_app.router.add_get("/metrics", metrics)
        web_app.router.add_get("/healthz", healthz)
        web_app.router.add_get("/readyz", readyz)
        runner = aioweb.AppRunner(web_app, access_log=None)
        await runner.setup()
        await aioweb.TCPSite(runner, host, port).start()
        log.info("monitoring endpoints on http://%s:%d (/metrics, /healthz, /readyz)", host, port)
        try:
            await asyncio.Event().wait()  # until the worker stops
        finally:
            await runner.cleanup()


def _add_prometheus_sensor(app: faust.App, metrics_page: bool = True) -> None:
    """Faust's own Prometheus sensor (events, commit latency, offsets, rebalances) and /metrics.

    As faust.sensors.prometheus.setup_prometheus_sensors does, except that Faust's
    `events_runtime_ms` is exported as `faust_events_runtime_seconds`: Prometheus' naming
    rules (and `promtool check metrics`) want base units.
    """
    metrics = FaustMetrics.create(REGISTRY, "faust")
    REGISTRY.unregister(metrics.events_runtime_latency)
    metrics = metrics._replace(
        events_runtime_latency=Histogram(
            "faust_events_runtime_seconds",
            "Time a stream event took to process",
            registry=REGISTRY,
            buckets=[b / 1000 for b in MS_LATENCY_BUCKETS],
        )
    )
    app.monitor = _SecondsPrometheusMonitor(metrics=metrics)
    if not metrics_page:
        return  # served on the monitoring address only

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


class _SecondsPrometheusMonitor(PrometheusMonitor):
    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        Monitor.on_stream_event_out(self, tp, offset, stream, event, state)
        self._metrics.total_active_events.dec()
        if state is not None:
            self._metrics.events_runtime_latency.observe(self.events_runtime[-1])


def broker_health(app: faust.App) -> BrokerHealth:
    """What this worker knows of the broker's reachability (its /readyz reports it)."""
    extras = _extras(app)
    if extras.health is None:
        bootstrap = ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)
        extras.health = BrokerHealth(bootstrap)
    return extras.health


async def _with_admin(app: faust.App, ask: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
    """Ask the app's admin client (one per app, kept open: starting one per call cost seconds per
    watchdog tick); a broken connection closes it, and the next call starts a new one."""
    extras = _extras(app)
    admin = extras.admin
    if admin is None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=broker_health(app).bootstrap, request_timeout_ms=10000
        )
        try:
            await admin.start()
        except BaseException:
            await admin.close()
            raise
        extras.admin = admin
    try:
        return await ask(admin)
    except BaseException:
        extras.admin = None
        await admin.close()
        raise


async def _group_offsets(app: faust.App, partitions: list) -> dict:
    """The consumer group's committed offsets (the next to read) as the group coordinator has
    them."""
    found = await _with_admin(
        app,
        lambda admin: admin.list_consumer_group_offsets(
            app.conf.id, partitions=[TopicPartition(tp.topic, tp.partition) for tp in partitions]
        ),
    )
    by_name = {(tp.topic, tp.partition): tp for tp in partitions}
    return {
        by_name[(tp.topic, tp.partition)]: meta.offset
        for tp, meta in found.items()
        if meta.offset >= 0 and (tp.topic, tp.partition) in by_name
    }


class ContinuityGuard:
    """Keeps a stream's offsets contiguous: a message that follows a gap is not processed; the
    consumer is sent back to the gap so the dropped messages come again, in order.

    ews topics are neither compacted nor transactional, so a partition's offsets arrive one by
    one. faust-streaming drops messages it had fetched when the flow is suspended around a
    rebalance or recovery (Consumer._drain_messages gives up on the message and still advances
    its read offset; seen in the kill scenarios as the first message after an assignment going
    missing). Processing on would compute later alerts without those observations. The message
    after the gap is set aside without being acknowledged, so no commit can pass the gap. If
    seeking back does not help after a few tries, the worker stops (exit 76) and its supervisor
    restarts it from its last commit.
    """

    MAX_SEEKS = 5  # per partition within SEEK_WINDOW_S before giving up and restarting
    SEEK_WINDOW_S = 60.0

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.last: dict[Any, int] = {}
        self.seeks: dict[Any, list[float]] = {}
        self.rewound: dict[
            Any, int
        ] = {}  # partition → the offset it was sent back to, not yet seen again
        _extras(app).guard = self  # the stall watchdog resets it when it sends partitions back

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # called with keywords
        async def _forget(sender: Any = None, revoked: Any = None, **kwargs: Any) -> None:
            self.last.clear()
            self.rewound.clear()

    async def check(self, event: Any) -> bool:
        """True when the event is next in its partition; False when it follows a gap (skip it)."""
        tp, offset = event.message.tp, event.message.offset
        last = self.last.get(tp)
        if last is None:
            expected = await self._committed(tp)  # the group's next offset to read, from the broker
            if expected is None:
                expected = (await self.app.consumer.earliest_offsets(tp)).get(tp)
        else:
            expected = last + 1
        if expected is not None and offset > expected:
            await self._rewind(event, expected)
            return False
        self.rewound.pop(tp, None)
        self.last[tp] = offset
        return True

    async def _rewind(self, event: Any, expected: int) -> None:
        tp, offset = event.message.tp, event.message.offset
        # Not acknowledged: the consumer must not commit past the gap. Faust's ack() is a no-op for
        # a message marked acked, and rebalances wait for unacked messages, so it leaves that set
        # too.
        message = event.message
        message.acked = True
        forget_unacked(self.app.consumer, message)
        if self.rewound.get(tp) == expected:
            return  # fetched before the seek took effect: it will come again after the gap
        now = self.app.loop.time()
        recent = [t for t in self.seeks.get(tp, []) if now - t < self.SEEK_WINDOW_S]
        if len(recent) >= self.MAX_SEEKS:
            log.critical(
                "%s/%d keeps skipping offsets (%d-%d after %d seeks); stopping the worker so it "
                "restarts from its last commit",
                tp.topic,
                tp.partition,
                expected,
                offset - 1,
                len(recent),
            )
            stop_worker(EXIT_GAP)
        self.seeks[tp] = recent + [now]
        log.error(
            "%s/%d: offsets %d-%d were dropped by the stream; seeking back to %d",
            tp.topic,
            tp.partition,
            expected,
            offset - 1,
            expected,
        )
        await self.app.consumer.seek(tp, expected)
        self.last[tp] = expected - 1
        self.rewound[tp] = expected

    async def _committed(self, tp: Any) -> int | None:
        """Asked of the group coordinator: the consumer's own memory of commits is empty on a new
        worker. A broker that cannot answer (one of a cluster down) is asked again a few times;
        after that the first event of the partition goes unchecked rather than stopping the stream.
        """
        for attempt in range(5):
            try:
                return (await _group_offsets(self.app, [tp])).get(tp)
            except Exception as exc:  # noqa: BLE001 - any broker error: wait and ask again
                log.warning(
                    "could not read the group's committed offset of %s/%d (%r); retrying",
                    tp.topic,
                    tp.partition,
                    exc,
                )
                await asyncio.sleep(1 + attempt)
        return None


def _add_stall_watchdog(app: faust.App, stall_timeout_s: float) -> None:
    """Notice a worker that has assigned partitions with messages waiting and makes no progress;
    export its consumer lag (ews_consumer_lag_messages) on the way.

    faust-streaming can leave a consumer idle after a rebalance (open upstream issues #175,
    #523): the worker reports ready and never fetches again, or it dropped the last messages it
    fetched and believes it has read them. The watchdog first seeks the partitions back to their
    committed offsets and resumes the flow; if that does not help, it stops the worker (exit 75)
    so that its supervisor restarts it, instead of the stream silently standing still.
    """
    last: dict[Any, tuple[int, float]] = {}
    reported: set[str] = set()  # topics whose lag this worker has exported
    state = {
        "resumed": False
    }  # resumed once since the last progress: the next stall stops the worker

    @app.timer(interval=max(1.0, stall_timeout_s / 4))
    async def watch_progress() -> None:
        # Faust stops the whole worker when a timer raises: a broker that cannot answer this
        # tick (one of a cluster down, a bounce) must not do what the watchdog is there to prevent.
        try:
            await check_progress()
        except Exception as exc:  # noqa: BLE001
            log.warning("stall watchdog could not read offsets this time: %r", exc)

    async def check_progress() -> None:
        if app.rebalancing or getattr(app, "in_recovery", False):
            last.clear()
            return
        consumer = app.consumer
        changelogs = set(app.tables.changelog_topics)
        assigned = [
            tp
            for tp in consumer.assignment()
            if tp.topic not in changelogs and "__assignor" not in tp.topic
        ]
        if not assigned:
            return
        now = app.loop.time()
        highwaters = await consumer.highwaters(*assigned)
        # Progress is what the group committed, not what the consumer fetched: faust can fetch
        # messages and then never hand them to the agent.
        committed = await _group_offsets(app, assigned)
        missing = [tp for tp in assigned if committed.get(tp) is None]
        earliest = await consumer.earliest_offsets(*missing) if missing else {}
        stalled = []
        behind: dict[str, int] = {}
        for tp in assigned:
            position = committed.get(tp, earliest.get(tp))
            highwater = highwaters.get(tp)
            if position is not None and highwater is not None:
                behind[tp.topic] = behind.get(tp.topic, 0) + max(0, highwater - position)
            seen = last.get(tp)
            if seen is not None and position is not None and position != seen[0]:
                state["resumed"] = False  # progress
            if position is None or highwater is None or position >= highwater:
                last.pop(tp, None)
                continue
            if seen is None or seen[0] != position:
                last[tp] = (position, now)
            elif now - seen[1] >= stall_timeout_s:
                stalled.append((tp, position, highwater))
        for topic in (
            reported | behind.keys()
        ):  # a topic no longer assigned here reads 0, not its last value
            LAG.labels(app.conf.id, topic).set(behind.get(topic, 0))
        reported.update(behind)
        if not stalled:
            return
        described = ", ".join(
            f"{tp.topic}/{tp.partition} at {pos} of {hw}" for tp, pos, hw in stalled
        )
        if not state["resumed"]:
            # Messages the stream fetched and then dropped (see ContinuityGuard) leave Faust
            # believing it has read them: send the partitions back to the committed offsets.
            log.error(
                "no progress for %.0fs with messages waiting (%s); seeking back to the committed "
                "offsets and resuming the flow",
                stall_timeout_s,
                described,
            )
            guard = _extras(app).guard
            for tp, position, _ in stalled:
                await consumer.seek(tp, position)
                if guard is not None:
                    guard.last.pop(tp, None)
                    guard.rewound.pop(tp, None)
            consumer.resume_partitions([tp for tp, _, _ in stalled])
            consumer.resume_flow()
            app.flow_control.resume()
            state["resumed"] = True
            for tp, _, _ in stalled:
                last.pop(tp, None)
            return
        log.critical(
            "still no progress after resuming (%s); stopping the worker so it restarts", described
        )
        stop_worker(EXIT_STALLED)


class EwsApp(faust.App):
    """A Faust app whose agents never fail silently.

    Faust restarts a failed agent in place and carries on; ews instead stops the worker
    (exit 70): the message that failed was not committed, so the restarted worker processes
    it again (at least once), and a supervisor or alert rule sees the worker go down.
    Bad input never reaches this path: it is rejected with a reason before.
    """

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        log.critical(
            "agent %s failed, stopping the worker so it restarts from the last commit: %r",
            getattr(agent, "name", agent),
            exc,
            exc_info=exc,
        )
        stop_worker(EXIT_FAILED)


def _add_health_endpoints(
    app: faust.App, service: str, readiness: Callable[[], list[str]] | None
) -> Callable[[], list[str]]:
    """/healthz and /readyz on the worker's web address; returns what /readyz asks."""
    state = {"assigned": False}

    health = broker_health(app)

    def not_ready_because() -> list[str]:
        reasons = []
        broker = health.reason()
        if broker is not None:
            reasons.append(broker)
        if not state["assigned"]:
            reasons.append("waiting for the first partition assignment")
        if app.rebalancing:
            reasons.append("rebalancing")
        if getattr(app, "in_recovery", False):
            reasons.append("recovering table state")
        if readiness is not None:
            reasons.extend(readiness())
        return reasons

    @app.timer(interval=5.0)
    async def _probe_broker() -> None:
        """Whether the broker answers, every 5 s: a worker's clients retry on their own, and this
        is what tells /readyz (and ews_worker_ready) that they are waiting for it."""
        try:
            await asyncio.wait_for(_with_admin(app, lambda admin: admin.describe_cluster()), 5.0)
        except CONNECTION_ERRORS as exc:
            health.failed("probe", exc)
        else:
            health.succeeded()
        READY.labels(service).set(0 if not_ready_because() else 1)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # called with keywords
    async def _assigned(sender: Any = None, **kwargs: Any) -> None:
        state["assigned"] = True

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        reasons = not_ready_because()
        READY.labels(service).set(0 if reasons else 1)
        if reasons:
            return web.json({"status": "not ready", "reasons": reasons}, status=503)
        return web.json({"status": "ready"})

    return not_ready_because
