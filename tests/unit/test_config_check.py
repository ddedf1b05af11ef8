"""`ews rules check` is the engine's own check: every national override resolved as a worker
resolves it, every problem of every file in one run at its line, contacts, sharing and tokens
checked against the rest."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from services.cli import main
from services.common.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"


def check(*paths):
    return CliRunner().invoke(main, ["rules", "check", *map(str, paths)])


def triggers_with(tmp_path, overrides: str):
    """The shipped triggers with the overrides block replaced."""
    text = (CONFIG / "triggers.yaml").read_text()
    head = text[: text.index("overrides:")]
    path = tmp_path / "triggers.yaml"
    path.write_text(head + "overrides:\n" + overrides)
    return path


def line_of(path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_an_override_that_breaks_its_inherited_clear_is_refused_at_its_line(tmp_path):
    """Lowering Guatemala's levels under the common clear (800) is caught where it is written,
    with the fix, by the check and by the backtest alike - never a traceback."""
    path = triggers_with(
        tmp_path,
        "  GT:\n    crossing-surge: {levels: {watch: 300, warning: 600, emergency: 1200}}\n"
        "  PA:\n    crossing-surge: {levels: {watch: 500, warning: 700, emergency: 900}}\n",
    )
    result = check(path, CONFIG / "sites.yaml")
    assert result.exit_code == 1
    gt, pa = line_of(path, "emergency: 1200}}"), line_of(path, "emergency: 900}}")
    assert (
        f"{path}:{gt}: overrides.GT.crossing-surge: GT's crossing-surge: clear (800.0) must not be "
        "above the lowest level (300.0)" in result.output
    )
    assert f"{path}:{pa}: overrides.PA.crossing-surge" in result.output
    assert "give GT its own clear in the override" in result.output
    events = tmp_path / "none.jsonl"
    events.write_text("")
    backtest = CliRunner().invoke(main, ["backtest", "--rules", str(path), "--events", str(events)])
    assert backtest.exit_code != 0 and "Traceback" not in backtest.output
    assert f"{path}:{gt}: overrides.GT.crossing-surge" in backtest.output


def test_every_problem_of_every_file_in_one_run_each_at_its_line(tmp_path):
    rules = triggers_with(
        tmp_path, "  GU:\n    crossing-surge: {clear: 500}\n  PA:\n    no-such: {}\n"
    )
    sites = yaml.safe_load((CONFIG / "sites.yaml").read_text())
    sites["sites"][0]["area"] = "CO-ANT" if sites["sites"][0]["country"] != "CO" else "PA-5"
    sites["sites"][1]["area"] = "HN-AT"
    sites["corridors"][0]["sites"].append("NOWHERE")
    sites_path = tmp_path / "sites.yaml"
    sites_path.write_text(yaml.safe_dump(sites, sort_keys=False, allow_unicode=True))
    contacts = tmp_path / "contacts.yaml"
    webhook = {"type": "webhook", "url": "https://10.0.0.5/hook", "secret": "s" * 20}
    contacts.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "contacts": [
                    {
                        "id": "a",
                        "name": "A",
                        "organisation": "o",
                        "channels": [webhook],
                        "corridors": ["nowhere-corridor"],
                        "trigger_ids": ["no-trigger"],
                        "escalation_contacts": ["ghost"],
                    },
                    {
                        "id": "a",
                        "name": "A again",
                        "organisation": "o",
                        "channels": [{"type": "email", "address": "a@example.org"}],
                    },
                ],
            },
            sort_keys=False,
        )
    )
    sharing = tmp_path / "sharing.yaml"
    sharing.write_text("version: 1\ncountries:\n  HN: {outside: everything}\n")
    result = check(rules, sites_path, contacts, sharing)
    assert result.exit_code == 1
    out = result.output
    expected = [
        (rules, "GU:", "overrides.GU: GU has no sites or areas"),
        (rules, "no-such", "overrides.PA.no-such: PA overrides 'no-such', which is no trigger"),
        (sites_path, "HN-AT", "sites.1.area: site"),
        (sites_path, "NOWHERE", "corridors.0.sites."),
        (contacts, "nowhere-corridor", "contacts.0.corridors.0: contact a: no corridor"),
        (contacts, "no-trigger", "contacts.0.trigger_ids.0: contact a: no trigger"),
        (contacts, "ghost", "contacts.0.escalation_contacts.0: contact a escalates to unknown"),
        (contacts, "10.0.0.5", "contacts.0.channels.0.url: contact a: webhook host 10.0.0.5"),
        (contacts, "A again", "contacts.1.id: contact id 'a' is used more than once"),
        (sharing, "everything", "countries.HN.outside"),
    ]
    for path, marker, text in expected:
        near = line_of(path, marker)
        assert any(f"{path}:{n}: {text}" in out for n in (near - 1, near)), (
            f"{path} near line {near}: {text}\n{out}"
        )
    assert out.count(str(sites_path) + ":") >= 3  # the first site's area lies in another country


def test_the_shipped_configuration_passes_the_whole_check():
    files = [CONFIG / n for n in ("triggers.yaml", "sites.yaml", "contacts.yaml", "sharing.yaml")]
    result = check(*files, CONFIG / "contacts.example.yaml")
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == 5
