"""The exported JSON Schemas in schemas/ must match the pydantic models."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mdde_stream.cli import app
from mdde_stream.events import EVENT_TYPES
from mdde_stream.schemas_export import DEFAULT_DIR, render_schemas, stale_files


def test_schemas_folder_is_current() -> None:
    stale = stale_files(DEFAULT_DIR)
    assert not stale, f"schemas/ is stale ({stale}): run `mdde-stream schemas export` and commit"


def test_every_event_has_a_schema_with_the_common_fields() -> None:
    files = render_schemas()
    assert len(files) == len(EVENT_TYPES)
    for cls in EVENT_TYPES.values():
        doc = json.loads(files[f"{cls.SCHEMA}.v{cls.VERSION}.json"])
        for field in ("schema", "version", "event_id", "run_id", "episode", "step", "ts"):
            assert field in doc["properties"], (cls.SCHEMA, field)
        assert doc["properties"]["schema"]["const"] == cls.SCHEMA
        assert {"schema", "version", "run_id"} <= set(doc["required"])


def test_check_command_detects_a_stale_folder(tmp_path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["schemas", "export", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["schemas", "export", "--check", "--out", str(tmp_path)]).exit_code == 0
    (tmp_path / "step.v1.json").write_text("{}")
    result = runner.invoke(app, ["schemas", "export", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "step.v1.json" in result.output
