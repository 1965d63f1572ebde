"""`mdde-stream run` end to end on the embedded defaults, in a temporary MDDE_DATA_DIR."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mdde_stream.bus import TopicPartition, open_bus
from mdde_stream.cli import app
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import decode_event


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MDDE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MDDE_BUS", raising=False)
    monkeypatch.delenv("MDDE_STATE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def count_events(data_dir: Path, short: str, run_id: str) -> int:
    settings = Settings(data_dir=data_dir)
    with open_bus(settings=settings) as bus:
        topic = settings.topic(short)
        consumer = bus.consumer("counter")
        consumer.assign([TopicPartition(topic, p) for p in range(bus.list_topics()[topic])])
        n = 0
        while records := consumer.poll(0.2, 10_000):
            n += sum(decode_event(r.value).run_id == run_id for r in records)
        consumer.close()
    return n


def test_default_run_is_fast_and_writes_its_events(data_dir: Path) -> None:
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["run", "--run-id", "cli-run-1", "--quiet"])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert "cli-run-1" in result.output
    # random-valid only picks unmasked actions: whatever is not valid lost a conflict within its step
    rate, conflicts = re.search(r"valid action rate: ([\d.]+)% \((\d+) rejected", result.output).groups()
    actions = 5 * 1001 * 4  # the defaults: 5 episodes of Table 5.5's 1,001 steps, 4 agents
    assert float(rate) == pytest.approx(100.0 * (1 - int(conflicts) / actions), abs=0.051)
    assert re.search(r"throughput: [\d,]+ → [\d,]+ reads/s \([+-]\d+\.\d%", result.output)
    for agent in ("n0", "n1", "n2", "n3"):
        assert re.search(rf"{agent}\s+│\s+\d+\.\d%\s+│\s+-?\d+\.\d{{3}}", result.output), result.output
    assert "5005 steps" in result.output
    assert elapsed < 30  # "a few seconds" on an idle machine; generous for a shared CI runner
    assert count_events(data_dir, "steps", "cli-run-1") == 5 * 1001
    assert count_events(data_dir, "actions", "cli-run-1") == actions


def test_starving_policy_puts_all_reads_on_the_last_node(data_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--episodes", "1", "--steps", "16", "--policy", "starving", "--frequency", "1",
              "--benchmark", "estimate", "--quiet", "--run-id", "starve"],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"n3\s+│\s+100\.0%", result.output), result.output
    assert re.search(r"n0\s+│\s+0\.0%", result.output)


def test_bad_options_exit_2_with_the_reason(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--policy", "clairvoyant", "--quiet"])
    assert result.exit_code == 2
    assert "unknown policy 'clairvoyant'" in result.output
    result = CliRunner().invoke(app, ["run", "--benchmark", "psychic", "--quiet"])
    assert result.exit_code == 2
    assert "benchmark" in result.output


def test_real_benchmark_without_workers_stops_with_the_reason(data_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--benchmark", "real", "--benchmark-timeout", "0.3", "--quiet", "--run-id", "no-workers"]
    )
    assert result.exit_code == 1, result.output
    assert "run no-workers stopped" in result.output and "benchmark workers" in result.output
