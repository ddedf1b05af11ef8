"""Prometheus metrics of the ingest service."""

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "ews_ingest_events_total", "Feed messages by feed and outcome", ["feed", "outcome"]
)
REJECTED = Counter(
    "ews_ingest_rejected_total", "Rejected feed messages by feed and reason", ["feed", "reason"]
)
LAST_EVENT = Gauge(
    "ews_feed_last_event_timestamp_seconds",
    "observed_at of the newest accepted report, by source",
    ["source"],
)
CONFIG_RELOADS = Counter(
    "ews_ingest_config_reloads_total",
    "Reloads of the sites file ingest validates against, by outcome (applied, refused)",
    ["outcome"],
)
EVENT_IDS_HELD = Gauge(
    "ews_ingest_event_ids_held",
    "event_ids this worker remembers for de-duplication (kept for EWS_DEDUP_RETENTION)",
)
