"""JSON Schema files generated from the models, for partners who do not use Python.

`ews schemas export` writes them to schemas/json/; a test fails when the checked-in files
differ from the models, so the two never drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .alert import AlertEvent
from .config import ContactsFile, SitesFile, TriggersFile
from .delivery import DeliveryRecord
from .feeds import BorderCrossingReport, DisplacementReport
from .observation import Observation
from .rejection import RejectedMessage

JSON_DIR = Path(__file__).resolve().parent / "json"

EXPORTED: dict[str, type[BaseModel]] = {
    "feed.border-crossings": BorderCrossingReport,
    "feed.displacement": DisplacementReport,
    "observation": Observation,
    "ingest.rejected": RejectedMessage,
    "alert": AlertEvent,
    "delivery": DeliveryRecord,
    "config.triggers": TriggersFile,
    "config.sites": SitesFile,
    "config.contacts": ContactsFile,
}


def render_schemas() -> dict[str, str]:
    """File name → JSON Schema text, exactly as written to disk."""
    out = {}
    for name, model in EXPORTED.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$id"] = f"https://ews.example.org/schemas/{name}.schema.json"
        out[f"{name}.schema.json"] = (
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        )
    return out


def export_schemas(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render_schemas().items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
