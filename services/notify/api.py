"""The notify worker's HTTP API: contacts, alerts and acknowledgements, silences. Bearer tokens with
roles."""

from __future__ import annotations

import html
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import faust
from pydantic import ValidationError

from schemas import AlertEvent, Contact, WebhookChannel
from schemas.alert import LEVEL_RANK
from schemas.delivery import AuditRecord, DeliveryRecord
from schemas.notify import Acknowledgement, Silence, ack_key
from schemas.types import as_timedelta, parse_duration
from services.common.auth import AuthError, Principal
from services.common.config_files import field_and_message
from services.common.http import read_body_limited
from services.common.topics import Topics

from . import metrics
from .ack_links import LinkRefused, read_link
from .audit import DeliveryQuery, as_seen
from .picture import is_acknowledged
from .probe import ProbeResult, send_probe
from .sharing import Reader, SharedAlert
from .webhook import WebhookTargetRefused, check_target
from .wording import level_name, where

if TYPE_CHECKING:
    from .app import NotifyState

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
READERS = ("admin", "operator", "coordinator")  # partners publish reports and read nothing
MANAGERS = ("admin", "operator")  # contacts and silences: their country's, or all if regional
ACKNOWLEDGERS = ("admin", "operator", "coordinator")  # for the contacts of their country
PAGE_DEFAULT, PAGE_MAX = 100, 1000


