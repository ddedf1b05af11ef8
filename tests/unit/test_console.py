"""The console's pure parts: sessions and CSRF tokens, the sign-in limit, durations in words, the
board's and the alert page's view models, and the property that no page shows what a country
withholds from its reader."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import AlertSeries, Scope
from schemas.config import AccountEntry
from schemas.notify import Acknowledgement
from services.notify.console.accounts import (
    LoginLimiter,
    csrf_holds,
    csrf_token,
    hash_password,
    open_session,
    sign_session,
)
from services.notify.console.chart import chart
from services.notify.console.pages import frame_values, render
from services.notify.console.text import duration, place_name
from services.notify.console.views import (
    Filters,
    alert_cap,
    alert_json,
    alert_page,
    board,
    history,
    history_csv,
)
from services.notify.sharing import Reader, shared_series
from tests.helpers import (
    COUNTRIES,
    GEOGRAPHY,
    NOW,
    PLACES_OF,
    TITLE,
    contact,
    policies,
    shared_alerts,
    sharing,
    site_alert,
)

SECRET = "console-secret-0123456789abcdefghij"


def account(password: str = "correct horse battery", **fields) -> AccountEntry:
    return AccountEntry.model_validate(
        {
            "username": "ana.pa",
            "name": "Ana Ruiz",
            "role": "coordinator",
            "country": "PA",
            "password_hash": hash_password(password),
        }
        | fields
    )


# --- sessions, CSRF, sign-in attempts -----------------------------------------------------


def test_a_session_opens_until_it_expires_and_not_once_tampered_with():
    person = account()
    cookie = sign_session(SECRET, person, 3600, NOW.timestamp())
    session = open_session(SECRET, cookie, NOW.timestamp() + 10)
    assert session is not None and session.username == "ana.pa"
    assert open_session(SECRET, cookie, NOW.timestamp() + 3601) is None
    assert open_session("another-secret-0123456789abcdefghijk", cookie, NOW.timestamp()) is None
    payload, _, signature = cookie.rpartition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    assert open_session(SECRET, forged, NOW.timestamp()) is None
    assert open_session(SECRET, "garbage", NOW.timestamp()) is None


def test_a_new_password_ends_the_sessions_signed_before_it():
    from services.notify.console.accounts import fingerprint

    before, after = account("first password here"), account("second password here")
    session = open_session(SECRET, sign_session(SECRET, before, 3600, 0), 1)
    assert session is not None
    assert session.fingerprint == fingerprint(before) != fingerprint(after)


def test_a_form_token_belongs_to_its_session():
    assert csrf_holds(SECRET, "nonce-a", csrf_token(SECRET, "nonce-a"))
    assert not csrf_holds(SECRET, "nonce-b", csrf_token(SECRET, "nonce-a"))
    assert not csrf_holds(SECRET, "nonce-a", None)
    assert not csrf_holds(SECRET, None, csrf_token(SECRET, "nonce-a"))


def test_sign_in_attempts_are_limited_per_username_and_per_address():
    limiter = LoginLimiter(failures=5, window_s=900)
    for i in range(5):
        assert limiter.wait_s(["user:ana", "addr:1"], i) == 0
        limiter.failed(["user:ana", "addr:1"], i)
    assert limiter.wait_s(["user:ana", "addr:2"], 10) > 0  # the username, from anywhere
    assert limiter.wait_s(["user:luis", "addr:1"], 10) > 0  # the address, for anyone
    assert limiter.wait_s(["user:luis", "addr:2"], 10) == 0
    assert limiter.wait_s(["user:ana", "addr:1"], 901) == 0  # the oldest failure left the window


def test_durations_read_in_words_in_each_language():
    span = timedelta(days=2, hours=3, minutes=5)
    assert duration(span, "en") == "2 days and 3 hours"
    assert duration(timedelta(hours=1, minutes=1), "es") == "1 hora y 1 minuto"
    assert duration(timedelta(seconds=20), "fr") == "moins d'une minute"
    assert duration(timedelta(minutes=90), "pt") == "1 hora e 30 minutos"


def test_places_are_named_in_the_readers_language():
    site = Scope(kind="site", id="PA-LAJAS-BLANCAS", country="PA")
    assert place_name(site, GEOGRAPHY, "es") == "ERM Lajas Blancas (Darién, Panamá)"
    area = Scope(kind="area", id="PA-5", country="PA")
    assert place_name(area, GEOGRAPHY, "en") == "Darién (Panama)"
    source = Scope(kind="source", id="HN-INM", country="HN")
    assert place_name(source, GEOGRAPHY, "es") == "Instituto Nacional de Migración (Honduras)"
    assert place_name(Scope(kind="country", id="US", country="US"), GEOGRAPHY, "fr") == (
        "États-Unis"
    )
    assert place_name(Scope(kind="region", id="americas"), GEOGRAPHY, "pt") == "Toda a região"


# --- the board and the alert page ---------------------------------------------------------


def items_for(alerts, reader_country, policy=None, acks=None):
    view = sharing(policy)
    reader = Reader(country=reader_country)
    out = []
    for a in alerts:
        seen = view.view(a, reader)
        if seen is not None:
            out.append((a, seen, (acks or {}).get(a.alert_id, [])))
    countries = {seen.alert.alert_id: view.countries_of(seen.alert.scope) for _, seen, _ in out}
    return out, countries


def test_the_board_groups_by_country_highest_level_first_with_counts_and_acks():
    surge = site_alert("PA-LAJAS-BLANCAS", "emergency", 6000, at=NOW)
    watch = site_alert("PA-PASO-CANOAS", "watch", 400, at=NOW)
    mexico = site_alert("MX-TAPACHULA", "warning", 900, at=NOW)
    ack = Acknowledgement(
        alert_id=surge.alert_id,
        contact_id="pa-focal",
        transition=surge.transition,
        by="ana.pa",
        at=NOW - timedelta(minutes=30),
        level=surge.level,
        started_at=surge.started_at,
    )
    items, countries = items_for([watch, mexico, surge], "PA", acks={surge.alert_id: [ack]})
    contacts = {"pa-focal": contact("pa-focal", country="PA")}
    built = board(items, countries, Filters(), contacts, GEOGRAPHY, "es", NOW)
    assert [g.label for g in built.groups] == ["Panamá", "México"]
    panama = built.groups[0].rows
    assert [r.level for r in panama] == ["emergency", "watch"]
    assert panama[0].place == "ERM Lajas Blancas (Darién, Panamá)"
    assert panama[0].level_text == "Emergencia"
    assert (
        "Reconocida por ana.pa" in panama[0].acks[0].text and "30 minutos" in panama[0].acks[0].text
    )
    assert not panama[1].acks
    assert {lvl: n for lvl, _, n in built.counts} == {
        "emergency": 1,
        "warning": 1,
        "watch": 1,
    }
    assert built.by_country == {"PA": "emergency", "MX": "warning"}
    # filters keep what they name; the counts still count the other levels
    only = board(
        items, countries, Filters(country="PA", level="watch"), contacts, GEOGRAPHY, "en", NOW
    )
    assert [r.shown_id for g in only.groups for r in g.rows] == [watch.alert_id]
    assert {lvl: n for lvl, _, n in only.counts} == {"emergency": 1, "warning": 0, "watch": 1}


def test_filters_come_from_the_url_and_go_back_into_it():
    filters = Filters.of({"country": "pa", "level": "bogus", "status": "all", "rule": "surge"})
    assert filters == Filters(country="PA", level=None, rule="surge", status="all")
    assert filters.query(level="watch") == "country=PA&level=watch&rule=surge&status=all"


def test_an_acknowledgement_of_a_lower_level_does_not_show_once_the_alert_escalated():
    warning = site_alert("PA-LAJAS-BLANCAS", "warning", 3000, transition=1, at=NOW)
    emergency = site_alert("PA-LAJAS-BLANCAS", "emergency", 6000, transition=2, at=NOW)
    ack = Acknowledgement(
        alert_id=warning.alert_id,
        contact_id="pa-focal",
        transition=warning.transition,
        by="ana.pa",
        at=NOW,
        level="warning",
        started_at=warning.started_at,
    )
    items, countries = items_for([emergency], "PA", acks={emergency.alert_id: [ack]})
    built = board(items, countries, Filters(), {}, GEOGRAPHY, "en", NOW)
    assert built.groups[0].rows[0].acks == []


def page_html(alert, policy, country, language) -> str:
    """Every page a reader of `country` can open about this alert, rendered."""
    items, countries = items_for([alert], country, policy)
    frame = frame_values(
        "/console/board", language, "someone", "token", True, "2026-11-23 12:00:00", []
    )
    built = board(items, countries, Filters(status="all"), {}, GEOGRAPHY, language, NOW)
    html = render("board.html", **frame, board=built)
    shown = [seen for _, seen, _ in items]
    past = history(shown, countries, Filters(status="all"), 1, GEOGRAPHY, language, NOW)
    html += render("history.html", **frame, history=past)
    html += history_csv(shown, countries, Filters(status="all"), GEOGRAPHY, language)
    for raw, seen, acks in items:
        page = alert_page(raw, seen, acks, [seen], [], {}, [], GEOGRAPHY, language, NOW)
        series = series_of(raw)
        points = shared_series(seen, series)
        drawn = chart(points, series.levels, [seen.alert], "t", language) if points else None
        html += render("alert.html", **frame, page=page, notice=None, chart=drawn)
        html += alert_json(seen).decode() + alert_cap(seen, [seen], GEOGRAPHY, language).decode()
    return html


SERIES_VALUES = (3.0, 7.0, 42.0, 1300.0)  # small counts a floor hides, and large ones


def series_of(alert):
    """The values behind an alert: a few small and large counts, then the alert's own."""
    values = [*SERIES_VALUES, alert.value]
    return AlertSeries(
        alert_id=alert.alert_id,
        rule_id=alert.rule_id,
        kind=alert.kind,
        scope=alert.scope,
        window="P1D",
        levels={"watch": 10.0, "warning": 20.0},
        clear=5.0,
        points=[(NOW - timedelta(days=len(values) - i), v) for i, v in enumerate(values)],
        until=NOW,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alert=shared_alerts(),
    policy=policies,
    country=st.sampled_from([None, *COUNTRIES]),
    language=st.sampled_from(("en", "es", "fr", "pt")),
)
def test_no_console_page_shows_a_place_its_country_withholds_from_the_reader(
    alert, policy, country, language
):
    view = sharing(policy)
    html = page_html(alert, policy, country, language)
    if alert.scope.kind == "corridor":  # a corridor's configured name is its public label
        html = html.replace(GEOGRAPHY.corridors[alert.scope.id].name, "")
    for c in view.countries_of(alert.scope):
        if c == country or view.rule(c).outside == "full":
            continue
        names = {GEOGRAPHY.sites[s].name for s in PLACES_OF[c] if s in GEOGRAPHY.sites}
        names |= {GEOGRAPHY.areas[a].name for a in PLACES_OF[c] if a in GEOGRAPHY.areas}
        for place in PLACES_OF[c]:
            assert not re.search(rf"(?<![A-Z-]){re.escape(place)}(?![A-Z-])", html), place
        for name in names:
            assert name not in html, name
    # the chart: only where the figures are shared with the reader, and no count below the floor
    seen = view.view(alert, Reader(country=country))
    if seen is None or seen.aggregated or seen.value is None:
        assert 'id="chart-h"' not in html
    elif seen.floor and alert.kind in ("threshold", "new_value"):
        table = html.split('id="chart-h"')[-1]
        for small in SERIES_VALUES:
            if 0 < small < seen.floor:
                shown = f"<td>{int(small)}</td>"
                assert shown not in table, (small, seen.floor)


