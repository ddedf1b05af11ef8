"""Small helpers shared by the workers' HTTP endpoints."""

from __future__ import annotations

from typing import Any


async def read_body_limited(request: Any, limit: int) -> bytes | None:
    """The whole request body, or None when it is larger than `limit` bytes (answer 413)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
