"""Stages on aiokafka directly: read a batch, turn it into messages, send them all, commit.

Faust's per-event machinery (stream iteration, acks, sensors, a future and a serialiser pass per
send, a consumer thread) measured as most of a worker's time in `make bench`, so the busy stages
run here: `getmany` up to `max_records`, one call of `transform` over the whole batch, every output
handed to the producer without waiting for it, then one wait for all acknowledgements, then one
commit, which the next batch does not wait for.

A stage that keeps state (a `StageState`: the triggers' scope windows, ingest's remembered
event_ids) keeps it in memory per input partition and writes every change to compacted changelog
topics, partition for partition with its one input topic, as Kafka Streams and Faust tables do.
`transform` returns a `Step`: the outputs, then the state changes that produced them. The outputs
are acknowledged first, then the changes, then the offsets are committed: a crash in between
repeats outputs (dropped downstream by key) and never keeps a state change whose output was lost.
A partition newly assigned to the stage is recovered from its changelogs, in the order the state
lists them, before its first batch; partitions the stage keeps across a rebalance keep their state;
partitions it no longer holds are forgotten.

At least once: a batch's offsets are committed only after every message it produced was
acknowledged by the broker, and a rebalance waits for the batch in flight. A crash repeats at most
the uncommitted batches; the stages after drop repeats by key (ingest by event_id and digest,
triggers by scope and event_id). A stage's own bug stops the worker (exit 70) like a failing Faust
agent, so its supervisor restarts it from the last commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.partitioner import murmur2
from prometheus_client import Counter, Gauge

from .exits import EXIT_FAILED, stop_worker
from .library_internals import refresh_metadata
from .outage import is_transient

log = logging.getLogger(__name__)

LAG = Gauge(
    "ews_consumer_lag_messages",
    "Messages on a topic not yet committed by the consumer group that reads it",
    ["group", "topic"],
)
BATCH_BYTES = (
    512 * 1024
)  # a record batch's size at most (a larger single message still goes, alone)
RECORDS = Counter("ews_relay_records_total", "Records a stateless stage read, by stage", ["stage"])


def stage_group(namespace: str, service: str, stage: str) -> str:
    """The consumer group of a service's batch stage (Faust's own group is
    "{namespace}-{service}")."""
    return f"{namespace}-{service}-{stage}"


class Out(NamedTuple):
    """One message a stage produces."""

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone (a changelog key deleted)
    partition: int | None = None  # None: by key, as every Kafka client does (murmur2)
    headers: list[tuple[str, bytes]] | None = None


class Step(NamedTuple):
    """What a stateful stage's transform made of a batch: outputs, and the changelog records of the
    state changes behind them (`Out` with the topic and partition of the changelog)."""

    outputs: list[Out]
    changes: list[Out]


class StageState(Protocol):
    """A stage's in-memory state, per input partition, rebuilt from its changelog topics."""

    changelogs: Sequence[str]  # recovered in this order

    def restore(self, partition: int, changelog: str, records: list[ConsumerRecord]) -> None:
        """Apply records of `changelog`'s `partition`, oldest first (a value of None deletes the
        key)."""

    def restored(self, partitions: list[int]) -> None:
        """Every changelog of these partitions has been applied: they are about to be processed."""

    def forget(self, partition: int) -> None:
        """The stage no longer holds this partition; another worker recovers it from
        the changelogs."""


