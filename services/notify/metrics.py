"""Prometheus metrics of the notify service."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "ews_notify_deliveries_total",
    "Delivery attempts by channel and outcome",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "ews_notify_delivery_seconds",
    "Duration of one delivery attempt",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DEAD = Counter("ews_notify_dead_total", "Deliveries given up after the last attempt", ["channel"])
RETRY_BACKLOG = Gauge(
    "ews_notify_retry_backlog",
    "Deliveries waiting for their next attempt in this worker's pending table (muted ones apart)",
)
SILENCED = Counter(
    "ews_notify_silenced_total", "Messages (per contact and channel) held back by a silence"
)
API_REQUESTS = Counter(
    "ews_notify_api_requests_total", "API requests by route and status", ["route", "status"]
)
CONFIG_RELOADS = Counter(
    "ews_notify_config_reloads_total",
    "Reloads of a changed notify configuration file (sharing) by outcome (applied, refused)",
    ["file", "outcome"],
)
