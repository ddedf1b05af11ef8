"""A topic view (notify's contacts, silences, acknowledgements and alerts) started before its
broker, or whose broker is killed, waits for it and resumes: a view that gave up left a notify
worker restarted during a broker outage never ready and never routing (make test-faults:
`…broker_stopped_or_killed…[killed]` failed in CI with every alert unprocessed)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.local_kafka import LocalBroker, free_port
from services.common.topic_view import TopicView
from tests.integration.kafka_io import produce

pytestmark = pytest.mark.faults


async def until(condition, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the view did not catch up"
        await asyncio.sleep(0.2)


async def test_a_view_started_before_its_broker_or_across_a_kill_catches_up(tmp_path):
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    view = TopicView(broker.bootstrap, "contacts", lambda b: b.decode())
    task = asyncio.create_task(view.run())
    try:
        await asyncio.sleep(3)  # the view tries a broker that is not there yet
        assert not task.done(), f"the view gave up: {task.exception()!r}"
        await asyncio.to_thread(broker.start)
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("contacts", 2, 1)])
        await admin.close()
        await produce(broker.bootstrap, "contacts", [b"first"], key=b"a")
        await until(lambda: view.caught_up.is_set() and view.items.get("a") == "first")

        await asyncio.to_thread(broker.kill)
        await asyncio.sleep(3)
        await asyncio.to_thread(broker.start)
        await produce(broker.bootstrap, "contacts", [b"second"], key=b"b")
        await until(lambda: view.items.get("b") == "second")
        assert view.items == {"a": "first", "b": "second"} and not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await asyncio.to_thread(broker.stop)
