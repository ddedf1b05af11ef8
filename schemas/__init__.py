"""Message and configuration models: the single source of truth for every topic and config file."""

from .alert import LEVEL_RANK, LEVELS, AlertEvent, AlertSeries, Level, Scope, ScopeKind
from .config import (
    Area,
    Contact,
    ContactsFile,
    Corridor,
    EmailChannel,
    RuleOverride,
    Site,
    SitesFile,
    TriggerRule,
    TriggersFile,
    WebhookChannel,
)
from .delivery import DeliveryRecord
from .feeds import FEED_MODELS, BorderCrossingReport, DisplacementReport
from .observation import Location, Observation
from .rejection import RejectedMessage

__all__ = [
    "AlertEvent",
    "AlertSeries",
    "Level",
    "LEVELS",
    "LEVEL_RANK",
    "Scope",
    "ScopeKind",
    "Contact",
    "ContactsFile",
    "Corridor",
    "Area",
    "Site",
    "SitesFile",
    "TriggerRule",
    "TriggersFile",
    "RuleOverride",
    "WebhookChannel",
    "EmailChannel",
    "DeliveryRecord",
    "BorderCrossingReport",
    "DisplacementReport",
    "FEED_MODELS",
    "Location",
    "Observation",
    "RejectedMessage",
]
