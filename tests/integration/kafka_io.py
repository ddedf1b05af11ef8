"""What integration tests share for talking to the broker, the workers and the webhook receiver:
producing and consuming records, waiting for workers to be ready, writing contacts that point at
the receiver. Test files import from here (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from services.demo.receiver import WebhookReceiver
from services.demo.stack import WorkerNotReady, wait_until_ready


async def wait_ready(workers: Any, started: list[tuple[Any, int]], timeout_s: float = 90.0) -> None:
    """Wait until every started worker answers 200 on /readyz; fail with their logs otherwise."""
    try:
        await wait_until_ready([(f"pid {p.pid}", p, port) for p, port in started], timeout_s)
    except WorkerNotReady as exc:
        pytest.fail(f"{exc}\n{workers.logs()}")


async def produce(
    bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topic: str, count: int, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Up to `count` records of the topic from its beginning, within `timeout_s`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
        return records
    finally:
        await consumer.stop()


def write_contacts(path: Path, receiver: WebhookReceiver, contacts: list[dict[str, Any]]) -> None:
    """A contacts file whose webhooks all go to `receiver`, each with a secret it knows."""
    for c in contacts:
        secret = f"secret-of-{c['id']}-0123456789"
        receiver.secrets[c["id"]] = secret
        c.setdefault("name", c["id"])
        c.setdefault("organisation", "test")
        c["channels"] = [{"type": "webhook", "url": receiver.url_for(c["id"]), "secret": secret}]
    path.write_text(yaml.safe_dump({"version": 1, "contacts": contacts}))
