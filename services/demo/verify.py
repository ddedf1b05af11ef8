"""The verifier every reliability scenario uses: from the feed that was produced, the pure core
computes which (alert transition, contact) deliveries must arrive; what the receiver got is
compared with that by Idempotency-Key. Nothing missing, nothing extra."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from schemas import AlertEvent, ContactsFile, SitesFile
from services.common.config_files import load_model
from services.common.geography import Geography
from services.ingest.validation import FeedRejection, parse_feed_message
from services.notify.routing import route_to_contacts
from services.triggers.backtest import run_backtest
from services.triggers.loading import load_engine


@dataclass
class Prediction:
    valid: int  # feed messages that pass validation
    alerts: list[AlertEvent]  # the transitions the rules produce over them
    deliveries: set[str]  # Idempotency-Keys: "alert_id:transition:contact"


def predict(
    messages: Iterable[tuple[str, bytes]],
    triggers_file: Path,
    sites_file: Path,
    contacts_file: Path,
    lateness: str = "P7D",
) -> Prediction:
    """What the workers must produce and deliver for these feed messages, computed with the pure
    core."""
    geography = Geography(load_model(sites_file, SitesFile))
    engine = load_engine(triggers_file, sites_file, lateness)
    contacts = load_model(contacts_file, ContactsFile).contacts
    now = datetime.now(UTC)
    observations = []
    for feed, value in messages:
        with contextlib.suppress(FeedRejection):
            observations.append(parse_feed_message(feed, value, geography, now))
    alerts = run_backtest(observations, engine, now)
    keys = {
        f"{a.alert_id}:{a.transition}:{c.id}"
        for a in alerts
        for c in route_to_contacts(a, contacts, geography)
    }
    return Prediction(len(observations), alerts, keys)


def expected_deliveries(
    messages: Iterable[tuple[str, bytes]], config_dir: Path, lateness: str = "P7D"
) -> set[str]:
    """Idempotency keys the workers must deliver, for a config dir holding triggers, sites and
    contacts."""
    return predict(
        messages,
        config_dir / "triggers.yaml",
        config_dir / "sites.yaml",
        config_dir / "contacts.yaml",
        lateness,
    ).deliveries


@dataclass
class Verdict:
    expected: int
    delivered: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    repeats: int = 0  # the same key delivered again (the receiver acknowledged and dropped it)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra

    def __str__(self) -> str:
        return (
            f"{self.expected} expected, {self.delivered} delivered, {len(self.missing)} missing "
            f"{self.missing[:5]}, {len(self.extra)} extra {self.extra[:5]}, {self.repeats} repeats"
        )


def verify(expected: set[str], received: Iterable[str], repeats: int = 0) -> Verdict:
    got = set(received)
    return Verdict(len(expected), len(got), sorted(expected - got), sorted(got - expected), repeats)
