"""A local webhook receiver that does what a coordination centre's endpoint should do.

It verifies `X-EWS-Signature` with the contact's secret, answers 401 to a bad signature,
and treats `Idempotency-Key` as the de-duplication key: a repeat is acknowledged (200) but
not counted twice. Used by `make run` and by the integration tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from services.notify.webhook import verify


def content_of(payload: dict) -> tuple:
    """What a message says (status, level, value): a re-send says the same; another message under
    the same key would not."""
    return payload["status"], payload["level"], payload["value"]


def _says(body: bytes) -> tuple:
    try:
        payload = json.loads(body)
    except ValueError:
        return (body,)
    return content_of(payload) if isinstance(payload, dict) else (body,)


@dataclass
class ReceivedAlert:
    idempotency_key: str
    contact_id: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    secrets: dict[str, str]  # contact id (last path segment) → shared secret
    on_alert: Callable[[ReceivedAlert], None] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    received: dict[str, ReceivedAlert] = field(default_factory=dict)
    # Answers to give before accepting anything: (status, headers) each, e.g. (500, {}) or (429,
    # {"Retry-After": "1"}); status 0 hangs for `hang_s` first, so the sender's timeout fires.
    failures: list[tuple[int, dict]] = field(default_factory=list)
    # the same, for one contact's endpoint only (answered before `failures`)
    failures_for: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    hang_s: float = 5.0
    # every request with a valid signature: (Idempotency-Key, contact id, when, status answered)
    attempts: list[tuple[str, str, float, int]] = field(default_factory=list)
    refused: int = 0
    duplicates: int = 0
    conflicts: int = 0  # a key received again with other content (status, level or value)
    bad_signatures: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url_for(self, contact_id: str) -> str:
        return f"http://{self.host}:{self.port}/hooks/{contact_id}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{contact_id}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the port the OS gave us

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        contact_id = request.match_info["contact_id"]
        body = await request.read()
        secret = self.secrets.get(contact_id)
        signature = request.headers.get("X-EWS-Signature", "")
        if secret is None or not verify(secret, body, signature, int(time.time())):
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        key = request.headers.get("Idempotency-Key", "")
        scripted = self.failures_for.get(contact_id) or self.failures
        if scripted:
            status, headers = scripted.pop(0)
            self.refused += 1
            self.attempts.append((key, contact_id, time.time(), status or 504))
            if status == 0:
                await asyncio.sleep(self.hang_s)
                status = 504
            return web.json_response({"error": "scripted failure"}, status=status, headers=headers)
        self.attempts.append((key, contact_id, time.time(), 200))
        if key in self.received:
            self.duplicates += 1
            if _says(self.received[key].body) != _says(body):
                self.conflicts += 1
            return web.json_response({"status": "duplicate"})
        alert = ReceivedAlert(key, contact_id, dict(request.headers), body, time.time())
        self.received[key] = alert
        self._arrived.set()
        if self.on_alert is not None:
            self.on_alert(alert)
        return web.json_response({"status": "received"})

    async def wait_for(self, count: int, timeout_s: float) -> bool:
        """Wait until `count` distinct deliveries arrived; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 1.0))
        return True
