"""The console through a real notify worker and broker: sign-in (CSRF, cookies, the attempt limit),
the board and an alert page as each person may see them, acknowledging from the page, and the
security headers every page carries."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.common.settings import PROJECT_ROOT
from services.common.topics import Topics
from services.notify.console.accounts import hash_password
from tests.helpers import site_alert, webhook_contact
from tests.integration.kafka_io import produce, wait_ready

PASSWORD = "a long test password"
TITLES = {"en": "Crossing surge", "es": "Aumento de cruces", "fr": "Afflux", "pt": "Aumento"}
ACCOUNTS: list[dict[str, Any]] = [
    {
        "username": "ana.pa",
        "name": "Ana Ruiz",
        "role": "coordinator",
        "country": "PA",
        "language": "es",
        "contacts": ["pa-focal"],
    },
    {"username": "luis.hn", "name": "Luis Mejía", "role": "coordinator", "country": "HN"},
    {"username": "root", "name": "Regional admin", "role": "admin"},
    {"username": "op.pa", "name": "Omar Paz", "role": "operator", "country": "PA"},
]


@pytest.fixture
async def console(workers, tmp_path, receiver, kafka_bootstrap, namespace):
    contacts = [
        webhook_contact(receiver, "pa-focal", country="PA", min_level="emergency"),
        webhook_contact(receiver, "hn-focal", country="HN", min_level="emergency"),
    ]
    (tmp_path / "contacts.yaml").write_text(json.dumps({"version": 1, "contacts": contacts}))
    hashed = hash_password(PASSWORD)
    accounts = [a | {"password_hash": hashed} for a in ACCOUNTS]
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump({"version": 1, "accounts": accounts}))
    workers.env.update(
        EWS_CONTACTS_FILE=str(tmp_path / "contacts.yaml"),
        EWS_ACCOUNTS_FILE=str(tmp_path / "accounts.yaml"),
        EWS_CONSOLE_SECRET="console-secret-for-tests-0123456789",
    )
    started = [workers.start("notify")]
    await wait_ready(workers, started)
    for a in (
        site_alert("HN-TROJES", "warning", 3000, title=TITLES),
        site_alert("PA-LAJAS-BLANCAS", "emergency", 6123, title=TITLES),
    ):
        await produce(
            kafka_bootstrap,
            Topics(namespace).alerts,
            [a.model_dump_json().encode()],
            key=a.alert_id.encode(),
        )
    base = f"http://127.0.0.1:{started[0][1]}"
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        yield client


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no form token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD, **extra):
    """The sign-in form as a browser sends it: its CSRF token and cookie, then the post."""
    form = await client.get("/console/login")
    assert form.status_code == 200
    token = form_token(form.text)
    return await client.post(
        "/console/login",
        data={"csrf": token, "username": username, "password": password, "next": "/console/board"}
        | extra,
    )


async def board_when(client, predicate, path="/console/board"):
    for _ in range(100):
        page = await client.get(path)
        if predicate(page.text):
            return page
        await asyncio.sleep(0.2)
    pytest.fail(f"the board never showed what was expected:\n{page.text[-3000:]}")


async def test_sign_in_needs_the_forms_token_and_the_right_password(console):
    anonymous = await console.get("/console/board?country=PA", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=%2Fconsole%2Fboard%3Fcountry%3DPA"
    # no token: refused, and not signed in
    forged = await console.post("/console/login", data={"username": "ana.pa", "password": PASSWORD})
    assert forged.status_code == 403 and "ews_session" not in forged.cookies
    wrong = await sign_in(console, "ana.pa", "not the password")
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.text
    assert "ews_session" not in console.cookies
    signed = await sign_in(console, "ana.pa")
    assert signed.status_code == 303 and signed.headers["location"] == "/console/board"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; behind the TLS front it is Secure
    board = await console.get("/console/board")
    assert board.status_code == 200 and "Ana Ruiz" in board.text


async def test_behind_the_tls_front_the_session_cookie_is_secure(console):
    form = await console.get("/console/login")
    token = form_token(form.text)
    signed = await console.post(
        "/console/login",
        data={"csrf": token, "username": "luis.hn", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]


async def test_failed_sign_ins_are_limited_even_with_the_right_password_after(console):
    for _ in range(5):
        assert (await sign_in(console, "luis.hn", "guessing wrong")).status_code == 401
    limited = await sign_in(console, "luis.hn")
    assert limited.status_code == 429 and "Too many failed attempts" in limited.text
    assert "ews_session" not in console.cookies


async def test_the_board_and_the_alert_page_show_each_person_only_what_is_shared(console):
    assert (await sign_in(console, "ana.pa")).status_code == 303
    board = await board_when(console, lambda t: "Lajas Blancas" in t and "Honduras" in t)
    text = board.text
    # Spanish, places by name, the level in words, figures in the reader's form
    assert "Emergencia" in text and "ERM Lajas Blancas (Darién, Panamá)" in text
    assert "6.123 frente a un umbral de 2.500" in text
    assert "Sin reconocer" in text
    # Honduras shares aggregates: its site is named nowhere on a Panamanian's pages
    assert "Trojes" not in text and "HN-TROJES" not in text
    assert "Reservado según la política de intercambio: el lugar, las cifras" in text
    # filters live in the URL
    only_hn = await console.get("/console/board?country=HN")
    assert "Lajas Blancas" not in only_hn.text and "Honduras" in only_hn.text
    # another country's alert by its raw id: as if it did not exist
    hidden = await console.get("/console/alerts/crossing-surge/site/HN-TROJES")
    assert hidden.status_code == 404 and "Trojes" not in hidden.text
    # Luis, in Honduras, sees his own site by name
    console.cookies.clear()
    assert (await sign_in(console, "luis.hn")).status_code == 303
    own = await board_when(console, lambda t: "Trojes" in t)
    assert "Crossing surge" in own.text  # his account's language: English


async def test_acknowledging_from_the_alert_page_shows_on_the_board(console):
    assert (await sign_in(console, "ana.pa")).status_code == 303
    await board_when(console, lambda t: "Lajas Blancas" in t)
    path = "/console/alerts/crossing-surge/site/PA-LAJAS-BLANCAS"
    page = await console.get(path)
    assert page.status_code == 200
    assert "Aumento de cruces" in page.text and "pa-focal" in page.text
    token = form_token(page.text)
    # without the form's token: refused, nothing recorded
    forged = await console.post(path, data={"contact_id": "pa-focal", "action": "ack"})
    assert forged.status_code == 403 and "caducado" in forged.text
    assert "Reconocida por" not in (await console.get("/console/board")).text
    # a contact the person does not act for: refused with a message
    other = await console.post(path, data={"csrf": token, "contact_id": "hn-focal"})
    assert other.status_code == 422
    done = await console.post(
        path,
        data={
            "csrf": token,
            "contact_id": "pa-focal",
            "action": "ack",
            "comment": "equipo en camino",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = await console.get(done.headers["location"])
    assert "Reconocida en nombre de pa-focal." in after.text
    assert "ana.pa la reconoció en nombre de pa-focal: “equipo en camino”" in after.text
    board = await console.get("/console/board")
    assert "Reconocida por ana.pa en nombre de pa-focal" in board.text
    withdrawn = await console.post(
        path,
        data={"csrf": token, "contact_id": "pa-focal", "action": "withdraw"},
        follow_redirects=True,
    )
    assert withdrawn.status_code == 200 and "retirado" in withdrawn.text
    assert "Reconocida por" not in (await console.get("/console/board")).text


async def test_the_history_lists_transitions_with_filters_and_exports_csv(console):
    assert (await sign_in(console, "ana.pa")).status_code == 303
    await board_when(console, lambda t: "Lajas Blancas" in t)
    page = await console.get("/console/history?country=PA")
    assert page.status_code == 200
    assert "Historial" in page.text and "Nueva → Emergencia" in page.text
    assert "Honduras" not in page.text.split("<table")[1]
    exported = await console.get("/console/history?format=csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment; filename=ews-history-" in exported.headers["content-disposition"]
    lines = exported.text.splitlines()
    assert lines[0].startswith("evaluated_at,alert_id,rule_id,title,status,level")
    assert len(lines) == 3 and "Trojes" not in exported.text  # Honduras's site stays withheld


async def test_silences_are_previewed_created_with_a_reason_and_expired(console):
    assert (await sign_in(console, "ana.pa")).status_code == 303
    await board_when(console, lambda t: "Lajas Blancas" in t)
    coordinator = await console.get("/console/silences/new")
    assert "Solo operación y administración" in coordinator.text
    token = form_token(coordinator.text)
    refused = await console.post(
        "/console/silences/new",
        data={"csrf": token, "action": "create", "country": "PA", "comment": "x"},
    )
    assert refused.status_code == 403
    console.cookies.clear()
    assert (await sign_in(console, "op.pa")).status_code == 303
    # prefilled from the alert page's link: the preview names what it would mute
    alert = await console.get("/console/alerts/crossing-surge/site/PA-LAJAS-BLANCAS")
    link = re.search(r'href="(/console/silences/new\?[^"]+)"', alert.text)
    assert link is not None
    form = await console.get(link.group(1).replace("&amp;", "&"))
    assert "Active alerts it would mute now: 1" in form.text and "Lajas Blancas" in form.text
    token = form_token(form.text)
    fields = {
        "rule": "crossing-surge",
        "scope_kind": "site",
        "scope_id": "PA-LAJAS-BLANCAS",
        "country": "PA",
        "duration": "PT4H",
    }
    # no reason, no token, another country: each refused with a message, nothing created
    no_reason = await console.post(
        "/console/silences/new", data={"csrf": token, "action": "create", **fields}
    )
    assert no_reason.status_code == 422 and "Give a reason" in no_reason.text
    no_token = await console.post(
        "/console/silences/new", data={"action": "create", "comment": "road works", **fields}
    )
    assert no_token.status_code == 403
    honduras = await console.post(
        "/console/silences/new",
        data={
            "csrf": token,
            "action": "create",
            "comment": "x",
            "country": "HN",
            "duration": "PT1H",
        },
    )
    assert honduras.status_code == 403 and "silences alerts of PA only" in honduras.text
    listed = await console.get("/console/silences")
    assert "No silences in force." in listed.text
    created = await console.post(
        "/console/silences/new",
        data={"csrf": token, "action": "create", "comment": "road works at the crossing", **fields},
        follow_redirects=True,
    )
    assert created.status_code == 200 and "created." in created.text
    assert "road works at the crossing" in created.text and "by op.pa" in created.text
    assert "Place: ERM Lajas Blancas (Darién, Panama)" in created.text
    silence_id = re.search(r"<code>(sil-[0-9a-f]+)</code>", created.text)
    assert silence_id is not None
    expired = await console.post(
        "/console/silences",
        data={"csrf": form_token(created.text), "silence_id": silence_id.group(1)},
        follow_redirects=True,
    )
    assert expired.status_code == 200 and "expired." in expired.text
    assert "No silences in force." in expired.text


async def test_the_delivery_audit_shows_who_received_what_for_the_readers_contacts(console):
    assert (await sign_in(console, "ana.pa")).status_code == 303
    page = await board_when(console, lambda t: "entregada (200)" in t, "/console/deliveries")
    assert "pa-focal" in page.text and "crossing-surge/site/PA-LAJAS-BLANCAS" in page.text
    assert "6123" in page.text  # the figure the contact was shown
    failed = await console.get("/console/deliveries?outcome=dead")
    assert "Ninguna entrega coincide" in failed.text
    # Honduras's coordinator does not see what Panama's contacts received
    console.cookies.clear()
    assert (await sign_in(console, "luis.hn")).status_code == 303
    theirs = await console.get("/console/deliveries")
    # ...only what Honduras's own contact was sent (Panama shares in full, so its alert is named)
    assert "pa-focal" not in theirs.text and "hn-focal" in theirs.text


async def test_pages_carry_security_headers_and_static_files_are_cached(console):
    login = await console.get("/console/login")
    assert "default-src 'self'" in login.headers["content-security-policy"]
    assert login.headers["x-frame-options"] == "DENY"
    assert login.headers["cache-control"] == "no-store"
    css = re.search(r'href="(/console/static/console.css\?v=[0-9a-f]+)"', login.text)
    assert css is not None
    static = await console.get(css.group(1))
    assert static.status_code == 200 and "immutable" in static.headers["cache-control"]
    # the first page, map included, with everything it loads: within 300 KB on a slow link
    assert (await sign_in(console, "root")).status_code == 303
    board = await board_when(console, lambda t: "Lajas Blancas" in t)
    assert "<svg" in board.text
    loaded = re.findall(r'(?:href|src)="(/console/static/[^"]+)"', board.text)
    sizes = [len(board.content)] + [len((await console.get(u)).content) for u in loaded]
    assert sum(sizes) < 300_000, sizes
    assert (await console.get("/console/static/../app.py")).status_code == 404


async def test_the_alert_page_charts_the_values_the_triggers_worker_published(
    workers, tmp_path, receiver, kafka_bootstrap, namespace, camera
):
    """Reports → triggers (the values behind each transition on ews.alerts.series) → notify → the
    console's chart, its levels and its table of values."""
    from tests.helpers import crossing, observation
    from tests.integration.test_triggers import produce_observations

    contacts = [webhook_contact(receiver, "pa-focal", country="PA", min_level="emergency")]
    (tmp_path / "contacts.yaml").write_text(json.dumps({"version": 1, "contacts": contacts}))
    accounts = [a | {"password_hash": hash_password(PASSWORD)} for a in ACCOUNTS]
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump({"version": 1, "accounts": accounts}))
    workers.env.update(
        EWS_CONTACTS_FILE=str(tmp_path / "contacts.yaml"),
        EWS_ACCOUNTS_FILE=str(tmp_path / "accounts.yaml"),
        EWS_CONSOLE_SECRET="console-secret-for-tests-0123456789",
    )
    started = [workers.start("triggers"), workers.start("notify")]
    await wait_ready(workers, started)
    days = [300, 400, 200, 6000, 300]
    await produce_observations(
        kafka_bootstrap,
        Topics(namespace).observations,
        [observation(crossing(day, n)) for day, n in enumerate(days)],
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{started[1][1]}", timeout=20) as web:
        assert (await sign_in(web, "ana.pa")).status_code == 303
        page = await board_when(
            web,
            lambda t: 'id="chart-h"' in t,
            "/console/alerts/crossing-surge/site/PA-LAJAS-BLANCAS",
        )
        table = page.text.split('id="chart-h"')[1]
        assert "Los valores en que se basa" in page.text
        assert "<td>6.000</td>" in table and "<td>200</td>" in table
        # Panama's own levels (config/triggers.yaml overrides the regional 1,000/2,500/5,000)
        assert "Alerta: 4.000" in table and "Emergencia: 8.000" in table
        assert 'class="firing level-warning"' in table and "Emergencia: 5.000" not in table
    if camera is not None:  # the README's picture of an alert page
        from selenium.webdriver.common.by import By

        def shoot() -> None:
            base = f"http://127.0.0.1:{started[1][1]}"
            camera.get(f"{base}/console/alerts/crossing-surge/site/PA-LAJAS-BLANCAS")
            camera.find_element(By.ID, "username").send_keys("ana.pa")
            camera.find_element(By.ID, "password").send_keys(PASSWORD)
            camera.find_element(By.CSS_SELECTOR, "form.login button").click()
            camera.find_element(By.ID, "chart-h")
            camera.set_window_size(1280, 1500)
            camera.save_screenshot(str(ARTIFACTS / "alert-chart-es.png"))

        await asyncio.to_thread(shoot)


# --- end to end, in a real headless Chromium ---------------------------------------------

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = PROJECT_ROOT / ".cache" / "artifacts" / "console"


@pytest.fixture
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "no Chromium here: install Debian's chromium and chromium-driver (make test does, as "
            "root) to run the console's browser tests"
        )
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture
def camera():
    """Chromium for a screenshot where it is installed, else None (the test runs without it)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        yield None
        return
    driver = chromium()
    yield driver
    driver.quit()


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(10)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return driver


async def test_in_chromium_a_person_signs_in_reads_in_french_and_acknowledges(console, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    def run() -> None:
        wait = WebDriverWait(browser, 20)
        browser.get(f"{str(console.base_url).rstrip('/')}/console/board")
        assert "/console/login" in browser.current_url  # sent to sign in first
        browser.find_element(By.ID, "username").send_keys("ana.pa")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait.until(shown.text_to_be_present_in_element((By.ID, "board"), "Lajas Blancas"))
        assert "Emergencia" in browser.find_element(By.ID, "board").text
        browser.save_screenshot(str(ARTIFACTS / "board-es.png"))
        browser.find_element(By.LINK_TEXT, "Français").click()
        wait.until(shown.text_to_be_present_in_element((By.ID, "board"), "Urgence"))
        # the filter goes into the URL, and the board keeps it
        browser.find_element(By.CSS_SELECTOR, "select[name=country] option[value=PA]").click()
        browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
        wait.until(lambda b: "country=PA" in b.current_url)
        assert "Honduras" not in browser.find_element(By.CSS_SELECTOR, "#board .lists").text
        # the map: Panama shaded at its level, a dot on the site, each named for screen readers
        panama = browser.find_element(By.CSS_SELECTOR, "path.country.level-emergency title")
        assert panama.get_attribute("textContent") == "Panama: Urgence"
        assert browser.find_elements(By.CSS_SELECTOR, "circle.site.level-emergency")
        browser.find_element(By.LINK_TEXT, "Afflux").click()
        wait.until(shown.presence_of_element_located((By.CSS_SELECTOR, ".alert-page")))
        browser.find_element(By.ID, "comment").send_keys("équipe en route")
        browser.save_screenshot(str(ARTIFACTS / "alert-fr.png"))
        browser.find_element(By.CSS_SELECTOR, "button[value=ack]").click()
        wait.until(shown.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), "pa-focal"))
        browser.find_element(By.LINK_TEXT, "Retour au tableau").click()
        wait.until(shown.text_to_be_present_in_element((By.ID, "board"), "Prise en compte par"))
        browser.save_screenshot(str(ARTIFACTS / "board-acknowledged-fr.png"))
        # keyboard: the sign-out button is reachable and labelled
        assert browser.find_element(By.CSS_SELECTOR, "form.inline button").text == "Se déconnecter"

    await asyncio.to_thread(run)


def contact_form(receiver, cid: str, secret: str, **fields) -> dict:
    """The add-a-contact form as a person fills it in."""
    return {
        "id": cid,
        "name": "Albergue Lajas Blancas",
        "organisation": "Cruz Roja",
        "country": "PA",
        "language": "es",
        "min_level": "warning",
        "format": "json",
        "countries": "",
        "corridors": "",
        "trigger_ids": "",
        "escalation_contacts": "",
        "group_wait": "PT1M",
        "channel_type_0": "webhook",
        "channel_target_0": receiver.url_for(cid),
        "channel_was_0": "",
        "channel_secret_0": secret,
    } | fields


async def contact_ids(client) -> set[str]:
    page = await client.get("/console/contacts")
    return set(re.findall(r"<code>([a-z0-9.-]+)</code>", page.text))


async def test_an_operator_adds_tests_edits_and_removes_a_contact_of_their_country(
    console, receiver
):
    assert (await sign_in(console, "op.pa")).status_code == 303
    assert await contact_ids(console) == {"pa-focal"}  # Panama's, not Honduras's
    page = await console.get("/console/contacts/new?lang=es")  # the switch, kept in a cookie
    token = form_token(page.text)
    secret = "shelter-secret-0123456789"
    receiver.secrets["pa-shelter"] = secret
    # bad input: a clear message naming the field, the form kept, nothing added
    short = contact_form(receiver, "pa-shelter", "short", csrf=token, name="")
    refused = await console.post("/console/contacts/new", data=short)
    assert refused.status_code == 422
    assert "Nombre:" in refused.text and "Canal 1: Secreto del webhook" in refused.text
    assert 'value="Cruz Roja"' in refused.text
    forged = await console.post(
        "/console/contacts/new", data=contact_form(receiver, "pa-shelter", secret)
    )
    assert forged.status_code == 403
    elsewhere = contact_form(receiver, "pa-shelter", secret, csrf=token, country="HN")
    assert (await console.post("/console/contacts/new", data=elsewhere)).status_code == 403
    assert await contact_ids(console) == {"pa-focal"}
    added = await console.post(
        "/console/contacts/new", data=contact_form(receiver, "pa-shelter", secret, csrf=token)
    )
    assert added.status_code == 303, added.text[-2000:]
    listed = await console.get(added.headers["location"])
    assert "Contacto pa-shelter añadido." in listed.text and "<td>Alerta</td>" in listed.text
    # a test message: signed with the contact's secret, marked as a test, in its language
    tested = await console.post(
        "/console/contacts/pa-shelter", data={"csrf": token, "action": "test"}
    )
    assert tested.status_code == 200 and "entregado (200)" in tested.text
    probe = next(r for r in receiver.received.values() if r.contact_id == "pa-shelter")
    assert probe.payload["test"] is True and "prueba" in probe.payload["title"]
    assert "alert_id" not in probe.payload
    # edit: the secret field left empty keeps the secret (the next test is still signed right)
    edit = await console.get("/console/contacts/pa-shelter")
    assert secret not in edit.text and 'value="Albergue Lajas Blancas"' in edit.text
    changed = contact_form(receiver, "pa-shelter", "", csrf=token, min_level="emergency")
    changed |= {"channel_was_0": "0"}
    del changed["id"]
    saved = await console.post("/console/contacts/pa-shelter", data=changed)
    assert saved.status_code == 303, saved.text[-2000:]
    assert "Emergencia" in (await console.get("/console/contacts")).text
    before = receiver.bad_signatures
    again = await console.post(
        "/console/contacts/pa-shelter", data={"csrf": token, "action": "test"}
    )
    assert "entregado (200)" in again.text and receiver.bad_signatures == before
    # the file's contact: shown, tested, not changed here
    filed = await console.get("/console/contacts/pa-focal")
    assert "definido en el archivo de contactos" in filed.text and "fieldset disabled" in filed.text
    kept = await console.post(
        "/console/contacts/pa-focal", data={"csrf": token, "action": "delete", "confirm": "1"}
    )
    assert kept.status_code == 409 and "pa-focal" in await contact_ids(console)
    # Honduras's contact is as if it did not exist
    assert (await console.get("/console/contacts/hn-focal")).status_code == 404
    # remove: asked to confirm first, then gone
    ask = await console.post(
        "/console/contacts/pa-shelter", data={"csrf": token, "action": "delete"}
    )
    assert ask.status_code == 200 and "Pulse el botón otra vez" in ask.text
    assert "pa-shelter" in await contact_ids(console)
    gone = await console.post(
        "/console/contacts/pa-shelter", data={"csrf": token, "action": "delete", "confirm": "1"}
    )
    assert gone.status_code == 303 and "pa-shelter" not in await contact_ids(console)


async def test_a_coordinator_reads_contacts_but_changes_none(console, receiver):
    assert (await sign_in(console, "ana.pa")).status_code == 303
    page = await console.get("/console/contacts")
    assert "pa-focal" in page.text and "/console/contacts/new" not in page.text
    token = form_token(page.text)
    secret = "shelter-secret-0123456789"
    refused = await console.post(
        "/console/contacts/new", data=contact_form(receiver, "pa-other", secret, csrf=token)
    )
    assert refused.status_code == 403 and "Solo los operadores" in refused.text
    probe = await console.post("/console/contacts/pa-focal", data={"csrf": token, "action": "test"})
    assert probe.status_code == 403 and not receiver.received
    assert await contact_ids(console) == {"pa-focal"}


async def test_in_chromium_an_operator_silences_from_an_alert_and_tests_a_contact(
    console, browser, receiver
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    def run() -> None:
        wait = WebDriverWait(browser, 20)
        base = str(console.base_url).rstrip("/")
        browser.get(f"{base}/console/alerts/crossing-surge/site/PA-LAJAS-BLANCAS?lang=es")
        browser.find_element(By.ID, "username").send_keys("op.pa")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait.until(shown.presence_of_element_located((By.CSS_SELECTOR, ".alert-page")))
        browser.find_element(By.LINK_TEXT, "Silenciar alertas como esta").click()
        # the form comes prefilled from the alert, with what it would mute
        wait.until(shown.text_to_be_present_in_element((By.ID, "preview-h"), "1"))
        assert "Lajas Blancas" in browser.find_element(By.CSS_SELECTOR, ".preview").text
        browser.find_element(By.CSS_SELECTOR, "button[value=create]").click()
        # no reason: refused, said so, the form kept
        wait.until(shown.presence_of_element_located((By.CSS_SELECTOR, ".error")))
        browser.find_element(By.ID, "comment").send_keys("obras en la carretera")
        browser.find_element(By.CSS_SELECTOR, "button[value=create]").click()
        wait.until(shown.presence_of_element_located((By.CSS_SELECTOR, ".notice")))
        assert "obras en la carretera" in browser.find_element(By.CSS_SELECTOR, ".silences").text
        browser.save_screenshot(str(ARTIFACTS / "silences-es.png"))
        # contacts: Panama's contact, and a test message it receives
        browser.find_element(By.LINK_TEXT, "Contactos").click()
        wait.until(shown.presence_of_element_located((By.CSS_SELECTOR, "table.contacts")))
        assert "hn-focal" not in browser.find_element(By.CSS_SELECTOR, "main").text
        browser.find_element(By.LINK_TEXT, "pa-focal").click()
        browser.find_element(By.CSS_SELECTOR, "button[value=test]").click()
        wait.until(shown.text_to_be_present_in_element((By.ID, "tested-h"), "prueba"))
        assert "entregado (200)" in browser.find_element(By.CSS_SELECTOR, ".tested").text
        browser.save_screenshot(str(ARTIFACTS / "contact-test-es.png"))

    await asyncio.to_thread(run)
    assert any(r.payload.get("test") for r in receiver.received.values())


async def test_an_alert_exports_as_json_and_cap_as_the_reader_sees_it(console):
    assert (await sign_in(console, "ana.pa")).status_code == 303
    path = "/console/alerts/crossing-surge/site/PA-LAJAS-BLANCAS"
    await board_when(console, lambda t: "Lajas Blancas" in t, path)
    page = await console.get(path)
    assert 'href="?format=cap"' in page.text and 'href="?format=json"' in page.text
    cap = await console.get(f"{path}?format=cap")
    assert cap.status_code == 200 and cap.headers["content-type"].startswith("application/cap+xml")
    assert "attachment" in cap.headers["content-disposition"]
    assert "<identifier>ews:crossing-surge/site/PA-LAJAS-BLANCAS:1</identifier>" in cap.text
    assert "<language>es</language>" in cap.text  # the reader's language
    exported = (await console.get(f"{path}?format=json")).json()
    assert exported["value"] == 6123 and exported["withheld"] == []
    # signed out: nothing exported
    console.cookies.clear()
    assert (await console.get(f"{path}?format=cap", follow_redirects=False)).status_code == 303
