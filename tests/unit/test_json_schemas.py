"""The JSON Schema files in schemas/json/ stay in step with the models."""

from __future__ import annotations

from schemas.export import JSON_DIR, render_schemas


def test_checked_in_json_schemas_match_the_models():
    rendered = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.schema.json")}
    assert on_disk.keys() == rendered.keys(), "run `ews schemas export` and commit schemas/json/"
    for name, text in rendered.items():
        assert on_disk[name] == text, (
            f"schemas/json/{name} is out of date: run `ews schemas export`"
        )
