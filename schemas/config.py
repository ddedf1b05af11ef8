"""Configuration files operators edit: config/triggers.yaml, config/sites.yaml, contacts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .alert import LEVELS, Level
from .observation import FeedName
from .types import CountryCode, Duration, Identifier, ReportingPeriod, SourceId, SubdivisionCode

Language = Literal["en", "es", "fr", "pt"]
FEED_METRICS: dict[str, tuple[str, ...]] = {
    "border_crossing": ("count", "children", "unaccompanied_children"),
    "displacement": ("newly_displaced", "shelter_occupancy", "shelter_capacity"),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# A problem a file's contents have beyond their fields' own checks (an id repeated, a name that
# resolves to nothing): where in the file (the keys and indexes leading to it) and what is wrong.
Problem = tuple[tuple[Any, ...], str]
_DEFERRED: ContextVar[bool] = ContextVar("cross_checks_deferred", default=False)


@contextmanager
def cross_checks_deferred() -> Iterator[None]:
    """Validate files without their cross-checks, so that the loader reports every problem at its
    line (services.common.config_files.load_model) instead of the first at the file's top."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def _enforce(problems: list[Problem]) -> None:
    if problems and not _DEFERRED.get():
        raise ValueError("; ".join(message for _, message in problems))


def _repeated(
    values: list[str], where: tuple[Any, ...], what: str, field: str = "id"
) -> list[Problem]:
    counts = Counter(values)
    return [
        ((*where, i, field), f"{what} {field} {value!r} is used more than once")
        for i, value in enumerate(values)
        if counts[value] > 1 and values.index(value) != i
    ]


# --- geography -----------------------------------------------------------------------


class Site(Strict):
    id: Identifier
    name: str
    country: CountryCode
    kind: Literal["crossing", "reception", "shelter", "entry-point"] = "crossing"
    area: SubdivisionCode | None = Field(None, description="ISO 3166-2 area the site lies in")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class Area(Strict):
    id: SubdivisionCode
    name: str
    country: CountryCode


class Corridor(Strict):
    id: Identifier
    name: str
    sites: list[Identifier] = Field(min_length=1)


class Source(Strict):
    """A data partner's feed declared with its reporting cycle: watched for silence from the start,
    and silent when its next report is overdue by its own cycle."""

    id: SourceId
    name: str
    country: CountryCode
    feeds: list[FeedName] = Field(min_length=1)
    period: ReportingPeriod = Field(description="how often it reports: daily, weekly, monthly, P1M")
    delay: Duration | None = Field(
        None, description="how long after its period ends a report usually arrives (e.g. 10d)"
    )


class SitesFile(Strict):
    version: Literal[1] = 1
    region: Identifier = "americas"
    sites: list[Site] = Field(default_factory=list)
    areas: list[Area] = Field(default_factory=list)
    corridors: list[Corridor] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> SitesFile:
        _enforce(self.problems())
        return self

    def problems(self) -> list[Problem]:
        """Ids unique; corridors name known sites; a site's area is a known area of its
        country."""
        found = _repeated([s.id for s in self.sites], ("sites",), "site")
        found += _repeated([a.id for a in self.areas], ("areas",), "area")
        found += _repeated([c.id for c in self.corridors], ("corridors",), "corridor")
        found += _repeated([s.id for s in self.sources], ("sources",), "source")
        countries = self.countries
        for i, declared in enumerate(self.sources):
            if declared.country not in countries:
                found.append(
                    (
                        ("sources", i, "country"),
                        f"source {declared.id}: {declared.country} has no sites or areas here: "
                        "is the country code right?",
                    )
                )
        known = {s.id for s in self.sites}
        for i, corridor in enumerate(self.corridors):
            for j, site in enumerate(corridor.sites):
                if site not in known:
                    found.append(
                        (("corridors", i, "sites", j), f"corridor {corridor.id}: no site {site!r}")
                    )
        areas = {a.id: a for a in self.areas}
        for i, place in enumerate(self.sites):
            if place.area is None:
                continue
            area = areas.get(place.area)
            if area is None:
                found.append(
                    (("sites", i, "area"), f"site {place.id}: {place.area} is not among the areas")
                )
            elif area.country != place.country:
                found.append(
                    (
                        ("sites", i, "area"),
                        f"site {place.id} is in {place.country} but its area {place.area} is in "
                        f"{area.country}",
                    )
                )
        return found

    @property
    def countries(self) -> set[str]:
        """The countries the file has sites or areas in."""
        return {s.country for s in self.sites} | {a.country for a in self.areas}