class Relay:
    """One stage: `transform(records) -> [Out]` (or a `Step`, with `state`) between `topics` and
    what it returns."""

    def __init__(
        self,
        stage: str,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        transform: Callable[[list[ConsumerRecord]], list[Out] | Step],
        *,
        max_records: int = 2000,
        session_timeout_s: float = 30.0,
        heartbeat_interval_s: float = 3.0,
        rebalance_timeout_s: float = 60.0,
        max_request_size: int = 1_048_576,
        output_topics: Sequence[str] = (),
        state: StageState | None = None,
        instance_id: str | None = None,
    ) -> None:
        if state is not None and len(topics) != 1:
            raise ValueError(
                f"stage {stage}: a stage with state reads one topic (its changelogs follow its "
                "partitions)"
            )
        self.stage = stage
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = list(topics)
        self.transform = transform
        self.max_records = max_records
        self.consumer_options: dict[str, int | str] = {
            "session_timeout_ms": int(session_timeout_s * 1000),
            "heartbeat_interval_ms": int(heartbeat_interval_s * 1000),
            "rebalance_timeout_ms": int(rebalance_timeout_s * 1000),
            "max_poll_interval_ms": int(rebalance_timeout_s * 1000),
        }
        if instance_id:  # static membership: a restart under this name keeps the assignment
            self.consumer_options["group_instance_id"] = instance_id
        self.max_request_size = max_request_size
        self.output_topics = list(output_topics)  # whose partitions `partition_for` knows
        self._partitions: dict[str, list[int]] = {}
        self.assigned = asyncio.Event()
        self.waiting_for: list[str] = list(topics)
        self.in_flight = asyncio.Lock()
        self.state = state
        self.held: set[int] = set()  # input partitions whose state is in memory
        self._ends: dict[
            tuple[str, int], int
        ] = {}  # (changelog, partition) → its end offset after this stage's writes
        self.restoring = False
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()
        self._committing: asyncio.Future | None = None  # committing the finished batches
        self._to_commit: dict[
            TopicPartition, int
        ] = {}  # offsets of finished batches not yet sent to commit

    @classmethod
    def for_service(
        cls,
        settings,
        service: str,
        stage: str,
        topics: Sequence[str],
        transform: Callable[[list[ConsumerRecord]], list[Out] | Step],
        **options,
    ) -> Relay:
        """A stage of `service`'s workers: their own consumer group, the deployment's broker and
        timeouts."""
        return cls(
            stage,
            settings.kafka_bootstrap,
            stage_group(settings.topic_namespace, service, stage),
            topics,
            transform,
            session_timeout_s=settings.broker_session_timeout_s,
            heartbeat_interval_s=settings.broker_heartbeat_interval_s,
            rebalance_timeout_s=settings.broker_rebalance_timeout_s,
            instance_id=settings.instance_id,
            **options,
        )

    def partition_for(self, topic: str, key: bytes) -> int:
        """The partition a message with this key goes to when sent by key (one of
        `output_topics`)."""
        return self._partitions[topic][_index_of(key, len(self._partitions[topic]))]

    def knows_partitions(self, topic: str) -> bool:
        """Whether `partition_for` can answer for this topic yet (the stage has started)."""
        return topic in self._partitions

    def not_ready(self) -> list[str]:
        """Reasons for /readyz: topics that do not exist yet, no assignment yet."""
        if self.waiting_for:
            return [f"{self.stage}: waiting for topic {', '.join(self.waiting_for)} to exist"]
        if not self.assigned.is_set():
            return [f"{self.stage}: waiting for the first partition assignment"]
        if self.restoring:
            return [f"{self.stage}: recovering state from its changelogs"]
        return []

    async def send(self, *outs: Out) -> None:
        """Send messages with the stage's producer (timers asking the stage for work) and wait for
        them."""
        await self._started.wait()
        assert self._producer is not None
        sent = await send_all(self._producer, outs)
        if sent:
            await asyncio.gather(*sent)

    async def run(self) -> None:
        """The stage, for the life of the worker (run it as a task; cancel it to stop)."""
        await run_or_stop_worker(f"stage {self.stage}", self._run)

    async def _run(self) -> None:
        # a batch's messages for one partition go as one record batch (send_all): room for them,
        # under the broker's default limit of a record batch (message.max.bytes, 1 MiB)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=1,
            max_request_size=self.max_request_size,
            max_batch_size=BATCH_BYTES,
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 << 20,
            **self.consumer_options,
        )
        await producer.start()
        await consumer.start()
        self._producer = producer
        self._started.set()
        try:
            for topic in self.output_topics:
                self._partitions[topic] = sorted(await producer.partitions_for(topic))
            await self._wait_for_topics(consumer)
            consumer.subscribe(self.topics, listener=_WaitForBatch(self))
            loop, next_lag_export = asyncio.get_running_loop(), 0.0
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=self.max_records)
                if batch:
                    async with self.in_flight:  # a rebalance waits until this batch is committed
                        await self._process(consumer, producer, batch)
                if loop.time() >= next_lag_export:
                    await self._export_lag(consumer)
                    next_lag_export = loop.time() + 1.0
        finally:
            self._started.clear()
            await self.committed(timeout_s=10)
            await consumer.stop()
            await producer.stop()

    async def _wait_for_topics(self, consumer: AIOKafkaConsumer) -> None:
        def missing(topics: list[str]) -> None:
            self.waiting_for = topics

        await wait_for_topics(consumer, self.topics, self.stage, missing)

    async def _process(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, batch: dict
    ) -> None:
        assigned = consumer.assignment()
        batch = {
            tp: records for tp, records in batch.items() if tp in assigned
        }  # revoked since the fetch: its new owner has them
        if not batch:
            return
        records = [record for records in batch.values() for record in records]
        RECORDS.labels(self.stage).inc(len(records))
        result = self.transform(records)
        # outputs acknowledged before changes; nothing of this batch is committed before both are
        for wave in result if isinstance(result, Step) else (result,):
            await self._deliver(producer, wave)
        if isinstance(result, Step):
            for (
                change
            ) in result.changes:  # where this stage's writes leave its changelogs (see _recover)
                written = (change.topic, change.partition)
                if written in self._ends:
                    self._ends[written] += 1
        # Committed in the background: the next batch need not wait for the round trip (measured: 6
        # ms a batch, most of a hop's latency at 100 events/s). One commit at a time; batches
        # finished meanwhile are committed together by the next. A rebalance and a stop wait for
        # them.
        self._to_commit.update({tp: records[-1].offset + 1 for tp, records in batch.items()})
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit(consumer))

    async def _deliver(self, producer: AIOKafkaProducer, wave: Sequence[Out]) -> None:
        """Send a wave of a batch's messages until the broker has them all. While the broker is
        unreachable the stage waits here (the batch's state changes are made, so the batch must
        get out, not be dropped or read again); a send that fails for good (a message too large)
        raises and stops the worker."""
        delay, failures = 1.0, 0
        while True:
            sent = await _send_or_error(producer, wave)
            if sent is None:
                if failures:
                    log.warning("%s: the batch is delivered after %d retries", self.stage, failures)
                return
            if not is_transient(sent):
                raise sent
            failures += 1
            if failures == 1:
                log.error(
                    "%s: could not deliver a batch of %d messages (%r); retrying until the broker "
                    "takes them",
                    self.stage,
                    len(wave),
                    sent,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        while self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            try:
                await consumer.commit(offsets)
            except CommitFailedError as exc:
                log.warning(
                    "%s: the group rebalanced before these batches were committed (%s); their "
                    "new owner "
                    "repeats them",
                    self.stage,
                    exc,
                )
            except KafkaError as exc:
                log.warning(
                    "%s: commit failed (%r); the next batch's commit covers it", self.stage, exc
                )

    async def committed(self, timeout_s: float | None = None) -> None:
        """Until the finished batches are committed (a failed commit is logged)."""
        if self._committing is not None:
            await asyncio.wait([self._committing], timeout=timeout_s)

    async def recover(self, assigned: set[int]) -> None:
        """Forget partitions no longer held; read the changelogs of those newly held, to their end.

        A partition held before and assigned again keeps its state only if its changelogs end where
        this stage's own writes left them: a worker that lost its membership without being told (a
        session timeout) may get back a partition that another worker changed in between."""
        assert self.state is not None
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 << 20,
        )
        await reader.start()
        try:
            kept, changed = self.held & assigned, set()
            if kept:
                ends = await reader.end_offsets(
                    [TopicPartition(c, p) for c in self.state.changelogs for p in kept]
                )
                changed = {
                    tp.partition
                    for tp, end in ends.items()
                    if self._ends.get((tp.topic, tp.partition)) != end
                }
                if changed:
                    log.warning(
                        "%s: partitions %s were changed by another worker since this one held "
                        "them; "
                        "recovering them again",
                        self.stage,
                        sorted(changed),
                    )
            for partition in sorted((self.held - assigned) | changed):
                self.state.forget(partition)
            new = sorted(assigned - (kept - changed))
            self.held = set(assigned)
            if new:
                await self._read_changelogs(reader, new)
        finally:
            await reader.stop()

    async def _read_changelogs(self, reader: AIOKafkaConsumer, new: list[int]) -> None:
        assert self.state is not None
        self.restoring = True
        started, applied = asyncio.get_running_loop().time(), 0
        try:
            for changelog in self.state.changelogs:
                tps = [TopicPartition(changelog, p) for p in new]
                reader.assign(tps)
                ends = await reader.end_offsets(tps)
                begins = await reader.beginning_offsets(tps)
                # explicit offsets: seek_to_beginning can lose the race with the reset to the end
                for tp in tps:
                    reader.seek(tp, begins[tp])
                left = set(tps)
                while left:
                    # by position, not the last record's offset: compaction may have removed the
                    # last records
                    left = {tp for tp in left if await reader.position(tp) < ends[tp]}
                    if left:
                        for tp, records in (
                            await reader.getmany(*left, timeout_ms=1000, max_records=10_000)
                        ).items():
                            self.state.restore(tp.partition, changelog, records)
                            applied += len(records)
                self._ends.update({(tp.topic, tp.partition): end for tp, end in ends.items()})
            self.state.restored(new)
        finally:
            self.restoring = False
        log.info(
            "%s: recovered partitions %s from %d changelog records in %.1fs",
            self.stage,
            new,
            applied,
            asyncio.get_running_loop().time() - started,
        )

    async def _export_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Behind = the partition's end minus what this stage has read (and, a batch later,
        committed)."""
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(
                    0, highwater - await consumer.position(tp)
                )
        for topic in self.topics:  # a topic no longer assigned here reads 0, not its last value
            LAG.labels(self.group_id, topic).set(lag.get(topic, 0))


def header(record: ConsumerRecord, name: str) -> bytes | None:
    """The value of a record's header, None when it has none of that name."""
    for key, value in record.headers or ():
        if key == name:
            return value
    return None


