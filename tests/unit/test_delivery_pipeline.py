"""The delivery pipeline's stages without Kafka: routing through the episode, silences for every
kind of message, acknowledgements that hold through de-escalation, releases, Retry-After and
dead-lettering."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import ContactsFile
from schemas.notify import Acknowledgement, DeliveryJob, Silence
from services.common.config_files import load_model
from services.common.settings import PROJECT_ROOT, Settings
from services.notify.ack_links import LinkRefused, alert_ref, read_link, sign_link
from services.notify.picture import AlertPicture, acknowledged_by, is_acknowledged
from services.notify.pipeline import (
    Held,
    after_failure,
    group_of,
    hold_back,
    plan_jobs,
    released,
    routed_history,
    still_needed,
)
from services.notify.rendering import digest, render_email
from services.notify.routing import route_to_contacts
from services.notify.webhook import retry_after_seconds
from services.triggers.backtest import run_backtest
from services.triggers.history import load_history
from services.triggers.loading import load_engine
from tests.helpers import GEOGRAPHY, NOW, contact, episode, shared

CONFIG = PROJECT_ROOT / "config"


def silence(**matchers) -> Silence:
    return Silence(
        id="s-1",
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=6),
        comment="census week",
        created_by="op",
        created_at=NOW,
        **matchers,
    )


def job(alert, reason="transition", **fields) -> DeliveryJob:
    [planned] = plan_jobs(alert, [contact("duty", countries=["PA"])], reason, NOW)
    return planned.model_copy(update=fields)


def outcome(held: Held | None) -> str | None:
    return held.outcome if held is not None else None


def by_duty(ack: Acknowledgement) -> dict[str, Acknowledgement]:
    """The acknowledgements topic as notify holds it, with this one of the contact duty."""
    return {ack.key: ack}


def ack_of(alert, contact_id: str = "duty") -> Acknowledgement:
    return Acknowledgement(
        alert_id=alert.alert_id,
        contact_id=contact_id,
        transition=alert.transition,
        by="pa-duty",
        at=NOW,
        level=alert.level,
        started_at=alert.started_at,
    )


# --- silences: every message, not only the first ----------------------------------------------


@pytest.mark.parametrize("reason", ["transition", "repeat", "escalation", "release"])
def test_a_silence_holds_back_every_kind_of_message(reason):
    warning = episode(2600)[0]
    held = hold_back(job(warning, reason), warning, [silence(country="PA")], {}, NOW)
    assert held is not None and held.silence is not None
    assert (held.outcome, held.silence.id) == ("muted", "s-1")
    assert held.detail == "silenced by s-1: census week"
    assert hold_back(job(warning, reason), warning, [silence(country="CR")], {}, NOW) is None


def test_a_silence_that_ended_holds_nothing_back():
    warning = episode(2600)[0]
    ended = silence(country="PA").model_copy(update={"expired_by": "op"})
    assert hold_back(job(warning, "repeat"), warning, [ended], {}, NOW) is None


def test_a_muted_message_is_released_once_as_the_alerts_current_state():
    warning, emergency = episode(2600, 5100)[:2]
    muted = job(warning, muted_by="s-1")
    release = released(muted, emergency, NOW)
    assert release is not None
    assert release.idempotency_key == f"{warning.alert_id}:2:duty:released-s-1"
    assert (release.alert, release.reason, release.released_from) == (emergency, "release", "s-1")
    resolved = episode(2600, 100, 100, 100)[-1]
    assert resolved.status == "resolved" and released(muted, resolved, NOW) is None


# --- acknowledgements -----------------------------------------------------------------------


def test_an_acknowledgement_holds_through_de_escalation_not_through_escalation():
    warning, emergency, back, resolved = episode(2600, 5100, 2600, 100, 100, 100)[:4]
    acked = ack_of(emergency)
    assert is_acknowledged(emergency, acked) and is_acknowledged(back, acked)
    assert outcome(hold_back(job(back, "repeat"), back, [], by_duty(acked), NOW)) == "moot"
    at_warning = ack_of(warning)
    assert not is_acknowledged(emergency, at_warning)  # an escalation needs a new one
    escalation = job(emergency, "escalation", escalated_from=["duty"])
    assert hold_back(escalation, emergency, [], by_duty(at_warning), NOW) is None
    assert outcome(hold_back(escalation, emergency, [], by_duty(ack_of(emergency)), NOW)) == "moot"
    assert not is_acknowledged(resolved, acked)
    again = episode(2600, 100, 100, 100, 2600)[-1]  # a new episode of the same alert
    assert again.started_at != warning.started_at
    assert not is_acknowledged(again, ack_of(warning).model_copy(update={"transition": 0}))


def test_a_transition_is_told_even_when_acknowledged_or_superseded():
    warning, emergency = episode(2600, 5100)[:2]
    assert hold_back(job(warning), emergency, [], by_duty(ack_of(emergency)), NOW) is None
    assert outcome(hold_back(job(warning, "repeat"), emergency, [], {}, NOW)) == "moot"


# --- routing: min_level opens an episode, never closes it -----------------------------------


def test_whoever_an_episode_reached_hears_it_to_its_resolution():
    picture = AlertPicture()
    alerts = episode(2600, 1200, 100, 100, 100)  # warning, watch, resolved
    assert [(a.status, a.level) for a in alerts] == [
        ("firing", "warning"),
        ("firing", "watch"),
        ("resolved", None),
    ]
    senior = contact("senior", countries=["PA"], min_level="warning")
    top = contact("top", countries=["PA"], min_level="emergency")
    for alert in alerts:
        picture.record(alert, 0)
        routed = route_to_contacts(alert, [senior, top], GEOGRAPHY, picture.peak_at(alert))
        assert routed == [senior], alert
    picture = AlertPicture()
    for alert in episode(1200, 100, 100, 100):  # watch, resolved: never reached senior
        picture.record(alert, 0)
        assert route_to_contacts(alert, [senior], GEOGRAPHY, picture.peak_at(alert)) == []


def test_the_peak_is_the_one_of_the_transition_not_of_what_came_after():
    """notify's view of the alerts may be ahead of its stream: the episode's later escalation must
    not open an earlier transition to contacts it did not reach."""
    picture = AlertPicture()
    alerts = episode(1200, 2600, 5100)
    for alert in alerts:
        picture.record(alert, 0)
    assert [picture.peak_at(a) for a in alerts] == ["watch", "warning", "emergency"]


def test_the_regional_officer_hears_the_bundled_scenarios_all_clears():
    """With config/contacts.example.yaml and the bundled scenario, iom-roso (min_level warning,
    the Darién corridor) is told of every clearing of an episode it was told of."""
    engine = load_engine(CONFIG / "triggers.yaml", CONFIG / "sites.yaml", "P7D")
    history = load_history(
        [PROJECT_ROOT / "scenarios" / "darien-corridor.synthetic.jsonl"],
        engine.geography,
        datetime.now(UTC),
    )
    alerts = run_backtest(history.observations, engine, datetime.now(UTC))
    contacts = load_model(CONFIG / "contacts.example.yaml", ContactsFile).contacts
    roso = next(c for c in contacts if c.id == "iom-roso")
    told = [a for a, routed in routed_history(alerts, contacts, engine.geography) if roso in routed]
    opened = {a.alert_id for a in told if a.status == "firing"}
    closed = {a.alert_id for a in told if a.status == "resolved"}
    resolved = {a.alert_id for a in alerts if a.status == "resolved"}
    assert opened and opened & resolved <= closed
    assert any("PA-LAJAS-BLANCAS" in a or "PA-PASO-CANOAS" in a for a in closed), closed


# --- retries ------------------------------------------------------------------------------


def test_retry_after_in_both_forms():
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds("1.5", NOW) == 1.5
    assert retry_after_seconds(format_datetime(NOW + timedelta(hours=1), usegmt=True), NOW) == 3600
    assert retry_after_seconds(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0
    for unreadable in (None, "", "soon", "-5", "nan", "inf"):
        assert retry_after_seconds(unreadable, NOW) is None


@given(st.floats(min_value=0, max_value=10 * 86400), st.integers(1, 400))
def test_a_retry_waits_as_asked_up_to_the_cap_and_is_dead_only_by_attempts_or_age(wait, attempt):
    settings = Settings()
    first = NOW - timedelta(hours=2)
    failed = job(episode(2600)[0], attempt=attempt, first_attempt_at=first)
    decision, due, why = after_failure(failed, wait, settings, NOW)
    honoured = min(wait, settings.retry_after_max_s)
    if attempt >= settings.delivery_max_attempts:
        assert decision == "dead" and f"after {attempt} attempts" in why
    elif honoured + 7200 > settings.delivery_max_age_s:
        assert decision == "dead" and "24 h after the first" in why
    else:
        assert decision == "retry" and due == NOW + timedelta(seconds=honoured)


def test_an_hour_asked_for_is_an_hour_waited():
    decision, due, _ = after_failure(job(episode(2600)[0], attempt=1), 3600.0, Settings(), NOW)
    assert (decision, due) == ("retry", NOW + timedelta(hours=1))


# --- per recipient, and by link -------------------------------------------------------------


def test_each_contact_acknowledges_for_itself():
    warning = episode(2600)[0]
    acks = by_duty(ack_of(warning))
    assert acknowledged_by(acks, warning, "duty") and not acknowledged_by(acks, warning, "other")
    [other] = plan_jobs(warning, [contact("other", countries=["PA"])], "repeat", NOW)
    assert hold_back(other, warning, [], acks, NOW) is None  # still reminded
    both = job(warning, "escalation", escalated_from=["duty", "other"])
    assert hold_back(both, warning, [], acks, NOW) is None  # other has not acknowledged
    legacy = {warning.alert_id: ack_of(warning).model_copy(update={"contact_id": None})}
    assert acknowledged_by(legacy, warning, "other")  # given before acks were per contact


SECRET = "link-secret-0123456789abcdef0123456789"


def test_a_link_is_bound_to_its_alert_transition_and_contact_and_expires():
    warning = episode(2600)[0]
    token = sign_link(SECRET, warning, "duty", NOW + timedelta(days=7))
    claims = read_link(SECRET, token, NOW)
    assert (claims.alert_ref, claims.transition, claims.contact_id, claims.level) == (
        alert_ref(SECRET, warning.alert_id),
        1,
        "duty",
        "warning",
    )
    assert claims.started_at == warning.started_at
    with pytest.raises(LinkRefused, match="expired on"):
        read_link(SECRET, token, NOW + timedelta(days=8))
    with pytest.raises(LinkRefused, match="not one ews signed"):
        read_link("another-secret-0123456789abcdef0123", token, NOW)
    payload, mac = token.split(".")
    with pytest.raises(LinkRefused, match="not one ews signed"):
        read_link(SECRET, payload[:-2] + "xx." + mac, NOW)
    with pytest.raises(LinkRefused, match="incomplete"):
        read_link(SECRET, payload, NOW)


@given(
    st.sampled_from(["PA-LAJAS-BLANCAS", "HN-TROJES", "CR-PASO-CANOAS"]),
    st.sampled_from(["duty", "iom-roso", "x"]),
)
def test_a_link_never_shows_the_alert_or_its_place(site, contact_id):
    """The sharing policy may keep a site from a reader: the link names the alert opaquely."""
    alert = episode(2600, site=site, to=site[:2])[0]
    token = sign_link(SECRET, alert, contact_id, NOW + timedelta(days=7))
    readable = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    assert site not in readable and site.lower() not in readable.lower()
    assert alert.alert_id not in readable and alert.rule_id not in readable


# --- grouping, for contacts who ask ---------------------------------------------------------


def test_transitions_group_by_what_the_contact_asked_for():
    lajas = episode(2600)[0]
    canoas = episode(2600, site="PA-PASO-CANOAS")[0]
    costa_rica = episode(2600, site="CR-PASO-CANOAS", to="CR")[0]
    by_country = contact("duty", group_by=["country"], group_wait="5m")
    groups = [group_of(job(a), by_country, GEOGRAPHY) for a in (lajas, canoas, costa_rica)]
    assert groups[0] == groups[1] != groups[2]
    by_corridor = contact("duty", group_by=["corridor", "rule"])
    assert str(group_of(job(lajas), by_corridor, GEOGRAPHY)).endswith("darien-northbound|surge")
    assert group_of(job(lajas), contact("duty"), GEOGRAPHY) is None  # immediate by default
    cap = contact("duty", group_by=["country"], format="cap")
    assert group_of(job(lajas), cap, GEOGRAPHY) is None  # CAP: one alert per message
    assert group_of(job(lajas, "repeat"), by_country, GEOGRAPHY) is None


def test_a_digest_counts_its_messages_in_the_contacts_language():
    reader = contact(language="es")
    first, second = (
        render_email(shared(a, reader), reader, GEOGRAPHY, None) for a in episode(2600, 5100)
    )
    both = digest([first, second], "es")
    assert both.subject == "[EWS] 2 actualizaciones de alertas"
    text = both.text
    assert (
        text.index(first.subject) < text.index(first.part["summary"]) < text.index(second.subject)
    )
    assert both.html.index("ALERTA") < both.html.index("EMERGENCIA")  # both parts, in order


def test_what_delivered_remembers_follows_the_alerts_there_are_not_their_history():
    """A year of an alert firing: 6 repeats a day to 2 contacts, 40 transitions. What is kept of
    it does not grow with the days; what a retry or restart could present again is all kept."""
    keep_for = timedelta(days=2)
    finished: dict[str, str] = {}
    sizes = []
    start = NOW - timedelta(days=365)
    for day in range(365):
        at = start + timedelta(days=day)
        transition = 1 + day // 9
        for contact_id in ("pa", "hn"):
            keys = [f"a/site/X:{transition}:{contact_id}|0"] + [
                f"a/site/X:{transition}:{contact_id}:repeat-{n}|0" for n in range(1, 7)
            ]
            for key in keys:
                finished[key] = at.isoformat()
                finished = still_needed(finished, at, keep_for)
        sizes.append(len(finished))
    assert max(sizes[30:]) == max(sizes[300:])  # flat: bounded by the window, not the year
    assert max(sizes) <= 2 * 7 * 3 + 2
    # the newest transition's plain keys stay however old; recent keys all stay
    later = still_needed(finished, NOW + timedelta(days=30), keep_for)
    assert set(later) == {f"a/site/X:{1 + 364 // 9}:pa|0", f"a/site/X:{1 + 364 // 9}:hn|0"}
    recent = {k: v for k, v in finished.items() if datetime.fromisoformat(v) >= NOW - keep_for}
    assert recent.items() <= still_needed(finished, NOW, keep_for).items()