# --- triggers ------------------------------------------------------------------------


class Levels(Strict):
    watch: float | None = None
    warning: float | None = None
    emergency: float | None = None

    @model_validator(mode="after")
    def _ascending(self) -> Levels:
        given = [(name, getattr(self, name)) for name in LEVELS if getattr(self, name) is not None]
        if not given:
            raise ValueError("give at least one of watch, warning, emergency")
        for (low, a), (high, b) in pairwise(given):
            if not a < b:
                raise ValueError(f"levels must rise: {low} ({a}) must be below {high} ({b})")
        return self

    def items(self) -> list[tuple[Level, float]]:
        return [(name, getattr(self, name)) for name in LEVELS if getattr(self, name) is not None]


class Texts(Strict):
    en: str
    es: str
    fr: str
    pt: str


ScopeName = Literal["site", "area", "country", "corridor", "region", "source"]
FeedKind = FeedName  # the feeds a rule can read


class RuleBase(Strict):
    """What every trigger has: an id, a scope, levels, `for`, hysteresis, texts in
    four languages."""

    id: Identifier
    scope: ScopeName
    levels: Levels
    for_: Duration | None = Field(
        None, alias="for", description="condition must hold this long before firing"
    )
    clear: float | None = Field(
        None, description="resolve below this value (default: the lowest level)"
    )
    clear_for: Duration | None = Field(
        None, description="value must stay below clear this long to resolve"
    )
    title: Texts
    description: Texts | None = None
    rationale: str | None = None

    @model_validator(mode="after")
    def _clear_below_lowest(self) -> RuleBase:
        lowest = self.levels.items()[0][1]
        if self.clear is not None and self.clear > lowest:
            raise ValueError(f"clear ({self.clear}) must not be above the lowest level ({lowest})")
        return self

    @property
    def clear_level(self) -> float:
        return self.clear if self.clear is not None else self.levels.items()[0][1]


def _check_metric(feed: str, metric: str, field: str = "metric") -> None:
    metrics = FEED_METRICS[feed]
    if metric not in metrics:
        raise ValueError(
            f"{field} {metric!r} is not in the {feed} feed; expected one of {', '.join(metrics)}"
        )


class MetricRule(RuleBase):
    """A trigger over a metric of one feed (and, for ratios, a denominator from the same feed)."""

    feed: FeedKind
    metric: str

    @model_validator(mode="after")
    def _metrics_in_feed(self) -> MetricRule:
        _check_metric(self.feed, self.metric)
        denominator = getattr(self, "denominator", None)
        if denominator is not None:
            _check_metric(self.feed, denominator, "denominator")
        return self


class ThresholdRule(MetricRule):
    """An aggregate of a metric over a window reaches a level."""

    kind: Literal["threshold"]
    window: Duration
    aggregate: Literal["sum", "max", "mean", "last"] = "sum"


class RateOfChangeRule(MetricRule):
    """The current window against the rate of the baseline window before it (a spike)."""

    kind: Literal["rate_of_change"]
    window: Duration
    baseline: Duration = Field(description="the period before the window that sets the normal rate")
    min_value: float = Field(
        0, ge=0, description="the current window must reach this before any level counts"
    )


class RatioRule(MetricRule):
    """One metric over another (shelter occupancy over capacity), each aggregated
    over the window."""

    kind: Literal["ratio"]
    denominator: str
    window: Duration
    aggregate: Literal["sum", "max", "mean", "last"] = "last"


class NewValueRule(RuleBase):
    """A category (an origin nationality) appears with at least a level's people, absent for the
    lookback."""

    kind: Literal["new_value"]
    feed: FeedKind
    category: Literal["nationality", "cause"]
    window: Duration
    lookback: Duration = Field(
        description="the category must have been absent this long before the window"
    )


class SilenceLevels(Strict):
    watch: Duration | None = None
    warning: Duration | None = None
    emergency: Duration | None = None


class SilenceRule(RuleBase):
    """No data from a source (or site, area, ...) for longer than a level's duration past its next
    expected report."""

    kind: Literal["silence"]
    feed: FeedKind
    levels: SilenceLevels  # type: ignore[assignment]

    @model_validator(mode="after")
    def _some_level(self) -> SilenceRule:
        if not any((self.levels.watch, self.levels.warning, self.levels.emergency)):
            raise ValueError(
                "give at least one of watch, warning, emergency as a duration, e.g. 48h"
            )
        return self

    @model_validator(mode="after")
    def _clear_below_lowest(
        self,
    ) -> SilenceRule:  # levels are durations; it clears when data arrives
        return self


class CompositeRule(RuleBase):
    """All (or any) of other triggers firing at this scope or inside it (a site inside an area)."""

    kind: Literal["composite"]
    mode: Literal["all", "any"] = "all"
    members: list[Identifier] = Field(min_length=2)
    levels: Levels = Field(
        default_factory=lambda: Levels(watch=1, warning=2, emergency=3),
        description="composite level = the members' combined level (1 watch, 2 warning, 3 "
        "emergency)",
    )


TriggerRule = Annotated[
    ThresholdRule | RateOfChangeRule | RatioRule | NewValueRule | SilenceRule | CompositeRule,
    Field(discriminator="kind"),
]


class RuleOverride(Strict):
    """What a country may change for its own scopes."""

    levels: Levels | None = None
    window: Duration | None = None
    for_: Duration | None = Field(None, alias="for")
    clear: float | None = None
    clear_for: Duration | None = None


_TRIGGER_RULE: TypeAdapter[TriggerRule] = TypeAdapter(TriggerRule)


