"""Where a location sits: its country, the corridors through it, the region. Pure lookups."""

from __future__ import annotations

from schemas import Location, Scope, SitesFile


class Geography:
    def __init__(self, sites: SitesFile) -> None:
        self.region = sites.region
        self.sites = {s.id: s for s in sites.sites}
        self.areas = {a.id: a for a in sites.areas}
        self.corridors = {c.id: c for c in sites.corridors}
        self.sources = {s.id: s for s in sites.sources}  # declared, with their reporting cycle
        self._corridors_of_site: dict[str, list[str]] = {}
        for corridor in sites.corridors:
            for site_id in corridor.sites:
                self._corridors_of_site.setdefault(site_id, []).append(corridor.id)
        self.corridor_countries = {
            c.id: sorted({self.sites[s].country for s in c.sites}) for c in sites.corridors
        }

    def scopes_of(self, location: Location) -> list[Scope]:
        """Every scope an observation at this location counts towards, innermost first."""
        scopes = [Scope(kind=location.kind, id=location.id, country=location.country)]
        if location.kind == "site":
            site = self.sites.get(location.id)
            if site is not None and site.area:
                scopes.append(Scope(kind="area", id=site.area, country=location.country))
        if location.kind != "country":
            scopes.append(Scope(kind="country", id=location.country, country=location.country))
        if location.kind == "site":
            for corridor_id in self._corridors_of_site.get(location.id, []):
                scopes.append(Scope(kind="corridor", id=corridor_id))
        scopes.append(Scope(kind="region", id=self.region))
        return scopes

    def corridors_of(self, scope: Scope) -> list[str]:
        """The corridors through a site (none for other scopes)."""
        return list(self._corridors_of_site.get(scope.id, [])) if scope.kind == "site" else []

    def countries_of(self, scope: Scope) -> list[str]:
        """The countries a scope covers (a corridor spans several; the region all)."""
        if scope.kind == "corridor":
            return self.corridor_countries.get(scope.id, [])
        if scope.kind == "region":
            return []
        return [scope.country] if scope.country else []