async def run_or_stop_worker(what: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a worker's long-lived task; if it fails (a bug, a broker that gave up), stop the worker
    so its supervisor restarts it from the last commit instead of it going on without the task."""
    try:
        await run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.critical(
            "%s failed, stopping the worker so it restarts from the last commit: %r",
            what,
            exc,
            exc_info=exc,
        )
        stop_worker(EXIT_FAILED)


async def wait_for_topics(
    consumer: AIOKafkaConsumer,
    topics: Sequence[str],
    who: str,
    missing: Callable[[list[str]], None] = lambda topics: None,
) -> None:
    """Until every topic exists (subscribing to or assigning one that does not would see it only at
    the next metadata refresh); says once which are missing, and tells `missing` each time."""
    announced = False
    while True:
        await refresh_metadata(consumer)
        waiting = [t for t in topics if not consumer.partitions_for_topic(t)]
        missing(waiting)
        if not waiting:
            return
        if not announced:
            log.warning(
                "%s: waiting for topic %s to exist (ews topics create)", who, ", ".join(waiting)
            )
            announced = True
        await asyncio.sleep(1.0)


@lru_cache(
    maxsize=1 << 16
)  # keys repeat (scopes, sites, alerts) and aiokafka's murmur2 is pure Python
def _index_of(key: bytes, partitions: int) -> int:
    """Where Kafka's default partitioner puts `key` among `partitions` sorted partitions (murmur2,
    as Java)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


