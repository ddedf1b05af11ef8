"""A complete, live, in-memory view of a keyed topic (contacts, silences, acknowledgements, alerts).

Every worker that needs the whole picture (not just its partitions) reads the topic from the
beginning into a dict and keeps following it. `wait_for` gives read-your-writes to an API
that just produced a change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from .library_internals import refresh_metadata
from .outage import CONNECTION_ERRORS

log = logging.getLogger(__name__)


class TopicView:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        decode: Callable[[bytes], Any],
        on_change: Callable[[str, Any, Any], None] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.decode = decode
        self.on_change = on_change  # (key, value or None, record) after each change
        self.items: dict[str, Any] = {}
        self.caught_up = asyncio.Event()
        self._positions: dict[int, int] = {}
        self._advanced = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Read from the beginning, then follow, for the life of the worker. A broker that cannot
        be reached (at start, or later) is waited for and the view resumes where it was: a view
        that gave up would leave its worker never ready and never routing."""
        delay, failing = 0.5, False
        while True:
            try:
                await self._follow()
            except CONNECTION_ERRORS as exc:
                if not failing:
                    log.warning("%s: the broker is unreachable (%r); retrying", self.topic, exc)
                failing = True
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            group_id=None,
        )
        self._consumer = consumer
        try:
            await consumer.start()
            partitions = None
            while not partitions:
                partitions = consumer.partitions_for_topic(self.topic)
                if not partitions:
                    await refresh_metadata(consumer)
                    await asyncio.sleep(0.5)
            assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            for tp in assigned:  # where this view was, or the beginning
                if tp.partition in self._positions:
                    consumer.seek(tp, self._positions[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            targets: dict[int, int] = {}
            if not self.caught_up.is_set():
                ends = await consumer.end_offsets(assigned)
                targets = {tp.partition: end for tp, end in ends.items()}
                if all(self._positions.get(p, 0) >= end for p, end in targets.items()):
                    self.caught_up.set()
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                for tp, records in batch.items():
                    for record in records:
                        self._apply(record)
                        self._positions[tp.partition] = record.offset + 1
                async with self._advanced:
                    self._advanced.notify_all()
                if not self.caught_up.is_set() and all(
                    self._positions.get(p, 0) >= end for p, end in targets.items()
                ):
                    self.caught_up.set()
                    log.info("%s: %d items loaded", self.topic, len(self.items))
        finally:
            await consumer.stop()

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        key = record.key.decode() if record.key else ""
        try:
            value = None if record.value is None else self.decode(record.value)
        except Exception as exc:  # noqa: BLE001 (a bad record must not stop the view: logged, skipped)
            log.error(
                "%s: skipping unreadable record at %d/%d: %s",
                self.topic,
                record.partition,
                record.offset,
                exc,
            )
            return
        if value is None:
            self.items.pop(key, None)
        else:
            self.items[key] = value
        if self.on_change is not None:
            self.on_change(key, value, record)

    async def wait_for(self, partition: int, offset: int, timeout_s: float = 10.0) -> None:
        """Wait until the record at (partition, offset) has been applied."""

        async def reached() -> None:
            async with self._advanced:
                await self._advanced.wait_for(lambda: self._positions.get(partition, 0) > offset)

        await asyncio.wait_for(reached(), timeout=timeout_s)
