"""The verifier every reliability scenario uses: from the feed that was produced, the pure core
computes which (alert transition, contact) deliveries must arrive; what the receiver got is
compared with that by Idempotency-Key and by content (status, level, value). Nothing missing,
nothing extra, nothing said wrong, and no key delivered twice with different content (a re-send
of the same message under its key, after a worker was killed mid-delivery, is the receiver's to
drop; it is counted)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from schemas import AlertEvent, ContactsFile, SitesFile
from services.common.config_files import load_model
from services.common.geography import Geography
from services.ingest.validation import FeedRejection, parse_feed_message
from services.notify.pipeline import routed_history
from services.notify.sharing import Reader, load_policy
from services.triggers.backtest import run_backtest
from services.triggers.loading import load_engine

from .receiver import ReceivedAlert, content_of
from .stack import LOCAL_ID_SECRET

Content = tuple[str, str | None, float | None]  # what a message says: status, level, value


@dataclass
class Prediction:
    valid: int  # feed messages that pass validation
    alerts: list[AlertEvent]  # the transitions the rules produce over them
    deliveries: dict[str, Content]  # Idempotency-Key "alert_id:transition:contact" → content


def predict(
    messages: Iterable[tuple[str, bytes]],
    triggers_file: Path,
    sites_file: Path,
    contacts_file: Path,
    lateness: str = "P7D",
    sharing_file: Path | None = None,
    id_secret: str | None = None,
) -> Prediction:
    """What the workers must produce and deliver for these feed messages, computed with the pure
    core; each message as the sharing policy (default: sharing.yaml beside the sites file, if
    there is one) lets its recipient see it."""
    geography = Geography(load_model(sites_file, SitesFile))
    engine = load_engine(triggers_file, sites_file, lateness)
    contacts = load_model(contacts_file, ContactsFile).contacts
    now = datetime.now(UTC)
    observations = []
    for feed, value in messages:
        with contextlib.suppress(FeedRejection):
            observations.append(parse_feed_message(feed, value, geography, now))
    alerts = run_backtest(observations, engine, now)
    sharing_file = sharing_file or sites_file.parent / "sharing.yaml"
    policy = load_policy(sharing_file, geography, id_secret)
    keys: dict[str, Content] = {}
    for alert, routed in routed_history(alerts, contacts, geography):
        for contact in routed:
            shared = policy.view(alert, Reader.of_contact(contact))
            if shared is not None:
                key = shared.shown_key(f"{alert.alert_id}:{alert.transition}:{contact.id}")
                keys[key] = (str(alert.status), alert.level, shared.value)
    return Prediction(len(observations), alerts, keys)


def expected_deliveries(
    messages: Iterable[tuple[str, bytes]],
    config_dir: Path,
    lateness: str = "P7D",
    id_secret: str = LOCAL_ID_SECRET,
) -> dict[str, Content]:
    """Idempotency keys the workers must deliver, with what each says, for a config dir holding
    triggers, sites and contacts."""
    return predict(
        messages,
        config_dir / "triggers.yaml",
        config_dir / "sites.yaml",
        config_dir / "contacts.yaml",
        lateness,
        id_secret=id_secret,
    ).deliveries


@dataclass
class Verdict:
    expected: int
    delivered: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    repeats: int = 0  # the same message delivered again under its key (the receiver dropped it)
    wrong: list[str] = field(default_factory=list)  # delivered saying something else
    conflicts: int = 0  # a key delivered again saying something else: a doubled message

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra and not self.wrong and not self.conflicts

    def __str__(self) -> str:
        return (
            f"{self.expected} expected, {self.delivered} delivered, {len(self.missing)} missing "
            f"{self.missing[:5]}, {len(self.extra)} extra {self.extra[:5]}, {len(self.wrong)} "
            f"wrong {self.wrong[:5]}, {self.conflicts} doubled with other content, "
            f"{self.repeats} repeats"
        )


def verify(
    expected: dict[str, Content],
    received: Mapping[str, ReceivedAlert],
    repeats: int = 0,
    conflicts: int = 0,
) -> Verdict:
    got = set(received)
    wrong = sorted(
        key for key in got & set(expected) if content_of(received[key].payload) != expected[key]
    )
    return Verdict(
        len(expected),
        len(got),
        sorted(set(expected) - got),
        sorted(got - set(expected)),
        repeats,
        wrong,
        conflicts,
    )
