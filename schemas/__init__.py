"""Message and configuration models: the single source of truth for every topic and config file."""

from .alert import AlertEvent, Level, LEVELS, Scope, ScopeKind
from .config import (
    Contact,
    ContactsFile,
    Corridor,
    Area,
    Site,
    SitesFile,
    TriggerRule,
    TriggersFile,
    RuleOverride,
    WebhookChannel,
    EmailChannel,
)
from .delivery import DeliveryRecord
from .feeds import BorderCrossingReport, DisplacementReport, FEED_MODELS
from .observation import Location, Observation
from .rejection import RejectedMessage

__all__ = [
    "AlertEvent",
    "Level",
    "LEVELS",
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
