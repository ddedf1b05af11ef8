"""The ingest worker: feed topics → validation → ews.observations, or ews.ingest.rejected with a reason."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import faust

from schemas import SitesFile
from services.common.config_files import load_model
from services.common.faust_app import create_faust_app
from services.common.geography import Geography
from services.common.settings import Settings
from services.common.topics import Topics

from . import metrics
from .validation import FeedRejection, parse_feed_message, rejection

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    geography = Geography(load_model(settings.sites_file, SitesFile))
    app = create_faust_app("ingest", settings, settings.ingest_web_port)

    feed_of_topic = {topic: feed for feed, topic in topics.feeds.items()}
    feeds = app.topic(*topics.feeds.values(), key_serializer="raw", value_serializer="raw")
    observations = app.topic(topics.observations, key_serializer="raw", value_serializer="raw")
    rejected = app.topic(topics.ingest_rejected, key_serializer="raw", value_serializer="raw")

    @app.agent(feeds)
    async def validate_feed(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            feed = feed_of_topic[message.topic]
            raw = message.value if isinstance(message.value, bytes) else bytes(message.value or b"")
            now = datetime.now(timezone.utc)
            try:
                observation = parse_feed_message(feed, raw, geography, now)
            except FeedRejection as error:
                record = rejection(feed, raw, error, now, source_topic=message.topic,
                                   source_partition=message.partition, source_offset=message.offset)
                await rejected.send(key=feed.encode(), value=record.model_dump_json().encode())
                metrics.EVENTS.labels(feed, "rejected").inc()
                metrics.REJECTED.labels(feed, error.reason).inc()
                log.info("rejected %s message at %s/%s/%s: %s", feed, message.topic, message.partition,
                         message.offset, error.detail)
                continue
            await observations.send(key=observation.key.encode(), value=observation.model_dump_json().encode())
            metrics.EVENTS.labels(feed, "accepted").inc()
            metrics.LAST_EVENT.labels(observation.source).set(observation.observed_at.timestamp())

    return app
