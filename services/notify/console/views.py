"""What the console's pages show, worked out from what notify knows: pure functions from the
current picture (already passed through the sharing policy for the reader) to view models."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlencode

from schemas import LEVEL_RANK, LEVELS, AlertEvent, Contact, Level, Scope
from schemas.delivery import DeliveryRecord
from schemas.notify import Acknowledgement, Silence
from services.common.geography import Geography

from ..cap import CapProfile, render_cap
from ..picture import is_acknowledged
from ..rendering import render_summary, title_of
from ..sharing import SharedAlert
from ..wording import figure
from . import atlas
from .atlas import MapView
from .text import country_name, duration, place_name, say, withheld_parts

STATUSES = ("firing", "resolved", "all")


@dataclass(frozen=True)
class Filters:
    """The board's and the history's filters, as they stand in the URL."""

    country: str | None = None
    level: str | None = None
    rule: str | None = None
    status: str = "firing"

    default_status: str = "firing"  # the board shows active alerts; the history all

    @classmethod
    def of(cls, query: Mapping[str, str], default_status: str = "firing") -> Filters:
        """From a query string; values that are not one of the choices are dropped (a link edited
        by hand shows everything rather than an error)."""
        level = query.get("level") or None
        status = query.get("status") or default_status
        return cls(
            country=(query.get("country") or "").upper() or None,
            level=level if level in LEVEL_RANK else None,
            rule=query.get("rule") or None,
            status=status if status in STATUSES else default_status,
            default_status=default_status,
        )

    def keeps(self, alert: AlertEvent, countries: list[str], ignore_level: bool = False) -> bool:
        return (
            (self.status == "all" or alert.status == self.status)
            and (ignore_level or self.level is None or alert.level == self.level)
            and (self.rule is None or alert.rule_id == self.rule)
            and (self.country is None or self.country in countries)
        )

    def query(self, **changed: str | None) -> str:
        values = {
            "country": self.country,
            "level": self.level,
            "rule": self.rule,
            "status": self.status if self.status != self.default_status else None,
        } | changed
        return urlencode({k: v for k, v in values.items() if v})


@dataclass(frozen=True)
class AckLine:
    by: str
    contact: str
    text: str


@dataclass(frozen=True)
class AlertRow:
    shown_id: str
    href: str
    title: str
    level: Level | None  # None once resolved
    level_text: str
    status: str
    place: str
    figures: str
    age: str
    since: datetime  # when it started (resolved: when it ended)
    acks: list[AckLine]
    late: bool
    withheld: str | None
    at: tuple[float, float] | None = None  # a site's (lon, lat), for the map


@dataclass(frozen=True)
class Group:
    key: str
    label: str
    rows: list[AlertRow]

    @property
    def highest(self) -> int:
        return max((LEVEL_RANK[r.level] for r in self.rows), default=0)


@dataclass(frozen=True)
class Board:
    groups: list[Group]
    counts: list[tuple[str, str, int]]  # (level, its name, active alerts)
    total: int
    filters: Filters
    countries: list[tuple[str, str]]  # (code, name) to filter by
    rules: list[tuple[str, str]]  # (rule id, title)
    by_country: dict[str, Level] = field(default_factory=dict)  # country → its highest active level
    map: MapView | None = None


def alert_href(shown_id: str) -> str:
    return "/console/alerts/" + quote(shown_id, safe="/")


def figures_of(seen: SharedAlert, language: str) -> str:
    if seen.value is None:
        return seen.value_text or ""
    value = figure(seen.value, language)
    if seen.threshold is None:
        return say(language, "value_only", value=value)
    return say(language, "value_against", value=value, threshold=figure(seen.threshold, language))


def ack_lines(
    alert: AlertEvent,
    acks: list[Acknowledgement],
    contacts: Mapping[str, Contact],
    language: str,
    now: datetime,
) -> list[AckLine]:
    """The acknowledgements that hold for where the alert stands now."""
    lines = []
    for ack in acks:
        if not is_acknowledged(alert, ack):
            continue
        contact = contacts.get(ack.contact_id or "")
        name = contact.name if contact is not None else (ack.contact_id or "—")
        text = say(
            language, "acknowledged", who=ack.by, contact=name, age=duration(now - ack.at, language)
        )
        lines.append(AckLine(ack.by, name, text + (f": “{ack.comment}”" if ack.comment else "")))
    return lines


def row_of(
    alert: AlertEvent,
    seen: SharedAlert,
    acks: list[Acknowledgement],
    contacts: Mapping[str, Contact],
    geography: Geography,
    language: str,
    now: datetime,
) -> AlertRow:
    shown = seen.alert
    firing = shown.status == "firing"
    age = (
        say(language, "started", age=duration(now - shown.started_at, language))
        if firing
        else say(language, "ended", age=duration(now - shown.evaluated_at, language))
    )
    return AlertRow(
        shown_id=shown.alert_id,
        href=alert_href(shown.alert_id),
        title=title_of(shown, language),
        level=shown.level if firing else None,
        level_text=say(language, shown.level)
        if firing and shown.level
        else say(language, "resolved"),
        status=shown.status,
        place=place_name(shown.scope, geography, language),
        figures=figures_of(seen, language),
        age=age,
        since=shown.started_at if firing else shown.evaluated_at,
        acks=ack_lines(alert, acks, contacts, language, now),
        late=shown.late,
        withheld=say(language, "withheld", what=withheld_parts(seen.withheld, language))
        if seen.withheld
        else None,
        at=site_position(shown, geography),
    )


def site_position(alert: AlertEvent, geography: Geography) -> tuple[float, float] | None:
    """Where a site alert (as shown: a withheld site is shown as its country) is on the map."""
    site = geography.sites.get(alert.scope.id) if alert.scope.kind == "site" else None
    if site is None or site.lat is None or site.lon is None:
        return None
    return site.lon, site.lat


def group_key(alert: AlertEvent) -> str:
    if alert.scope.kind in ("corridor", "region"):
        return alert.scope.kind
    return alert.scope.country or "region"


def board(
    items: list[tuple[AlertEvent, SharedAlert, list[Acknowledgement]]],
    countries_of: Mapping[str, list[str]],
    filters: Filters,
    contacts: Mapping[str, Contact],
    geography: Geography,
    language: str,
    now: datetime,
) -> Board:
    """Alerts grouped by country (then the corridors, then the region), highest level first, each
    group's alerts highest level and oldest first; counts per level of the active alerts the other
    filters keep. `countries_of`: each shown alert's countries (by shown id)."""
    groups: dict[str, list[AlertRow]] = {}
    counts: dict[Level, int] = dict.fromkeys(LEVELS[::-1], 0)
    by_country: dict[str, Level] = {}
    country_codes: set[str] = set()
    rules: dict[str, str] = {}
    for alert, seen, acks in items:
        shown = seen.alert
        countries = countries_of.get(shown.alert_id, [])
        country_codes.update(countries)
        rules.setdefault(shown.rule_id, title_of(shown, language))
        firing_level = shown.level if shown.status == "firing" else None
        if firing_level is not None and filters.keeps(shown, countries, ignore_level=True):
            counts[firing_level] += 1
        if firing_level is not None and shown.scope.kind not in ("corridor", "region"):
            for country in countries:
                held = by_country.get(country)
                if held is None or LEVEL_RANK[firing_level] > LEVEL_RANK[held]:
                    by_country[country] = firing_level
        if filters.keeps(shown, countries):
            row = row_of(alert, seen, acks, contacts, geography, language, now)
            groups.setdefault(group_key(shown), []).append(row)

    def label(key: str) -> str:
        if key == "corridor":
            return say(language, "corridors")
        if key == "region":
            return say(language, "region")
        return country_name(key, language)

    def row_order(row: AlertRow) -> tuple:
        return (
            -LEVEL_RANK[row.level],
            row.status != "firing",
            row.since,
            row.shown_id,
        )

    built = [Group(k, label(k), sorted(rows, key=row_order)) for k, rows in groups.items()]
    built.sort(key=lambda g: (g.key in ("corridor", "region"), -g.highest, g.label))
    return Board(
        map=map_of(by_country, built, language),
        groups=built,
        counts=[(level, say(language, level), n) for level, n in counts.items()],
        total=sum(len(g.rows) for g in built),
        filters=filters,
        countries=sorted(
            ((c, country_name(c, language)) for c in country_codes), key=lambda c: c[1]
        ),
        rules=sorted(rules.items(), key=lambda r: r[1]),
        by_country=by_country,
    )


