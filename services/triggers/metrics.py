"""Prometheus metrics of the triggers service."""

from prometheus_client import Counter, Gauge, Histogram

OBSERVATIONS = Counter(
    "ews_triggers_observations_total", "Observations applied to a scope, by outcome", ["outcome"]
)
TOO_LATE = Counter(
    "ews_triggers_too_late_total",
    "Reports kept out of a scope's windows because they came more than EWS_ALLOWED_LATENESS behind "
    "what the scope had already judged, by source and scope",
    ["source", "scope"],
)
UNCOUNTED = Counter(
    "ews_triggers_uncounted_total",
    "Reports a rule never counts because their period is longer than its window (a 24-hour rule "
    "over monthly reports), by rule and period",
    ["rule", "period"],
)
ALERTS = Counter("ews_alerts_total", "Alert transitions published", ["rule", "level", "status"])
ACTIVE = Gauge(
    "ews_alerts_active",
    "Alerts firing in the scopes this worker owns (country empty for corridor and region)",
    ["rule", "level", "country"],
)
EVENT_TO_ALERT = Histogram(
    "ews_event_to_alert_seconds",
    "From an observation ingested to the alert it caused being published",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RULES_RELOADS = Counter(
    "ews_rules_reloads_total", "Rule file reloads by outcome (applied, refused)", ["outcome"]
)
RULES_INFO = Gauge(
    "ews_rules_info", "The active rule set (value 1), labelled by its version", ["version"]
)
SOURCE_PERIOD_END = Gauge(
    "ews_feed_period_end_timestamp_seconds",
    "End of the newest period each source has reported, by feed (from the triggers worker's "
    "state: kept across restarts; sources watched by a silence rule)",
    ["source", "feed"],
)
SOURCE_DUE = Gauge(
    "ews_feed_next_due_timestamp_seconds",
    "When each source's next report is due, by feed: its reporting cycle (declared in the sites "
    "file, else its latest report's period) after its newest period, and never sooner than a "
    "cycle after its last report arrived; a declared source that never reported, a cycle after "
    "it was first watched",
    ["source", "feed"],
)
SCOPES_HELD = Gauge(
    "ews_triggers_scopes_held", "Scopes whose windows and alerts this worker holds in memory"
)
CONTRIBUTIONS_HELD = Gauge(
    "ews_triggers_contributions_held",
    "Reports held in this worker's windows (bounded by the rules' windows, not by history)",
)
