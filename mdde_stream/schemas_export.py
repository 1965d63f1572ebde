"""Export every event's JSON Schema into ``schemas/`` so non-Python consumers can validate events."""

from __future__ import annotations

import json
from pathlib import Path

from mdde_stream.events import EVENT_TYPES, Event

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_file_name(cls: type[Event]) -> str:
    return f"{cls.SCHEMA}.v{cls.VERSION}.json"


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, exactly as it is written to disk (stable key order, trailing newline)."""
    files: dict[str, str] = {}
    for cls in EVENT_TYPES.values():
        doc = cls.model_json_schema(by_alias=True)
        doc["$id"] = f"mdde-stream/{schema_file_name(cls)}"
        doc["x-topic"] = cls.TOPIC
        doc["properties"]["schema"]["const"] = cls.SCHEMA
        doc["properties"]["version"]["const"] = cls.VERSION
        files[schema_file_name(cls)] = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    return files


def stale_files(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of schema files that are missing, different, or no longer produced."""
    wanted = render_schemas()
    stale = [name for name, text in wanted.items() if not (directory / name).is_file()
             or (directory / name).read_text() != text]
    if directory.is_dir():
        stale += sorted(p.name for p in directory.glob("*.json") if p.name not in wanted)
    return sorted(stale)


def export_schemas(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    wanted = render_schemas()
    for old in directory.glob("*.json"):
        if old.name not in wanted:
            old.unlink()
    paths = []
    for name, text in wanted.items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths
