"""The batch stages (services.common.relay) on the real broker: nothing lost when a stage stops
mid-stream and another in its group takes over, offsets committed to the end, a topic that appears
late is picked up."""

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.relay import Out, Relay, Step
from tests.integration.kafka_io import consume, produce


async def create(bootstrap: str, *topics: tuple[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics])
    finally:
        await admin.close()


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in range(partitions)]
        )
        return {tp.partition: meta.offset for tp, meta in found.items()}
    finally:
        await admin.close()


def upper(target: str):
    def transform(records) -> list[Out]:
        return [Out(target, r.key, r.value.upper()) for r in records]

    return transform


async def until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_a_stage_stopped_mid_stream_loses_nothing_and_its_group_commits_to_the_end(
    kafka_bootstrap, namespace
):
    source, target, group = f"{namespace}.relay-in", f"{namespace}.relay-out", f"{namespace}-relay"
    await create(kafka_bootstrap, (source, 4), (target, 1))
    values = [f"report-{i}".encode() for i in range(3000)]
    for start in range(0, len(values), 500):  # keys spread the records over the four partitions
        await produce(
            kafka_bootstrap, source, values[start : start + 500], key=f"k{start}".encode()
        )

    first = Relay(
        "test",
        kafka_bootstrap,
        group,
        [source],
        upper(target),
        max_records=50,
        session_timeout_s=10,
        heartbeat_interval_s=1,
        rebalance_timeout_s=10,
    )
    running = asyncio.create_task(first.run())
    await until(
        lambda: _count_at_least(kafka_bootstrap, target, 200),
        60,
        "the first stage to pass records on",
    )
    second = Relay(
        "test",
        kafka_bootstrap,
        group,
        [source],
        upper(target),
        max_records=50,
        session_timeout_s=10,
        heartbeat_interval_s=1,
        rebalance_timeout_s=10,
    )
    taking_over = asyncio.create_task(second.run())
    await asyncio.sleep(1.0)
    running.cancel()  # mid-stream: its uncommitted batch is the second one's to repeat
    await asyncio.gather(running, return_exceptions=True)
    try:
        await until(
            lambda: _committed_all(kafka_bootstrap, group, source),
            90,
            "the group to commit every record",
        )
        received = await consume(kafka_bootstrap, target, len(values), timeout_s=30)
    finally:
        taking_over.cancel()
        await asyncio.gather(taking_over, return_exceptions=True)
    got = [r.value for r in received]
    assert set(got) == {v.upper() for v in values}  # nothing lost
    assert len(got) - len(set(got)) <= 4 * 50  # at most a batch per partition repeated


async def test_a_stage_waits_for_its_topic_and_says_so_until_it_exists(kafka_bootstrap, namespace):
    source, target = f"{namespace}.late-in", f"{namespace}.late-out"
    await create(kafka_bootstrap, (target, 1))
    relay = Relay("late", kafka_bootstrap, f"{namespace}-late", [source], upper(target))
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(2.0)
        assert relay.not_ready() == [f"late: waiting for topic {source} to exist"]
        await create(kafka_bootstrap, (source, 2))
        await produce(kafka_bootstrap, source, [b"first report"])
        received = await consume(kafka_bootstrap, target, 1, timeout_s=30)
        assert [r.value for r in received] == [b"FIRST REPORT"]
        assert relay.not_ready() == []
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _count_at_least(bootstrap: str, topic: str, n: int) -> bool:
    return len(await consume(bootstrap, topic, n, timeout_s=1.0)) >= n


async def _committed_all(bootstrap: str, group: str, topic: str) -> bool:
    offsets = await committed(bootstrap, group, topic, 4)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(4)])
    finally:
        await consumer.stop()
    return all(end == 0 or offsets.get(tp.partition) == end for tp, end in ends.items())


async def test_a_stage_sends_to_the_partition_a_message_keyed_by_the_same_key_takes(
    kafka_bootstrap, namespace
):
    """Triggers send one observation per partition naming its scopes: the state of a scope must stay
    in the partition that the judge and silence requests, keyed by the scope, reach."""
    source, target = f"{namespace}.keys-in", f"{namespace}.keys-out"
    await create(kafka_bootstrap, (source, 1), (target, 4))
    relay = Relay(
        "keys",
        kafka_bootstrap,
        f"{namespace}-keys",
        [source],
        upper(target),
        output_topics=[target],
    )
    running = asyncio.create_task(relay.run())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await until(lambda: _true(not relay.not_ready()), 30, "the stage to be assigned")
        keys = [f"site/PA-{i:04d}".encode() for i in range(200)]
        landed = [(await (await producer.send(target, b"{}", key=key))).partition for key in keys]
        assert [relay.partition_for(target, key) for key in keys] == landed
        assert len(set(landed)) == 4
    finally:
        await producer.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value


