"""Config files: the shipped ones pass; a broken one is refused with file:line: field: message."""

from click.testing import CliRunner

from services.cli import main
from services.common.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"


def test_shipped_configuration_passes_the_check():
    result = CliRunner().invoke(main, ["rules", "check", str(CONFIG / "triggers.yaml"), str(CONFIG / "sites.yaml"),
                                       str(CONFIG / "contacts.yaml"), str(CONFIG / "contacts.example.yaml")])
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
    assert f"{broken}:8: triggers.0.window: expected a duration such as '24h', '7d' or ISO 8601 'P1M', got '24 hours'" in lines
    assert f"{broken}:9: triggers.0.levels: levels must rise: watch (3000.0) must be below warning (2500.0)" in lines


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
    assert f"{broken}:3: triggers.0: clear (800.0) must not be above the lowest level (100.0)" in result.output