def test_the_map_shades_countries_by_their_highest_level_and_dots_only_sites_shared():
    from schemas.config import SharingFile

    surge = site_alert("PA-LAJAS-BLANCAS", "emergency", 6000, at=NOW)
    honduras = site_alert("HN-TROJES", "warning", 3000, at=NOW)
    policy = SharingFile.model_validate({"countries": {"HN": {"outside": "aggregates"}}})
    items, countries = items_for([surge, honduras], "PA", policy)
    built = board(items, countries, Filters(), {}, GEOGRAPHY, "es", NOW)
    assert built.map is not None
    shaded = {c.code: c.level for c in built.map.countries if c.level}
    assert shaded == {"PA": "emergency", "HN": "warning"}
    labels = {c.code: c.label for c in built.map.countries}
    assert labels["PA"] == "Panamá: Emergencia" and labels["BR"] == "Brasil"
    # a dot for Panama's site, none for the Honduran site its country withholds from Panama
    assert [d.label for d in built.map.dots] == [
        "Emergencia: Aumento, ERM Lajas Blancas (Darién, Panamá)"
    ]
    dot = built.map.dots[0]
    assert 0 < dot.x < built.map.width and 0 < dot.y < built.map.height


# --- ews accounts add, and the check of the accounts file --------------------------------