async def send_all(producer: AIOKafkaProducer, outs: Sequence[Out]) -> list[asyncio.Future]:
    """Hand `outs` to the producer as one record batch per partition (in their order within each
    partition) and return the futures of their acknowledgements, without waiting for them.

    aiokafka's `send` costs a future, a metadata check and a pass through the accumulator per
    message; a stage sends thousands per batch (make bench). Partitions are chosen as `send` would:
    by murmur2 of the key over all of the topic's partitions, at random without a key."""
    partitions: dict[str, list[int]] = {}
    open_batches: dict[tuple[str, int], Any] = {}
    futures: list[asyncio.Future] = []
    for out in outs:
        partition = out.partition
        if partition is None:
            known = partitions.get(out.topic)
            if known is None:
                known = partitions[out.topic] = sorted(await producer.partitions_for(out.topic))
            partition = (
                known[_index_of(out.key, len(known))]
                if out.key is not None
                else random.choice(known)
            )
        batch = open_batches.get((out.topic, partition))
        if batch is None:
            batch = open_batches[(out.topic, partition)] = producer.create_batch()
        if (
            batch.append(key=out.key, value=out.value, timestamp=None, headers=out.headers or [])
            is not None
        ):
            continue
        if batch.record_count():  # full: send it, and start the next with this message
            futures.append(await producer.send_batch(batch, out.topic, partition=partition))
            batch = open_batches[(out.topic, partition)] = producer.create_batch()
            if (
                batch.append(
                    key=out.key, value=out.value, timestamp=None, headers=out.headers or []
                )
                is not None
            ):
                continue
        # larger than a batch on its own: sent alone (the partition's earlier messages are already
        # sent)
        futures.append(
            await producer.send(
                out.topic, out.value, key=out.key, partition=partition, headers=out.headers
            )
        )
    for (topic, partition), batch in open_batches.items():
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def _send_or_error(producer: AIOKafkaProducer, wave: Sequence[Out]) -> BaseException | None:
    """Send and wait for every acknowledgement; the first error, if any (after all have settled,
    so no failure is left unretrieved)."""
    try:
        sent = await send_all(producer, wave)
    except (TimeoutError, KafkaError, OSError) as exc:
        return exc
    outcomes = await asyncio.gather(*sent, return_exceptions=True)
    return next((o for o in outcomes if isinstance(o, BaseException)), None)


