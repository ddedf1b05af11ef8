"""CAP 1.2 as alert hubs take it (Google Public Alerts, the IFRC Alert Hub, WMO's register):

- `<expires>` on every `<info>`, per level (EWS_CAP_EXPIRES), so hubs drop what is over;
- an `<area>` hubs can place: a `<circle>` around a site (its lat/lon, EWS_CAP_SITE_RADIUS_KM), a
  `<polygon>` for a country (Natural Earth 1:110m, shipped with the console's map) or an area
  whose shape is configured (EWS_AREA_SHAPES_FILE), and the ISO 3166 `<geocode>`s kept;
- `<areaDesc>` within 50 characters and `<event>` within 35 (cut at a word, with an ellipsis);
- sender and identifiers configurable: EWS_CAP_SENDER, and with EWS_CAP_OID identifiers in the
  register's form (urn:oid:<oid>.<year>.<month>.<day>.<hour>.<minute>.<second>.<number>);
- optionally one `<info>` per language in one message (EWS_CAP_ALL_LANGUAGES);
- urgency, severity and certainty never Unknown; status Actual (a test message says Test).

Everything shown is the alert as the reader may see it (SharedAlert): a place withheld from the
reader is the country, with the country's shape and geocode only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from schemas import AlertEvent, Level
from schemas.types import as_timedelta, parse_duration
from services.common.geography import Geography
from services.common.settings import Settings

from .console.atlas import Ring, country_outlines
from .rendering import _env, render_summary, title_of
from .sharing import SharedAlert
from .wording import LANGUAGES, place_name

CAP_SEVERITY: dict[Level | None, str] = {
    "watch": "Moderate",
    "warning": "Severe",
    "emergency": "Extreme",
}
EVENT_MAX, AREA_DESC_MAX = 35, 50  # Google Public Alerts: under 35 and 50 characters
POLYGONS_MAX = 4  # a country's largest polygons (the mainland and the big islands)


@dataclass(frozen=True)
class CapProfile:
    """How this deployment publishes CAP (from settings)."""

    sender: str = "ews@early-warning.americas"
    oid: str | None = None
    expires: Mapping[str, str] = field(
        default_factory=lambda: {
            "watch": "P2D",
            "warning": "P1D",
            "emergency": "PT12H",
            "resolved": "PT6H",
        }
    )
    site_radius_km: float = 10.0
    all_languages: bool = False
    area_shapes: Mapping[str, tuple[Ring, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> CapProfile:
        return cls(
            sender=settings.cap_sender,
            oid=settings.cap_oid,
            expires={str(k): v for k, v in settings.cap_expires.items()},
            site_radius_km=settings.cap_site_radius_km,
            all_languages=settings.cap_all_languages,
            area_shapes=load_area_shapes(settings.area_shapes_file)
            if settings.area_shapes_file
            else {},
        )


def load_area_shapes(path: Path) -> dict[str, tuple[Ring, ...]]:
    """A GeoJSON FeatureCollection: each feature's `properties.id` (an ISO 3166-2 code) → the outer
    rings of its Polygon or MultiPolygon, largest first. Errors name the file and the feature."""
    data = json.loads(path.read_text(encoding="utf-8"))
    shapes: dict[str, tuple[Ring, ...]] = {}
    for index, feature in enumerate(data.get("features", [])):
        where = f"{path}: features[{index}]"
        area = (feature.get("properties") or {}).get("id")
        geometry = feature.get("geometry") or {}
        if not area:
            raise ValueError(f"{where}: properties.id (the area's ISO 3166-2 code) is missing")
        if geometry.get("type") == "Polygon":
            polygons = [geometry["coordinates"]]
        elif geometry.get("type") == "MultiPolygon":
            polygons = geometry["coordinates"]
        else:
            raise ValueError(f"{where}: geometry is {geometry.get('type')!r}, not a Polygon")
        rings = [[(float(x), float(y)) for x, y, *_ in polygon[0]] for polygon in polygons]
        shapes[str(area)] = tuple(sorted(rings, key=len, reverse=True))
    return shapes


def cap_time(moment: datetime) -> str:
    """CAP dateTime: seconds precision and an explicit offset (+00:00); a trailing Z is not valid
    CAP."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def cap_identifier(alert: AlertEvent, profile: CapProfile) -> str:
    """Stable per transition (as the reader sees the alert): ews:<alert>:<n>, or with an OID the
    register's form, its last arc a number drawn from the alert and transition."""
    if profile.oid is None:
        return f"ews:{alert.alert_id}:{alert.transition}"
    t = alert.evaluated_at.astimezone(UTC)
    number = int(
        hashlib.sha256(f"{alert.alert_id}:{alert.transition}".encode()).hexdigest()[:12], 16
    )
    stamp = f"{t.year}.{t.month}.{t.day}.{t.hour}.{t.minute}.{t.second}"
    return f"urn:oid:{profile.oid}.{stamp}.{number}"