def map_of(by_country: Mapping[str, Level], groups: list[Group], language: str) -> MapView:
    """Countries shaded by their highest active level; a dot per site alert on the board."""
    countries = []
    for shape in atlas.shapes():
        level = by_country.get(shape.code)
        name = country_name(shape.code, language)
        label = f"{name}: {say(language, level)}" if level else name
        countries.append(atlas.Country(shape.code, shape.path, level, label))
    dots = []
    for group in groups:
        for row in group.rows:
            if row.at is None or row.level is None:
                continue
            x, y = atlas.project(*row.at)
            label = f"{row.level_text}: {row.title}, {row.place}"
            dots.append(atlas.Dot(x, y, row.level, label, row.href))
    dots.sort(key=lambda d: LEVEL_RANK[d.level])  # the highest drawn last, on top
    return atlas.MapView(atlas.WIDTH, atlas.HEIGHT, countries, dots)


# --- history -----------------------------------------------------------------------------

HISTORY_PAGE = 50
CSV_COLUMNS = (
    "evaluated_at",
    "alert_id",
    "rule_id",
    "title",
    "status",
    "level",
    "previous_level",
    "place",
    "countries",
    "value",
    "threshold",
    "late",
    "withheld",
)


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    row: AlertRow
    change: str  # "Watch → Warning"


