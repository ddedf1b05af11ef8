"""The sharing policy: the one function that decides what of an alert a given reader may see.

Every path that shows an alert to someone goes through `SharingPolicy.view`: webhook bodies and
their headers, CAP, e-mail, `GET /alerts` and the alert history, the delivery audit. Pure: the
same alert, reader and policy always give the same view.

What `config/sharing.yaml` says a country shares with readers outside it:
- `full`: the figures as measured; counts below the country's small-count floor read "<k".
- `aggregates`: level, trigger and country. An alert about a site, an area or a source reaches an
  outside reader as an alert about the country, with no figure (the site's figure is never shown
  under a national label), no evidence ids, no details, and an identifier that names no place
  (a keyed digest: stable, so repeats and all-clears are recognised, and not reversible from the
  list of site ids). A country-level alert keeps its (floored) figure and loses its evidence.
- `nothing`: not shown outside the country. Corridor and region alerts draw on every country they
  cover, so they are withheld from readers outside a `nothing` country they include (an operator
  who wants them shared defines the corridor without that country).

Corridor and region alerts are floored with the highest floor of the countries they cover, and
keep only the evidence of sources declared in a country that shares in full (or the reader's own).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from schemas import AlertEvent, AlertSeries, Contact, Scope
from schemas.config import SharingFile, SharingRule
from services.common.auth import Principal
from services.common.config_files import ConfigError, load_model
from services.common.geography import Geography

VALUE_COUNTS = ("threshold", "new_value")  # kinds whose value counts people
DETAIL_COUNTS = ("rate_of_change", "ratio", "new_value")  # kinds whose details count people
SINGLE_COUNTRY = ("site", "area", "country", "source")


@dataclass(frozen=True)
class Reader:
    """Who reads: a recipient contact or a principal of the API, by the country it belongs to
    (None: an international office or a regional principal, outside every country). An admin runs
    the deployment and sees everything."""

    country: str | None
    sees_all: bool = False

    @classmethod
    def of_contact(cls, contact: Contact) -> Reader:
        return cls(contact.country)

    @classmethod
    def of_principal(cls, principal: Principal) -> Reader:
        return cls(principal.country, principal.role == "admin")


@dataclass(frozen=True)
class SharedAlert:
    """The alert as one reader may see it. `alert` carries the identifier, scope, evidence and
    details shown; `value` and `threshold` are None when withheld or below the floor."""

    alert: AlertEvent
    original_id: str
    value: float | None
    threshold: float | None
    value_text: str  # the value as shown: "3000", "<10", "" when withheld
    threshold_text: str
    floored: bool = False  # the value is below the small-count floor and reads "<k"
    aggregated: bool = False  # site, area or source withheld: shown as the country
    floor: int = 0
    below_floor: tuple[str, ...] = ()  # details left out because they count fewer than the floor
    withheld_evidence: int = 0
    withheld: tuple[str, ...] = field(default=())  # what was left out, for the audit

    def shown_key(self, key: str) -> str:
        """A delivery key (`alert_id:transition:contact…`) with the identifier this reader sees."""
        if self.alert.alert_id == self.original_id or not key.startswith(self.original_id):
            return key
        return self.alert.alert_id + key[len(self.original_id) :]


def _text(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.4g}"


def withheld_id(key: bytes, alert: AlertEvent) -> str:
    """The identifier an outside reader sees for an alert about a withheld place."""
    digest = hmac.new(key, alert.alert_id.encode(), hashlib.sha256).hexdigest()[:16]
    return f"{alert.rule_id}/country/{alert.scope.country}/w{digest}"


class SharingPolicy:
    """`config/sharing.yaml` with the geography it needs (which countries a corridor covers, where
    a source reports from) and the key that makes withheld identifiers irreversible."""

    def __init__(self, policy: SharingFile, geography: Geography, key: bytes) -> None:
        self.file = policy
        self.geography = geography
        self.key = key
        countries = {s.country for s in geography.sites.values()} | set(policy.countries)
        self.all_countries = sorted(countries)

    def rule(self, country: str) -> SharingRule:
        return self.file.countries.get(country, self.file.default)

    def countries_of(self, scope: Scope) -> list[str]:
        if scope.kind in SINGLE_COUNTRY:
            return [scope.country] if scope.country else []
        if scope.kind == "region":
            return self.all_countries
        return self.geography.countries_of(scope)

    def source_country(self, evidence_id: str) -> str | None:
        source = self.geography.sources.get(evidence_id.split("/", 1)[0])
        return source.country if source is not None else None

    def withholds(self, country: str | None) -> bool:
        """Whether readers outside this country see less than everything of its alerts."""
        return country is not None and self.rule(country).outside != "full"

    def view(self, alert: AlertEvent, reader: Reader) -> SharedAlert | None:
        """What of `alert` this reader may see, or None when nothing."""
        if reader.sees_all:
            return self._as_is(alert)
        members = self.countries_of(alert.scope)
        if members:
            rules = {c: self.rule(c) for c in members if c != reader.country}
        else:  # a corridor ews does not know: whose data it holds is unknown, the default applies
            rules = {"": self.file.default}
        if not rules:
            return self._as_is(alert)
        if any(r.outside == "nothing" for r in rules.values()):
            return None
        floor = max(r.small_count_floor for r in rules.values())
        if alert.scope.kind in SINGLE_COUNTRY:
            rule = next(iter(rules.values()))
            if rule.outside == "aggregates" and alert.scope.kind != "country":
                return self._aggregated(alert)
            keep_evidence = rule.outside == "full"
            return self._floored(alert, floor, lambda _eid: keep_evidence)

        def evidence_shared(evidence_id: str) -> bool:
            country = self.source_country(evidence_id)
            if country is None:
                return False  # where it comes from is unknown: not shown outside
            return country == reader.country or self.rule(country).outside == "full"

        return self._floored(alert, floor, evidence_shared)

    def _as_is(self, alert: AlertEvent) -> SharedAlert:
        return SharedAlert(
            alert,
            alert.alert_id,
            alert.value,
            alert.threshold,
            _text(alert.value),
            _text(alert.threshold),
        )

    def _aggregated(self, alert: AlertEvent) -> SharedAlert:
        country = alert.scope.country
        assert country is not None
        shown = alert.model_copy(
            update={
                "alert_id": withheld_id(self.key, alert),
                "scope": Scope(kind="country", id=country, country=country),
                "evidence": [],
                "details": {},
                "value": 0.0,
                "threshold": 0.0,
            }
        )
        return SharedAlert(
            shown,
            alert.alert_id,
            None,
            None,
            "",
            "",
            aggregated=True,
            withheld_evidence=len(alert.evidence),
            withheld=("place", "figures", "evidence", "details"),
        )

    def _floored(self, alert: AlertEvent, floor: int, keep) -> SharedAlert:
        is_count = alert.kind in VALUE_COUNTS
        floored = is_count and floor > 0 and 0 < alert.value < floor
        details, below = dict(alert.details), []
        if alert.kind in DETAIL_COUNTS and floor > 0:
            for name, count in alert.details.items():
                if 0 < count < floor:
                    below.append(name)
                    del details[name]
        evidence = [e for e in alert.evidence if keep(e)]
        withheld = tuple(
            what
            for what, left_out in (
                ("value below floor", floored),
                ("details below floor", below),
                ("evidence", len(evidence) < len(alert.evidence)),
            )
            if left_out
        )
        shown = alert.model_copy(
            update={
                "evidence": evidence,
                "details": details,
                **({"value": 0.0} if floored else {}),
            }
        )
        return SharedAlert(
            shown,
            alert.alert_id,
            None if floored else alert.value,
            alert.threshold,
            f"<{floor}" if floored else _text(alert.value),
            _text(alert.threshold),
            floored=floored,
            floor=floor,
            below_floor=tuple(below),
            withheld_evidence=len(alert.evidence) - len(evidence),
            withheld=withheld,
        )


def shared_series(
    seen: SharedAlert | None, series: AlertSeries | None
) -> list[tuple[datetime, float | None]] | None:
    """The values behind an alert as the reader who sees it as `seen` may see them: all of them
    where its figures are shared with that reader; none where the policy withholds the place or
    any figure (an aggregated site, a floored value); counts below the reader's floor left out
    (a gap in the chart)."""
    if seen is None or series is None or seen.aggregated or seen.floored or seen.value is None:
        return None
    floor = seen.floor if series.kind in VALUE_COUNTS else 0
    return [(t, None if v is not None and 0 < v < floor else v) for t, v in series.points]


def load_policy(file: Path, geography: Geography, secret: str | None) -> SharingPolicy:
    """The sharing file (none: every country shares in full), keyed by `secret` (EWS_ID_SECRET or
    EWS_LINK_SECRET); a policy that withholds places needs it, or the identifiers outside readers
    see could be traced back to sites by hashing the site list."""
    policy = load_model(file, SharingFile) if file.exists() else SharingFile()
    withholding = [c for c, r in sorted(policy.countries.items()) if r.outside == "aggregates"]
    if policy.default.outside == "aggregates":
        withholding.append("the default")
    if secret is None and withholding:
        raise ConfigError(
            [
                f"{file}: {', '.join(withholding)} share(s) aggregates only, which needs "
                "EWS_ID_SECRET (or EWS_LINK_SECRET): 32 or more random characters, the same on "
                "every notify worker (openssl rand -hex 32)"
            ]
        )
    key = hashlib.sha256(b"ews-withheld-ids:" + (secret or "").encode()).digest()
    return SharingPolicy(policy, geography, key)