def test_ews_accounts_add_keeps_only_a_hash_and_the_check_reads_the_file(tmp_path):
    from click.testing import CliRunner

    from schemas.config import AccountsFile
    from services.cli import main
    from services.common.config_files import load_model
    from services.common.settings import PROJECT_ROOT
    from services.notify.console.accounts import AccountStore

    file = tmp_path / "accounts.yaml"
    add = ["accounts", "add", "ana.pa", "--name", "Ana Ruiz", "--role", "coordinator"]
    added = CliRunner().invoke(
        main,
        [
            *add,
            "--country",
            "PA",
            "--language",
            "es",
            "--contact",
            "pa-snm-focal-point",
            "--file",
            str(file),
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert added.exit_code == 0, added.output
    assert f"added ana.pa (coordinator of PA) to {file}" in added.output
    assert "a long enough password" not in file.read_text()
    assert load_model(file, AccountsFile).accounts[0].language == "es"
    store = AccountStore(file)
    assert store.verify("ana.pa", "a long enough password") is not None
    assert store.verify("ana.pa", "another password!!") is None
    assert store.verify("nobody", "a long enough password") is None
    # the same username twice, a short password, an admin with a country: refused, file unchanged
    before = file.read_text()
    again = CliRunner().invoke(
        main, [*add, "--file", str(file), "--password-stdin"], input="a long enough password\n"
    )
    assert again.exit_code == 2 and "account 'ana.pa' exists" in again.output
    short = CliRunner().invoke(main, [*add, "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    admin = CliRunner().invoke(
        main,
        [
            "accounts",
            "add",
            "root",
            "--name",
            "Root",
            "--role",
            "admin",
            "--country",
            "PA",
            "--file",
            str(file),
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert admin.exit_code == 2 and "an admin is regional" in admin.output
    assert file.read_text() == before
    # ews rules check: an account acting for another country's contact is refused at its line
    contacts = PROJECT_ROOT / "config" / "contacts.example.yaml"
    checked = CliRunner().invoke(main, ["rules", "check", str(file), str(contacts)])
    assert checked.exit_code == 0, checked.output
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(before.replace("country: PA", "country: HN"))
    refused = CliRunner().invoke(main, ["rules", "check", str(wrong), str(contacts)])
    assert refused.exit_code != 0
    assert f"{wrong}:3: accounts.0.contacts.0: account ana.pa acts for HN" in refused.output


def test_the_history_csv_has_what_the_reader_may_see_and_no_formulas():
    from schemas.config import SharingFile

    surge = site_alert("PA-LAJAS-BLANCAS", "emergency", 6000, at=NOW)
    honduras = site_alert("HN-TROJES", "warning", 3000, at=NOW).model_copy(
        update={"title": {**TITLE, "en": '=HYPERLINK("http://x")'}}
    )
    policy = SharingFile.model_validate({"countries": {"HN": {"outside": "aggregates"}}})
    items, countries = items_for([surge, honduras], "PA", policy)
    text = history_csv(
        [seen for _, seen, _ in items], countries, Filters(status="all"), GEOGRAPHY, "en"
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    by_place = {r["place"]: r for r in rows}
    assert by_place["ERM Lajas Blancas (Darién, Panama)"]["value"] == "6000.0"
    hn = by_place["Honduras"]
    assert hn["value"] == "" and hn["threshold"] == "" and "place" in hn["withheld"]
    assert hn["alert_id"].startswith("crossing-surge/country/HN/w")
    assert hn["title"].startswith("'=")  # a spreadsheet shows it, does not run it
    assert "Trojes" not in text


def test_a_delivery_record_reads_as_its_recipient_was_shown_it():
    from datetime import UTC, datetime

    from schemas.delivery import DeliveryRecord, SentContent
    from services.notify.console.views import delivery_rows

    record = DeliveryRecord(
        idempotency_key="crossing-surge/country/HN/wabc:1:pa-focal",
        alert_id="crossing-surge/country/HN/wabc",
        transition=1,
        contact_id="pa-focal",
        channel="webhook",
        target="alerts.migracion.gob.pa",
        attempt=1,
        outcome="dead",
        duration_s=0.2,
        at=datetime(2026, 11, 23, tzinfo=UTC),
        sent=SentContent(
            alert_id="crossing-surge/country/HN/wabc",
            value_shown="",
            withheld=["place", "figures"],
            body_sha256="0" * 64,
        ),
    )
    contacts = {"pa-focal": contact("pa-focal", country="PA")}
    (row,) = delivery_rows([record], contacts, "es")
    assert row.outcome == "abandonada (carta muerta)"
    assert row.value == "—" and row.withheld == "el lugar, las cifras"
    assert row.href == "/console/alerts/crossing-surge/country/HN/wabc"
