"""How ews says things to people, in English, Spanish, French and Portuguese: places by name,
figures with their unit, durations in words, dates of the period a report covers. One definition
for webhook summaries, e-mail, CAP and the console.

A summary reads: what (level, trigger, place), the figure and what it is measured against, the
period the data covers. For example:

    WARNING: Surge in border crossings at ERM Lajas Blancas (Darién, Panama), up from watch.
    4,394 people crossing in 24 hours; the warning level is 4,000. Data for 12 Nov 2026.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

import isodate
import pycountry
from babel.dates import format_skeleton

from schemas import AlertEvent, Scope
from schemas.config import Area, Site
from services.common.geography import Geography

if TYPE_CHECKING:
    from .sharing import SharedAlert

LANGUAGES = ("en", "es", "fr", "pt")

LEVEL_NAMES = {
    "en": {
        "watch": "Watch",
        "warning": "Warning",
        "emergency": "Emergency",
        "resolved": "Resolved",
    },
    "es": {
        "watch": "Vigilancia",
        "warning": "Alerta",
        "emergency": "Emergencia",
        "resolved": "Resuelta",
    },
    "fr": {"watch": "Vigilance", "warning": "Alerte", "emergency": "Urgence", "resolved": "Levée"},
    "pt": {
        "watch": "Vigilância",
        "warning": "Alerta",
        "emergency": "Emergência",
        "resolved": "Resolvido",
    },
}

UNITS = {
    "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes"), "less than a minute"),
    "es": (("día", "días"), ("hora", "horas"), ("minuto", "minutos"), "menos de un minuto"),
    "fr": (("jour", "jours"), ("heure", "heures"), ("minute", "minutes"), "moins d'une minute"),
    "pt": (("dia", "dias"), ("hora", "horas"), ("minuto", "minutos"), "menos de um minuto"),
}
MONTHS = {
    "en": ("month", "months"),
    "es": ("mes", "meses"),
    "fr": ("mois", "mois"),
    "pt": ("mês", "meses"),
}
AND = {"en": "and", "es": "y", "fr": "et", "pt": "e"}

# the names people use where ISO's translations give the long official form
SHORT_NAMES = {
    "BO": {"en": "Bolivia", "es": "Bolivia", "fr": "Bolivie", "pt": "Bolívia"},
    "VE": {"en": "Venezuela", "es": "Venezuela", "fr": "Venezuela", "pt": "Venezuela"},
}

# what a metric counts, singular and plural: "1 unaccompanied child", "4,394 people crossing"
METRICS: dict[str, dict[str, tuple[str, str]]] = {
    "count": {
        "en": ("person crossing", "people crossing"),
        "es": ("persona que cruzó", "personas que cruzaron"),
        "fr": ("personne ayant franchi la frontière", "personnes ayant franchi la frontière"),
        "pt": ("pessoa que atravessou", "pessoas que atravessaram"),
    },
    "children": {
        "en": ("child", "children"),
        "es": ("niño, niña o adolescente", "niños, niñas y adolescentes"),
        "fr": ("enfant", "enfants"),
        "pt": ("criança", "crianças"),
    },
    "unaccompanied_children": {
        "en": ("unaccompanied child", "unaccompanied children"),
        "es": (
            "niño, niña o adolescente no acompañado",
            "niños, niñas y adolescentes no acompañados",
        ),
        "fr": ("enfant non accompagné", "enfants non accompagnés"),
        "pt": ("criança desacompanhada", "crianças desacompanhadas"),
    },
    "newly_displaced": {
        "en": ("person newly displaced", "people newly displaced"),
        "es": ("persona desplazada", "personas desplazadas"),
        "fr": ("personne nouvellement déplacée", "personnes nouvellement déplacées"),
        "pt": ("pessoa recém-deslocada", "pessoas recém-deslocadas"),
    },
    "shelter_occupancy": {
        "en": ("person in shelters", "people in shelters"),
        "es": ("persona en albergues", "personas en albergues"),
        "fr": ("personne en abri", "personnes en abri"),
        "pt": ("pessoa em abrigos", "pessoas em abrigos"),
    },
}
# a ratio in words: "shelters at 96 % of capacity"
RATIOS = {
    ("shelter_occupancy", "shelter_capacity"): {
        "en": "shelters at {pct} of capacity",
        "es": "albergues al {pct} de su capacidad",
        "fr": "abris à {pct} de leur capacité",
        "pt": "abrigos a {pct} da capacidade",
    },
}
CATEGORIES = {
    "nationality": {
        "en": "nationals of {name}",
        "es": "nacionales de {name}",
        "fr": "ressortissants ({name})",  # no article to agree with the country's name
        "pt": "nacionais ({name})",
    },
}

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "usual": "{multiple} the usual rate",
        "held": "below the {level} level ({threshold}) but still above the clearing level, "
        "{clear}; it clears after {clear_for} below that",
        "held_now": "below the {level} level ({threshold}) but still above the clearing level, "
        "{clear}",
        "measured_held": "{what} in {window}, {held}.",
        "data_up_to_month": "Data up to {date}.",
        "data_for_month": "Data for {date}.",
        "headline": "{level}: {what}.",
        "at_site": "at {place}",
        "at_area": "in {place}",
        "at_country": "in {place}",
        "at_corridor": "along the {place} corridor",
        "at_region": "across the region",
        "at_source": "from {place}",
        "region": "Region-wide",
        "no_country": "No single country",
        "up_from": ", up from {level}",
        "down_from": ", down from {level}",
        "resolved": "{title} {where} is over (it was at {level}).",
        "removed": "{title} {where} is over (it was at {level}): the trigger was removed from "
        "the rules.",
        "threshold": "{value} {unit} in {window}; the {level} level is {threshold}.",
        "threshold_clear": "{value} {unit} in {window}, below {threshold}.",
        "ratio": "{what} over {window}; the {level} level is {threshold}.",
        "ratio_clear": "{what} over {window}, below {threshold}.",
        "ratio_generic": "{metric} at {pct} of {denominator}",
        "rate": "{multiple} the usual rate: {current} {unit} in {window}, against {expected} "
        "expected from the previous {baseline}; the {level} level is {threshold}.",
        "rate_bare": "{multiple} the usual rate over {window}, against the previous {baseline}; "
        "the {level} level is {threshold}.",
        "rate_clear": "Back to {multiple} the usual rate over {window}, below {threshold}.",
        "new_value": "First arrivals in {baseline}, over {window}: {items}.",
        "new_value_clear": "No new arrivals in {window} not seen in the previous {baseline}.",
        "silence": "No report for {silent} past the one expected (this source reports every "
        "{every}); the {level} level is {threshold}.",
        "silence_no_cycle": "No report for {silent} past the one expected; the {level} level is "
        "{threshold}.",
        "silence_clear": "Reports are arriving again.",
        "composite": "Its triggers active together: {items}.",
        "composite_clear": "Its triggers are no longer active together.",
        "data_for": "Data for {date}.",
        "data_up_to": "Data up to {date}.",
        "late": "Reported late.",
        "withheld": "Place and figures withheld under the sharing policy of {country}.",
    },
    "es": {
        "usual": "{multiple} el ritmo habitual",
        "held": "por debajo del nivel de {level} ({threshold}) pero aún por encima del nivel de "
        "cierre, {clear}; se cierra tras {clear_for} por debajo",
        "held_now": "por debajo del nivel de {level} ({threshold}) pero aún por encima del nivel "
        "de cierre, {clear}",
        "measured_held": "{what} en {window}, {held}.",
        "data_up_to_month": "Datos hasta {date}.",
        "data_for_month": "Datos de {date}.",
        "headline": "{level}: {what}.",
        "at_site": "en {place}",
        "at_area": "en {place}",
        "at_country": "en {place}",
        "at_corridor": "en el corredor {place}",
        "at_region": "en toda la región",
        "at_source": "de {place}",
        "region": "Toda la región",
        "no_country": "Ningún país en particular",
        "up_from": ", antes {level}",
        "down_from": ", antes {level}",
        "resolved": "{title} {where} terminó (estaba en {level}).",
        "removed": "{title} {where} terminó (estaba en {level}): el disparador se retiró de las "
        "reglas.",
        "threshold": "{value} {unit} en {window}; el nivel de {level} es {threshold}.",
        "threshold_clear": "{value} {unit} en {window}, por debajo de {threshold}.",
        "ratio": "{what} en {window}; el nivel de {level} es {threshold}.",
        "ratio_clear": "{what} en {window}, por debajo de {threshold}.",
        "ratio_generic": "{metric} al {pct} de {denominator}",
        "rate": "{multiple} el ritmo habitual: {current} {unit} en {window}, frente a "
        "{expected} esperadas según los {baseline} anteriores; el nivel de {level} es "
        "{threshold}.",
        "rate_bare": "{multiple} el ritmo habitual en {window}, frente a los {baseline} "
        "anteriores; el nivel de {level} es {threshold}.",
        "rate_clear": "De vuelta a {multiple} el ritmo habitual en {window}, por debajo de "
        "{threshold}.",
        "new_value": "Primeras llegadas en {baseline}, en {window}: {items}.",
        "new_value_clear": "Sin llegadas nuevas en {window} que no se vieran en los {baseline} "
        "anteriores.",
        "silence": "Sin reporte desde hace {silent} más allá del esperado (esta fuente reporta "
        "cada {every}); el nivel de {level} es {threshold}.",
        "silence_no_cycle": "Sin reporte desde hace {silent} más allá del esperado; el nivel de "
        "{level} es {threshold}.",
        "silence_clear": "Los reportes vuelven a llegar.",
        "composite": "Sus disparadores activos a la vez: {items}.",
        "composite_clear": "Sus disparadores ya no están activos a la vez.",
        "data_for": "Datos del {date}.",
        "data_up_to": "Datos hasta el {date}.",
        "late": "Datos recibidos con retraso.",
        "withheld": "Lugar y cifras reservados según la política de intercambio de {country}.",
    },
    "fr": {
        "usual": "{multiple} le rythme habituel",
        "held": "sous le seuil du niveau {level} ({threshold}) mais encore au-dessus du seuil de "
        "levée, {clear} ; levée après {clear_for} en dessous",
        "held_now": "sous le seuil du niveau {level} ({threshold}) mais encore au-dessus du seuil "
        "de levée, {clear}",
        "measured_held": "{what} en {window}, {held}.",
        "data_up_to_month": "Données jusqu'à {date}.",
        "data_for_month": "Données pour {date}.",
        "headline": "{level} : {what}.",
        "at_site": "à {place}",
        "at_area": "dans la zone {place}",
        "at_country": "au pays : {place}",
        "at_corridor": "le long du corridor {place}",
        "at_region": "dans toute la région",
        "at_source": "de {place}",
        "region": "Toute la région",
        "no_country": "Aucun pays en particulier",
        "up_from": ", auparavant {level}",
        "down_from": ", auparavant {level}",
        "resolved": "{title} {where} : terminé (niveau {level}).",
        "removed": "{title} {where} : terminé (niveau {level}) ; le déclencheur a été retiré "
        "des règles.",
        "threshold": "{value} {unit} en {window} ; seuil du niveau {level} : {threshold}.",
        "threshold_clear": "{value} {unit} en {window}, sous {threshold}.",
        "ratio": "{what} sur {window} ; seuil du niveau {level} : {threshold}.",
        "ratio_clear": "{what} sur {window}, sous {threshold}.",
        "ratio_generic": "{metric} à {pct} de {denominator}",
        "rate": "{multiple} le rythme habituel : {current} {unit} en {window}, contre "
        "{expected} attendues d'après les {baseline} précédents ; seuil du niveau {level} : "
        "{threshold}.",
        "rate_bare": "{multiple} le rythme habituel sur {window}, par rapport aux {baseline} "
        "précédents ; seuil du niveau {level} : {threshold}.",
        "rate_clear": "Revenu à {multiple} le rythme habituel sur {window}, sous {threshold}.",
        "new_value": "Premières arrivées en {baseline}, sur {window} : {items}.",
        "new_value_clear": "Aucune arrivée nouvelle sur {window} par rapport aux {baseline} "
        "précédents.",
        "silence": "Aucun rapport depuis {silent} au-delà de celui attendu (cette source rapporte "
        "tous les {every}) ; seuil du niveau {level} : {threshold}.",
        "silence_no_cycle": "Aucun rapport depuis {silent} au-delà de celui attendu ; seuil du "
        "niveau {level} : {threshold}.",
        "silence_clear": "Les rapports arrivent de nouveau.",
        "composite": "Ses déclencheurs actifs ensemble : {items}.",
        "composite_clear": "Ses déclencheurs ne sont plus actifs ensemble.",
        "data_for": "Données du {date}.",
        "data_up_to": "Données jusqu'au {date}.",
        "late": "Données reçues en retard.",
        "withheld": "Lieu et chiffres non communiqués selon la politique de partage de {country}.",
    },
    "pt": {
        "usual": "{multiple} o ritmo habitual",
        "held": "abaixo do nível de {level} ({threshold}) mas ainda acima do nível de "
        "encerramento, {clear}; encerra após {clear_for} abaixo dele",
        "held_now": "abaixo do nível de {level} ({threshold}) mas ainda acima do nível de "
        "encerramento, {clear}",
        "measured_held": "{what} em {window}, {held}.",
        "data_up_to_month": "Dados até {date}.",
        "data_for_month": "Dados de {date}.",
        "headline": "{level}: {what}.",
        "at_site": "em {place}",
        "at_area": "em {place}",
        "at_country": "em {place}",
        "at_corridor": "no corredor {place}",
        "at_region": "em toda a região",
        "at_source": "de {place}",
        "region": "Toda a região",
        "no_country": "Nenhum país em particular",
        "up_from": ", antes {level}",
        "down_from": ", antes {level}",
        "resolved": "{title} {where} terminou (estava em {level}).",
        "removed": "{title} {where} terminou (estava em {level}): o gatilho foi retirado das "
        "regras.",
        "threshold": "{value} {unit} em {window}; o nível de {level} é {threshold}.",
        "threshold_clear": "{value} {unit} em {window}, abaixo de {threshold}.",
        "ratio": "{what} em {window}; o nível de {level} é {threshold}.",
        "ratio_clear": "{what} em {window}, abaixo de {threshold}.",
        "ratio_generic": "{metric} a {pct} de {denominator}",
        "rate": "{multiple} o ritmo habitual: {current} {unit} em {window}, contra {expected} "
        "esperadas pelos {baseline} anteriores; o nível de {level} é {threshold}.",
        "rate_bare": "{multiple} o ritmo habitual em {window}, em relação aos {baseline} "
        "anteriores; o nível de {level} é {threshold}.",
        "rate_clear": "De volta a {multiple} o ritmo habitual em {window}, abaixo de {threshold}.",
        "new_value": "Primeiras chegadas em {baseline}, em {window}: {items}.",
        "new_value_clear": "Nenhuma chegada nova em {window} que não se visse nos {baseline} "
        "anteriores.",
        "silence": "Sem relatório há {silent} além do esperado (esta fonte informa a cada "
        "{every}); o nível de {level} é {threshold}.",
        "silence_no_cycle": "Sem relatório há {silent} além do esperado; o nível de {level} é "
        "{threshold}.",
        "silence_clear": "Os relatórios voltaram a chegar.",
        "composite": "Seus gatilhos ativos ao mesmo tempo: {items}.",
        "composite_clear": "Seus gatilhos já não estão ativos ao mesmo tempo.",
        "data_for": "Dados de {date}.",
        "data_up_to": "Dados até {date}.",
        "late": "Dados recebidos com atraso.",
        "withheld": "Local e números reservados pela política de compartilhamento de {country}.",
    },
}


def phrase(language: str, key: str, **values: object) -> str:
    return PHRASES[language][key].format(**values)


def level_name(level: str | None, language: str) -> str:
    return LEVEL_NAMES[language][level or "resolved"]


# --- numbers, durations, dates ----------------------------------------------------------------


def figure(value: float, language: str) -> str:
    """12,971 (en), 12.971 (es, pt), 12 971 (fr); ratios keep four significant digits."""
    text = f"{value:,.0f}" if value == int(value) else f"{value:,.4g}"
    if language in ("es", "pt"):
        return text.translate(str.maketrans(",.", ".,"))
    if language == "fr":
        return text.replace(",", " ").replace(".", ",")
    return text


def percent(ratio: float, language: str) -> str:
    """0.96 → '96 %' (a thin space before the sign where the language puts one)."""
    number = figure(round(ratio * 100, 1), language)
    return f"{number}%" if language == "en" else f"{number}\u00a0%"


def multiple(ratio: float, language: str) -> str:
    """2.4 → '2.4 ×' ('2,4 ×' in es, fr, pt)."""
    return f"{figure(round(ratio, 1), language)}\u00a0×"


def duration(span: timedelta, language: str) -> str:
    """'2 days and 3 hours', '5 horas y 20 minutos': the two largest units, in words."""
    minutes = max(0, int(span.total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    day, hour, minute, none = UNITS[language]
    parts = [
        f"{n} {names[0] if n == 1 else names[1]}"
        for n, names in ((days, day), (hours, hour), (minutes, minute))
        if n
    ]
    if not parts:
        return none
    return f" {AND[language]} ".join(parts[:2])


def window_words(window: str, language: str) -> str:
    """An ISO 8601 window as people say it: PT24H and P1D '24 hours', P7D '7 days', P1M '1
    month' ('1 mes')."""
    if not window:
        return ""
    parsed = isodate.parse_duration(window)
    if isinstance(parsed, isodate.Duration) and (parsed.months or parsed.years):
        months = int(parsed.years * 12 + parsed.months)
        one, many = MONTHS[language]
        rest = parsed.tdelta
        said = f"{months} {one if months == 1 else many}"
        return said if not rest else f"{said} {AND[language]} {duration(rest, language)}"
    span = parsed if isinstance(parsed, timedelta) else parsed.tdelta
    if span == timedelta(days=1):
        return f"24 {UNITS[language][1][1]}"
    return duration(span, language)


