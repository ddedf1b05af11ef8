"""Ingest's validation: valid reports become observations; every bad one gets a reason naming the
field."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import BorderCrossingReport
from services.ingest.validation import FeedRejection, parse_feed_message
from tests.helpers import GEOGRAPHY, NOW, crossing


def reject(raw: bytes, feed: str = "border-crossings") -> FeedRejection:
    with pytest.raises(FeedRejection) as info:
        parse_feed_message(feed, raw, GEOGRAPHY, NOW)
    return info.value


def test_contract_example_becomes_an_observation_keyed_by_site():
    report = crossing(
        19,
        1520,
        by_nationality={"VE": 900, "EC": 300, "HT": 120, "CN": 200},
        children=310,
        unaccompanied_children=12,
    )
    obs = parse_feed_message("border-crossings", json.dumps(report).encode(), GEOGRAPHY, NOW)
    assert obs.key == "PA-LAJAS-BLANCAS"
    assert obs.location.country == "PA"
    assert obs.metrics == {"count": 1520, "children": 310, "unaccompanied_children": 12}
    assert obs.categories["nationality"]["VE"] == 900
    assert obs.period_end.isoformat() == "2026-11-21T00:00:00+00:00"


def test_timestamps_with_offsets_are_normalised_to_utc():
    report = crossing(0, 10) | {"observed_at": "2026-11-01T00:00:00-05:00"}
    obs = parse_feed_message("border-crossings", json.dumps(report).encode(), GEOGRAPHY, NOW)
    assert obs.observed_at.isoformat() == "2026-11-01T05:00:00+00:00"


@pytest.mark.parametrize(
    "change, reason, words",
    [
        ({"count": -5}, "validation", "count: Input should be greater than or equal to 0"),
        ({"count": 12.5}, "validation", "count: Input should be a valid integer"),
        ({"count": True}, "validation", "count"),
        (
            {"count": 10**12},
            "validation",
            "count: Input should be less than or equal to 1000000000",
        ),
        (
            {"to_country": "XX"},
            "validation",
            "to_country: expected an ISO 3166-1 alpha-2 country code",
        ),
        (
            {"observed_at": "2026-11-01T00:00:00"},
            "validation",
            "observed_at: Input should have timezone info",
        ),
        ({"period": "one day"}, "validation", "period: expected a duration"),
        ({"children": 2000}, "validation", "children (2000) is more than count"),
        (
            {"by_nationality": {"VE": 900, "HT": 900}},
            "validation",
            "by_nationality adds up to 1800, more than count",
        ),
        (
            {"site_id": "PA-NOWHERE"},
            "unknown_site",
            "site_id: 'PA-NOWHERE' is not a site in config/sites.yaml",
        ),
        ({"surprise": 1}, "validation", "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_reports_are_rejected_naming_the_field(change, reason, words):
    error = reject(json.dumps(crossing(0, 1000) | change).encode())
    assert error.reason == reason
    assert words in error.detail


def test_missing_fields_are_all_named():
    error = reject(b'{"event_id": "x-1", "source": "PA-SNM"}')
    for field in (
        "observed_at: Field required",
        "to_country: Field required",
        "count: Field required",
    ):
        assert field in error.detail


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"event_id": "x", "count": 1', "invalid_json"),
        (b"\xff\xfe not utf-8", "not_utf8"),
        (b'{"event_id": "x", "count": NaN}', "invalid_json"),
        (b'{"event_id": "x", "count": Infinity}', "invalid_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b'{"pad": "' + b"x" * 2_000_000 + b'"}', "too_large"),
    ],
)
def test_malformed_bytes_get_a_reason(raw, reason):
    assert reject(raw).reason == reason


def test_displacement_shelter_figures_go_together():
    report = {
        "event_id": "hn-1",
        "source": "HN-CONADEH",
        "observed_at": "2026-11-20T00:00:00Z",
        "area_id": "HN-CR",
        "country": "HN",
        "newly_displaced": 450,
        "shelter_occupancy": 820,
    }
    error = reject(json.dumps(report).encode(), feed="displacement")
    assert "shelter_occupancy and shelter_capacity go together" in error.detail


def test_displacement_area_must_be_in_its_country():
    report = {
        "event_id": "hn-1",
        "source": "HN-CONADEH",
        "observed_at": "2026-11-20T00:00:00Z",
        "area_id": "HN-CR",
        "country": "GT",
        "newly_displaced": 450,
    }
    assert (
        "HN-CR is in HN, not GT" in reject(json.dumps(report).encode(), feed="displacement").detail
    )


countries = st.sampled_from(["VE", "EC", "HT", "CN", "CO", "CU", "AF", "IN"])


@st.composite
def valid_reports(draw):
    count = draw(st.integers(0, 100_000))
    shares = draw(st.dictionaries(countries, st.integers(0, 1000), max_size=4))
    scale = max(1, sum(shares.values()))
    by_nat = {k: v * count // scale for k, v in shares.items()}
    children = draw(st.integers(0, count))
    return crossing(
        draw(st.integers(0, 22)),  # days of November 2026 before NOW
        count,
        by_nationality=by_nat,
        children=children,
        unaccompanied_children=draw(st.integers(0, children)),
    )


@settings(max_examples=200, deadline=None)
@given(valid_reports())
def test_valid_reports_round_trip_through_json_unchanged(report):
    model = BorderCrossingReport.model_validate_json(json.dumps(report))
    again = BorderCrossingReport.model_validate_json(model.model_dump_json())
    assert again == model
    assert (
        parse_feed_message("border-crossings", json.dumps(report).encode(), GEOGRAPHY, NOW).metrics[
            "count"
        ]
        == report["count"]
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_never_raise_anything_but_a_rejection(raw):
    try:
        parse_feed_message("border-crossings", raw, GEOGRAPHY, NOW)
    except FeedRejection as error:
        assert error.reason and error.detail
