"""The console's contacts pages: operators list, add, edit and remove the contacts of the countries
they manage, and send any of them a test message. Every write goes through the API's operations
(the same validation, webhook-address check, authorisation and audit); a form never shows a
webhook's secret, and a secret left empty keeps the one the channel had."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import faust

from schemas import Contact, WebhookChannel

from ..api import MANAGERS, ApiError, Operations
from ..probe import ProbeResult
from .accounts import csrf_holds, principal_of
from .text import LANGUAGE_NAMES, TEXT, country_name, say

if TYPE_CHECKING:
    from ..app import NotifyState

LISTS = ("countries", "corridors", "trigger_ids", "escalation_contacts")
SCALARS = ("id", "name", "organisation", "country", "language", "min_level", "format")
GROUPS = ("country", "corridor", "rule")
MAX_CHANNELS = 8
LEVELS = ("watch", "warning", "emergency")


@dataclass(frozen=True)
class ChannelRow:
    index: int
    type: str  # webhook | email
    target: str  # URL or address
    was: str  # the index of the channel it edits ("" for a new one)
    has_secret: bool


@dataclass(frozen=True)
class ContactForm:
    """What the form shows: the contact's fields as text, and its channels without secrets."""

    values: dict[str, str]
    group_by: tuple[str, ...]
    channels: list[ChannelRow]


@dataclass(frozen=True)
class ContactRow:
    id: str
    name: str
    organisation: str
    country: str
    language: str
    min_level: str
    routes: str
    channels: list[str]
    editable: bool  # this person may change or remove it here
    from_file: bool  # defined in the contacts file (changed there, not here)
    testable: bool


def form_of(contact: Contact | None) -> ContactForm:
    """The form for a contact (None: an empty one for a new contact), with one empty channel row
    to add a channel."""
    if contact is None:
        values = dict.fromkeys((*SCALARS, *LISTS), "")
        values |= {"language": "en", "min_level": "watch", "format": "json", "group_wait": "PT1M"}
        rows = [ChannelRow(0, "webhook", "", "", False)]
        return ContactForm(values, (), rows)
    values = {
        "id": contact.id,
        "name": contact.name,
        "organisation": contact.organisation,
        "country": contact.country or "",
        "language": contact.language,
        "min_level": contact.min_level,
        "format": contact.format,
        "group_wait": contact.group_wait,
    } | {name: ", ".join(getattr(contact, name)) for name in LISTS}
    rows = [
        ChannelRow(
            i,
            channel.type,
            str(channel.url) if isinstance(channel, WebhookChannel) else channel.address,
            str(i),
            isinstance(channel, WebhookChannel),
        )
        for i, channel in enumerate(contact.channels)
    ]
    rows.append(ChannelRow(len(rows), "webhook", "", "", False))
    return ContactForm(values, tuple(contact.group_by), rows)


def _items(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,;]+", text.strip()) if part]


def _posted_channels(form: Mapping[str, Any]) -> Iterator[tuple[int, str, str, str]]:
    """The channel rows posted and not marked for removal: (row, type, target, edited index)."""
    for i in range(MAX_CHANNELS):
        if f"channel_type_{i}" not in form or form.get(f"channel_remove_{i}"):
            continue
        kind = "email" if form.get(f"channel_type_{i}") == "email" else "webhook"
        target = str(form.get(f"channel_target_{i}", "")).strip()
        yield i, kind, target, str(form.get(f"channel_was_{i}", ""))


def posted_form(form: Mapping[str, Any]) -> ContactForm:
    """The form as it was posted (to show it again, unchanged, with what was wrong)."""
    values = {k: str(form.get(k, "")).strip()[:500] for k in (*SCALARS, *LISTS, "group_wait")}
    group_by = tuple(g for g in GROUPS if form.get(f"group_{g}"))
    rows = [
        ChannelRow(n, kind, target[:2000], was, False)
        for n, (_, kind, target, was) in enumerate(_posted_channels(form))
    ]
    return ContactForm(values, group_by, rows)


