"""Dead letters: the deliveries notify gave up on (ews.notify.dead), listed and replayed.

`ews deliveries dead` lists them; `ews deliveries replay` sends the chosen ones back to
ews.notify.retry with their original Idempotency-Keys and a fresh count of attempts, and writes a
replay marker on ews.notify.dead, so the list says which were replayed and when.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.notify import DeliveryJob
from services.common.library_internals import refresh_metadata
from services.common.topics import Topics

REPLAYED = b'{"replayed"'  # a marker on ews.notify.dead: {"replayed": key, "at": ...}


@dataclass
class DeadLetter:
    job: DeliveryJob
    dead_at: datetime  # when notify gave up (the record's timestamp)
    replayed_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.job.idempotency_key}|{self.job.channel_index}"


async def read_all(bootstrap: str, topic: str, timeout_s: float = 30) -> list:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await refresh_metadata(consumer)
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return []
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if loop.time() > deadline:
                raise TimeoutError(f"{topic} was not read to its end in {timeout_s:.0f} s")
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp_records in batch.values():
                records.extend(tp_records)
        return records
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str, topics: Topics) -> list[DeadLetter]:
    """Every dead letter, oldest first, with when it was replayed (if it was since it died)."""
    letters: dict[str, DeadLetter] = {}
    order: list[str] = []
    for record in await read_all(bootstrap, topics.notify_dead):
        at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        if record.value.startswith(REPLAYED):
            marker = json.loads(record.value)
            if marker["replayed"] in letters:
                letters[marker["replayed"]].replayed_at = at
            continue
        letter = DeadLetter(DeliveryJob.model_validate_json(record.value), at)
        if letter.key not in letters:
            order.append(letter.key)
        letters[letter.key] = letter  # died again after a replay: the latest death counts
    return sorted((letters[k] for k in order), key=lambda letter: letter.dead_at)


async def replay(bootstrap: str, topics: Topics, chosen: list[DeadLetter]) -> None:
    """Send these dead letters back to notify as new jobs with their original keys."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        now = datetime.now(UTC)
        for letter in chosen:
            job = letter.job.model_copy(
                update={"attempt": 0, "first_attempt_at": None, "due_at": now, "last_error": ""}
            )
            key = job.alert.alert_id.encode()
            await producer.send_and_wait(topics.notify_retry, job.model_dump_json().encode(), key)
            marker = json.dumps({"replayed": letter.key, "at": now.isoformat()}).encode()
            await producer.send_and_wait(topics.notify_dead, marker, key)
    finally:
        await producer.stop()
