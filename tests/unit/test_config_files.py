"""Config files: the shipped ones pass; a broken one is refused with file:line: field: message."""

import pytest
from click.testing import CliRunner

from services.cli import main
from services.common.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"


def test_shipped_configuration_passes_the_check():
    result = CliRunner().invoke(
        main,
        [
            "rules",
            "check",
            str(CONFIG / "triggers.yaml"),
            str(CONFIG / "sites.yaml"),
            str(CONFIG / "contacts.yaml"),
            str(CONFIG / "contacts.example.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output


def test_a_broken_triggers_file_is_reported_with_line_numbers(tmp_path):
    broken = tmp_path / "triggers.yaml"
    broken.write_text(
        "version: 1\n"
        "triggers:\n"
        "  - id: surge\n"
        "    kind: threshold\n"
        "    feed: border_crossing\n"
        "    metric: people\n"
        "    scope: site\n"
        "    window: 24 hours\n"
        "    levels: {watch: 3000, warning: 2500}\n"
        "    title: {en: a, es: b, fr: c, pt: d}\n"
    )
    result = CliRunner().invoke(main, ["rules", "check", str(broken)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert (
        f"{broken}:8: triggers.0.window: expected a duration such as '24h', '7d' or ISO 8601 "
        "'P1M', got '24 hours'" in lines
    )
    assert (
        f"{broken}:9: triggers.0.levels: levels must rise: watch (3000.0) must be below warning "
        "(2500.0)" in lines
    )


def test_yaml_syntax_errors_name_the_line(tmp_path):
    broken = tmp_path / "sites.yaml"
    broken.write_text("sites:\n  - {id: A, name: [unclosed\n")
    result = CliRunner().invoke(main, ["rules", "check", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:3: YAML syntax" in result.output


def test_a_check_of_a_whole_trigger_is_reported_at_that_trigger(tmp_path):
    broken = tmp_path / "triggers.yaml"
    broken.write_text(
        "version: 1\n"
        "triggers:\n"
        "  - id: surge\n"
        "    kind: threshold\n"
        "    feed: border_crossing\n"
        "    metric: count\n"
        "    scope: site\n"
        "    window: 24h\n"
        "    levels: {watch: 100}\n"
        "    clear: 800\n"
        "    title: {en: a, es: b, fr: c, pt: d}\n"
    )
    result = CliRunner().invoke(main, ["rules", "check", str(broken)])
    assert (
        f"{broken}:3: triggers.0: clear (800.0) must not be above the lowest level (100.0)"
        in result.output
    )


def _aliases_of_aliases(depth: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, depth)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("triggers: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply to be a config file"),
        (
            "triggers: &loop [*loop]\n",
            "nested too deeply, or a YAML alias (*name) is used inside the block its anchor "
            "(&name) marks",
        ),
        (_aliases_of_aliases(9), "expands to more than 2,000,000 values"),
    ],
)
def test_pathological_yaml_is_refused_with_a_reason_not_a_traceback(tmp_path, text, problem):
    """What would otherwise end `ews rules check` (and a worker's hot reload) with a RecursionError
    or expand a few lines into a billion values."""
    broken = tmp_path / "triggers.yaml"
    broken.write_text(text)
    result = CliRunner().invoke(main, ["rules", "check", str(broken)])
    assert result.exit_code == 1, result.output
    assert f"{broken}: {problem}" in result.output


def test_changed_files_that_cannot_be_loaded_are_refused_and_the_running_rules_stay(
    tmp_path, monkeypatch
):
    """The triggers worker's hot reload (a timer): whatever an operator's save leaves behind, the
    worker keeps the rules it runs and says why; it never stops over a file."""
    import os
    import shutil

    from services.triggers import loading

    rules, sites = tmp_path / "triggers.yaml", tmp_path / "sites.yaml"
    shutil.copy(CONFIG / "triggers.yaml", rules)
    shutil.copy(CONFIG / "sites.yaml", sites)
    holder = loading.ReloadingEngine(rules, sites, "P7D")
    running = holder.engine

    rules.unlink()
    rules.mkdir()  # a folder where the file was
    assert holder.reload_if_changed() == ("refused", [f"{rules}: cannot be read: Is a directory"])
    rules.rmdir()
    rules.write_text("triggers: &loop [*loop]\n")
    status, problems = holder.reload_if_changed() or ("unchanged", [])
    assert status == "refused" and "YAML alias" in problems[0]

    shutil.copy(CONFIG / "triggers.yaml", rules)
    monkeypatch.setattr(loading, "RuleSet", lambda file: 1 / 0)  # a bug the check missed
    status, problems = holder.reload_if_changed() or ("unchanged", [])
    assert (
        status == "refused"
        and "ZeroDivisionError" in problems[0]
        and "the running rules stay" in problems[0]
    )
    assert holder.engine is running

    monkeypatch.undo()
    os.utime(rules, ns=(1, 1))
    assert holder.reload_if_changed() == ("applied", []) and holder.engine is not running


def test_a_dot_env_file_where_a_worker_starts_sets_its_settings(tmp_path, monkeypatch):
    """README, Running it yourself: `.env` in the working directory, environment variables over
    it."""
    from services.common.settings import Settings

    (tmp_path / ".env").write_text("EWS_TOPIC_NAMESPACE=pa-ews\nEWS_INGEST_WEB_PORT=7061\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EWS_TOPIC_NAMESPACE", raising=False)
    monkeypatch.setenv("EWS_INGEST_WEB_PORT", "8061")
    settings = Settings()
    assert (settings.topic_namespace, settings.ingest_web_port) == ("pa-ews", 8061)