def hours_words(hours: float, language: str) -> str:
    """51.5 → '2 days and 3 hours'; 24 → '24 hours' (as a daily cycle is said)."""
    if hours == 24:
        return f"24 {UNITS[language][1][1]}"
    return duration(timedelta(hours=hours), language)


def moment(at: datetime, language: str) -> str:
    """'12 Nov 2026 14:00 UTC', '12 nov 2026 14:00 UTC'."""
    day = format_skeleton("yMMMd", at, locale=_locale(language))
    return f"{day} {at.astimezone(UTC):%H:%M} UTC"


def _is_monthly(alert: AlertEvent) -> bool:
    """A window of months judged at the first of a month: the data is that month's."""
    end = alert.observed_until
    months = "M" in alert.window.split("T")[0] and not alert.window.startswith("PT")
    at_midnight = (end.hour, end.minute, end.second) == (0, 0, 0)
    return months and at_midnight and end.day == 1


def _locale(language: str) -> str:
    return "en_GB" if language == "en" else language  # '12 Nov 2026', as UN agencies write it


def period_date(alert: AlertEvent, language: str) -> str:
    """The period the data covers, as a reader dates it: the day before a midnight tick
    (a daily report of 12 November is judged at 13 November 00:00), the month for a monthly
    window ending on the first of a month."""
    if _is_monthly(alert):
        end = alert.observed_until - timedelta(days=1)
        return format_skeleton("yMMMM", end, locale=_locale(language))
    return tick_date(alert.observed_until, language)


