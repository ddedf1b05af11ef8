"""The console's HTTP side: sign-in, sessions, CSRF, the board and the alert page, served by each
notify worker under /console (it reads the same picture, policy, contacts and acknowledgements as
the API, and writes through the same operations, so it needs no store of its own)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

import faust
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from schemas import Contact, Scope
from schemas.config import AccountEntry
from schemas.types import as_timedelta, parse_duration
from services.common.auth import Principal
from services.common.config_files import ConfigError

from .. import metrics
from ..api import MANAGERS, ApiError, Current, Operations
from ..audit import DeliveryQuery
from ..rendering import title_of
from ..sharing import Reader, shared_series
from .accounts import (
    AccountStore,
    LoginLimiter,
    Session,
    csrf_holds,
    csrf_token,
    fingerprint,
    open_session,
    principal_of,
    sign_session,
)
from .chart import chart
from .contacts import Kit, register_contact_pages
from .text import LANGUAGE_NAMES, LANGUAGES, ROLES, country_name, duration, place_name, say
from .views import (
    HISTORY_PAGE,
    SILENCE_DURATIONS,
    Filters,
    alert_cap,
    alert_href,
    alert_json,
    alert_page,
    board,
    delivery_rows,
    history,
    history_csv,
    row_of,
    silence_rows,
)

if TYPE_CHECKING:
    from ..app import NotifyState

log = logging.getLogger(__name__)
SESSION_COOKIE = "ews_session"
LOGIN_COOKIE = "ews_login"
LANGUAGE_COOKIE = "ews_lang"
STATIC = ("console.css", "console.js")
OUTCOMES = ("delivered", "failed", "refused", "dead")
CAP_TYPE = "application/cap+xml"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("services.notify.console", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    return env


@cache
def _static(name: str) -> bytes:
    return (resources.files("services.notify.console") / "static" / name).read_bytes()


def static_url(name: str) -> str:
    """A static file's URL with its content's digest, so it can be cached for a long time."""
    return f"/console/static/{name}?v={hashlib.sha256(_static(name)).hexdigest()[:10]}"


def render(template: str, **values: Any) -> str:
    return _env().get_template(template).render(**values)


def frame_values(
    here: str,
    language: str,
    who: str,
    csrf: str,
    loaded: bool,
    as_of: str,
    lang_links: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """What every signed-in page's frame shows."""
    return {
        "here": here,
        "lang": language,
        "t": lambda key, **kw: say(language, key, **kw),
        "lang_links": lang_links,
        "who": who,
        "csrf": csrf,
        "loaded": loaded,
        "as_of": as_of,
    }


def secure_request(request: Any) -> bool:
    """HTTPS here or at the documented TLS front (which sets X-Forwarded-Proto)."""
    return bool(request.secure) or request.headers.get("X-Forwarded-Proto") == "https"


def client_address(request: Any) -> str:
    """The client's address; behind a front on this machine, the one it forwarded."""
    remote = request.remote or "?"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and remote in ("127.0.0.1", "::1"):
        return forwarded.split(",")[-1].strip()
    return remote


def language_links(request: Any) -> list[tuple[str, str, str]]:
    """(code, name, this page in that language) for the language switch."""
    kept = [(k, v) for k, v in request.query.items() if k not in ("lang", "fragment")]
    return [
        (code, LANGUAGE_NAMES[code], f"{request.path}?{urlencode([*kept, ('lang', code)])}")
        for code in LANGUAGES
    ]


def local_next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/board"