@dataclass(frozen=True)
class Choices:
    countries: list[tuple[str, str]]  # (code, name)
    rules: list[tuple[str, str]]  # (rule id, title)


@dataclass(frozen=True)
class History:
    rows: list[HistoryRow]
    filters: Filters
    total: int
    page: int
    pages: int
    choices: Choices


def kept_transitions(
    transitions: list[SharedAlert],
    countries_of: Mapping[str, list[str]],
    filters: Filters,
) -> list[SharedAlert]:
    """Newest first, those the filters keep (`countries_of`: by shown id)."""
    kept = [
        t for t in transitions if filters.keeps(t.alert, countries_of.get(t.alert.alert_id, []))
    ]
    return sorted(kept, key=lambda t: t.alert.evaluated_at, reverse=True)


def level_word(level: str | None, language: str) -> str:
    return say(language, level) if level else say(language, "resolved")


def history(
    transitions: list[SharedAlert],
    countries_of: Mapping[str, list[str]],
    filters: Filters,
    page: int,
    geography: Geography,
    language: str,
    now: datetime,
) -> History:
    kept = kept_transitions(transitions, countries_of, filters)
    pages = max(1, -(-len(kept) // HISTORY_PAGE))
    page = min(max(1, page), pages)
    rows = []
    for shared in kept[(page - 1) * HISTORY_PAGE : page * HISTORY_PAGE]:
        shown = shared.alert
        change = (
            f"{say(language, shown.previous_level or 'new')} → "
            f"{level_word(shown.level if shown.status == 'firing' else None, language)}"
        )
        row = row_of(shown, shared, [], {}, geography, language, now)
        rows.append(HistoryRow(shown.evaluated_at, row, change))
    codes = {c for t in transitions for c in countries_of.get(t.alert.alert_id, [])}
    rules = {t.alert.rule_id: title_of(t.alert, language) for t in transitions}
    choices = Choices(
        sorted(((c, country_name(c, language)) for c in codes), key=lambda c: c[1]),
        sorted(rules.items(), key=lambda r: r[1]),
    )
    return History(rows, filters, len(kept), page, pages, choices)


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def history_csv(
    transitions: list[SharedAlert],
    countries_of: Mapping[str, list[str]],
    filters: Filters,
    geography: Geography,
    language: str,
) -> str:
    """Every transition the filters keep, as the reader may see it (withheld figures empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for shared in kept_transitions(transitions, countries_of, filters):
        shown = shared.alert
        writer.writerow(
            _cell(v)
            for v in (
                shown.evaluated_at.isoformat(),
                shown.alert_id,
                shown.rule_id,
                title_of(shown, language),
                shown.status,
                shown.level or "",
                shown.previous_level or "",
                place_name(shown.scope, geography, language),
                " ".join(countries_of.get(shown.alert_id, [])),
                "" if shared.value is None else shared.value,
                "" if shared.threshold is None else shared.threshold,
                "yes" if shown.late else "",
                " ".join(shared.withheld),
            )
        )
    return out.getvalue()


# --- silences ----------------------------------------------------------------------------

SILENCE_DURATIONS = ("PT1H", "PT4H", "PT12H", "P1D", "P3D", "P7D")


@dataclass(frozen=True)
class SilenceRow:
    id: str
    what: str
    reason: str
    by: str
    when: str
    active: bool
    can_expire: bool


def describe_matchers(
    silence: Silence, titles: Mapping[str, str], geography: Geography, language: str
) -> str:
    """'Trigger: Crossing surge · Country: Panama', in the reader's language and by name."""
    parts = []
    if silence.rule_id:
        parts.append(
            f"{say(language, 'match_rule')}: {titles.get(silence.rule_id, silence.rule_id)}"
        )
    if silence.scope_id and silence.scope_kind:
        scope = Scope(kind=silence.scope_kind, id=silence.scope_id, country=silence.country)
        parts.append(f"{say(language, 'match_place')}: {place_name(scope, geography, language)}")
    elif silence.scope_id:
        parts.append(f"{say(language, 'match_place')}: {silence.scope_id}")
    elif silence.scope_kind:
        parts.append(f"{say(language, 'match_kind')}: {silence.scope_kind}")
    if silence.country:
        parts.append(f"{say(language, 'match_country')}: {country_name(silence.country, language)}")
    return " · ".join(parts)


def silence_rows(
    silences: list[Silence],
    may_expire: Callable[[Silence], bool],
    titles: Mapping[str, str],
    geography: Geography,
    language: str,
    now: datetime,
) -> list[SilenceRow]:
    rows = []
    for silence in silences:
        active = silence.expired_by is None and now < silence.ends_at
        when = (
            say(language, "ends_in", age=duration(silence.ends_at - now, language))
            if active
            else say(language, "silence_ended")
        )
        rows.append(
            SilenceRow(
                silence.id,
                describe_matchers(silence, titles, geography, language),
                silence.comment,
                say(language, "silence_by", who=silence.created_by),
                when,
                active,
                active and may_expire(silence),
            )
        )
    return rows


def prefilled_silence(seen: SharedAlert) -> dict[str, str]:
    """The matchers of a silence for alerts like this one, from the alert as the reader sees it:
    its trigger and place; for a place withheld from the reader, its trigger and country."""
    shown = seen.alert
    if seen.aggregated or shown.scope.kind == "country":
        return {"rule": shown.rule_id, "country": shown.scope.country or ""}
    return {"rule": shown.rule_id, "scope_kind": shown.scope.kind, "scope_id": shown.scope.id}


# --- the delivery audit -------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRow:
    at: datetime
    alert_id: str  # as its recipient saw it
    href: str
    contact: str
    channel: str
    outcome: str
    value: str
    withheld: str | None


def delivery_rows(
    records: list[DeliveryRecord], contacts: Mapping[str, Contact], language: str
) -> list[DeliveryRow]:
    """Who received which figure about which alert, when, how: each record as its reader may see
    it (already passed through the policy: `as_seen`)."""
    rows = []
    for record in records:
        contact = contacts.get(record.contact_id)
        sent = record.sent
        rows.append(
            DeliveryRow(
                at=record.at,
                alert_id=record.alert_id,
                href=alert_href(record.alert_id),
                contact=contact.name if contact is not None else record.contact_id,
                channel=f"{record.channel} ({record.target})" if record.target else record.channel,
                outcome=say(language, record.outcome)
                + (f" ({record.status_code})" if record.status_code else ""),
                value=(sent.value_shown if sent is not None else "") or "—",
                withheld=withheld_parts(tuple(sent.withheld), language)
                if sent is not None and sent.withheld
                else None,
            )
        )
    return rows


# --- one alert ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # transition, delivery, ack
    text: str
    level: str | None = None


@dataclass(frozen=True)
class AlertPage:
    row: AlertRow
    summary: str
    scope: str
    evidence: list[str]
    timeline: list[Event]
    firing: bool
    contacts: list[tuple[str, str, bool]]  # (id, name, acknowledged now) the reader may ack for
    silence_query: str = ""  # the new-silence form, prefilled for alerts like this


def alert_page(
    alert: AlertEvent,
    seen: SharedAlert,
    acks: list[Acknowledgement],
    transitions: list[SharedAlert],
    deliveries: list[DeliveryRecord],
    contacts: Mapping[str, Contact],
    ack_for: list[Contact],
    geography: Geography,
    language: str,
    now: datetime,
    titles: Mapping[str, Mapping[str, str]] | None = None,
) -> AlertPage:
    """The alert as the reader may see it, with its timeline, newest first: its transitions (as
    the reader may see each), the deliveries to the contacts the reader may see, their
    acknowledgements."""
    row = row_of(alert, seen, acks, contacts, geography, language, now)
    events: list[Event] = []
    for shared in transitions:
        shown = shared.alert
        level = shown.level if shown.status == "firing" else None
        text = say(
            language,
            "transition",
            level=say(language, shown.level) if shown.level else say(language, "resolved"),
            status=say(language, shown.status),
        )
        figures = figures_of(shared, language)
        late = f" — {say(language, 'late')}" if shown.late else ""
        events.append(Event(shown.evaluated_at, "transition", f"{text}: {figures}{late}", level))
    for record in deliveries:
        contact = contacts.get(record.contact_id)
        events.append(
            Event(
                record.at,
                "delivery",
                say(
                    language,
                    "delivery",
                    channel=record.channel,
                    contact=contact.name if contact is not None else record.contact_id,
                    outcome=record.outcome
                    + (f" ({record.status_code})" if record.status_code else ""),
                ),
            )
        )
    for ack in acks:
        contact = contacts.get(ack.contact_id or "")
        text = say(
            language,
            "ack_event",
            who=ack.by,
            contact=contact.name if contact is not None else (ack.contact_id or "—"),
        )
        events.append(Event(ack.at, "ack", text + (f": “{ack.comment}”" if ack.comment else "")))
    events.sort(key=lambda e: e.at, reverse=True)
    acked = {a.contact_id for a in acks if is_acknowledged(alert, a)}
    return AlertPage(
        row=row,
        summary=render_summary(seen, geography, language, titles=titles),
        scope=f"{seen.alert.scope.kind}: {row.place}",
        evidence=list(seen.alert.evidence),
        timeline=events,
        firing=seen.alert.status == "firing",
        contacts=[(c.id, c.name, c.id in acked) for c in ack_for],
        silence_query=urlencode(prefilled_silence(seen)),
    )


# --- exports of one alert ---------------------------------------------------------------


def alert_json(seen: SharedAlert) -> bytes:
    """The alert as this reader may see it, as JSON: what webhooks carry, with what was withheld."""
    data = seen.alert.model_dump(mode="json") | {
        "value": seen.value,
        "threshold": seen.threshold,
        "withheld": list(seen.withheld),
    }
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def alert_cap(
    seen: SharedAlert,
    earlier: list[SharedAlert],
    geography: Geography,
    language: str,
    profile: CapProfile | None = None,
) -> bytes:
    """The alert as this reader may see it, as the CAP 1.2 message a CAP contact would receive
    (its earlier messages, as the reader saw them, referenced)."""
    return render_cap(seen, language, [e.alert for e in earlier], geography, profile=profile)