def tick_date(at: datetime, language: str) -> str:
    """A tick as the day it closes: 13 November 00:00 is '12 Nov 2026'; another time as itself."""
    if (at.hour, at.minute, at.second, at.microsecond) != (0, 0, 0, 0):
        return moment(at, language)
    return format_skeleton("yMMMd", at - timedelta(days=1), locale=_locale(language))


# --- places -------------------------------------------------------------------------------------


@cache
def _countries(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])


def country_name(code: str | None, language: str) -> str:
    if not code:
        return PHRASES[language]["no_country"]
    if code in SHORT_NAMES:
        return SHORT_NAMES[code][language]
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    name = getattr(found, "common_name", None) if language == "en" else None
    return name or _countries(language).gettext(found.name)


def place_name(scope: Scope, geography: Geography, language: str) -> str:
    """A scope as a person names it: 'ERM Lajas Blancas (Darién, Panama)', 'Darién (Panama)',
    'Panama', a corridor's name, a source's, or the region."""
    country = country_name(scope.country, language) if scope.country else ""
    if scope.kind == "site" and scope.id in geography.sites:
        site: Site = geography.sites[scope.id]
        area: Area | None = geography.areas.get(site.area) if site.area else None
        within = [a for a in (area.name if area else "", country) if a and a not in site.name]
        return f"{site.name} ({', '.join(within)})" if within else site.name
    if scope.kind == "area" and scope.id in geography.areas:
        name = geography.areas[scope.id].name
        return name if not country or country in name else f"{name} ({country})"
    if scope.kind == "country":
        return country_name(scope.id, language)
    if scope.kind == "corridor" and scope.id in geography.corridors:
        return geography.corridors[scope.id].name
    if scope.kind == "source" and scope.id in geography.sources:
        return geography.sources[scope.id].name
    if scope.kind == "region":
        return PHRASES[language]["region"]
    return scope.id


