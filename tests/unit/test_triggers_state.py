"""The triggers worker's state written to its changelogs and read back after a crash: the same
windows, and a report shared by the scopes it counts towards, as when it arrived live."""

from types import SimpleNamespace

from services.common.settings import PROJECT_ROOT
from services.common.topics import Topics
from services.triggers.app import ScopeStates
from services.triggers.backtest import Backtest, by_tick
from services.triggers.core import ScopeState
from services.triggers.loading import load_engine
from tests.helpers import NOW, daily_reports


def test_state_read_back_from_its_changelogs_holds_the_same_reports_each_report_once():
    engine = load_engine(
        PROJECT_ROOT / "config" / "triggers.yaml", PROJECT_ROOT / "config" / "sites.yaml", "P7D"
    )
    live = Backtest(engine)
    for group in by_tick(daily_reports(seed=3)):
        live.apply_together(group, NOW)
    states = ScopeStates(Topics("ns"))
    encoded: dict = {}
    records: dict[str, list] = {}
    for key, state in live.states.items():
        for out in states.changes(key, state, 0, encoded):
            records.setdefault(out.topic, []).append(SimpleNamespace(key=out.key, value=out.value))
    # a scope's state written at every batch: an older value first, the last one counts; a scope
    # written and then deleted (its tombstone) is not brought back
    states_log = ScopeStates(Topics("ns")).changelogs[0]
    first = next(iter(live.states))
    older = SimpleNamespace(key=first.encode(), value=b'{"scope": null, "feeds": {}}')
    gone = [
        SimpleNamespace(key=b"site/GONE", value=b'{"scope": null, "feeds": {}}'),
        SimpleNamespace(key=b"site/GONE", value=None),
    ]
    records[states_log] = [older, *gone, *records[states_log]]
    back = ScopeStates(Topics("ns"))
    for changelog in back.changelogs:  # as the relay reads them: the states, then the reports
        half = len(records[changelog]) // 2  # in more than one fetch
        back.restore(0, changelog, records[changelog][:half])
        back.restore(0, changelog, records[changelog][half:])
    back.restored([0])

    restored = back.partition(0)
    assert restored.keys() == live.states.keys()
    shared: dict[str, set[int]] = {}
    placements = 0
    for key, state in live.states.items():
        for feed, window in state.feeds.items():
            again = restored[key].feeds[feed]
            assert again.contributions == window.contributions
            for eid, contribution in again.contributions.items():
                shared.setdefault(eid, set()).add(id(contribution))
                placements += 1
    assert len(shared) > 30 and placements > 2 * len(shared)  # each counts towards several scopes
    assert all(len(objects) == 1 for objects in shared.values())  # one object per report
    assert back.decoded == {} and back.written == {}  # nothing kept once recovery is done
    for key, state in live.states.items():
        assert restored[key].to_json() == state.to_json()


def test_copies_of_a_report_read_apart_are_held_as_one_contribution_and_other_figures_apart():
    """Live, a report reaches the scopes of each partition in a message of its own: each copy is
    parsed apart, yet the windows hold the report once."""
    from schemas import Observation
    from tests.helpers import crossing, observation

    engine = load_engine(
        PROJECT_ROOT / "config" / "triggers.yaml", PROJECT_ROOT / "config" / "sites.yaml", "P7D"
    )
    report = observation(crossing(0, 1200))
    raw = report.model_dump_json()
    backtest = Backtest(engine)
    for scope in engine.scopes_for(report):  # one copy per scope, as if each were a partition's
        copy = Observation.model_validate_json(raw)
        state = backtest.states.setdefault(scope.key, ScopeState())
        assert engine.add(state, scope, copy, NOW) == "applied"
    held = {
        id(window.contributions[report.report_id])
        for state in backtest.states.values()
        for window in state.feeds.values()
    }
    assert len(backtest.states) >= 3 and len(held) == 1
    other = report.model_copy(update={"metrics": {"count": 999}})  # same id and revision
    scope = engine.scopes_for(other)[0]
    fresh = ScopeState()
    assert engine.add(fresh, scope, other, NOW) == "applied"
    assert (
        fresh.feeds["border_crossing"].contributions[report.report_id].metrics.number("count")
        == 999
    )
