"""Fixtures of the integration tests (the broker and workers are in tests/conftest.py); what the
tests share besides fixtures is in kafka_io.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.demo.receiver import WebhookReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver(secrets={})
    await r.start()
    yield r
    await r.stop()