def as_contact(
    form: Mapping[str, Any], before: Contact | None
) -> tuple[dict[str, Any], ContactForm]:
    """The posted form as the API's contact, and the form to show again if it is refused. A
    webhook row whose secret is left empty keeps the secret of the channel it edits."""
    shown = posted_form(form)
    data: dict[str, Any] = {
        k: shown.values[k] for k in ("id", "name", "organisation", "language", "min_level")
    }
    data["format"] = shown.values["format"] or "json"
    data["country"] = shown.values["country"] or None
    for name in LISTS:
        items = _items(shown.values[name])
        data[name] = [i.upper() for i in items] if name == "countries" else items
    kept = [g for g in (before.group_by if before else []) if g in shown.group_by]
    data["group_by"] = kept + [g for g in shown.group_by if g not in kept]  # its order kept
    data["group_wait"] = shown.values["group_wait"] or "PT1M"
    channels: list[dict[str, Any]] = []
    for i, kind, target, was in _posted_channels(form):
        if not target:
            continue  # the empty row for a new channel, left empty
        if kind == "email":
            channels.append({"type": "email", "address": target})
            continue
        secret = str(form.get(f"channel_secret_{i}", ""))
        if not secret and before is not None and was.isdigit() and int(was) < len(before.channels):
            old = before.channels[int(was)]
            if isinstance(old, WebhookChannel):
                secret = old.secret
        channels.append({"type": "webhook", "url": target, "secret": secret})
    data["channels"] = channels
    return data, shown


def field_label(field: str, language: str) -> str:
    """An API field path ("channels.0.url") as the form names it ("Channel 1: address")."""
    parts = field.split(".")
    if parts[0] == "channels" and len(parts) > 1 and parts[1].isdigit():
        label = say(language, "channel_n", n=int(parts[1]) + 1)
        if len(parts) < 3:
            return label
        part = "channel_secret" if parts[-1] == "secret" else "channel_target"
        return f"{label}: {say(language, part)}"
    key = f"field_{parts[0]}"
    return say(language, key) if key in TEXT["en"] else field


def refusal(exc: ApiError, language: str) -> list[str]:
    """What was wrong, field by field, in the reader's words where the field is the form's."""
    if exc.errors:
        return [f"{field_label(e['field'], language)}: {e['message']}" for e in exc.errors]
    return [exc.message]


def contact_rows(
    contacts: list[Contact],
    may_edit: Callable[[Contact], bool],
    may_test: Callable[[Contact], bool],
    from_file: Callable[[Contact], bool],
    language: str,
) -> list[ContactRow]:
    rows: list[ContactRow] = []
    for c in sorted(contacts, key=lambda c: (c.country or "", c.name.lower())):
        routes = []
        if c.countries:
            routes.append(", ".join(country_name(x, language) for x in c.countries))
        routes += list(c.corridors) + list(c.trigger_ids)
        rows.append(
            ContactRow(
                c.id,
                c.name,
                c.organisation,
                country_name(c.country, language) if c.country else say(language, "international"),
                LANGUAGE_NAMES[c.language],
                say(language, c.min_level),
                "; ".join(routes) or say(language, "all_alerts"),
                [
                    f"webhook ({c.format.upper()}) {ch.url.host}"
                    if isinstance(ch, WebhookChannel)
                    else f"e-mail {ch.address}"
                    for ch in c.channels
                ],
                may_edit(c),
                from_file(c),
                may_test(c),
            )
        )
    return rows


def result_lines(results: list[ProbeResult], language: str) -> list[tuple[bool, str]]:
    lines = []
    for r in results:
        outcome = (
            say(language, "test_delivered", code=r.status_code)
            if r.ok
            else say(language, "test_failed", why=r.detail)
        )
        lines.append((r.ok, f"{r.channel} {r.target}: {outcome}"))
    return lines


