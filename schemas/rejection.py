"""A feed message ingest could not accept, kept with everything needed to fix and replay it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RejectedMessage(BaseModel):
    feed: str = Field(description="feed name the message was sent to")
    reason: str = Field(description="short machine-readable reason, e.g. invalid_json, validation")
    detail: str = Field(description="what is wrong, naming the field, and what was expected")
    original_base64: str = Field(description="the message bytes exactly as received, base64")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    source_partner: str | None = None
    source_file: str | None = None
    source_row: int | None = None
    rejected_at: datetime
