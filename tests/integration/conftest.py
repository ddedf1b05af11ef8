import asyncio
import time

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.demo.receiver import WebhookReceiver

pytestmark = pytest.mark.integration


async def wait_ready(workers, started, timeout_s: float = 90.0) -> None:
    """Wait until every started worker answers 200 on /readyz; fail with their logs otherwise."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        for process, port in started:
            while True:
                if process.poll() is not None:
                    pytest.fail(f"a worker exited with {process.returncode}\n{workers.logs()}")
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"workers not ready after {timeout_s}s\n{workers.logs()}")
                await asyncio.sleep(0.3)


async def produce(bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int, timeout_s: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
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