class RunningTotals:
    """A stage's state for the tests: per partition, key → the sum of the values read so far."""

    def __init__(self, changelog: str) -> None:
        self.changelogs: Sequence[str] = (changelog,)
        self.held: dict[int, dict[bytes, int]] = {}
        self.recovered = 0

    def restore(self, partition, changelog, records) -> None:
        for record in records:
            self.held.setdefault(partition, {})[record.key] = int(record.value)
            self.recovered += 1

    def restored(self, partitions) -> None:
        pass

    def forget(self, partition) -> None:
        self.held.pop(partition, None)


def running_totals(target: str, state: RunningTotals):
    def transform(records) -> Step:
        outputs, changes = [], []
        for r in records:
            totals = state.held.setdefault(r.partition, {})
            totals[r.key] = totals.get(r.key, 0) + int(r.value)
            outputs.append(Out(target, r.key, str(totals[r.key]).encode()))
            changes.append(
                Out(state.changelogs[0], r.key, str(totals[r.key]).encode(), r.partition)
            )
        return Step(outputs, changes)

    return transform


async def test_a_stage_with_state_replaced_by_another_carries_on_from_its_changelog(
    kafka_bootstrap, namespace
):
    """The second stage recovers every partition's state before its first batch: the running totals
    carry on where the first stage left them, none restarts from zero (state lost) or counts twice.
    """
    source, target, changelog = (
        f"{namespace}.sum-in",
        f"{namespace}.sum-out",
        f"{namespace}.sum-changelog",
    )
    group = f"{namespace}-sum"
    await create(kafka_bootstrap, (source, 4), (target, 1), (changelog, 4))
    keys = [f"k{i}".encode() for i in range(12)]

    async def feed(rounds: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for _ in range(rounds):
                for key in keys:
                    await producer.send(source, b"1", key=key)
            await producer.flush()
        finally:
            await producer.stop()

    async def run_until(stage: Relay, outputs: int) -> None:
        running = asyncio.create_task(stage.run())
        try:
            await until(
                lambda: _count_at_least(kafka_bootstrap, target, outputs), 60, f"{outputs} outputs"
            )
            await until(
                lambda: _committed_all(kafka_bootstrap, group, source),
                30,
                "the group to commit every record",
            )
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    first_state = RunningTotals(changelog)
    await feed(20)
    await run_until(
        Relay(
            "sum",
            kafka_bootstrap,
            group,
            [source],
            running_totals(target, first_state),
            state=first_state,
            max_records=50,
        ),
        20 * len(keys),
    )
    second_state = RunningTotals(changelog)
    await feed(15)
    await run_until(
        Relay(
            "sum",
            kafka_bootstrap,
            group,
            [source],
            running_totals(target, second_state),
            state=second_state,
            max_records=50,
        ),
        35 * len(keys),
    )
    assert second_state.recovered == 20 * len(
        keys
    )  # every change the first stage wrote, all four partitions
    received = await consume(kafka_bootstrap, target, 35 * len(keys), timeout_s=10)
    by_key: dict[bytes, list[int]] = {}
    for record in received:
        by_key.setdefault(record.key, []).append(int(record.value))
    assert {key: sorted(totals) for key, totals in by_key.items()} == {
        key: list(range(1, 36)) for key in keys
    }


async def test_a_partition_another_worker_changed_meanwhile_is_recovered_again_the_others_kept(
    kafka_bootstrap, namespace
):
    """A worker that lost its membership without being told (a session timeout) may be given back a
    partition that another worker changed in between: it must not go on with its own, stale state of
    it."""
    source, changelog = f"{namespace}.again-in", f"{namespace}.again-changelog"
    await create(kafka_bootstrap, (source, 4), (changelog, 4))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition in range(4):
            await producer.send_and_wait(changelog, b"5", key=b"k", partition=partition)
        state = RunningTotals(changelog)
        stage = Relay(
            "sum",
            kafka_bootstrap,
            f"{namespace}-again",
            [source],
            running_totals("unused", state),
            state=state,
        )
        await stage.recover({0, 1, 2, 3})
        assert state.recovered == 4 and all(state.held[p] == {b"k": 5} for p in range(4))
        for partition in range(4):
            state.held[partition][b"in memory only"] = 1  # gone if the partition is read again
        await producer.send_and_wait(
            changelog, b"9", key=b"k", partition=1
        )  # another worker's change
        await stage.recover({0, 1, 2, 3})  # the same assignment again
    finally:
        await producer.stop()
    assert state.held[1] == {b"k": 9}  # read again: the other worker's change, not the stale state
    assert state.recovered == 4 + 2
    assert all(
        state.held[p] == {b"k": 5, b"in memory only": 1} for p in (0, 2, 3)
    )  # untouched: kept as they were