@dataclass(frozen=True)
class Kit:
    """What the contacts pages borrow from the console's frame: who is signed in, the page frame,
    responses, the language."""

    signed_in: Callable[[Any], Any]
    frame: Callable[..., dict[str, Any]]
    respond: Callable[..., Any]
    redirect: Callable[..., Any]
    ask_to_sign_in: Callable[..., Any]
    language_of: Callable[..., str]
    keep_language: Callable[..., None]
    render: Callable[..., str]
    secret: str


def register_contact_pages(app: faust.App, state: NotifyState, ops: Operations, kit: Kit) -> None:
    def file_contact(contact: Contact) -> bool:
        return contact.id in state.file_contacts and contact.id not in state.contacts.items

    def visible(principal) -> list[Contact]:
        return [c for c in state.all_contacts().values() if ops.sees_contact(principal, c)]

    def manageable_countries(account, language: str) -> list[tuple[str, str]]:
        codes = [account.country] if account.country else sorted(state.policy.all_countries)
        return sorted(((c, country_name(c, language)) for c in codes), key=lambda c: c[1])

    def listing(view, request, account, session, status=200, notice=None, errors=(), tested=()):
        language = kit.language_of(request, account)
        principal = principal_of(account)

        def may_test(c: Contact) -> bool:
            return account.role in MANAGERS and principal.acts_for(c.country)

        rows = contact_rows(
            visible(principal),
            lambda c: ops.may_edit(principal, c),
            may_test,
            file_contact,
            language,
        )
        values = kit.frame(request, account, session, language) | {
            "rows": rows,
            "manager": account.role in MANAGERS,
            "notice": notice,
            "errors": list(errors),
            "tested": list(tested),
            "contacts_file": str(state.settings.resolved_contacts_file or ""),
        }
        response = kit.respond(view, status, kit.render("contacts.html", **values), "contacts")
        kit.keep_language(response, request)
        return response

    def editor(view, request, account, session, form, contact_id, status, errors=(), extra=None):
        language = kit.language_of(request, account)
        values = (
            kit.frame(request, account, session, language)
            | {
                "form": form,
                "contact_id": contact_id,
                "countries": manageable_countries(account, language),
                "regional": account.country is None,
                "languages": list(LANGUAGE_NAMES.items()),
                "levels": [(lvl, say(language, lvl)) for lvl in LEVELS],
                "groups": GROUPS,
                "corridors": sorted(state.geography.corridors),
                "errors": list(errors),
                "confirm_delete": False,
                "tested": [],
                "readonly": False,
                "from_file": False,
                "may_test": False,
            }
            | (extra or {})
        )
        page = kit.render("contact_form.html", **values)
        response = kit.respond(view, status, page, "contact-form")
        kit.keep_language(response, request)
        return response

    async def contacts_page(view, request):
        found = kit.signed_in(request)
        if found is None:
            return kit.ask_to_sign_in(view, request, "contacts")
        account, session = found
        language = kit.language_of(request, account)
        notice = None
        for done in ("created", "saved", "removed"):
            if request.query.get(done):
                notice = say(language, f"contact_{done}", id=request.query[done])
        return listing(view, request, account, session, notice=notice)

    async def new_contact_page(view, request):
        found = kit.signed_in(request)
        if found is None:
            return kit.ask_to_sign_in(view, request, "contact-form")
        account, session = found
        if account.role not in MANAGERS:
            language = kit.language_of(request, account)
            return listing(
                view, request, account, session, 403, errors=[say(language, "managers_only_c")]
            )
        form = form_of(None)
        if account.country:
            form.values["country"] = account.country
        return editor(view, request, account, session, form, None, 200)

    async def create_contact(view, request):
        found = kit.signed_in(request)
        if found is None:
            return kit.ask_to_sign_in(view, request, "contact-form")
        account, session = found
        language = kit.language_of(request, account)
        posted = await request.post()
        data, shown = as_contact(posted, None)
        if not csrf_holds(kit.secret, session.nonce, posted.get("csrf")):
            return editor(
                view, request, account, session, shown, None, 403, [say(language, "csrf")]
            )
        if account.role not in MANAGERS:
            errors = [say(language, "managers_only_c")]
            return editor(view, request, account, session, shown, None, 403, errors)
        try:
            contact = await ops.add_contact(data, principal_of(account))
        except ApiError as exc:
            errors = refusal(exc, language)
            return editor(view, request, account, session, shown, None, exc.status, errors)
        return kit.redirect(view, f"/console/contacts?created={quote(contact.id)}", "contacts")

    def the_contact(account, contact_id: str) -> Contact | None:
        contact = state.all_contacts().get(contact_id)
        if contact is None or not ops.sees_contact(principal_of(account), contact):
            return None  # another country's contact is as if it did not exist
        return contact

    def flags(account, contact: Contact) -> dict[str, bool]:
        principal = principal_of(account)
        return {
            "readonly": not ops.may_edit(principal, contact),
            "from_file": file_contact(contact),
            "may_test": account.role in MANAGERS and principal.acts_for(contact.country),
        }

    def not_found(view, request, account, session):
        language = kit.language_of(request, account)
        errors = [say(language, "no_contact")]
        return listing(view, request, account, session, 404, errors=errors)

    async def contact_page(view, request, contact_id):
        found = kit.signed_in(request)
        if found is None:
            return kit.ask_to_sign_in(view, request, "contact-form")
        account, session = found
        contact = the_contact(account, contact_id)
        if contact is None:
            return not_found(view, request, account, session)
        extra = flags(account, contact)
        return editor(view, request, account, session, form_of(contact), contact.id, 200, (), extra)

    async def contact_action(view, request, contact_id):
        found = kit.signed_in(request)
        if found is None:
            return kit.ask_to_sign_in(view, request, "contact-form")
        account, session = found
        language = kit.language_of(request, account)
        principal = principal_of(account)
        contact = the_contact(account, contact_id)
        if contact is None:
            return not_found(view, request, account, session)
        posted = await request.post()
        action = str(posted.get("action", "save"))
        base = flags(account, contact)
        if action == "save":
            data, shown = as_contact(posted, contact)
        else:
            shown = form_of(contact)
        if not csrf_holds(kit.secret, session.nonce, posted.get("csrf")):
            errors = [say(language, "csrf")]
            return editor(view, request, account, session, shown, contact.id, 403, errors, base)
        if account.role not in MANAGERS:
            errors = [say(language, "managers_only_c")]
            return editor(view, request, account, session, shown, contact.id, 403, errors, base)
        try:
            if action == "test":
                results = await ops.test_contact(contact.id, principal)
                tested: dict[str, Any] = base | {"tested": result_lines(results, language)}
                return editor(view, request, account, session, shown, contact.id, 200, (), tested)
            if action == "delete" and not posted.get("confirm"):
                confirm: dict[str, Any] = base | {"confirm_delete": True}
                return editor(view, request, account, session, shown, contact.id, 200, (), confirm)
            if action == "delete":
                await ops.remove_contact(contact.id, principal)
                target = f"/console/contacts?removed={quote(contact.id)}"
                return kit.redirect(view, target, "contacts")
            data.pop("id", None)
            await ops.change_contact(contact.id, data, principal)
        except ApiError as exc:
            errors = refusal(exc, language)
            return editor(
                view, request, account, session, shown, contact.id, exc.status, errors, base
            )
        return kit.redirect(view, f"/console/contacts?saved={quote(contact.id)}", "contacts")

    @app.page("/console/contacts")
    class ContactsView(faust.web.View):
        get = contacts_page

    @app.page("/console/contacts/new")
    class NewContactView(faust.web.View):
        get = new_contact_page
        post = create_contact

    @app.page("/console/contacts/{contact_id}")
    class ContactView(faust.web.View):
        get = contact_page
        post = contact_action