class TriggersFile(Strict):
    version: Literal[1] = 1
    triggers: list[TriggerRule]
    overrides: dict[CountryCode, dict[Identifier, RuleOverride]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ids_resolve(self) -> TriggersFile:
        _enforce(self.problems())
        return self

    def problems(self) -> list[Problem]:
        """Ids unique; overrides name known triggers and give a valid trigger once merged (as the
        engine merges them); composites name other, inner triggers; only silence watches
        sources."""
        found = _repeated([t.id for t in self.triggers], ("triggers",), "trigger")
        by_id = {t.id: t for t in self.triggers}
        for country, rules in self.overrides.items():
            for rule_id, override in rules.items():
                where = ("overrides", country, rule_id)
                base = by_id.get(rule_id)
                if base is None:
                    found.append((where, f"{country} overrides {rule_id!r}, which is no trigger"))
                elif isinstance(base, (SilenceRule, CompositeRule)) and override.levels:
                    found.append(
                        (
                            (*where, "levels"),
                            f"{rule_id} is a {base.kind} trigger; its levels cannot be overridden",
                        )
                    )
                else:
                    found.extend(_merge_problems(country, base, override, where))
        order = ["site", "area", "country", "corridor", "region"]
        for i, rule in enumerate(self.triggers):
            if isinstance(rule, CompositeRule):
                for j, member in enumerate(rule.members):
                    at: tuple[Any, ...] = ("triggers", i, "members", j)
                    target = by_id.get(member)
                    if target is None:
                        found.append((at, f"composite {rule.id}: no trigger {member!r}"))
                    elif isinstance(target, CompositeRule):
                        found.append(
                            (
                                at,
                                f"composite {rule.id} names composite {member}; members must be "
                                "other kinds",
                            )
                        )
                    elif (
                        target.scope == "source"
                        or rule.scope == "source"
                        or (order.index(target.scope) > order.index(rule.scope))
                    ):
                        found.append(
                            (
                                at,
                                f"composite {rule.id} at {rule.scope} scope cannot contain "
                                f"{member} at {target.scope} scope; members must be at the same "
                                "or an inner scope",
                            )
                        )
            elif rule.scope == "source" and not isinstance(rule, SilenceRule):
                found.append(
                    (("triggers", i, "scope"), f"{rule.id}: only silence triggers watch a source")
                )
        return found

    def merged(self, country: str, rule_id: str) -> TriggerRule:
        """A country's version of a trigger: the common one with its override applied."""
        base = next(r for r in self.triggers if r.id == rule_id)
        return merge_override(base, self.overrides[country][rule_id])


def merge_override(base: TriggerRule, override: RuleOverride) -> TriggerRule:
    merged = base.model_dump(by_alias=True)
    merged.update(override.model_dump(by_alias=True, exclude_none=True))
    return _TRIGGER_RULE.validate_python(merged)


def _merge_problems(
    country: str, base: TriggerRule, override: RuleOverride, where: tuple[Any, ...]
) -> list[Problem]:
    try:
        merge_override(base, override)
    except ValidationError as error:
        given = override.model_dump(by_alias=True, exclude_none=True)
        found: list[Problem] = []
        for err in error.errors():
            fields = [part for part in err["loc"] if part in given]
            message = str(err["msg"]).removeprefix("Value error, ")
            inherited = [f for f in ("clear", "clear_for", "for", "window") if f not in given]
            if "clear" in message and "clear" in inherited:
                message += (
                    f" (clear {base.clear:g} is the common trigger's; give {country} its own "
                    "clear in the override)"
                )
            found.append(((*where, *fields[:1]), f"{country}'s {base.id}: {message}"))
        return found
    return []


# --- contacts ------------------------------------------------------------------------


class WebhookChannel(Strict):
    type: Literal["webhook"] = "webhook"
    url: HttpUrl
    secret: str = Field(
        min_length=16, description="shared secret for X-EWS-Signature; at least 16 characters"
    )

    def __repr__(self) -> str:  # never print the secret
        return f"WebhookChannel(url={str(self.url)!r})"


class EmailChannel(Strict):
    type: Literal["email"] = "email"
    address: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class Contact(Strict):
    id: Identifier
    name: str = Field(min_length=1)
    organisation: str = Field(min_length=1)
    country: CountryCode | None = Field(
        None,
        description="the recipient's own country (None: an international office); "
        "the sharing policy applies to alerts from other countries",
    )
    countries: list[CountryCode] = Field(default_factory=list, description="empty = every country")
    corridors: list[Identifier] = Field(default_factory=list)
    min_level: Level = "watch"
    trigger_ids: list[Identifier] = Field(default_factory=list, description="empty = every trigger")
    language: Language = "en"
    format: Literal["json", "cap"] = "json"
    channels: list[Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]] = Field(
        min_length=1
    )
    escalation_contacts: list[Identifier] = Field(default_factory=list)
    group_by: list[Literal["country", "corridor", "rule"]] = Field(
        default_factory=list,
        description="send the transitions of one group (same country, corridor or rule) that come "
        "within group_wait as one message; empty: each at once",
    )
    group_wait: Duration = Field(
        "PT1M", description="how long a group collects transitions before it is sent"
    )

    @field_validator("countries")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class SharingRule(Strict):
    """What recipients outside a source country receive of its alerts."""

    outside: Literal["full", "aggregates", "nothing"] = "full"
    small_count_floor: int = Field(
        0, ge=0, description="counts below this read '<k' for recipients outside"
    )


class SharingFile(Strict):
    """config/sharing.yaml: each source country's decision, in accordance with its legislation."""

    version: Literal[1] = 1
    default: SharingRule = Field(default_factory=SharingRule)
    countries: dict[CountryCode, SharingRule] = Field(default_factory=dict)