RECOVERY_PATIENCE_S = 3600.0  # a broker unreachable longer than this while recovering: restart


class _WaitForBatch(ConsumerRebalanceListener):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.relay.in_flight:
            await self.relay.committed()  # the batch in flight, if any, has been sent and committed

    async def _recover_riding_out(self, partitions: set[int]) -> None:
        """Recover, waiting for the broker if it is unreachable (for up to RECOVERY_PATIENCE_S)."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + RECOVERY_PATIENCE_S, 1.0
        while True:
            try:
                await self.relay.recover(partitions)
                return
            except Exception as exc:
                if not is_transient(exc) or loop.time() > deadline:
                    raise
                log.error(
                    "%s: could not read its changelogs (%r); retrying in %.0f s",
                    self.relay.stage,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.relay.state is not None:
            try:
                # Holding the batch lock: aiokafka may already hand out records of the new
                # partitions, and no batch may be worked on before their state is back.
                async with self.relay.in_flight:
                    await self._recover_riding_out({tp.partition for tp in assigned})
            except Exception as exc:
                log.critical(
                    "%s: could not recover its state, stopping the worker so it restarts: %r",
                    self.relay.stage,
                    exc,
                    exc_info=exc,
                )
                stop_worker(EXIT_FAILED)
                raise
        self.relay.assigned.set()
        log.info(
            "%s: assigned %s",
            self.relay.stage,
            sorted(f"{tp.topic}/{tp.partition}" for tp in assigned),
        )
