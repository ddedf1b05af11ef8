"""What ews relies on inside aiokafka and faust-streaming (services/common/library_internals.py)
is still there: an upgrade that removes or renames one fails here, naming it, before any worker
runs. The metadata refresh is exercised against a real broker in
tests/integration/test_library_internals.py."""

from __future__ import annotations

import asyncio
import importlib
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer

from services.common import library_internals

# internals set in __init__ are looked for on a real, unstarted instance
_INSTANCES = {"AIOKafkaConsumer": lambda: AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")}


@pytest.mark.parametrize(("module", "owner", "name"), library_internals.RELIED_ON)
async def test_every_internal_relied_on_still_exists(module, owner, name):
    cls = getattr(importlib.import_module(module), owner)
    declared = any(
        name in vars(k) or name in getattr(k, "__annotations__", {}) for k in cls.__mro__
    )
    found = declared or (owner in _INSTANCES and hasattr(_INSTANCES[owner](), name))
    assert found, f"{module}.{owner} no longer has {name}: see services/common/library_internals.py"


class _Message:
    acked = True  # what ContinuityGuard sets before forgetting it
    tp, offset = ("topic", 0), 41


async def test_a_message_set_aside_leaves_what_the_faust_consumer_waits_for():
    app = faust.App("probe-internals", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    message: Any = _Message()
    consumer.track_message(message)  # what faust does before handing a message to a stream
    assert message in consumer.unacked
    library_internals.forget_unacked(consumer, message)
    assert message not in consumer.unacked


async def test_a_producer_buffer_flush_waits_until_its_messages_are_delivered():
    """Faust's own flush returns as soon as its queue is empty, with the last message still in
    flight; patched, it waits for that message's delivery."""
    from faust.transport.producer import ProducerBuffer

    library_internals.make_buffer_flush_wait_for_delivery()
    library_internals.make_buffer_flush_wait_for_delivery()  # idempotent: patched once
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    buffer.put(delivered)  # type: ignore[arg-type]  # a future is all put and flush use
    buffer.pending.get_nowait()  # handed to the producer: sent, not yet acknowledged
    flushing = asyncio.ensure_future(buffer.flush())
    await asyncio.sleep(0.2)
    assert not flushing.done()
    delivered.set_result(None)
    await asyncio.wait_for(flushing, 1)
