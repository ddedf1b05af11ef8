"""The bucketed event-time windows agree with reading every contribution, whatever the history of
puts, corrections, pruning, rule changes and changelog round trips."""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.triggers.core.windows import Contribution, Counts, FeedWindow, Kept

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEPT = Kept(frozenset({"count", "children"}), frozenset({"nationality"}))
NAMES = ["VE", "HT", "CN", "AF"]

put_step = st.tuples(
    st.just("put"),
    st.integers(0, 12),  # event id (a repeat is a correction)
    st.integers(0, 30),
    st.sampled_from([1, 1, 1, 7]),  # start day, period in days
    st.integers(0, 500),
    st.booleans(),  # count, carries children
    st.dictionaries(st.sampled_from(NAMES), st.integers(0, 50), max_size=3),
)
prune_step = st.tuples(st.just("prune"), st.integers(0, 30))
reload_step = st.tuples(st.just("reload"))
roundtrip_step = st.tuples(st.just("roundtrip"))
steps = st.lists(
    st.one_of(put_step, put_step, put_step, prune_step, reload_step, roundtrip_step), max_size=40
)


def brute(contributions, start, end, metric):
    return sum(
        c.metrics.number(metric)
        for c in contributions.values()
        if c.start >= start and c.end <= end
    )


def brute_seen(contributions, name, start, end):
    return any(
        c.categories.part("nationality").number(name) > 0
        for c in contributions.values()
        if c.start >= start and c.end <= end
    )


@settings(max_examples=300, deadline=None)
@given(steps, st.integers(0, 35), st.integers(1, 20))
def test_bucket_sums_equal_the_contributions_they_summarise(history, from_day, span_days):
    window, kept = FeedWindow(), KEPT
    for step in history:
        if step[0] == "put":
            _, eid, day, period, count, with_children, nationality = step
            metrics = {"count": count, **({"children": count // 3} if with_children else {})}
            start = T0 + timedelta(days=day)
            window.put(
                f"e{eid}",
                Contribution(
                    1,
                    start,
                    start + timedelta(days=period),
                    Counts.of(metrics),
                    Counts.of({"nationality": nationality}),
                ),
                kept,
            )
        elif step[0] == "prune":
            window.prune(T0 + timedelta(days=step[1]))
        elif step[0] == "reload":  # rules changed: keep "count" only, then everything again
            window.put(
                "reload",
                Contribution(1, T0, T0 + timedelta(days=1), Counts.of({"count": 1}), Counts()),
                Kept(frozenset({"count"}), frozenset()),
            )
            window.discard("reload")
        else:
            window = FeedWindow.from_json(json.loads(json.dumps(window.to_json())))
        if window.kept != kept:
            window.put(
                "probe", Contribution(1, T0, T0 + timedelta(days=1), Counts(), Counts()), kept
            )
            window.discard("probe")
    start, end = T0 + timedelta(days=from_day), T0 + timedelta(days=from_day + span_days)
    for metric in ("count", "children"):
        assert sum(b.total(metric) for b in window.between(start, end)) == brute(
            window.contributions, start, end, metric
        )
        assert sum(b.count(metric) for b in window.between(start, end)) == sum(
            1
            for c in window.contributions.values()
            if c.start >= start and c.end <= end and metric in c.metrics
        )
        assert window.tally(metric, start, end) == (
            brute(window.contributions, start, end, metric),
            sum(b.count(metric) for b in window.between(start, end)),
        )
    for name in NAMES:
        assert window.seen_between("nationality", name, start, end) == brute_seen(
            window.contributions, name, start, end
        )
    assert sorted(eid for eid, _ in window.inside(start, end)) == sorted(
        eid for eid, c in window.contributions.items() if c.start >= start and c.end <= end
    )


def test_a_window_holds_a_daily_report_in_a_few_hundred_bytes():
    """Memory follows retention: a municipality-level deployment holds millions of reports in its
    windows (make bench's scale group measures the live worker), so each must cost little: here a
    site's daily reports, their figures and breakdown by nationality included."""
    import tracemalloc

    kept = KEPT
    window = FeedWindow()
    n = 5000
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for day in range(n):
        start = T0 + timedelta(days=day)
        figures = {"count": 1000 + day, "children": 300 + day}  # as a parsed report brings them
        breakdown = {"nationality": {"VE": 400 + day, "HT": 300 + day, "CN": 300 + day}}
        window.put(
            f"PA-SNM/bc-{day}",
            Contribution(
                1,
                start,
                start + timedelta(days=1),
                Counts.of(figures),
                Counts.of(breakdown),
                1.7e9 + day,
            ),
            kept,
        )
        del figures, breakdown
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(window.contributions) == n
    # ~950 bytes here, alone at its site (the id, figures and breakdown are ~500 of them); a period
    # with a bucket of sums of its own and the figures in dicts cost ~2,300
    assert held / n < 1200, f"{held / n:.0f} bytes per report"
