"""The map of the Americas, drawn on the server: country shapes from the vendored world-atlas
TopoJSON (Natural Earth 1:110m) projected once into SVG paths; each board shades countries by their
highest active level and puts a dot on each site with an alert the reader may see."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import pycountry

from schemas import Level

ATLAS = "static/vendor/world-atlas-2.0.2/countries-110m.json"
# The countries of the Americas (ISO 3166-1 alpha-2) the map draws.
AMERICAS = frozenset(
    [
        "AG",
        "AR",
        "BS",
        "BB",
        "BZ",
        "BO",
        "BR",
        "CA",
        "CL",
        "CO",
        "CR",
        "CU",
        "DM",
        "DO",
        "EC",
        "SV",
        "GD",
        "GT",
        "GY",
        "HT",
        "HN",
        "JM",
        "MX",
        "NI",
        "PA",
        "PY",
        "PE",
        "KN",
        "LC",
        "VC",
        "SR",
        "TT",
        "US",
        "UY",
        "VE",
        "PR",
        "GF",
        "FK",
        "BM",
        "TC",
        "KY",
    ]
)
# the window drawn, in degrees: Alaska's tip and Greenland left out, Tierra del Fuego in
WEST, EAST, NORTH, SOUTH = -128.0, -32.0, 56.0, -56.0
SCALE = 5.0  # SVG units per degree
WIDTH, HEIGHT = (EAST - WEST) * SCALE, (NORTH - SOUTH) * SCALE


def project(lon: float, lat: float) -> tuple[float, float]:
    """Equirectangular: plain, and right enough for a picture of which countries are alerting."""
    if lon > 0:  # the Aleutians, across the antimeridian
        lon -= 360
    return (lon - WEST) * SCALE, (NORTH - lat) * SCALE


@dataclass(frozen=True)
class Shape:
    code: str  # ISO 3166-1 alpha-2
    path: str  # SVG path data


def _arcs(topology: dict) -> list[list[tuple[float, float]]]:
    """TopoJSON's quantised, delta-encoded arcs as (lon, lat) points."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    decoded = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        decoded.append(points)
    return decoded


def _ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc[1:] if points else arc)
    return points


def _path(rings: list[list[tuple[float, float]]]) -> str:
    parts = []
    for ring in rings:
        xy = [project(lon, lat) for lon, lat in ring]
        parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + "Z")
    return "".join(parts)


Ring = list[tuple[float, float]]  # (lon, lat) points, closed


@cache
def _topology() -> tuple[dict, list[Ring]]:
    data = (resources.files("services.notify.console") / ATLAS).read_text(encoding="utf-8")
    topology = json.loads(data)
    return topology, _arcs(topology)


@cache
def country_outlines() -> dict[str, tuple[Ring, ...]]:
    """Each country of the atlas (ISO 3166-1 alpha-2) as the outer rings of its polygons, largest
    first (Natural Earth 1:110m: simplified, tens of points each), for CAP <polygon>s."""
    topology, arcs = _topology()
    found: dict[str, tuple[Ring, ...]] = {}
    for geometry in topology["objects"]["countries"]["geometries"]:
        country = pycountry.countries.get(numeric=str(geometry.get("id", "")).zfill(3))
        if country is None or "arcs" not in geometry:
            continue
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        outer = [_ring(arcs, polygon[0]) for polygon in polygons if polygon]
        found[country.alpha_2] = tuple(sorted(outer, key=len, reverse=True))
    return found


@cache
def shapes() -> tuple[Shape, ...]:
    """The countries of the Americas as SVG paths in the map's frame (read and projected once)."""
    topology, arcs = _topology()
    found = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        country = pycountry.countries.get(numeric=str(geometry.get("id", "")).zfill(3))
        if country is None or country.alpha_2 not in AMERICAS:
            continue
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        rings = [_ring(arcs, ring) for polygon in polygons for ring in polygon]
        found.append(Shape(country.alpha_2, _path(rings)))
    return tuple(sorted(found, key=lambda s: s.code))


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    level: Level
    label: str
    href: str


@dataclass(frozen=True)
class Country:
    code: str
    path: str
    level: Level | None
    label: str


@dataclass(frozen=True)
class MapView:
    width: float
    height: float
    countries: list[Country]
    dots: list[Dot]
