"""`topics` and `dead-letters` commands on the embedded bus."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mdde_stream.bus import open_bus
from mdde_stream.bus.app import EventConsumer
from mdde_stream.cli import app
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import ActionSubmitted


@pytest.fixture
def embedded_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MDDE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MDDE_BUS", "")
    get_settings.cache_clear()
    yield Settings(data_dir=tmp_path)
    get_settings.cache_clear()


def test_topics_create_then_list(embedded_env: Settings) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["topics", "create"]).exit_code == 0
    result = runner.invoke(app, ["topics", "list", "--json"])
    assert result.exit_code == 0
    rows = {row["topic"]: row for row in json.loads(result.output)}
    assert rows["mdde.actions"]["partitions"] == 4
    assert rows["mdde.benchmark.tasks"]["partitions"] == 8
    assert all(row["records"] == 0 for row in rows.values())


def test_dead_letters_shows_reason_and_origin(embedded_env: Settings) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["topics", "create"]).exit_code == 0
    with open_bus(settings=embedded_env) as bus:
        producer = bus.producer()
        producer.produce("mdde.actions", b"\x00not an event", key="run-7")
        producer.close()
        consumer = EventConsumer(bus, "registry", ["mdde.actions"], (ActionSubmitted,), settings=embedded_env)
        assert consumer.poll(2.0) == []
        consumer.commit()
        consumer.close()
    result = runner.invoke(app, ["dead-letters", "--json"])
    assert result.exit_code == 0, result.output
    letters = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(letters) == 1
    assert letters[0]["error_type"] == "invalid-json"
    assert letters[0]["source_topic"] == "mdde.actions"
    assert letters[0]["run_id"] == "run-7"
