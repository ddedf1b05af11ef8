"""The ingest worker: every way in → validation → de-duplication → ews.observations.

- The validation stage reads the feed topics (raw bytes, whatever the partner keyed them by)
  a batch at a time, rejects what fails validation to ews.ingest.rejected with a reason, and
  forwards the rest to `deduplicate`, keyed by event_id so that every copy of one event meets
  in one partition. It keeps no state, so it runs on aiokafka directly
  (services.common.relay), not through Faust's per-event stream.
- `deduplicate` remembers each event_id for the retention period in a changelog-backed
  table: a re-send is dropped and counted, a changed report is a correction published with
  a higher revision, anything else is published to ews.observations keyed by location.
- `POST /feeds/{feed}` (partner token) validates a JSON array and asks `deduplicate` for
  each item, answering accepted, duplicate, correction or rejected per item.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone

import faust
from faust.agents.models import ReqRepRequest
from mode.utils.text import want_str

from schemas import Observation, SitesFile
from schemas.types import parse_duration
from services.common.auth import AuthError, TokenStore
from services.common.config_files import load_model
from services.common.faust_app import ContinuityGuard, create_faust_app
from services.common.geography import Geography
from services.common.http import read_body_limited
from services.common.relay import Out, Relay
from services.common.settings import Settings
from services.common.table_writes import TableWrites
from services.common.topics import REJECTED_MAX_BYTES, Topics

from . import metrics
from .deduplication import SeenEvent, content_digest, decide, expired
from .validation import FeedRejection, describe_limit, parse_feed_message, rejection

log = logging.getLogger(__name__)
PRUNE_EVERY = 1000  # events between sweeps of expired event_ids
BATCH_MAX = 1000  # validated reports decided together at most
BATCH_WITHIN_S = 0.02  # how long a batch waits to fill (reports sent together are judged together)


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    geography = Geography(load_model(settings.sites_file, SitesFile))
    tokens = TokenStore.from_settings(settings)
    retention = parse_duration(settings.dedup_retention)
    feed_of_topic = {topic: feed for feed, topic in topics.feeds.items()}

    def rejected_message(feed: str, raw: bytes, error: FeedRejection, **source) -> Out:
        record = rejection(feed, raw, error, datetime.now(timezone.utc), **source)
        metrics.EVENTS.labels(feed, "rejected").inc()
        metrics.REJECTED.labels(feed, error.reason).inc()
        return Out(topics.ingest_rejected, feed.encode(), record.model_dump_json().encode())

    def validate_batch(records) -> list[Out]:
        """Feed messages → observations keyed by event_id for `deduplicate`, or rejections with a reason."""
        now = datetime.now(timezone.utc)
        out = []
        for record in records:
            feed = feed_of_topic[record.topic]
            raw = record.value or b""
            try:
                observation = parse_feed_message(feed, raw, geography, now)
            except FeedRejection as error:
                out.append(rejected_message(feed, raw, error, source_topic=record.topic,
                                            source_partition=record.partition, source_offset=record.offset))
                log.info("rejected %s message at %s/%s/%s: %s", feed, record.topic, record.partition,
                         record.offset, error.detail)
                continue
            out.append(Out(topics.ingest_validated, observation.event_id.encode(), observation.model_dump_json().encode()))
        return out

    validation = Relay.for_service(settings, "ingest", "validation", list(topics.feeds.values()), validate_batch,
                                   max_request_size=REJECTED_MAX_BYTES)
    app = create_faust_app("ingest", settings, settings.ingest_web_port, stages=[validation],
                           reply_create_topic=True, reply_expires=60.0)
    guard = ContinuityGuard(app)

    validated = app.topic(topics.ingest_validated, key_serializer="raw", value_serializer="json",
                          partitions=settings.topic_partitions)
    rejected = app.topic(topics.ingest_rejected, key_serializer="raw", value_serializer="raw")
    seen = app.Table("event-ids", default=None, partitions=settings.topic_partitions, key_type=str,
                     help="event_id → digest, revision, first seen; kept for EWS_DEDUP_RETENTION")

    swept = {"count": 0}
    writes = TableWrites(app)

    @app.agent(validated)
    async def deduplicate(stream: faust.StreamT) -> None:
        """A batch at a time: each report decided against what is remembered of its event_id (and what
        this batch already decided), the published observations and the remembered entries sent
        together and acknowledged by the broker before the batch's events are."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            now = datetime.now(timezone.utc)
            published: list[tuple[bytes, bytes]] = []
            replies = []
            for event in events:
                if not await guard.check(event):
                    continue  # after a gap: the stream was sent back for what it dropped
                value, asker = event.value, _asker(event)  # POST /feeds/{feed} asks and waits for the outcome
                if isinstance(value, ReqRepRequest):
                    value = value.value
                observation = Observation.model_validate(value)
                partition, offset = event.message.partition, event.message.offset
                stored = seen.get(observation.event_id)
                previous = SeenEvent.model_validate(stored) if stored is not None else None
                if previous is not None and expired(previous, now, retention):
                    previous = None
                digest = content_digest(observation)
                outcome, revision = decide(previous, digest, partition, offset)
                metrics.EVENTS.labels(_feed_label(observation.feed), outcome).inc()
                if outcome != "duplicate":
                    out = observation.model_copy(update={"revision": revision})
                    published.append((out.key.encode(), out.model_dump_json().encode()))
                    writes.set(seen, observation.event_id, SeenEvent(
                        digest=digest, revision=revision, seen_at=now, partition=partition, offset=offset,
                    ).model_dump(mode="json"), partition)
                    metrics.LAST_EVENT.labels(observation.source).set(observation.observed_at.timestamp())
                swept["count"] += 1
                if swept["count"] % PRUNE_EVERY == 0:
                    _sweep(seen, writes, partition, now, retention)
                if asker is not None:
                    replies.append((event.key, {"outcome": outcome, "revision": revision}, asker))
            sent = [await app.producer.send(topics.observations, key, value, None, None, None)
                    for key, value in published]
            await writes.flush()
            if sent:
                await asyncio.gather(*sent)
            for key, reply, (reply_to, correlation_id) in replies:
                await deduplicate._reply(key, reply, reply_to, correlation_id)

    @app.page("/feeds/{feed}")
    class FeedUpload(faust.web.View):
        async def post(self, request, feed: str):
            try:
                partner = tokens.require(request.headers.get("Authorization"), "partner", "admin")
            except AuthError as exc:
                return self.json({"error": exc.message}, status=exc.status)
            if feed not in topics.feeds:
                return self.json({"error": f"unknown feed {feed!r}; expected one of {', '.join(topics.feeds)}"}, status=404)
            body = await read_body_limited(request, settings.feed_http_max_bytes)
            if body is None:
                return self.json({"error": describe_limit(settings.feed_http_max_bytes)}, status=413)
            try:
                items = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                return self.json({"error": f"body is not JSON: {exc}"}, status=400)
            if not isinstance(items, list):
                return self.json({"error": "body must be a JSON array of reports"}, status=400)
            results = await asyncio.gather(*(
                _upload_item(feed, index, item, partner.name) for index, item in enumerate(items)
            ))
            counts = {o: sum(1 for r in results if r["outcome"] == o) for o in ("accepted", "duplicate", "correction", "rejected")}
            return self.json({"results": results, **counts})

    async def _upload_item(feed: str, index: int, item, partner: str) -> dict:
        raw = json.dumps(item, ensure_ascii=False).encode()
        try:
            observation = parse_feed_message(feed, raw, geography, datetime.now(timezone.utc))
        except FeedRejection as error:
            out = rejected_message(feed, raw, error, source_partner=f"{partner} item {index}")
            await (await rejected.send(key=out.key, value=out.value))
            return {"index": index, "outcome": "rejected", "reason": error.reason, "detail": error.detail}
        reply = await deduplicate.ask(key=observation.event_id.encode(), value=observation.model_dump(mode="json"))
        return {"index": index, "event_id": observation.event_id, **reply}

    return app


def _asker(event: faust.EventT) -> tuple[str, str] | None:
    """Where `agent.ask` wants the answer (reply topic, correlation id), as Faust's own agents read it."""
    if isinstance(event.value, ReqRepRequest):
        return event.value.reply_to, event.value.correlation_id
    headers = event.headers or {}
    reply_to = headers.get("Faust-Ag-ReplyTo")
    if not reply_to:
        return None
    return want_str(reply_to), want_str(headers.get("Faust-Ag-CorrelationId") or b"")


def _feed_label(feed: str) -> str:
    return "border-crossings" if feed == "border_crossing" else "displacement"


def _sweep(table, writes: TableWrites, partition: int, now: datetime, retention) -> None:
    """Forget event_ids past retention in the partition being processed (the only one we may write)."""
    stale = [key for key, value in list(table.data.items())
             if value is not None and value.get("partition") == partition
             and expired(SeenEvent.model_validate(value), now, retention)]
    for key in stale:
        writes.delete(table, key, partition)
    if stale:
        log.info("forgot %d event ids older than the retention period in partition %d", len(stale), partition)