class ContactsFile(Strict):
    version: Literal[1] = 1
    contacts: list[Contact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_resolve(self) -> ContactsFile:
        _enforce(self.problems())
        return self

    def problems(self) -> list[Problem]:
        """Ids unique; escalation contacts are other contacts of the file."""
        found = _repeated([c.id for c in self.contacts], ("contacts",), "contact")
        known = {c.id for c in self.contacts}
        for i, contact in enumerate(self.contacts):
            for j, other in enumerate(contact.escalation_contacts):
                where = ("contacts", i, "escalation_contacts", j)
                if other == contact.id:
                    found.append((where, f"contact {contact.id} escalates to itself"))
                elif other not in known:
                    found.append((where, f"contact {contact.id} escalates to unknown {other!r}"))
        return found


# --- API tokens ----------------------------------------------------------------------


class TokenEntry(Strict):
    """One bearer token: who holds it, its role, its country (none: regional) and, for a data
    partner, the sources it publishes for. The file holds `token_sha256` (hex of the token's
    SHA-256; `ews tokens new` makes one), never the token."""

    name: Identifier = Field(
        description="who holds it; partner tokens name the data partner, e.g. PA-SNM"
    )
    role: Literal["admin", "operator", "coordinator", "partner"] = Field(
        description="admin: everything, every country; operator: contacts and silences of its "
        "country (or all, if regional); coordinator: reads alerts and acknowledges for its "
        "country's contacts; partner: publishes reports for its sources, reads nothing"
    )
    country: CountryCode | None = Field(
        None, description="the country it acts for; none for a regional token (admins are)"
    )
    sources: list[SourceId] = Field(
        default_factory=list,
        description="a partner's sources (the `source` of the reports it may publish); default: "
        "the source named like the partner",
    )
    token: str | None = Field(None, min_length=24, repr=False)
    token_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", repr=False)

    @model_validator(mode="after")
    def _one_form(self) -> TokenEntry:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token or token_sha256")
        if self.role == "admin" and self.country is not None:
            raise ValueError("an admin is regional: remove country, or make it an operator")
        if self.sources and self.role != "partner":
            raise ValueError("only partner tokens have sources")
        return self

    @property
    def publishes_for(self) -> tuple[str, ...]:
        return tuple(self.sources) if self.sources else (self.name,)


class TokensFile(Strict):
    version: Literal[1] = 1
    tokens: list[TokenEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _hashed_and_unique(self) -> TokensFile:
        for index, entry in enumerate(self.tokens):
            if entry.token is not None:
                raise ValueError(
                    f"tokens.{index} ({entry.name}): the file keeps no token, only its digest: "
                    "replace token with token_sha256 (ews tokens hash prints it)"
                )
        digests = [e.token_sha256 for e in self.tokens]
        if len(set(digests)) != len(digests):
            raise ValueError("two entries have the same token_sha256: give each holder its own")
        return self


# --- console accounts ----------------------------------------------------------------


class AccountEntry(Strict):
    """One person who signs in to the console: a role and a country as for API tokens, the
    language the console speaks to them, and the contacts they acknowledge for. The file holds
    `password_hash` (argon2id, made by `ews accounts add`), never the password."""

    username: Identifier = Field(description="what they sign in with, e.g. ana.pa")
    name: str = Field(min_length=1, max_length=120, description="shown on acknowledgements")
    role: Literal["admin", "operator", "coordinator"] = Field(
        description="admin: everything; operator: also contacts and silences of its country; "
        "coordinator: reads alerts and acknowledges for its country's contacts"
    )
    country: CountryCode | None = Field(
        None, description="the country they act for; none for a regional office (admins are)"
    )
    language: Language = Field("en", description="en, es, fr or pt")
    contacts: list[Identifier] = Field(
        default_factory=list,
        description="the contacts (organisations) they acknowledge for first; others of their "
        "country can be chosen",
    )
    password_hash: str = Field(pattern=r"^\$argon2id\$", repr=False)

    @model_validator(mode="after")
    def _regional_admin(self) -> AccountEntry:
        if self.role == "admin" and self.country is not None:
            raise ValueError("an admin is regional: remove country, or make it an operator")
        return self


class AccountsFile(Strict):
    version: Literal[1] = 1
    accounts: list[AccountEntry] = Field(default_factory=list)

    @property
    def accounts_by_name(self) -> dict[str, AccountEntry]:
        return {a.username: a for a in self.accounts}

    def problems(self) -> list[Problem]:
        return _repeated([a.username for a in self.accounts], ("accounts",), "account", "username")
