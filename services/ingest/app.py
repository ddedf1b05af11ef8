"""The ingest worker: every way in → validation → de-duplication → ews.observations.

- The validation stage reads the feed topics (raw bytes, whatever the partner keyed them by)
  a batch at a time, rejects what fails validation to ews.ingest.rejected with a reason, and
  forwards the rest to de-duplication, keyed by report id ("source/event_id": event_ids are
  unique per source) so that every copy of one report meets in one partition.
- The de-duplication stage remembers each report for the retention period, in memory per
  partition and in a compacted changelog: a re-send is dropped and counted, a changed report is a
  correction published with a higher revision (naming where the corrected version was counted
  when the correction moves it), anything else is published to ews.observations keyed by
  location.
- Both stages run on aiokafka directly, a batch at a time (services.common.relay): Faust's
  per-event stream and table machinery was most of the worker's time (make bench).
- `POST /feeds/{feed}` (partner token) validates a JSON array and asks de-duplication about each
  item through its topic (services.common.replies), answering accepted, duplicate, correction,
  superseded or rejected per item.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from schemas import Observation, SitesFile, TriggersFile
from schemas.types import as_timedelta, parse_duration
from services.common.auth import AuthError, Principal, TokenStore
from services.common.config_files import ConfigError, load_model
from services.common.faust_app import broker_health, create_faust_app
from services.common.geography import Geography
from services.common.http import read_body_limited
from services.common.relay import Out, Relay, Step
from services.common.reloading import Reloading
from services.common.replies import Replies, answer, correlation_of
from services.common.settings import Settings
from services.common.topics import REJECTED_MAX_BYTES, Topics
from services.triggers.core.rules import RuleSet

from . import metrics
from .deduplication import SeenEvents, content_digest, decide, moved, remember
from .validation import FeedRejection, Limits, describe_limit, parse_feed_message, rejection

log = logging.getLogger(__name__)
RETRY_AFTER_S = 30  # what POST /feeds asks a partner to wait while the broker is unreachable
BATCH_MAX = 2000  # validated reports decided together at most


def create_app(settings: Settings) -> faust.App:
    topics = Topics(settings.topic_namespace)
    # reloaded when sites.yaml changes, as the triggers worker does (a site added is known to both)
    sites = Reloading(
        [settings.sites_file],
        lambda: Geography(load_model(settings.sites_file, SitesFile)),
        "sites",
    )
    tokens = TokenStore.from_settings(settings)
    retention = dedup_retention(settings)
    limits = Limits(settings.max_future, settings.max_period)
    feed_of_topic = {topic: feed for feed, topic in topics.feeds.items()}

    def rejected_message(feed: str, raw: bytes, error: FeedRejection, **source) -> Out:
        record = rejection(feed, raw, error, datetime.now(UTC), **source)
        metrics.EVENTS.labels(feed, "rejected").inc()
        metrics.REJECTED.labels(feed, error.reason).inc()
        return Out(topics.ingest_rejected, feed.encode(), record.model_dump_json().encode())

    def validate_batch(records: list[ConsumerRecord[bytes, bytes]]) -> list[Out]:
        """Feed messages → observations keyed by report id for `deduplicate`, or rejections with a
        reason."""
        now = datetime.now(UTC)
        out = []
        for record in records:
            feed = feed_of_topic[record.topic]
            raw = record.value or b""
            try:
                observation = parse_feed_message(feed, raw, sites.value, now, limits)
            except FeedRejection as error:
                out.append(
                    rejected_message(
                        feed,
                        raw,
                        error,
                        source_topic=record.topic,
                        source_partition=record.partition,
                        source_offset=record.offset,
                    )
                )
                log.info(
                    "rejected %s message at %s/%s/%s: %s",
                    feed,
                    record.topic,
                    record.partition,
                    record.offset,
                    error.detail,
                )
                continue
            out.append(
                Out(
                    topics.ingest_validated,
                    observation.report_id.encode(),
                    observation.model_dump_json().encode(),
                )
            )
        return out

    validation = Relay.for_service(
        settings,
        "ingest",
        "validation",
        list(topics.feeds.values()),
        validate_batch,
        max_request_size=REJECTED_MAX_BYTES,
    )
    seen = SeenEvents(topics.ingest_event_ids_changelog, retention)
    metrics.EVENT_IDS_HELD.set_function(lambda: sum(len(held) for held in seen.held.values()))
    newest: dict[
        str, float
    ] = {}  # source → newest observed_at accepted (ews_feed_last_event_timestamp_seconds)

    def deduplicate_batch(records: list[ConsumerRecord[bytes, bytes]]) -> Step:
        """Each report decided against what is remembered of its report id (and what this batch
        already decided); published observations (and answers to uploads) first, then the remembered
        entries."""
        now = datetime.now(UTC)
        outputs: list[Out] = []
        changes: list[Out] = []
        outcomes: Counter = Counter()  # (feed, outcome) → reports
        for record in records:
            try:
                observation = Observation.model_validate_json(record.value)
            # only ingest writes this topic: a bug, kept on the topic for whoever investigates
            except ValidationError as exc:
                metrics.EVENTS.labels("unknown", "unreadable").inc()
                log.error(
                    "%s/%d/%d is not a readable observation; skipped: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                )
                continue
            previous = seen.get(record.partition, observation.report_id, now)
            digest = content_digest(observation)
            outcome, revision = decide(previous, digest, record.partition, record.offset)
            outcomes[(_feed_label(observation.feed), outcome)] += 1
            if outcome in ("accepted", "correction", "replayed"):
                # as validated, unless the revision changed or it moved (a new report keeps its
                # bytes: not encoded again)
                published = moved(previous, observation) if outcome == "correction" else observation
                value = (
                    record.value
                    if revision == observation.revision and published is observation
                    else published.model_copy(update={"revision": revision})
                    .model_dump_json()
                    .encode()
                )
                outputs.append(Out(topics.observations, observation.key.encode(), value))
                entry = remember(
                    previous,
                    digest,
                    revision,
                    now,
                    record.partition,
                    record.offset,
                    observation.location,
                )
                changes.append(seen.put(record.partition, observation.report_id, entry))
                at = observation.observed_at.timestamp()
                if at > newest.get(observation.source, float("-inf")):
                    newest[observation.source] = at
                    metrics.LAST_EVENT.labels(observation.source).set(at)
            correlation = correlation_of(record)
            if correlation is not None:  # POST /feeds/{feed} waits for this answer
                outputs.append(
                    answer(
                        topics.ingest_replies,
                        correlation,
                        {"outcome": outcome, "revision": revision},
                    )
                )
        for partition in {record.partition for record in records}:
            changes.extend(seen.expire(partition, now))
        for labels, count in outcomes.items():
            metrics.EVENTS.labels(*labels).inc(count)
        return Step(outputs, changes)

    deduplication = Relay.for_service(
        settings,
        "ingest",
        "deduplication",
        [topics.ingest_validated],
        deduplicate_batch,
        state=seen,
        max_records=BATCH_MAX,
        max_request_size=REJECTED_MAX_BYTES,
    )
    replies = Replies(
        settings.kafka_bootstrap, topics.ingest_replies, timeout_s=settings.feed_http_answer_s
    )
    app = create_faust_app(
        "ingest",
        settings,
        settings.ingest_web_port,
        readiness=replies.not_ready,
        stages=[validation, deduplication],
    )
    app.task(replies.run)

    @app.timer(interval=settings.rules_reload_interval_s)
    async def reload_sites() -> None:
        outcome = sites.reload_if_changed()
        if outcome is None:
            return
        status, problems = outcome
        metrics.CONFIG_RELOADS.labels(status).inc()
        if status == "applied":
            log.warning("%s reloaded", settings.sites_file)
        else:
            log.error(
                "changed sites file refused; the previous sites stay active:\n%s",
                "\n".join(problems),
            )

    health = broker_health(app)

    def unavailable(view: faust.web.View, why: str) -> Any:
        """503 with Retry-After: what a partner's client retries. Items may have been kept before
        the broker went away; sent again they come back `duplicate`, never counted twice."""
        return view.json(
            {
                "error": f"{why}; nothing is lost by sending the same reports again after "
                f"{RETRY_AFTER_S} s (re-sends are recognised)"
            },
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.page("/feeds/{feed}")
    class FeedUpload(faust.web.View):
        async def post(self, request, feed: str):
            try:
                partner = tokens.require(request.headers.get("Authorization"), "partner", "admin")
            except AuthError as exc:
                return self.json({"error": exc.message}, status=exc.status)
            if feed not in topics.feeds:
                return self.json(
                    {"error": f"unknown feed {feed!r}; expected one of {', '.join(topics.feeds)}"},
                    status=404,
                )
            body = await read_body_limited(request, settings.feed_http_max_bytes)
            if body is None:
                return self.json(
                    {"error": describe_limit(settings.feed_http_max_bytes)}, status=413
                )
            try:
                items = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                return self.json({"error": f"body is not JSON: {exc}"}, status=400)
            if not isinstance(items, list):
                return self.json({"error": "body must be a JSON array of reports"}, status=400)
            now = datetime.now(UTC)
            parsed = [_parse_item(feed, item, now) for item in items]
            refused = not_permitted(partner, parsed)
            if refused:
                return self.json({"error": refused}, status=403)
            if health.unreachable_since is not None:
                return unavailable(self, health.reason() or "the Kafka broker is unreachable")
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(
                        *(
                            _upload_item(feed, index, raw, outcome, partner.name)
                            for index, (raw, outcome) in enumerate(parsed)
                        )
                    ),
                    settings.feed_http_answer_s + 15,
                )
            except (KafkaError, OSError, TimeoutError) as exc:
                health.failed("POST /feeds", exc)
                return unavailable(self, f"the Kafka broker did not take the reports ({exc!r})")
            counts = {
                o: sum(1 for r in results if r["outcome"] == o)
                for o in (
                    "accepted",
                    "duplicate",
                    "correction",
                    "superseded",
                    "rejected",
                    "pending",
                )
            }
            return self.json({"results": results, **counts})

    def _parse_item(
        feed: str, item: Any, now: datetime
    ) -> tuple[bytes, Observation | FeedRejection]:
        raw = json.dumps(item, ensure_ascii=False).encode()
        try:
            return raw, parse_feed_message(feed, raw, sites.value, now, limits)
        except FeedRejection as error:
            return raw, error

    def not_permitted(
        partner: Principal, parsed: list[tuple[bytes, Observation | FeedRejection]]
    ) -> str | None:
        """Why a partner may not send these reports (none kept), or None: a partner publishes
        only for its own sources, and a declared source only about its own country."""
        if partner.role != "partner":
            return None
        # valid reports only: a malformed one is rejected item by item, as any other
        foreign = sorted(
            {
                outcome.source
                for _, outcome in parsed
                if not isinstance(outcome, FeedRejection) and outcome.source not in partner.sources
            }
        )
        if foreign:
            return (
                f"{partner.name} publishes for {', '.join(partner.sources)} only; these reports "
                f"are for {', '.join(foreign)} (nothing was kept: send its reports with its own "
                "token, or ask an admin to add the source to yours)"
            )
        for index, (_, outcome) in enumerate(parsed):
            if isinstance(outcome, FeedRejection):
                continue
            declared = sites.value.sources.get(outcome.source)
            if declared is not None and outcome.location.country != declared.country:
                return (
                    f"item {index}: source {outcome.source} reports for {declared.country}; this "
                    f"report is about {outcome.location.kind} {outcome.location.id} in "
                    f"{outcome.location.country} (nothing was kept)"
                )
        return None

    async def _upload_item(
        feed: str, index: int, raw: bytes, parsed: Observation | FeedRejection, partner: str
    ) -> dict:
        if isinstance(parsed, FeedRejection):
            error = parsed
            await deduplication.send(
                rejected_message(feed, raw, error, source_partner=f"{partner} item {index}")
            )
            return {
                "index": index,
                "outcome": "rejected",
                "reason": error.reason,
                "detail": error.detail,
            }
        observation = parsed
        request = Out(
            topics.ingest_validated,
            observation.report_id.encode(),
            observation.model_dump_json().encode(),
        )
        try:
            reply = await replies.ask(deduplication.send, request)
        except TimeoutError:
            return {
                "index": index,
                "event_id": observation.event_id,
                "outcome": "pending",
                "detail": f"queued for de-duplication; no answer within {replies.timeout_s:g} s",
            }
        return {"index": index, "event_id": observation.event_id, **reply}

    return app


def dedup_retention(settings: Settings) -> timedelta:
    """How long de-duplication remembers a report: EWS_DEDUP_RETENTION, or longer if the rules can
    still count it (their longest look-back plus EWS_ALLOWED_LATENESS), so that a correction
    arriving that late is still known as one and withdraws a moved report's old figure."""
    configured = as_timedelta(parse_duration(settings.dedup_retention))
    try:
        rules = RuleSet(load_model(settings.triggers_file, TriggersFile))
    # the triggers worker refuses a broken file too; say what ingest assumed
    except (ConfigError, ValueError) as error:
        log.warning("remembering reports for %s: %s", settings.dedup_retention, error)
        return configured
    reach = rules.reach + as_timedelta(parse_duration(settings.allowed_lateness))
    if reach <= configured:
        return configured
    log.info(
        "remembering reports for %d days, as long as the rules in %s can count them "
        "(EWS_DEDUP_RETENTION %s)",
        reach.days,
        settings.triggers_file,
        settings.dedup_retention,
    )
    return reach


def _feed_label(feed: str) -> str:
    return "border-crossings" if feed == "border_crossing" else "displacement"
