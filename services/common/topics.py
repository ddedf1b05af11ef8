"""Every topic ews reads or writes, named in one place, with how it is created."""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000
REJECTED_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    cleanup_policy: str = "delete"
    retention_ms: int = 30 * DAY_MS
    partitions: int | None = None  # None: the deployment's topic_partitions
    max_message_bytes: int | None = None  # None: the broker's default

    def config(self, min_insync_replicas: int) -> dict[str, str]:
        cfg = {
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(min_insync_replicas),
        }
        if self.max_message_bytes is not None:
            cfg["max.message.bytes"] = str(self.max_message_bytes)
        if self.cleanup_policy == "delete":
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


class Topics:
    """Topic names under one namespace (`ews` in production; tests use their own)."""

    def __init__(self, namespace: str = "ews") -> None:
        ns = namespace
        self.namespace = ns
        self.feed_border_crossings = f"{ns}.feed.border-crossings"
        self.feed_displacement = f"{ns}.feed.displacement"
        self.ingest_rejected = f"{ns}.ingest.rejected"
        self.ingest_validated = (
            f"{ns}.ingest.validated"  # valid reports keyed by event_id, for de-duplication
        )
        self.ingest_replies = (
            f"{ns}.ingest.replies"  # de-duplication outcomes for POST /feeds/{feed}, by request
        )
        self.observations = f"{ns}.observations"
        self.triggers_scoped = f"{ns}.triggers.scoped"  # observations re-keyed by trigger scope
        self.alerts = f"{ns}.alerts"
        self.alert_series = f"{ns}.alerts.series"  # the values behind each alert, for the console
        self.contacts = f"{ns}.contacts"
        self.deliveries = f"{ns}.deliveries"
        self.notify_retry = f"{ns}.notify.retry"
        self.notify_dead = f"{ns}.notify.dead"
        self.notify_silences = f"{ns}.notify.silences"
        self.notify_acks = f"{ns}.notify.acks"
        self.audit = f"{ns}.audit"  # every API write: who changed what, when
        # State changelogs, named as Faust named its tables' ("{app id}-{table}-changelog"), so
        # state kept by earlier versions carries over; created here, with the same partitions as
        # their stage's input topic, so a worker never starts before its changelog exists.
        self.triggers_state_changelog = f"{ns}-triggers-scope-state-changelog"
        self.triggers_contributions_changelog = f"{ns}-triggers-scope-contributions-changelog"
        self.ingest_event_ids_changelog = f"{ns}-ingest-event-ids-changelog"
        self.notify_delivered_changelog = f"{ns}-notify-delivered-changelog"
        self.notify_pending_changelog = f"{ns}-notify-pending-changelog"

    @property
    def feeds(self) -> dict[str, str]:
        """Feed name (as in `POST /feeds/{feed}` and `Observation.feed`) → topic."""
        return {
            "border-crossings": self.feed_border_crossings,
            "displacement": self.feed_displacement,
        }

    def specs(self) -> list[TopicSpec]:
        year = 365 * DAY_MS
        return [
            TopicSpec(self.feed_border_crossings, retention_ms=year),
            TopicSpec(self.feed_displacement, retention_ms=year),
            # a rejection carries the original bytes, base64: room for whatever the feed topic let
            # in
            TopicSpec(
                self.ingest_rejected, retention_ms=90 * DAY_MS, max_message_bytes=REJECTED_MAX_BYTES
            ),
            TopicSpec(self.ingest_validated, retention_ms=7 * DAY_MS),
            TopicSpec(
                self.ingest_replies, retention_ms=3600 * 1000, partitions=1
            ),  # read by whoever asked, at once
            TopicSpec(self.observations, retention_ms=year),
            TopicSpec(self.triggers_scoped, retention_ms=7 * DAY_MS),
            TopicSpec(self.alerts, retention_ms=year),
            TopicSpec(self.alert_series, cleanup_policy="compact"),
            TopicSpec(self.contacts, cleanup_policy="compact"),
            TopicSpec(self.deliveries, retention_ms=year),
            TopicSpec(self.notify_retry, retention_ms=14 * DAY_MS),
            TopicSpec(self.notify_dead, retention_ms=year),
            TopicSpec(self.notify_silences, cleanup_policy="compact"),
            TopicSpec(self.notify_acks, cleanup_policy="compact"),
            TopicSpec(self.audit, retention_ms=year),
            TopicSpec(self.triggers_state_changelog, cleanup_policy="compact"),
            TopicSpec(self.triggers_contributions_changelog, cleanup_policy="compact"),
            TopicSpec(self.notify_delivered_changelog, cleanup_policy="compact"),
            TopicSpec(self.notify_pending_changelog, cleanup_policy="compact"),
            TopicSpec(self.ingest_event_ids_changelog, cleanup_policy="compact"),
        ]