def where(scope: Scope, geography: Geography, language: str) -> str:
    """'at ERM Lajas Blancas (Darién, Panama)', 'in Honduras', 'along the … corridor'."""
    key = f"at_{scope.kind}" if f"at_{scope.kind}" in PHRASES[language] else "at_site"
    return phrase(language, key, place=place_name(scope, geography, language))


# --- what the value says ------------------------------------------------------------------------


def unit(metric: str, value: float | None, language: str) -> str:
    names = METRICS.get(metric, {}).get(language)
    if names is None:
        return metric.replace("_", " ")
    return names[0] if value == 1 else names[1]


def _category_items(shared: SharedAlert, language: str) -> str:
    """New values with their counts: 'nationals of Afghanistan: 37, nationals of Eritrea: <10'."""
    alert = shared.alert
    pattern = CATEGORIES.get(alert.metric, {}).get(language, "{name}")
    floor = shared.floor
    items = []
    for name, n in sorted(alert.details.items(), key=lambda kv: (-kv[1], kv[0])):
        label = country_name(name, language) if alert.metric == "nationality" else name
        count = f"<{floor}" if floor and n < floor else figure(n, language)
        items.append(f"{pattern.format(name=label)}: {count}")
    return ", ".join(items)


def measure(
    shared: SharedAlert, language: str, titles: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """The figure of the alert and what it is measured against, in words, as this reader may
    read it; '' when the figures are withheld."""
    alert = shared.alert
    if shared.aggregated or (shared.value_text == "" and alert.kind != "composite"):
        return ""
    firing = alert.status == "firing"
    level = level_name(alert.level, language).lower() if alert.level else ""
    window = window_words(alert.window, language)
    baseline = window_words(alert.baseline, language) if alert.baseline else ""
    value_text = shared.value_text if shared.value is None else figure(shared.value, language)
    threshold = figure(shared.threshold, language) if shared.threshold is not None else "?"
    held = (
        firing
        and shared.value is not None
        and shared.threshold is not None
        and shared.value < shared.threshold
        and alert.clear is not None
        and alert.kind in ("threshold", "ratio", "rate_of_change")
    )

    def holding(what: str, shown: Callable[[float], str]) -> str:
        """A level held though the value is under it: why (still above the clearing level)."""
        assert shared.threshold is not None and alert.clear is not None
        values = {"level": level, "threshold": shown(shared.threshold), "clear": shown(alert.clear)}
        if alert.clear_for:
            why = phrase(
                language, "held", clear_for=window_words(alert.clear_for, language), **values
            )
        else:
            why = phrase(language, "held_now", **values)
        return phrase(language, "measured_held", what=what, window=window, held=why)

    if alert.kind == "ratio":
        pct = percent(shared.value, language) if shared.value is not None else value_text
        pattern = RATIOS.get((alert.metric, alert.denominator), {}).get(language)
        what = (
            pattern.format(pct=pct)
            if pattern
            else phrase(
                language,
                "ratio_generic",
                metric=alert.metric.replace("_", " "),
                pct=pct,
                denominator=alert.denominator.replace("_", " "),
            )
        )
        limit = percent(shared.threshold, language) if shared.threshold is not None else "?"
        if held:
            return holding(what, lambda v: percent(v, language))
        key = "ratio" if firing else "ratio_clear"
        return phrase(language, key, what=what, window=window, level=level, threshold=limit)
    if alert.kind == "rate_of_change":
        times = multiple(shared.value, language) if shared.value is not None else value_text
        limit = multiple(shared.threshold, language) if shared.threshold is not None else "?"
        if not firing:
            return phrase(language, "rate_clear", multiple=times, window=window, threshold=limit)
        if held:
            usual = phrase(language, "usual", multiple=times)
            return holding(usual, lambda v: multiple(v, language))
        current, expected = alert.details.get("current"), alert.details.get("baseline_expected")
        if current is None or expected is None:
            return phrase(
                language,
                "rate_bare",
                multiple=times,
                window=window,
                baseline=baseline,
                level=level,
                threshold=limit,
            )
        return phrase(
            language,
            "rate",
            multiple=times,
            current=figure(current, language),
            unit=unit(alert.metric, current, language),
            window=window,
            expected=figure(round(expected), language),
            baseline=baseline,
            level=level,
            threshold=limit,
        )
    if alert.kind == "new_value":
        if not firing or not alert.details:
            return phrase(language, "new_value_clear", window=window, baseline=baseline)
        items = _category_items(shared, language)
        return phrase(language, "new_value", baseline=baseline, window=window, items=items)
    if alert.kind == "silence":
        if not firing:
            return phrase(language, "silence_clear")
        silent = hours_words(shared.value or alert.details.get("silent_hours", 0.0), language)
        limit = hours_words(shared.threshold or 0.0, language)
        every = alert.details.get("expected_every_hours")
        if every:
            every_text = hours_words(every, language)
            return phrase(
                language,
                "silence",
                silent=silent,
                every=every_text,
                level=level,
                threshold=limit,
            )
        return phrase(language, "silence_no_cycle", silent=silent, level=level, threshold=limit)
    if alert.kind == "composite":
        if not firing:
            return phrase(language, "composite_clear")
        names = []
        for member, rank in alert.details.items():
            member_title = (titles or {}).get(member, {})
            name = member_title.get(language) or member_title.get("en") or member
            member_level = ("watch", "warning", "emergency")[max(0, min(2, int(rank) - 1))]
            if rank >= 1:
                names.append(f"{name} ({level_name(member_level, language).lower()})")
        return phrase(language, "composite", items=", ".join(names)) if names else ""
    if held:
        what = f"{value_text} {unit(alert.metric or 'count', shared.value, language)}"
        return holding(what, lambda v: figure(v, language))
    key = "threshold" if firing else "threshold_clear"
    return phrase(
        language,
        key,
        value=value_text,
        unit=unit(alert.metric or "count", shared.value, language),
        window=window,
        level=level,
        threshold=threshold,
    )


def headline(
    shared: SharedAlert, geography: Geography, language: str, title: str
) -> tuple[str, str]:
    """(LEVEL, 'Surge in border crossings at ERM Lajas Blancas (Darién, Panama), up from
    watch')."""
    alert = shared.alert
    place = where(alert.scope, geography, language)
    if alert.status != "firing":
        before = level_name(alert.previous_level, language).lower()
        key = "removed" if alert.cause == "trigger_removed" else "resolved"
        return level_name(None, language).upper(), phrase(
            language, key, title=title, where=place, level=before
        ).rstrip(".")
    change = ""
    if alert.previous_level is not None and alert.level is not None:
        rank = ("watch", "warning", "emergency")
        up = rank.index(alert.level) > rank.index(alert.previous_level)
        change = phrase(
            language,
            "up_from" if up else "down_from",
            level=level_name(alert.previous_level, language).lower(),
        )
    return level_name(alert.level, language).upper(), f"{title} {place}{change}"


def summary(
    shared: SharedAlert,
    geography: Geography,
    language: str,
    title: str,
    titles: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """What happened, the figure in words, the period: the message's first lines everywhere."""
    alert = shared.alert
    level, head = headline(shared, geography, language, title)
    parts = [phrase(language, "headline", level=level, what=head)]
    if alert.cause == "trigger_removed":
        return parts[0]
    said = measure(shared, language, titles)
    if said:
        parts.append(said[0].upper() + said[1:])
        date, monthly = period_date(alert, language), _is_monthly(alert)
        key = "data_up_to" if alert.kind == "silence" else "data_for"
        parts.append(phrase(language, f"{key}_month" if monthly else key, date=date))
    elif shared.aggregated or shared.value_text == "":
        parts.append(
            phrase(language, "withheld", country=country_name(alert.scope.country, language))
        )
    if alert.late:
        parts.append(phrase(language, "late"))
    return " ".join(parts)
