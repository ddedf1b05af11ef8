"""`ews ingest FILE`: validate every row, publish the good ones to the feed topic, keep the bad
ones."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from aiokafka import AIOKafkaProducer

from schemas import SitesFile
from services.common.config_files import load_model
from services.common.geography import Geography
from services.common.kafka_admin import ensure_topics
from services.common.settings import Settings
from services.common.topics import Topics

from .files import FileFormatError, read_feed_rows
from .validation import FeedRejection, Limits, parse_feed_message, rejection

PROGRESS_FROM_ROWS = 2000


def upload_file(
    path: Path, feed: str | None, source: str | None, check_only: bool, settings: Settings
) -> int:
    """Exit code: 0 all rows accepted, 1 some rows rejected (the rest were still sent), 2 unreadable
    file."""
    try:
        feed, reading = read_feed_rows(path, feed, source)
        rows = list(reading)
    except FileFormatError as exc:  # it names the file
        click.echo(str(exc), err=True)
        return 2
    geography = Geography(load_model(settings.sites_file, SitesFile))
    return asyncio.run(_upload(path, feed, rows, geography, check_only, settings))


async def _upload(
    path: Path, feed: str, rows, geography: Geography, check_only: bool, settings: Settings
) -> int:
    topics = Topics(settings.topic_namespace)
    limits = Limits(settings.max_future, settings.max_period)
    producer = None
    if not check_only:
        await ensure_topics(settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20
        )
        await producer.start()
    sent = bad = 0
    try:
        with click.progressbar(
            rows,
            label=f"{path.name} → {feed}",
            file=sys.stderr,
            hidden=len(rows) < PROGRESS_FROM_ROWS,
        ) as bar:
            for row in bar:
                raw = json.dumps(row.report, ensure_ascii=False).encode()
                now = datetime.now(UTC)
                try:
                    observation = parse_feed_message(feed, raw, geography, now, limits)
                except FeedRejection as error:
                    bad += 1
                    click.echo(f"{path}:{row.number}: {error.detail}", err=True)
                    if producer is not None:
                        record = rejection(
                            feed, raw, error, now, source_file=str(path), source_row=row.number
                        )
                        await producer.send(
                            topics.ingest_rejected,
                            record.model_dump_json().encode(),
                            key=feed.encode(),
                        )
                    continue
                if producer is not None:
                    await producer.send(topics.feeds[feed], raw, key=observation.key.encode())
                sent += 1
        if producer is not None:
            await producer.flush()
    finally:
        if producer is not None:
            await producer.stop()
    verb = "valid" if check_only else f"sent to {topics.feeds[feed]}"
    click.echo(
        f"{path}: {len(rows)} rows, {sent} {verb}, {bad} rejected"
        + (f" (kept on {topics.ingest_rejected})" if bad and not check_only else "")
    )
    return 1 if bad else 0