def register_console(app: faust.App, state: NotifyState, ops: Operations) -> AccountStore:
    settings = state.settings
    accounts = AccountStore(settings.accounts_file)
    key = settings.console_secret or settings.link_secret
    if accounts.configured and key is None:
        raise ConfigError(
            [
                f"{settings.accounts_file}: the console needs EWS_CONSOLE_SECRET (or "
                "EWS_LINK_SECRET) to sign sessions: 32 or more random characters, the same on "
                "every notify worker"
            ]
        )
    secret = key.get_secret_value() if key is not None else ""
    lifetime = as_timedelta(parse_duration(settings.console_session_ttl)).total_seconds()
    limiter = LoginLimiter()

    # --- responses -------------------------------------------------------------------------

    def respond(view, status: int, body: str, route: str) -> Any:
        metrics.API_REQUESTS.labels(f"console-{route}", str(status)).inc()
        response = view.html(body, status=status)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-store"
        return response

    def redirect(view, target: str, route: str) -> Any:
        metrics.API_REQUESTS.labels(f"console-{route}", "303").inc()
        response = view.html("", status=303)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Location"] = target
        response.headers["Cache-Control"] = "no-store"
        return response

    def cookie(response, request, name: str, value: str, max_age: int | None, path: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            httponly=True,
            samesite="Strict" if name == LOGIN_COOKIE else "Lax",
            secure=secure_request(request),
        )

    def language_of(request, account: AccountEntry | None) -> str:
        asked = request.query.get("lang")
        if asked in LANGUAGES:
            return asked
        kept = request.cookies.get(LANGUAGE_COOKIE)
        if kept in LANGUAGES:
            return kept
        return account.language if account is not None else "en"

    def keep_language(response, request) -> None:
        asked = request.query.get("lang")
        if asked in LANGUAGES:
            cookie(response, request, LANGUAGE_COOKIE, asked, 365 * 86400, "/console")

    # --- who is asking ----------------------------------------------------------------------

    def signed_in(request) -> tuple[AccountEntry, Session] | None:
        session = open_session(secret, request.cookies.get(SESSION_COOKIE), time.time())
        if session is None:
            return None
        account = accounts.accounts.get(session.username)
        if account is None or fingerprint(account) != session.fingerprint:
            return None  # removed from the file, or its password changed
        return account, session

    def frame(request, account: AccountEntry, session: Session, language: str) -> dict:
        country = f", {country_name(account.country, language)}" if account.country else ""
        who = say(
            language,
            "signed_in_as",
            name=account.name,
            role=ROLES[language][account.role],
            country=country,
        )
        return frame_values(
            request.path,
            language,
            who,
            csrf_token(secret, session.nonce),
            state.views_loaded(),
            datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            language_links(request),
        )

    def ask_to_sign_in(view, request, route: str):
        if request.query.get("fragment"):
            return respond(view, 401, "", route)
        target = request.path + (f"?{request.query_string}" if request.query_string else "")
        return redirect(view, f"/console/login?next={quote(target, safe='')}", route)

    # --- sign-in ----------------------------------------------------------------------------

    def login_form(view, request, status: int, error: str | None, username: str = "") -> Any:
        language = language_of(request, None)
        nonce = secrets.token_urlsafe(16)
        body = render(
            "login.html",
            lang=language,
            t=lambda key, **kw: say(language, key, **kw),
            lang_links=language_links(request),
            csrf=csrf_token(secret, f"login:{nonce}"),
            next=local_next(request.query.get("next")),
            error=error,
            username=username,
        )
        response = respond(view, status, body, "login")
        cookie(response, request, LOGIN_COOKIE, nonce, 3600, "/console/login")
        keep_language(response, request)
        return response

    async def login_page(view, request):
        if not accounts.configured:
            return respond(view, 404, "the console is not configured (EWS_ACCOUNTS_FILE)", "login")
        return login_form(view, request, 200, None)

    async def login(view, request):
        if not accounts.configured:
            return respond(view, 404, "the console is not configured (EWS_ACCOUNTS_FILE)", "login")
        form = await request.post()
        language = language_of(request, None)
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not csrf_holds(secret, f"login:{nonce}" if nonce else None, form.get("csrf")):
            return login_form(view, request, 403, say(language, "csrf"))
        username = str(form.get("username", "")).strip()[:120]
        keys = [f"user:{username.lower()}", f"addr:{client_address(request)}"]
        now = time.time()
        wait = limiter.wait_s(keys, now)
        if wait > 0:
            log.warning(
                "console sign-in refused for %r from %s: too many failures", username, keys[1]
            )
            text = say(language, "too_many", wait=duration_minutes(wait, language))
            return login_form(view, request, 429, text, username)
        account = accounts.verify(username, str(form.get("password", "")))
        if account is None:
            limiter.failed(keys, now)
            log.info("console sign-in failed for %r from %s", username, keys[1])
            return login_form(view, request, 401, say(language, "bad_credentials"), username)
        limiter.succeeded(keys[0])
        log.info("console sign-in: %s from %s", account.username, keys[1])
        response = redirect(view, local_next(str(form.get("next", ""))), "login")
        token = sign_session(secret, account, lifetime, now)
        cookie(response, request, SESSION_COOKIE, token, int(lifetime), "/console")
        response.del_cookie(LOGIN_COOKIE, path="/console/login")
        return response

    async def logout(view, request):
        found = signed_in(request)
        form = await request.post()
        if found is not None and csrf_holds(secret, found[1].nonce, form.get("csrf")):
            log.info("console sign-out: %s", found[0].username)
        response = redirect(view, "/console/login", "logout")
        response.del_cookie(SESSION_COOKIE, path="/console")
        return response

    # --- the board ----------------------------------------------------------------------------

    def countries_by_shown(items: list[Current]) -> dict[str, list[str]]:
        return {i.seen.alert.alert_id: state.policy.countries_of(i.seen.alert.scope) for i in items}

    async def board_page(view, request):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "board")
        account, session = found
        language = language_of(request, account)
        principal = principal_of(account)
        items = ops.current(principal)
        built = board(
            [(i.alert, i.seen, i.acks) for i in items],
            countries_by_shown(items),
            Filters.of(request.query),
            state.all_contacts(),
            state.geography,
            language,
            datetime.now(UTC),
        )
        values = frame(request, account, session, language) | {"board": built}
        template = "board_fragment.html" if request.query.get("fragment") else "board.html"
        response = respond(view, 200, render(template, **values), "board")
        keep_language(response, request)
        return response

    # --- history ----------------------------------------------------------------------------

    async def history_page(view, request):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "history")
        account, session = found
        language = language_of(request, account)
        reader = Reader.of_principal(principal_of(account))
        transitions = [
            shared
            for shared in (state.policy.view(a, reader) for a in state.picture.history)
            if shared is not None
        ]
        countries = {
            t.alert.alert_id: state.policy.countries_of(t.alert.scope) for t in transitions
        }
        filters = Filters.of(request.query, default_status="all")
        if request.query.get("format") == "csv":
            text = history_csv(transitions, countries, filters, state.geography, language)
            response = view.bytes(text.encode("utf-8"), content_type="text/csv")
            response.headers.update(SECURITY_HEADERS)
            response.headers["Cache-Control"] = "no-store"
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
            response.headers["Content-Disposition"] = (
                f"attachment; filename=ews-history-{stamp}.csv"
            )
            metrics.API_REQUESTS.labels("console-history", "200").inc()
            return response
        try:
            page = int(request.query.get("page", "1"))
        except ValueError:
            page = 1
        built = history(
            transitions, countries, filters, page, state.geography, language, datetime.now(UTC)
        )
        values = frame(request, account, session, language) | {"history": built}
        response = respond(view, 200, render("history.html", **values), "history")
        keep_language(response, request)
        return response

    # --- silences ---------------------------------------------------------------------------

    def rule_titles(language: str) -> dict[str, str]:
        titles: dict[str, str] = {}
        for alert in state.picture.latest.values():
            titles.setdefault(alert.rule_id, title_of(alert, language))
        return titles

    def silences_list(view, request, account, session, status: int, notice=None, error=None):
        language = language_of(request, account)
        principal = principal_of(account)
        now = datetime.now(UTC)
        shown = ops.silences(principal, request.query.get("all") in ("1", "true"))
        rows = silence_rows(
            shown,
            lambda s: ops.may_end_silence(s, principal),
            rule_titles(language),
            state.geography,
            language,
            now,
        )
        values = frame(request, account, session, language) | {
            "rows": rows,
            "manager": account.role in MANAGERS,
            "notice": notice,
            "error": error,
        }
        response = respond(view, status, render("silences.html", **values), "silences")
        keep_language(response, request)
        return response

    async def silences_page(view, request):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "silences")
        account, session = found
        language = language_of(request, account)
        notice = None
        done = request.query.get("expired") or request.query.get("created")
        if done and done in state.silences.items:
            key = "expired_now" if request.query.get("expired") else "silenced_now"
            notice = say(language, key, id=done)
        return silences_list(view, request, account, session, 200, notice)

    async def expire_silence(view, request):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "silences")
        account, session = found
        language = language_of(request, account)
        form = await request.post()
        if not csrf_holds(secret, session.nonce, form.get("csrf")):
            return silences_list(view, request, account, session, 403, error=say(language, "csrf"))
        if account.role not in MANAGERS:
            error = say(language, "managers_only")
            return silences_list(view, request, account, session, 403, error=error)
        silence_id = str(form.get("silence_id", ""))
        try:
            await ops.end_silence(silence_id, principal_of(account))
        except ApiError as exc:
            error = say(language, "not_allowed", why=exc.message)
            return silences_list(view, request, account, session, exc.status, error=error)
        return redirect(view, f"/console/silences?expired={quote(silence_id)}", "silences")

    def silence_form_values(source) -> dict[str, str]:
        keys = ("rule", "country", "scope_kind", "scope_id", "duration", "comment")
        values = {k: str(source.get(k, "")).strip()[:500] for k in keys}
        values["duration"] = values["duration"] or "PT4H"
        return values

    def as_silence(values: dict[str, str]) -> dict[str, str]:
        """The form as the API's silence: empty matchers left out."""
        data = {
            "rule_id": values["rule"],
            "country": values["country"],
            "scope_kind": values["scope_kind"],
            "scope_id": values["scope_id"],
            "duration": values["duration"],
            "comment": values["comment"],
        }
        return {k: v for k, v in data.items() if v}

    def silence_form(view, request, account, session, values, status, preview, error):
        language = language_of(request, account)
        principal = principal_of(account)
        scope_label = ""
        if values["scope_id"] and values["scope_kind"] in ("site", "area", "country", "corridor"):
            scope = Scope.model_validate({"kind": values["scope_kind"], "id": values["scope_id"]})
            scope_label = place_name(scope, state.geography, language)
        codes = [account.country] if account.country else sorted(state.policy.all_countries)
        page = frame(request, account, session, language) | {
            "manager": account.role in MANAGERS,
            "regional": principal.regional,
            "form": values,
            "rules": sorted(rule_titles(language).items(), key=lambda r: r[1]),
            "countries": sorted(
                ((c, country_name(c, language)) for c in codes), key=lambda c: c[1]
            ),
            "durations": [
                (d, duration(as_timedelta(parse_duration(d)), language)) for d in SILENCE_DURATIONS
            ],
            "place": scope_label,
            "preview": preview,
            "error": error,
        }
        response = respond(view, status, render("silence_new.html", **page), "silence-new")
        keep_language(response, request)
        return response

    def muted_now(values: dict[str, str], account: AccountEntry, language: str) -> list:
        """The active alerts the silence would mute, as this person may see them."""
        principal = principal_of(account)
        data = as_silence(values) | {"comment": values["comment"] or "preview"}
        proposed = ops.propose_silence(data, principal)
        now = datetime.now(UTC)
        rows = []
        for item in ops.current(principal):
            if item.alert.status == "firing" and proposed.matches(item.alert, now):
                rows.append(
                    row_of(
                        item.alert,
                        item.seen,
                        item.acks,
                        {},
                        state.geography,
                        language,
                        now,
                    )
                )
        return rows

    async def new_silence_page(view, request):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "silence-new")
        account, session = found
        values = silence_form_values(request.query)
        preview, error = None, None
        asked = any(values[k] for k in ("rule", "country", "scope_id"))
        if account.role in MANAGERS and (asked or account.country is not None):
            try:
                preview = muted_now(values, account, language_of(request, account))
            except ApiError as exc:
                error = say(language_of(request, account), "not_allowed", why=exc.message)
        return silence_form(view, request, account, session, values, 200, preview, error)

    async def create_silence(view, request):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "silence-new")
        account, session = found
        language = language_of(request, account)
        form = await request.post()
        values = silence_form_values(form)
        if not csrf_holds(secret, session.nonce, form.get("csrf")):
            error = say(language, "csrf")
            return silence_form(view, request, account, session, values, 403, None, error)
        if account.role not in MANAGERS:
            error = say(language, "managers_only")
            return silence_form(view, request, account, session, values, 403, None, error)
        try:
            preview = muted_now(values, account, language)
        except ApiError as exc:
            error = say(language, "not_allowed", why=exc.message)
            return silence_form(view, request, account, session, values, exc.status, None, error)
        if form.get("action") != "create":
            return silence_form(view, request, account, session, values, 200, preview, None)
        if not values["comment"]:
            error = say(language, "reason_required")
            return silence_form(view, request, account, session, values, 422, preview, error)
        try:
            silence = await ops.add_silence(as_silence(values), principal_of(account))
        except ApiError as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or []) or (
                exc.message
            )
            error = say(language, "not_allowed", why=detail)
            return silence_form(view, request, account, session, values, exc.status, preview, error)
        return redirect(view, f"/console/silences?created={quote(silence.id)}", "silence-new")

    # --- the delivery audit ----------------------------------------------------------------

    async def deliveries_page(view, request):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "deliveries")
        account, session = found
        language = language_of(request, account)
        principal = principal_of(account)
        query = request.query
        outcome = query.get("outcome") if query.get("outcome") in OUTCOMES else None
        wanted = DeliveryQuery(contact_id=query.get("contact") or None, outcome=outcome)
        records = ops.deliveries(principal, wanted)
        pages = max(1, -(-len(records) // HISTORY_PAGE))
        try:
            page = min(max(1, int(query.get("page", "1"))), pages)
        except ValueError:
            page = 1
        contacts = state.all_contacts()
        shown = records[(page - 1) * HISTORY_PAGE : page * HISTORY_PAGE]
        kept = [(k, v) for k, v in query.items() if k not in ("page", "lang")]
        visible = sorted(
            (c.id, c.name) for c in contacts.values() if ops.sees_contact(principal, c)
        )
        values = frame(request, account, session, language) | {
            "rows": delivery_rows(shown, contacts, language),
            "wanted": wanted,
            "contacts": visible,
            "complete": state.deliveries.caught_up.is_set(),
            "page": page,
            "pages": pages,
            "total": len(records),
            "page_link": lambda n: f"/console/deliveries?{urlencode([*kept, ('page', n)])}",
        }
        response = respond(view, 200, render("deliveries.html", **values), "deliveries")
        keep_language(response, request)
        return response

    # --- one alert ----------------------------------------------------------------------------

    def ack_candidates(account: AccountEntry, principal: Principal) -> list[Contact]:
        """The contacts this person acknowledges for: those the account names, else those of
        their country."""
        contacts = state.all_contacts()
        if account.contacts:
            named = [contacts[c] for c in account.contacts if c in contacts]
            return [c for c in named if ops.sees_contact(principal, c)]
        if account.country is None:
            return []
        return sorted(
            (c for c in contacts.values() if c.country == account.country), key=lambda c: c.name
        )

    def show_alert(view, request, account, session, shown_id: str, status: int, notice: str | None):
        language = language_of(request, account)
        principal = principal_of(account)
        try:
            alert = ops.resolve(shown_id, principal)
        except ApiError:
            body = render(
                "message.html",
                **frame(request, account, session, language),
                heading=say(language, "no_alert"),
                text="",
            )
            return respond(view, 404, body, "alert")
        seen = ops.shown(alert, principal)
        assert seen is not None  # resolve() found it as this principal sees it
        item = next((i for i in ops.current(principal) if i.alert.alert_id == alert.alert_id), None)
        acks = item.acks if item is not None else []
        reader = Reader.of_principal(principal)
        transitions = [
            shared
            for shared in (
                state.policy.view(a, reader)
                for a in state.picture.history
                if a.alert_id == alert.alert_id
            )
            if shared is not None
        ]
        contacts = state.all_contacts()
        deliveries = ops.deliveries(principal, DeliveryQuery(alert_id=seen.alert.alert_id))
        page = alert_page(
            alert,
            seen,
            acks,
            transitions,
            deliveries,
            contacts,
            ack_candidates(account, principal),
            state.geography,
            language,
            datetime.now(UTC),
            state.member_titles(alert),
        )
        if request.query.get("format") in ("json", "cap"):
            if request.query["format"] == "json":
                data, kind, name = alert_json(seen), "application/json", "alert.json"
            else:
                earlier = [
                    e
                    for e in (
                        state.policy.view(a, reader)
                        for a in state.picture.earlier_in_episode(alert)
                    )
                    if e is not None
                ]
                data, kind, name = (
                    alert_cap(seen, earlier, state.geography, language, state.cap_profile),
                    CAP_TYPE,
                    "alert.cap.xml",
                )
            export = view.bytes(data, content_type=kind)
            export.headers.update(SECURITY_HEADERS)
            export.headers["Cache-Control"] = "no-store"
            export.headers["Content-Disposition"] = f"attachment; filename={name}"
            metrics.API_REQUESTS.labels("console-alert", "200").inc()
            return export
        series = state.series.items.get(alert.alert_id)
        points = shared_series(seen, series)
        drawn = (
            chart(
                points,
                series.levels,
                [t.alert for t in transitions],
                say(language, "chart_label", title=page.row.title),
                language,
            )
            if points is not None and series is not None
            else None
        )
        body = render(
            "alert.html",
            **frame(request, account, session, language),
            page=page,
            notice=notice,
            chart=drawn,
        )
        response = respond(view, status, body, "alert")
        keep_language(response, request)
        return response

    async def alert_view(view, request, alert_id):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "alert")
        account, session = found
        notice = None
        done, contact = (
            request.query.get("done"),
            state.all_contacts().get(request.query.get("contact", "")),
        )
        if done in ("ack", "withdraw") and contact is not None:
            language = language_of(request, account)
            key = "acked_now" if done == "ack" else "withdrawn_now"
            notice = say(language, key, contact=contact.name)
        return show_alert(view, request, account, session, unquote(alert_id), 200, notice)

    async def alert_action(view, request, alert_id):
        found = signed_in(request)
        if found is None:
            return ask_to_sign_in(view, request, "alert")
        account, session = found
        language = language_of(request, account)
        shown_id = unquote(alert_id)
        form = await request.post()
        if not csrf_holds(secret, session.nonce, form.get("csrf")):
            return show_alert(view, request, account, session, shown_id, 403, say(language, "csrf"))
        principal = principal_of(account)
        contact_id = str(form.get("contact_id", ""))
        allowed = {c.id: c for c in ack_candidates(account, principal)}
        if contact_id not in allowed:
            return show_alert(
                view, request, account, session, shown_id, 422, say(language, "no_contacts")
            )
        done = "withdraw" if form.get("action") == "withdraw" else "ack"
        try:
            if done == "withdraw":
                await ops.withdraw(shown_id, contact_id, principal)
            else:
                comment = str(form.get("comment", ""))[:500]
                await ops.acknowledge(shown_id, contact_id, principal, comment, "console")
        except ApiError as exc:
            text = say(language, "not_firing") if exc.status == 409 else say(language, "no_alert")
            return show_alert(view, request, account, session, shown_id, exc.status, text)
        # after a write, a redirect: reloading the page does not send the form again
        target = f"{alert_href(shown_id)}?done={done}&contact={quote(contact_id)}"
        return redirect(view, target, "alert")

    async def static(view, request, name):
        if name not in STATIC:
            return respond(view, 404, "", "static")
        response = view.bytes(
            _static(name),
            content_type="text/css" if name.endswith(".css") else "text/javascript",
        )
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response

    async def home(view, request):
        return redirect(view, "/console/board", "home")

    @app.page("/console")
    class HomeView(faust.web.View):
        get = home

    @app.page("/console/login")
    class LoginView(faust.web.View):
        get = login_page
        post = login

    @app.page("/console/logout")
    class LogoutView(faust.web.View):
        post = logout

    @app.page("/console/board")
    class BoardView(faust.web.View):
        get = board_page

    @app.page("/console/history")
    class HistoryView(faust.web.View):
        get = history_page

    @app.page("/console/silences")
    class SilencesView(faust.web.View):
        get = silences_page
        post = expire_silence

    @app.page("/console/silences/new")
    class NewSilenceView(faust.web.View):
        get = new_silence_page
        post = create_silence

    @app.page("/console/deliveries")
    class DeliveriesView(faust.web.View):
        get = deliveries_page

    @app.page("/console/alerts/{alert_id:.+}")
    class AlertView(faust.web.View):
        get = alert_view
        post = alert_action

    @app.page("/console/static/{name}")
    class StaticView(faust.web.View):
        get = static

    register_contact_pages(
        app,
        state,
        ops,
        Kit(
            signed_in=signed_in,
            frame=frame,
            respond=respond,
            redirect=redirect,
            ask_to_sign_in=ask_to_sign_in,
            language_of=language_of,
            keep_language=keep_language,
            render=render,
            secret=secret,
        ),
    )
    return accounts


def duration_minutes(seconds: float, language: str) -> str:
    return duration(timedelta(seconds=max(60.0, seconds)), language)
