"""Every use ews makes of a private attribute of aiokafka or faust-streaming, and why.

The rest of the code calls these functions, never the libraries' internals: an upgrade that
removes one of them breaks here, and tests/unit/test_library_internals.py says which, before any
worker runs. Where a public API does the job it is used instead (the producer's partitions come
from `AIOKafkaProducer.partitions_for`, the demo receiver's port from `AppRunner.addresses`).

Relied on, against the pinned versions (pyproject.toml: aiokafka 0.14.0, faust-streaming 0.15.3):
- `AIOKafkaConsumer._client.force_metadata_update()`: a consumer learns of a topic created after
  it started only at its next metadata refresh (5 minutes by default); the public
  `consumer.topics()` fetches metadata without updating what `partitions_for_topic` answers.
- `faust.transport.consumer.Consumer._unacked_messages`: the set of messages a rebalance waits
  for and a commit stops at; a message set aside to be read again must leave it (ContinuityGuard).
- `faust.transport.producer.ProducerBuffer.put` and `.flush`: flush returns after 0.1 s without
  progress and does not wait for the message being published, so a commit could run ahead of the
  changelog writes it covers; `make_buffer_flush_wait_for_delivery` makes flush wait for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

# What the functions below touch: (module, class, attribute). The test checks each one exists.
RELIED_ON = (
    ("aiokafka.client", "AIOKafkaClient", "force_metadata_update"),
    ("aiokafka.consumer.consumer", "AIOKafkaConsumer", "_client"),
    ("faust.transport.consumer", "Consumer", "_unacked_messages"),
    ("faust.transport.producer", "ProducerBuffer", "put"),
    ("faust.transport.producer", "ProducerBuffer", "flush"),
)

_PATCHED = "ews_flush_waits_for_delivery"


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Fetch the cluster's metadata now, so `partitions_for_topic` knows topics created since the
    consumer started."""
    await consumer._client.force_metadata_update()


def forget_unacked(consumer: Any, message: Any) -> None:
    """Take a message out of what a Faust consumer waits for before a rebalance and stops its commit
    at (it is marked acked by the caller, so Faust's own ack will not put it back)."""
    consumer._unacked_messages.discard(message)


def make_buffer_flush_wait_for_delivery() -> None:
    """Before Faust commits offsets it flushes its producer buffer, where table changelog writes
    wait. faust-streaming 0.15's ProducerBuffer.flush returns after 0.1 s without progress and does
    not wait for the message it is publishing, so a worker killed right after a commit could lose
    the state change of an event whose offset was committed (seen in
    tests/integration/test_triggers.py). Here flush also waits until every message put in the buffer
    has been delivered, so a commit never runs ahead of the state it covers. Idempotent."""
    from faust.transport.producer import ProducerBuffer

    if getattr(ProducerBuffer, _PATCHED, False):
        return
    original_put, original_flush = ProducerBuffer.put, ProducerBuffer.flush

    def put(self: ProducerBuffer, fut: Any) -> None:
        outstanding = self.__dict__.setdefault("ews_outstanding", set())
        outstanding.add(fut)
        fut.add_done_callback(outstanding.discard)
        original_put(self, fut)

    async def flush(self: ProducerBuffer) -> None:
        await original_flush(self)
        outstanding = [f for f in self.__dict__.get("ews_outstanding", ()) if not f.done()]
        if outstanding:
            await asyncio.wait(outstanding)

    ProducerBuffer.put, ProducerBuffer.flush = put, flush  # type: ignore[method-assign]
    setattr(ProducerBuffer, _PATCHED, True)
