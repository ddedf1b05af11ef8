"""Riding out a broker outage: what a worker knows of the broker's reachability, timers that retry
instead of ending the worker, and connection errors logged once per change of state.

While the broker is unreachable a worker stays up: its stages and timers retry, `/readyz`
answers 503 naming the broker (and `ews_worker_ready` drops to 0), `/healthz` stays the process's
own liveness. aiokafka logs every failed connection attempt (hundreds a second across a worker's
clients); `quiet_connection_errors` lets the first through and then one summary a minute.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError, KafkaTimeoutError

log = logging.getLogger(__name__)
# What a broker that is down or unreachable raises at a worker's clients.
CONNECTION_ERRORS = (KafkaError, OSError, asyncio.TimeoutError)
R = TypeVar("R")


def is_transient(error: BaseException) -> bool:
    """An error that waiting for the broker cures (unreachable, timed out, a leader moving), as
    opposed to one that retrying would repeat forever (a message too large)."""
    if isinstance(error, OSError | asyncio.TimeoutError | KafkaTimeoutError):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


class BrokerHealth:
    """The broker as this worker last found it: reachable, or unreachable since when and why."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.unreachable_since: float | None = None  # time.time()
        self.error = ""

    def failed(self, what: str, error: BaseException) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = time.time()
            log.error(
                "the Kafka broker (%s) is unreachable (%s: %r); retrying until it is back",
                self.bootstrap,
                what,
                error,
            )
        self.error = f"{type(error).__name__}: {error}"[:200]

    def succeeded(self) -> None:
        if self.unreachable_since is not None:
            log.warning(
                "the Kafka broker (%s) is reachable again after %.0f s",
                self.bootstrap,
                time.time() - self.unreachable_since,
            )
        self.unreachable_since = None
        self.error = ""

    def reason(self) -> str | None:
        """Why the worker is not ready, if the broker is unreachable."""
        if self.unreachable_since is None:
            return None
        return (
            f"the Kafka broker ({self.bootstrap}) is unreachable since "
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.unreachable_since))} "
            f"({self.error})"
        )


def riding_out(
    health: BrokerHealth, what: str
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R | None]]]:
    """A timer body that, when the broker cannot be reached, records it and waits for its next
    tick instead of ending the worker."""

    def wrap(body: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R | None]]:
        @functools.wraps(body)
        async def run(*args: Any, **kwargs: Any) -> R | None:
            try:
                return await body(*args, **kwargs)
            except CONNECTION_ERRORS as exc:
                health.failed(what, exc)
                return None

        return run

    return wrap


class _OncePerMinute(logging.Filter):
    """Lets a logger's connection-error records through once per state change, then a summary
    (how many were held back) at most once a minute."""

    WORDS = (
        "Unable connect",
        "Unable to update metadata",
        "Failed fetch",
        "Got error produce",
        "Connection",
        "NodeNotReady",
        "KafkaConnectionError",
    )

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self.every_s = every_s
        self.last = float("-inf")
        self.held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if not any(word in message for word in self.WORDS):
            return True
        now = time.monotonic()
        if now - self.last < self.every_s:
            self.held += 1
            return False
        if self.held:
            record.msg = f"{message} (and {self.held} more like it in the last minute)"
            record.args = ()
        self.last, self.held = now, 0
        return True


# The loggers that repeat a connection error at every attempt (a filter sees only its own logger's
# records, not its children's, so each is named).
_NOISY = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
)


def quiet_connection_errors() -> None:
    """Rate-limit aiokafka's and faust's connection-error logs (idempotent)."""
    for name in _NOISY:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OncePerMinute) for f in logger.filters):
            logger.addFilter(_OncePerMinute())
