"""Asking a stage and waiting for its answer: the request goes through the stage's input topic like
any other message, with a correlation id in a header; the stage answers on a replies topic that
every worker of the service reads from its end, and the worker that asked wakes its waiting caller.

Used by ingest's `POST /feeds/{feed}`: each item is de-duplicated by the worker that owns its
event_id, wherever the HTTP request arrived.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from .relay import Out, header, run_or_stop_worker, wait_for_topics

log = logging.getLogger(__name__)

REPLY_HEADER = "ews-reply-to"  # on a request: the correlation id its answer is keyed by


def correlation_of(record: ConsumerRecord[bytes, bytes]) -> bytes | None:
    """The correlation id of a request record, None for a message nobody waits for."""
    return header(record, REPLY_HEADER)


def answer(topic: str, correlation: bytes, reply: dict) -> Out:
    return Out(topic, correlation, json.dumps(reply, separators=(",", ":")).encode())


class Replies:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 60.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout_s = timeout_s
        self.pending: dict[bytes, asyncio.Future] = {}
        self.listening = asyncio.Event()

    def not_ready(self) -> list[str]:
        return [] if self.listening.is_set() else [f"not yet reading answers on {self.topic}"]

    async def ask(self, send: Callable[[Out], Awaitable[None]], request: Out) -> dict:
        """Send `request` with a new correlation id and wait for its answer (TimeoutError after
        timeout_s)."""
        await self.listening.wait()
        correlation = uuid.uuid4().hex.encode()
        waiting = self.pending[correlation] = asyncio.get_running_loop().create_future()
        try:
            await send(
                request._replace(headers=[*(request.headers or ()), (REPLY_HEADER, correlation)])
            )
            return await asyncio.wait_for(waiting, self.timeout_s)
        finally:
            self.pending.pop(correlation, None)

    async def run(self) -> None:
        """Read answers for the life of the worker (run it as a task)."""
        await run_or_stop_worker(f"reading answers on {self.topic}", self._run)

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await wait_for_topics(consumer, [self.topic], "answers")
            tps = [
                TopicPartition(self.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.topic))
            ]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(
                    tp
                )  # resolved now: answers to requests sent from here on are read
            self.listening.set()
            while True:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        waiting = self.pending.get(record.key)
                        if waiting is not None and not waiting.done():
                            waiting.set_result(json.loads(record.value))
        finally:
            self.listening.clear()
            await consumer.stop()
