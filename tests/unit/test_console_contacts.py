"""The console's contact form: what it shows of a contact, and what posting it back makes of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas import Contact
from services.notify.api import ApiError
from services.notify.console.contacts import as_contact, field_label, form_of, refusal
from tests.helpers import COUNTRIES

SECRET = "a-webhook-secret-0123456789"
ids = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
channels = st.one_of(
    st.builds(
        lambda host, secret: {
            "type": "webhook",
            "url": f"https://{host}.example.org/hook",
            "secret": secret,
        },
        ids,
        st.text("abcdef0123456789", min_size=16, max_size=24),
    ),
    st.builds(lambda user: {"type": "email", "address": f"{user}@example.org"}, ids),
)
contacts = st.builds(
    lambda cid, country, countries, level, language, fmt, chans, groups, escalate: Contact(
        id=cid,
        name=f"Focal point {cid}",
        organisation="IOM",
        country=country,
        countries=countries,
        min_level=level,
        language=language,
        format=fmt,
        channels=chans,
        group_by=groups,
        escalation_contacts=escalate,
    ),
    ids,
    st.one_of(st.none(), st.sampled_from(COUNTRIES)),
    st.lists(st.sampled_from(COUNTRIES), max_size=3),
    st.sampled_from(["watch", "warning", "emergency"]),
    st.sampled_from(["en", "es", "fr", "pt"]),
    st.sampled_from(["json", "cap"]),
    st.lists(channels, min_size=1, max_size=4),
    st.lists(st.sampled_from(["country", "corridor", "rule"]), unique=True),
    st.lists(ids, max_size=2),
)


def as_browser_posts(contact: Contact) -> dict[str, str]:
    """The form of a contact, submitted unchanged: every field as shown, secrets left empty (the
    page never shows them), the empty row for a new channel left empty."""
    form = form_of(contact)
    posted = {k: v for k, v in form.values.items() if k != "id"}
    for group in form.group_by:
        posted[f"group_{group}"] = "1"
    for row in form.channels:
        posted |= {
            f"channel_type_{row.index}": row.type,
            f"channel_target_{row.index}": row.target,
            f"channel_was_{row.index}": row.was,
            f"channel_secret_{row.index}": "",
        }
    return posted


@given(contacts)
def test_a_contact_posted_back_unchanged_is_the_same_contact_secrets_included(contact):
    data, _ = as_contact(as_browser_posts(contact) | {"id": contact.id}, contact)
    assert Contact.model_validate(data) == contact


def test_removing_a_channel_keeps_each_other_webhook_its_own_secret():
    contact = Contact(
        id="pa-focal",
        name="Panama focal point",
        organisation="SNM",
        country="PA",
        channels=[
            {
                "type": "webhook",
                "url": "https://one.example.org/h",
                "secret": "first-secret-0123456",
            },
            {
                "type": "webhook",
                "url": "https://two.example.org/h",
                "secret": "second-secret-012345",
            },
        ],
    )
    posted = as_browser_posts(contact) | {"channel_remove_0": "1"}
    data, shown = as_contact(posted, contact)
    assert data["channels"] == [
        {"type": "webhook", "url": "https://two.example.org/h", "secret": "second-secret-012345"}
    ]
    assert [row.target for row in shown.channels] == ["https://two.example.org/h", ""]
    # a new webhook with no secret is sent without one, so validation asks for it
    posted = as_browser_posts(contact) | {"channel_target_2": "https://three.example.org/h"}
    data, _ = as_contact(posted, contact)
    assert data["channels"][2] == {
        "type": "webhook",
        "url": "https://three.example.org/h",
        "secret": "",
    }


def test_the_forms_shows_no_secret_and_names_fields_as_the_form_does():
    contact = Contact(
        id="x",
        name="X",
        organisation="Y",
        channels=[{"type": "webhook", "url": "https://h.example.org/", "secret": SECRET}],
    )
    form = form_of(contact)
    assert SECRET not in repr(form)
    assert field_label("channels.0.url", "es") == "Canal 1: URL o dirección de correo"
    assert field_label("name", "fr") == "Nom"
    errors = [{"field": "channels.1.secret", "message": "too short"}]
    assert refusal(ApiError(422, "x", errors), "en") == [
        "Channel 2: Webhook secret (16 characters or more): too short"
    ]


def test_the_demo_receiver_shows_a_test_message_sent_from_the_console(capsys):
    from datetime import UTC, datetime

    from services.demo.receiver import ReceivedAlert
    from services.demo.run import print_alert
    from services.notify.probe import render_probe_json

    reader = Contact(
        id="pa-focal",
        name="Punto focal",
        organisation="SNM",
        language="es",
        channels=[{"type": "email", "address": "focal@example.org"}],
    )
    body = render_probe_json(reader, "demo.pa", datetime(2026, 12, 4, tzinfo=UTC), "ews-test:x")
    print_alert(ReceivedAlert("ews-test:x", "pa-focal", {}, body, 0.0))
    shown = capsys.readouterr()
    assert "TEST" in shown.out + shown.err and "demo.pa" in shown.out + shown.err