# the acknowledgement-link page, in the contact's language
LINK_WORDS = {
    "en": {
        "link": "Acknowledgement link",
        "explain": "Acknowledge for {contact}: your repeats and escalation stop; a higher level "
        "will need a new acknowledgement.",
        "comment": "Comment",
        "button": "Acknowledge",
        "done": "Acknowledged",
        "done_at": "Acknowledged at {at} UTC. Thank you.",
        "not_done": "Not acknowledged",
    },
    "es": {
        "link": "Enlace de confirmación",
        "explain": "Confirme la recepción para {contact}: sus repeticiones y el escalamiento se "
        "detienen; un nivel más alto necesitará una nueva confirmación.",
        "comment": "Comentario",
        "button": "Confirmar la recepción",
        "done": "Recepción confirmada",
        "done_at": "Confirmada el {at} UTC. Gracias.",
        "not_done": "No confirmada",
    },
    "fr": {
        "link": "Lien d'accusé de réception",
        "explain": "Accusez réception pour {contact} : vos rappels et l'escalade s'arrêtent ; un "
        "niveau plus élevé demandera un nouvel accusé.",
        "comment": "Commentaire",
        "button": "Accuser réception",
        "done": "Réception accusée",
        "done_at": "Accusée le {at} UTC. Merci.",
        "not_done": "Réception non accusée",
    },
    "pt": {
        "link": "Link de confirmação",
        "explain": "Confirme o recebimento por {contact}: suas repetições e o escalonamento "
        "param; um nível mais alto exigirá nova confirmação.",
        "comment": "Comentário",
        "button": "Confirmar o recebimento",
        "done": "Recebimento confirmado",
        "done_at": "Confirmado em {at} UTC. Obrigado.",
        "not_done": "Não confirmado",
    },
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def field_errors(error: ValidationError) -> list[dict]:
    return [
        dict(zip(("field", "message"), field_and_message(e, "(body)"), strict=True))
        for e in error.errors()
    ]


def kept_secret(channel: Any, before: Any) -> Any:
    """A webhook channel sent without a secret keeps the secret of the webhook at its index."""
    if (
        isinstance(channel, dict)
        and channel.get("type", "webhook") == "webhook"
        and "secret" not in channel
        and isinstance(before, WebhookChannel)
    ):
        return channel | {"secret": before.secret}
    return channel


def redacted(contact: Contact) -> dict:
    """A contact as the API shows it: shared secrets are never returned."""
    data = contact.model_dump(mode="json")
    for channel in data["channels"]:
        if "secret" in channel:
            channel["secret"] = "***"
    return data


async def read_json(request) -> Any:
    body = await read_body_limited(request, MAX_BODY)
    if body is None:
        raise ApiError(413, f"body is larger than {MAX_BODY} bytes")
    try:
        return json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(
            400,
            "body is JSON nested too deeply; a contact is a flat object with a list of channels",
        ) from None


def time_range(query) -> tuple[datetime | None, datetime | None]:
    """?since= &until= (ISO 8601; UTC when no offset is given)."""
    bounds = []
    for name in ("since", "until"):
        text = query.get(name)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
        except ValueError:
            raise ApiError(400, f"{name} is an ISO 8601 time, e.g. 2026-10-01T00:00Z") from None
        bounds.append(moment.replace(tzinfo=moment.tzinfo or UTC) if moment else None)
    return bounds[0], bounds[1]


def page_asked(query) -> tuple[int, int]:
    """?limit= (default PAGE_DEFAULT, at most PAGE_MAX) &offset=."""
    try:
        return (
            min(PAGE_MAX, max(1, int(query.get("limit", PAGE_DEFAULT)))),
            max(0, int(query.get("offset", 0))),
        )
    except ValueError:
        raise ApiError(400, "limit and offset are whole numbers") from None


@dataclass(frozen=True)
class Current:
    """An alert of the current picture for one reader: as recorded, as the reader may see it, and
    the acknowledgements of the contacts the reader may see (oldest first)."""

    alert: AlertEvent
    seen: SharedAlert
    acks: list[Acknowledgement]


@dataclass(frozen=True)
class Operations:
    """What the API reads and writes, for the console to do exactly the same (one policy, one
    audit, one path for every write)."""

    current: Callable[[Principal], list[Current]]
    shown: Callable[[AlertEvent, Principal], SharedAlert | None]
    resolve: Callable[[str, Principal], AlertEvent]
    sees_contact: Callable[[Principal, Contact], bool]
    acknowledge: Callable[[str, str, Principal, str, str], Awaitable[Acknowledgement]]
    withdraw: Callable[[str, str, Principal], Awaitable[None]]
    silences: Callable[[Principal, bool], list[Silence]]
    propose_silence: Callable[[Any, Principal], Silence]
    add_silence: Callable[[Any, Principal], Awaitable[Silence]]
    end_silence: Callable[[str, Principal], Awaitable[Silence]]
    may_end_silence: Callable[[Silence, Principal], bool]
    deliveries: Callable[[Principal, DeliveryQuery], list[DeliveryRecord]]
    may_edit: Callable[[Principal, Contact], bool]
    add_contact: Callable[[Any, Principal], Awaitable[Contact]]
    change_contact: Callable[[str, Any, Principal], Awaitable[Contact]]
    remove_contact: Callable[[str, Principal], Awaitable[Contact]]
    test_contact: Callable[[str, Principal], Awaitable[list[ProbeResult]]]


def register_api(app: faust.App, state: NotifyState, topics: Topics) -> Operations:
    settings = state.settings
    contacts_topic = app.topic(topics.contacts, key_serializer="raw", value_serializer="raw")
    silences_topic = app.topic(topics.notify_silences, key_serializer="raw", value_serializer="raw")
    acks_topic = app.topic(topics.notify_acks, key_serializer="raw", value_serializer="raw")

    audit_topic = app.topic(topics.audit, key_serializer="raw", value_serializer="raw")

    async def publish(
        topic,
        view,
        key: str,
        value: bytes | None,
        who: Principal,
        action: str,
        country: str | None,
        shown_target: str | None = None,
    ) -> None:
        """Write to a compacted topic and wait until this worker's view has it (read your
        writes); the write goes on ews.audit with who made it."""
        metadata = await (await topic.send(key=key.encode(), value=value))
        await view.wait_for(metadata.partition, metadata.offset)
        record = AuditRecord(
            at=datetime.now(UTC),
            by=who.name,
            role=who.role,
            by_country=who.country,
            action=action,
            target=key,
            country=country,
            shown_target=shown_target,
        )
        sent = await (
            await audit_topic.send(key=key.encode(), value=record.model_dump_json().encode())
        )
        await state.audit.wait_for(sent.partition, sent.offset)

    def handle(route: str, roles: tuple[str, ...]):
        """Authentication, roles, errors and metrics around one handler."""

        def wrap(fn):
            async def run(view: faust.web.View, request, **kwargs):
                try:
                    principal = state.tokens.require(request.headers.get("Authorization"), *roles)
                    status, body = await fn(request, principal, **kwargs)
                except AuthError as exc:
                    status, body = exc.status, {"error": exc.message}
                except ApiError as exc:
                    status, body = (
                        exc.status,
                        {"error": exc.message, **({"errors": exc.errors} if exc.errors else {})},
                    )
                except Exception:  # a bug: answered, counted and logged like any other request
                    log.exception("%s %s failed", request.method, route)
                    status, body = (
                        500,
                        {"error": "internal error; the notify worker's log has the details"},
                    )
                metrics.API_REQUESTS.labels(route, str(status)).inc()
                if status == 204:
                    return view.bytes(b"", status=204)
                return view.json(body, status=status)

            return run

        return wrap

    async def validated_contact(data: Any) -> Contact:
        if not isinstance(data, dict):
            raise ApiError(422, "a contact is a JSON object")
        try:
            contact = Contact.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "the contact is not valid", field_errors(exc)) from None
        for index, channel in enumerate(contact.channels):
            if isinstance(channel, WebhookChannel):
                try:
                    await check_target(str(channel.url), settings.allow_private_webhooks)
                except WebhookTargetRefused as exc:
                    raise ApiError(
                        422,
                        "the contact is not valid",
                        [{"field": f"channels.{index}.url", "message": str(exc)}],
                    ) from None
        return contact

    def sees_contact(principal: Principal, contact: Contact) -> bool:
        return principal.regional or contact.country == principal.country

    def existing(contact_id: str, principal: Principal) -> Contact:
        """A contact this principal may see; another country's is as if it did not exist."""
        contact = state.all_contacts().get(contact_id)
        if contact is None or not sees_contact(principal, contact):
            raise ApiError(404, f"no contact {contact_id!r}")
        return contact

    def may_manage(principal: Principal, contact: Contact) -> None:
        if not principal.acts_for(contact.country):
            where = contact.country or "no country (an international office)"
            raise ApiError(
                403,
                f"{principal.name} manages the contacts of {principal.country}; contact "
                f"{contact.id!r} is in {where}: an admin or a regional operator manages it",
            )

    def editable(contact_id: str, principal: Principal) -> Contact:
        contact = existing(contact_id, principal)
        if contact_id in state.file_contacts and contact_id not in state.contacts.items:
            raise ApiError(
                409,
                f"contact {contact_id!r} is defined in {settings.resolved_contacts_file}; edit "
                "that file",
            )
        return contact

    # --- contacts --------------------------------------------------------------------------

    @handle("contacts", READERS)
    async def list_contacts(request, principal):
        return 200, {
            "contacts": [
                redacted(c)
                for c in sorted(state.all_contacts().values(), key=lambda c: c.id)
                if sees_contact(principal, c)
            ]
        }

    def may_edit(principal: Principal, contact: Contact) -> bool:
        """Whether this principal may change or remove the contact here (not one of the file's)."""
        return (
            principal.role in MANAGERS
            and principal.acts_for(contact.country)
            and (contact.id not in state.file_contacts or contact.id in state.contacts.items)
        )

    async def add_contact(data: Any, principal: Principal) -> Contact:
        contact = await validated_contact(data)
        may_manage(principal, contact)
        if contact.id in state.all_contacts():
            raise ApiError(
                409, f"contact {contact.id!r} exists; PATCH /contacts/{contact.id} to change it"
            )
        await publish(
            contacts_topic,
            state.contacts,
            contact.id,
            contact.model_dump_json().encode(),
            principal,
            "contact.create",
            contact.country,
        )
        return contact

    async def change_contact(contact_id: str, changes: Any, principal: Principal) -> Contact:
        """Apply these fields to a contact; channels sent without a secret keep the secret of
        the channel they replace (same index, same type), so a form need not show secrets."""
        current = editable(contact_id, principal)
        may_manage(principal, current)
        if not isinstance(changes, dict):
            raise ApiError(422, "send the fields to change as a JSON object")
        if changes.get("id", contact_id) != contact_id:
            raise ApiError(
                422, "id cannot change", [{"field": "id", "message": "id cannot change"}]
            )
        merged = current.model_dump(mode="json")
        if "channels" not in changes:  # keep secrets as they are
            merged["channels"] = [c.model_dump(mode="json") for c in current.channels]
        merged.update(changes)
        if isinstance(merged.get("channels"), list):
            merged["channels"] = [
                kept_secret(channel, current.channels[i] if i < len(current.channels) else None)
                for i, channel in enumerate(merged["channels"])
            ]
        contact = await validated_contact(merged)
        may_manage(principal, contact)  # not moved to a country it does not manage
        await publish(
            contacts_topic,
            state.contacts,
            contact.id,
            contact.model_dump_json().encode(),
            principal,
            "contact.update",
            contact.country,
        )
        return contact

    async def remove_contact(contact_id: str, principal: Principal) -> Contact:
        contact = editable(contact_id, principal)
        may_manage(principal, contact)
        await publish(
            contacts_topic,
            state.contacts,
            contact_id,
            None,
            principal,
            "contact.delete",
            contact.country,
        )
        return contact

    async def test_contact(contact_id: str, principal: Principal) -> list[ProbeResult]:
        """A test message on each of the contact's channels, now; the outcome on ews.audit."""
        contact = existing(contact_id, principal)
        may_manage(principal, contact)
        results = await send_probe(settings, contact, principal.name)
        record = AuditRecord(
            at=datetime.now(UTC),
            by=principal.name,
            role=principal.role,
            by_country=principal.country,
            action="contact.test",
            target=contact.id,
            country=contact.country,
            detail="; ".join(r.summary for r in results),
        )
        sent = await (
            await audit_topic.send(key=contact.id.encode(), value=record.model_dump_json().encode())
        )
        await state.audit.wait_for(sent.partition, sent.offset)
        return results

    @handle("contacts", MANAGERS)
    async def create_contact(request, principal):
        return 201, redacted(await add_contact(await read_json(request), principal))

    @handle("contact", READERS)
    async def get_contact(request, principal, contact_id):
        return 200, redacted(existing(contact_id, principal))

    @handle("contact", MANAGERS)
    async def patch_contact(request, principal, contact_id):
        changed = await change_contact(contact_id, await read_json(request), principal)
        return 200, redacted(changed)

    @handle("contact", MANAGERS)
    async def delete_contact(request, principal, contact_id):
        await remove_contact(contact_id, principal)
        return 204, None

    @handle("contact-test", MANAGERS)
    async def post_contact_test(request, principal, contact_id):
        results = await test_contact(contact_id, principal)
        return 200, {"contact_id": contact_id, "results": [r.as_json() for r in results]}

    # --- alerts and acknowledgements ---------------------------------------------------------

    def shown(alert: AlertEvent, principal: Principal) -> SharedAlert | None:
        return state.policy.view(alert, Reader.of_principal(principal))

    def resolve(alert_id: str, principal: Principal) -> AlertEvent:
        """The alert a principal names by the identifier it was shown (a withheld place's alert
        by its digest, never by the site it names)."""
        alert = state.picture.latest.get(alert_id)
        if alert is not None:
            seen = shown(alert, principal)
            if seen is not None and seen.alert.alert_id == alert_id:
                return alert
        elif "/w" in alert_id:
            candidate = state.alert_by_withheld_id(alert_id)
            if candidate is not None:
                seen = shown(candidate, principal)
                if seen is not None and seen.alert.alert_id == alert_id:
                    return candidate
        raise ApiError(404, f"no alert {alert_id!r}; GET /alerts lists the current ones")

    def alert_filters(request) -> tuple[Any, int, int]:
        """?country= &rule= &level= &status=firing|resolved|all &since= &until= (evaluated_at,
        ISO 8601) &limit= &offset=: a predicate on an alert as shown, and the page."""
        query = request.query
        status = query.get("status", "firing")
        if status not in ("firing", "resolved", "all"):
            raise ApiError(400, "status is firing, resolved or all")
        level = query.get("level")
        if level is not None and level not in LEVEL_RANK:
            raise ApiError(400, "level is watch, warning or emergency")
        since, until = time_range(query)
        limit, offset = page_asked(query)
        country, rule = query.get("country"), query.get("rule")

        def keep(alert: AlertEvent) -> bool:
            return (
                (status == "all" or alert.status == status)
                and (level is None or alert.level == level)
                and (rule is None or alert.rule_id == rule)
                and (country is None or country in state.policy.countries_of(alert.scope))
                and (since is None or alert.evaluated_at >= since)
                and (until is None or alert.evaluated_at < until)
            )

        return keep, limit, offset

    def as_shown(seen: SharedAlert) -> dict:
        return {
            **seen.alert.model_dump(mode="json"),
            "value": seen.value,
            "threshold": seen.threshold,
            "value_display": seen.value_text,
            **({"withheld": list(seen.withheld)} if seen.withheld else {}),
        }

    def page_of(items: list, limit: int, offset: int, key: str) -> dict:
        page = items[offset : offset + limit]
        return {
            key: page,
            "count": len(page),
            "total": len(items),
            "offset": offset,
            **({"next_offset": offset + limit} if offset + limit < len(items) else {}),
        }

    def current(principal: Principal) -> list[Current]:
        """The current picture as this principal may see it: each alert, its view, and the
        acknowledgements of the contacts the principal may see (oldest first)."""
        contacts = state.all_contacts()
        acks_by_alert: dict[str, list[Acknowledgement]] = {}
        for ack in state.acks.items.values():
            contact = contacts.get(ack.contact_id or "")
            if ack.contact_id is None or (contact is not None and sees_contact(principal, contact)):
                acks_by_alert.setdefault(ack.alert_id, []).append(ack)
        out = []
        for alert_id, alert in sorted(state.picture.latest.items()):
            seen = shown(alert, principal)
            if seen is not None:
                acks = sorted(acks_by_alert.get(alert_id, []), key=lambda a: a.at)
                out.append(Current(alert, seen, acks))
        return out

    @handle("alerts", READERS)
    async def list_alerts(request, principal):
        """The current picture, each alert as this principal may see it."""
        keep, limit, offset = alert_filters(request)
        out = [
            as_shown(item.seen)
            | {
                "acknowledged": any(is_acknowledged(item.alert, a) for a in item.acks),
                "acknowledgements": [
                    a.model_dump(mode="json")
                    | {
                        "alert_id": item.seen.alert.alert_id,
                        "covers_now": is_acknowledged(item.alert, a),
                    }
                    for a in item.acks
                ],
            }
            for item in current(principal)
            if keep(item.seen.alert)
        ]
        return 200, page_of(out, limit, offset, "alerts")

    @handle("alerts-history", READERS)
    async def alert_history(request, principal):
        """Past transitions (newest first) with the same filters, as this principal may see
        them."""
        keep, limit, offset = alert_filters(request)
        out = []
        for alert in reversed(state.picture.history):
            seen = shown(alert, principal)
            if seen is not None and keep(seen.alert):
                out.append(as_shown(seen))
        return 200, page_of(out, limit, offset, "transitions")

    def shown_ack_key(alert: AlertEvent, contact: Contact | None) -> str | None:
        seen = state.policy.view(alert, Reader.of_contact(contact)) if contact else None
        return ack_key(seen.alert.alert_id, contact.id) if seen and contact else None

    async def record_ack(
        alert_id: str,
        contact_id: str,
        who: Principal,
        comment: str,
        via: str,
        transition: int | None,
    ) -> Acknowledgement:
        """Acknowledge an alert for one contact: the transition given (a link's), or the latest."""
        alert = state.picture.latest.get(alert_id)
        if alert is None:
            raise ApiError(404, f"no alert {alert_id!r}; GET /alerts lists the current ones")
        if alert.status != "firing":
            raise ApiError(409, f"alert {alert_id} is resolved; there is nothing to acknowledge")
        told: AlertEvent | None = alert
        if transition is not None and transition != alert.transition:
            told = next(
                (a for a in state.picture.episodes.get(alert_id, []) if a.transition == transition),
                None,
            )
            if told is None:
                raise ApiError(
                    409,
                    "this message is from an earlier episode of the alert; acknowledge from "
                    "the latest message",
                )
        assert told is not None
        ack = Acknowledgement(
            alert_id=alert_id,
            contact_id=contact_id,
            transition=told.transition,
            by=who.name,
            at=datetime.now(UTC),
            comment=comment[:500],
            level=told.level,
            started_at=told.started_at,
            via=via,
        )
        contact = state.all_contacts().get(contact_id)
        await publish(
            acks_topic,
            state.acks,
            ack.key,
            ack.model_dump_json().encode(),
            who,
            "ack.create",
            contact.country if contact else None,
            shown_ack_key(alert, contact),
        )
        return ack

    def contact_named(data: Any) -> str:
        """The contact acknowledged for (each contact acknowledges for itself)."""
        contact_id = data.get("contact_id") if isinstance(data, dict) else None
        if not isinstance(contact_id, str) or not contact_id:
            raise ApiError(
                422,
                "name the contact you acknowledge for: each contact acknowledges for itself",
                [{"field": "contact_id", "message": "required"}],
            )
        return contact_id

    def visible_contact(contact_id: str, principal: Principal) -> Contact:
        contact = state.all_contacts().get(contact_id)
        if contact is None or not sees_contact(principal, contact):
            raise ApiError(404, f"no contact {contact_id!r}; GET /contacts lists them")
        return contact

    async def acknowledge_for(
        shown_id: str, contact_id: str, principal: Principal, comment: str, via: str = "api"
    ) -> Acknowledgement:
        """Acknowledge an alert, named as the principal was shown it, for one of its contacts."""
        visible_contact(contact_id, principal)
        alert = resolve(shown_id, principal)
        return await record_ack(alert.alert_id, contact_id, principal, comment, via, None)

    async def withdraw_for(shown_id: str, contact_id: str, principal: Principal) -> None:
        contact = visible_contact(contact_id, principal)
        alert = resolve(shown_id, principal)
        key = ack_key(alert.alert_id, contact_id)
        if key not in state.acks.items:
            raise ApiError(404, f"{contact_id} has not acknowledged {shown_id}")
        await publish(
            acks_topic,
            state.acks,
            key,
            None,
            principal,
            "ack.withdraw",
            contact.country,
            shown_ack_key(alert, contact),
        )
        log.info("%s withdrew %s's acknowledgement of %s", principal.name, contact_id, shown_id)

    @handle("ack", ACKNOWLEDGERS)
    async def acknowledge(request, principal, alert_id):
        data = await read_json(request) or {}
        contact_id = contact_named(data)
        comment = str(data.get("comment", "")) if isinstance(data, dict) else ""
        ack = await acknowledge_for(unquote(alert_id), contact_id, principal, comment)
        return 200, ack.model_dump(mode="json") | {"alert_id": unquote(alert_id)}

    @handle("ack", ACKNOWLEDGERS)
    async def withdraw_ack(request, principal, alert_id):
        await withdraw_for(unquote(alert_id), contact_named(dict(request.query)), principal)
        return 204, None

    def deliveries_seen(principal: Principal, wanted: DeliveryQuery) -> list[DeliveryRecord]:
        """The delivery records (newest first) of the contacts this principal may see that
        `wanted` matches, each alert named as its recipient saw it."""
        contacts = state.all_contacts()
        sees_all = principal.role == "admin"
        out = []
        for record in reversed(state.delivery_log):
            contact = contacts.get(record.contact_id)
            if not sees_all and (contact is None or not sees_contact(principal, contact)):
                continue
            if not wanted.matches(record):
                continue
            seen = as_seen(record, sees_all)
            if seen is not None and (
                wanted.alert_id is None or sees_all or seen["alert_id"] == wanted.alert_id
            ):
                out.append(DeliveryRecord.model_validate(seen))
        return out

    @handle("deliveries", READERS)
    async def list_deliveries(request, principal):
        """Who received which figure about which alert, when, on which channel, with what outcome
        (newest first): records of the contacts this principal may see, each alert named as its
        recipient saw it."""
        query = request.query
        since, until = time_range(query)
        limit, offset = page_asked(query)
        wanted = DeliveryQuery(
            alert_id=query.get("alert"),
            contact_id=query.get("contact"),
            country=query.get("country"),
            outcome=query.get("outcome"),
            since=since,
            until=until,
        )
        out = [r.model_dump(mode="json") for r in deliveries_seen(principal, wanted)]
        return 200, page_of(out, limit, offset, "deliveries") | {
            "complete": state.deliveries.caught_up.is_set()
        }

    @handle("audit", READERS)
    async def list_audit(request, principal):
        """Every API write (contacts, silences, acknowledgements), newest first: who, what,
        when. A country's principals see the writes concerning or made by their country."""
        query = request.query
        since, until = time_range(query)
        limit, offset = page_asked(query)
        out = []
        for record in reversed(state.audit_log):
            if not principal.regional and principal.country not in (
                record.country,
                record.by_country,
            ):
                continue
            data = record.model_dump(mode="json", exclude={"shown_target"})
            if principal.role != "admin" and record.shown_target is not None:
                data["target"] = record.shown_target
            elif principal.role != "admin" and record.action.startswith("ack."):
                continue  # an acknowledgement of an alert its contact was never shown
            if (
                (query.get("by") is None or record.by == query["by"])
                and (query.get("action") is None or record.action == query["action"])
                and (query.get("target") is None or data["target"] == query["target"])
                and (query.get("country") is None or record.country == query["country"])
                and (since is None or record.at >= since)
                and (until is None or record.at < until)
            ):
                out.append(data)
        return 200, page_of(out, limit, offset, "writes") | {
            "complete": state.audit.caught_up.is_set()
        }

    # --- one-click links from messages: no bearer token, the signed link is the authority ----

    def link_claims(token: str):
        secret = settings.link_secret
        if secret is None:
            raise ApiError(404, "acknowledgement links are not enabled on this deployment")
        try:
            claims = read_link(secret.get_secret_value(), token, datetime.now(UTC))
        except LinkRefused as exc:
            raise ApiError(403, str(exc)) from None
        alert_id = state.alert_by_ref(claims.alert_ref)
        if alert_id is None:
            raise ApiError(404, "this alert is no longer known to ews")
        return claims, alert_id

    def page(view, status: int, heading: str, text: str, language: str = "en", form: bool = False):
        words = LINK_WORDS[language]
        body = (
            f"<!doctype html><html lang='{language}'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width'><title>ews</title></head>"
            f"<body><h1>{html.escape(heading)}</h1><p>{html.escape(text)}</p>"
        )
        if form:
            body += (
                f"<form method='post'><label>{html.escape(words['comment'])} <input "
                "name='comment' maxlength='500'></label> <button type='submit'>"
                f"{html.escape(words['button'])}</button></form>"
            )
        response = view.html(body + "</body></html>", status=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def language_of_link(token: str) -> str:
        """The language of the contact a refused link was made for (English when it cannot be
        read): the error page only; an accepted link has its contact already."""
        secret = settings.link_secret
        if secret is None:
            return "en"
        try:
            claims = read_link(secret.get_secret_value(), token, datetime.now(UTC))
        except LinkRefused:
            return "en"
        contact = state.all_contacts().get(claims.contact_id)
        return contact.language if contact is not None else "en"

    async def link_page(view, request, token):
        """GET: what the link acknowledges, in the contact's language and as the contact was
        shown the alert, and a button (link scanners that fetch it do not acknowledge)."""
        try:
            claims, alert_id = link_claims(token)
        except ApiError as exc:
            metrics.API_REQUESTS.labels("ack-link", str(exc.status)).inc()
            language = language_of_link(token)
            return page(view, exc.status, LINK_WORDS[language]["link"], exc.message, language)
        alert = state.picture.latest[alert_id]
        contact = state.all_contacts().get(claims.contact_id)
        language = contact.language if contact is not None else "en"
        words = LINK_WORDS[language]
        seen = state.policy.view(alert, Reader.of_contact(contact)) if contact else None
        title = alert.title.get(language) or alert.title.get("en") or alert.rule_id
        place = f" {where(seen.alert.scope, state.geography, language)}" if seen else ""
        metrics.API_REQUESTS.labels("ack-link", "200").inc()
        return page(
            view,
            200,
            f"{title}{place}: {level_name(claims.level, language).upper()}",
            words["explain"].format(contact=contact.name if contact else claims.contact_id),
            language,
            form=True,
        )

    async def link_ack(view, request, token):
        try:
            claims, alert_id = link_claims(token)
            form = await request.post()
            comment = str(form.get("comment", ""))
            contact = state.all_contacts().get(claims.contact_id)
            holder = Principal(claims.contact_id, "link", contact.country if contact else None)
            ack = await record_ack(
                alert_id, claims.contact_id, holder, comment, "link", claims.transition
            )
        except ApiError as exc:
            metrics.API_REQUESTS.labels("ack-link", str(exc.status)).inc()
            language = language_of_link(token)
            return page(view, exc.status, LINK_WORDS[language]["not_done"], exc.message, language)
        language = contact.language if contact is not None else "en"
        words = LINK_WORDS[language]
        metrics.API_REQUESTS.labels("ack-link", "200").inc()
        return page(
            view,
            200,
            words["done"],
            words["done_at"].format(at=f"{ack.at:%Y-%m-%d %H:%M}"),
            language,
        )

    # --- silences --------------------------------------------------------------------------------

    def place_country(scope_id: str | None) -> str | None:
        """The country of the site, area, source or country a silence names."""
        if scope_id is None:
            return None
        geography = state.geography
        place = (
            geography.sites.get(scope_id)
            or geography.areas.get(scope_id)
            or geography.sources.get(scope_id)
        )
        if place is not None:
            return place.country
        return scope_id if len(scope_id) == 2 and scope_id.isupper() else None

    def silence_country(silence: Silence) -> str | None:
        """The country a silence concerns: its country matcher, or the country of the place it
        names (None: a regional silence, by rule or scope kind only)."""
        return silence.country or place_country(silence.scope_id)

    def sees_silence(principal: Principal, silence: Silence) -> bool:
        """A country's principals see its silences and the regional ones that name no place."""
        if principal.regional:
            return True
        country = silence_country(silence)
        return country == principal.country or (country is None and silence.scope_id is None)

    def visible_silences(principal: Principal, show_all: bool) -> list[Silence]:
        """The silences this principal may see: those still in force (or all, ended included),
        by start."""
        now = datetime.now(UTC)
        return [
            s
            for s in sorted(state.silences.items.values(), key=lambda s: s.starts_at)
            if (show_all or (s.expired_by is None and now < s.ends_at))
            and sees_silence(principal, s)
        ]

    def proposed_silence(data: Any, principal: Principal) -> Silence:
        """A silence as asked (`duration` or `ends_at`), checked, not yet written: ApiError naming
        each field that is wrong, or 403 when it concerns another country than the principal's."""
        if not isinstance(data, dict):
            raise ApiError(422, "a silence is a JSON object")
        now = datetime.now(UTC)
        data = dict(data)
        data.setdefault("starts_at", now.isoformat())
        if "duration" in data and "ends_at" not in data:
            try:
                start = datetime.fromisoformat(str(data["starts_at"]).replace("Z", "+00:00"))
                data["ends_at"] = (
                    start + as_timedelta(parse_duration(str(data.pop("duration"))))
                ).isoformat()
            except ValueError as exc:
                raise ApiError(
                    422, "the silence is not valid", [{"field": "duration", "message": str(exc)}]
                ) from None
        if not principal.regional:  # a country's operator silences its own country's alerts
            data.setdefault("country", principal.country)
        data.update(
            id=f"sil-{secrets.token_hex(6)}", created_by=principal.name, created_at=now.isoformat()
        )
        try:
            silence = Silence.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "the silence is not valid", field_errors(exc)) from None
        named = place_country(silence.scope_id)
        concerns = named if named is not None and named != silence.country else silence.country
        if not principal.regional and concerns != principal.country:
            raise ApiError(
                403,
                f"{principal.name} silences alerts of {principal.country} only; this silence "
                f"concerns {concerns or 'every country'}",
            )
        return silence

    async def add_silence(data: Any, principal: Principal) -> Silence:
        silence = proposed_silence(data, principal)
        await publish(
            silences_topic,
            state.silences,
            silence.id,
            silence.model_dump_json().encode(),
            principal,
            "silence.create",
            silence_country(silence),
        )
        return silence

    async def end_silence(silence_id: str, principal: Principal) -> Silence:
        silence = state.silences.items.get(silence_id)
        if silence is None or not sees_silence(principal, silence):
            raise ApiError(404, f"no silence {silence_id!r}")
        if not principal.acts_for(silence_country(silence)):
            raise ApiError(
                403,
                f"{principal.name} expires silences of {principal.country} only; {silence_id} "
                "concerns every country: an admin or a regional operator expires it",
            )
        now = datetime.now(UTC)
        expired = silence.model_copy(
            update={
                "expired_by": principal.name,
                "ends_at": min(silence.ends_at, now)
                if now > silence.starts_at
                else silence.starts_at + timedelta(seconds=1),
            }
        )
        await publish(
            silences_topic,
            state.silences,
            silence_id,
            expired.model_dump_json().encode(),
            principal,
            "silence.expire",
            silence_country(silence),
        )
        return expired

    @handle("silences", READERS)
    async def list_silences(request, principal):
        now = datetime.now(UTC)
        show_all = request.query.get("all") in ("1", "true")
        out = [
            s.model_dump(mode="json")
            | {"active": s.expired_by is None and s.starts_at <= now < s.ends_at}
            for s in visible_silences(principal, show_all)
        ]
        return 200, {"silences": out}

    @handle("silences", MANAGERS)
    async def create_silence(request, principal):
        silence = await add_silence(await read_json(request), principal)
        return 201, silence.model_dump(mode="json")

    @handle("silence", MANAGERS)
    async def expire_silence(request, principal, silence_id):
        expired = await end_silence(silence_id, principal)
        return 200, expired.model_dump(mode="json")

    # --- routes ----------------------------------------------------------------------------------

    @app.page("/contacts")
    class ContactsView(faust.web.View):
        get = list_contacts
        post = create_contact

    @app.page("/contacts/{contact_id}")
    class ContactView(faust.web.View):
        get = get_contact
        patch = patch_contact
        delete = delete_contact

    @app.page("/contacts/{contact_id}/test")
    class ContactTestView(faust.web.View):
        post = post_contact_test

    @app.page("/alerts")
    class AlertsView(faust.web.View):
        get = list_alerts

    @app.page("/alerts/history")
    class AlertHistoryView(faust.web.View):
        get = alert_history

    @app.page("/alerts/{alert_id:.+}/ack")
    class AckView(faust.web.View):
        post = acknowledge
        delete = withdraw_ack

    @app.page("/ack/{token}")
    class AckLinkView(faust.web.View):
        get = link_page
        post = link_ack

    @app.page("/deliveries")
    class DeliveriesView(faust.web.View):
        get = list_deliveries

    @app.page("/audit")
    class AuditView(faust.web.View):
        get = list_audit

    @app.page("/silences")
    class SilencesView(faust.web.View):
        get = list_silences
        post = create_silence

    @app.page("/silences/{silence_id}")
    class SilenceView(faust.web.View):
        delete = expire_silence

    return Operations(
        current=current,
        shown=shown,
        resolve=resolve,
        sees_contact=sees_contact,
        acknowledge=acknowledge_for,
        withdraw=withdraw_for,
        silences=visible_silences,
        propose_silence=proposed_silence,
        add_silence=add_silence,
        end_silence=end_silence,
        may_end_silence=lambda silence, who: who.acts_for(silence_country(silence)),
        deliveries=deliveries_seen,
        may_edit=may_edit,
        add_contact=add_contact,
        change_contact=change_contact,
        remove_contact=remove_contact,
        test_contact=test_contact,
    )
