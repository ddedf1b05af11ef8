"""No report stops ingest, and no implausible one is accepted: dates at the ends of the calendar,
periods that cannot be added, periods ending far in the future or lasting years are rejections
with a reason naming the field (`out_of_range`, `future`); any other failure on one message is an
`internal` rejection of that message, never the worker's."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest import validation
from services.ingest.validation import FeedRejection, Limits, parse_feed_message
from tests.helpers import GEOGRAPHY, NOW, crossing


def reject(report: dict, limits: Limits | None = None) -> FeedRejection:
    with pytest.raises(FeedRejection) as info:
        parse_feed_message(
            "border-crossings", json.dumps(report).encode(), GEOGRAPHY, NOW, limits or Limits()
        )
    return info.value


@pytest.mark.parametrize(
    "observed_at",
    [
        "9999-12-31T12:00:00Z",  # + P1D passes the end of the calendar
        "0001-01-01T00:00:00+05:00",  # in UTC, before its start
        "9999-12-31T23:59:59-05:00",  # in UTC, after its end
        "0001-01-01T00:00:00Z",
        "1899-12-31T00:00:00Z",
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_out_of_range(observed_at):
    error = reject(crossing(0, 10) | {"observed_at": observed_at})
    assert error.reason == "out_of_range", error.detail
    assert error.detail.startswith("observed_at:")


@pytest.mark.parametrize("period", ["P9999Y", "P2Y", "P400D", "PT100000H"])
def test_periods_longer_than_the_bound_are_out_of_range(period):
    error = reject(crossing(0, 10) | {"period": period})
    assert error.reason == "out_of_range", error.detail
    assert error.detail.startswith("period:") and "longer than" in error.detail
    if period != "P9999Y":  # that one cannot even be added to a date
        assert "EWS_MAX_PERIOD" in error.detail


def test_a_year_long_period_is_accepted_and_the_bound_is_a_setting():
    report = crossing(0, 10) | {"observed_at": "2025-01-01T00:00:00Z", "period": "P1Y"}
    raw = json.dumps(report).encode()
    assert parse_feed_message("border-crossings", raw, GEOGRAPHY, NOW).period == "P1Y"
    assert reject(report, Limits(max_period="P1M")).reason == "out_of_range"


def test_a_report_ending_a_century_ahead_is_refused_as_future():
    error = reject(
        crossing(0, 10, site="CR-PASO-CANOAS", to="CR") | {"observed_at": "2126-11-01T00:00:00Z"}
    )
    assert error.reason == "future"
    assert "2126-11-02" in error.detail and "EWS_MAX_FUTURE" in error.detail


def test_the_day_in_progress_is_accepted_and_the_next_one_is_not():
    today = NOW.replace(hour=0, minute=0)
    running = crossing(0, 10) | {"observed_at": today.isoformat()}  # ends within a day
    raw = json.dumps(running).encode()
    assert parse_feed_message("border-crossings", raw, GEOGRAPHY, NOW).period_end > NOW
    after = crossing(0, 10) | {"observed_at": (today + timedelta(days=2)).isoformat()}
    assert reject(after).reason == "future"


def test_any_other_failure_on_one_message_is_an_internal_rejection_logged_with_its_traceback(
    monkeypatch, caplog
):
    def broken(*args: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(validation, "to_observation", broken)
    with caplog.at_level(logging.ERROR, logger=validation.__name__):
        error = reject(crossing(0, 10))
    assert error.reason == "internal" and "KeyError" in error.detail
    assert any(record.exc_info for record in caplog.records)


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: (
        ("-" if minutes < 0 else "+") + f"{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    )
)
timestamps = st.one_of(
    st.builds(
        lambda moment, offset: moment.strftime("%Y-%m-%dT%H:%M:%S") + offset,
        st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)),
        offsets | st.just("Z"),
    ),
    st.text(max_size=40),
    st.integers() | st.floats() | st.none(),
)
periods = st.one_of(
    st.builds(
        lambda n, unit: f"P{n}{unit}" if unit in "YMWD" else f"PT{n}{unit}",
        st.integers(0, 10**12),
        st.sampled_from("YMWDHS"),
    ),
    st.from_regex(r"\AP(\d{1,6}Y)?(\d{1,6}M)?(\d{1,6}D)?(T(\d{1,9}H)?(\d{1,9}M)?(\d{1,12}S)?)?\Z"),
    st.builds(
        lambda n, unit: f"{n}{unit}", st.integers(-(10**9), 10**12), st.sampled_from("smhdw")
    ),
    st.text(max_size=20),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(
    observed_at=timestamps,
    period=periods,
    others=st.dictionaries(
        st.sampled_from(["count", "site_id", "event_id", "by_nationality", "children", "source"]),
        json_values,
        max_size=2,
    ),
)
def test_adversarial_times_periods_and_values_only_ever_give_rejections(
    observed_at, period, others
):
    report = crossing(0, 10) | {"observed_at": observed_at, "period": period} | others
    try:
        observation = parse_feed_message(
            "border-crossings", json.dumps(report).encode(), GEOGRAPHY, NOW
        )
    except FeedRejection as error:
        assert error.reason != "internal", error.detail  # every such case has a reason of its own
        assert error.detail
        return
    # what is accepted is plausible: it can never move a scope's watermark far ahead
    assert datetime(1900, 1, 1, tzinfo=UTC) <= observation.observed_at
    assert observation.period_end <= NOW + timedelta(days=1)


def test_every_message_of_the_hostile_corpus_is_a_rejection_with_a_reason_of_its_own():
    from tests.corpus import malformed_border_crossings, malformed_displacement

    for feed, messages in (
        ("border-crossings", malformed_border_crossings()),
        ("displacement", malformed_displacement()),
    ):
        for raw in messages:
            with pytest.raises(FeedRejection) as info:
                parse_feed_message(feed, raw, GEOGRAPHY, NOW)
            assert info.value.reason != "internal", (raw[:200], info.value.detail)