def shorten(text: str, limit: int) -> str:
    """Within `limit` characters, cut at a word with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:–—-(")
    return f"{cut}…"


def _polygon(ring: Ring) -> str | None:
    points = [(round(lat, 4), round(lon, 4)) for lon, lat in ring]
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(points) < 4:
        return None
    return " ".join(f"{lat},{lon}" for lat, lon in points)


@dataclass(frozen=True)
class CapArea:
    description: str
    circles: list[str]
    polygons: list[str]
    geocodes: list[tuple[str, str]]


def cap_area(
    shared: SharedAlert, geography: Geography, profile: CapProfile, language: str
) -> CapArea:
    """Where the alert is, as hubs match it: a circle for a site, a polygon for an area with a
    configured shape and for a country, the ISO 3166 codes."""
    scope = shared.alert.scope
    circles: list[str] = []
    polygons: list[str] = []
    geocodes: list[tuple[str, str]] = []
    if scope.country:
        geocodes.append(("ISO 3166-1 alpha-2", scope.country))
    if scope.kind == "area":
        geocodes.append(("ISO 3166-2", scope.id))
    site = geography.sites.get(scope.id) if scope.kind == "site" else None
    if site is not None and site.lat is not None and site.lon is not None:
        circles.append(f"{site.lat:.4f},{site.lon:.4f} {profile.site_radius_km:g}")
    rings: tuple[Ring, ...] = ()
    if scope.kind == "area":
        rings = profile.area_shapes.get(scope.id, ())
    elif scope.kind == "country":
        rings = country_outlines().get(scope.id, ())
    elif scope.kind == "site" and not circles and scope.country:
        rings = country_outlines().get(scope.country, ())
    polygons = [p for p in (_polygon(r) for r in rings[:POLYGONS_MAX]) if p]
    description = shorten(place_name(scope, geography, language), AREA_DESC_MAX)
    return CapArea(description, circles, polygons, geocodes)


@dataclass(frozen=True)
class CapInfo:
    language: str
    event: str
    headline: str
    description: str
    area: CapArea


def render_cap(
    shared: SharedAlert,
    language: str,
    earlier: list[AlertEvent],
    geography: Geography,
    ack_url: str | None = None,
    titles: Mapping[str, Mapping[str, str]] | None = None,
    profile: CapProfile | None = None,
) -> bytes:
    """CAP 1.2: levels map to severity; later transitions are Updates referencing the earlier
    messages (`earlier`: as this reader sees them); a resolution is an Update with responseType
    AllClear. The reader's language first; with `all_languages`, one <info> per language."""
    profile = profile or CapProfile()
    alert = shared.alert
    references = " ".join(
        f"{profile.sender},{cap_identifier(e, profile)},{cap_time(e.evaluated_at)}" for e in earlier
    )
    resolved = alert.status == "resolved"
    languages = [language] + (
        [lang for lang in LANGUAGES if lang != language] if profile.all_languages else []
    )
    infos = []
    for lang in languages:
        title = title_of(alert, lang)
        area = cap_area(shared, geography, profile, lang)
        infos.append(
            CapInfo(
                language=lang,
                event=shorten(title, EVENT_MAX),
                headline=f"{title} — {place_name(alert.scope, geography, lang)}",
                description=render_summary(shared, geography, lang, titles=titles),
                area=area,
            )
        )
    sent = alert.evaluated_at
    expires = sent + as_timedelta(
        parse_duration(profile.expires.get(alert.level or "resolved", "P1D"))
    )
    xml = (
        _env()
        .get_template("cap.xml")
        .render(
            alert=alert,
            identifier=cap_identifier(alert, profile),
            sender=profile.sender,
            sent=cap_time(sent),
            msg_type="Update" if earlier else "Alert",
            references=references,
            infos=infos,
            response="AllClear"
            if resolved
            else ("Prepare" if alert.level != "watch" else "Monitor"),
            urgency="Past"
            if resolved
            else ("Immediate" if alert.level == "emergency" else "Expected"),
            severity="Minor" if resolved else CAP_SEVERITY[alert.level],
            onset=cap_time(alert.started_at),
            expires=cap_time(expires),
            value=shared.value_text or "withheld",
            threshold=shared.threshold_text or "withheld",
            ack_url=ack_url,
        )
    )
    return xml.encode("utf-8")
