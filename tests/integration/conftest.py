import time

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.demo.receiver import WebhookReceiver
from services.demo.stack import WorkerNotReady, wait_until_ready

pytestmark = pytest.mark.integration


async def wait_ready(workers, started, timeout_s: float = 90.0) -> None:
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


async def consume(bootstrap: str, topic: str, count: int, timeout_s: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    records = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
        return records
    finally:
        await consumer.stop()


@pytest.fixture
async def receiver():
    r = WebhookReceiver(secrets={})
    await r.start()
    yield r
    await r.stop()


def write_contacts(path, receiver: WebhookReceiver, contacts: list[dict]) -> None:
    for c in contacts:
        secret = f"secret-of-{c['id']}-0123456789"
        receiver.secrets[c["id"]] = secret
        c.setdefault("name", c["id"])
        c.setdefault("organisation", "test")
        c["channels"] = [{"type": "webhook", "url": receiver.url_for(c["id"]), "secret": secret}]
    path.write_text(yaml.safe_dump({"version": 1, "contacts": contacts}))
