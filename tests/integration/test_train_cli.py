"""`mdde-stream train` end to end on the real stack (Kafka bus, Redis registry), through the real CLI.

A training run is recorded like any run: its episodes replay, verify and export; it writes periodic
checkpoints and TensorBoard scalars; its run id cannot be reused unless appended to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
from tests.conftest import kafka_url, redis_url, require_kafka, require_redis

pytestmark = pytest.mark.integration

SMALL = ("--nodes", "2", "--fragments", "4", "--episode-steps", "20", "--batch", "8", "--quiet")


@pytest.fixture(scope="module")
def stack_env() -> Iterator[dict[str, str]]:
    """The CLI's environment: the running stack, topics of this module only."""
    require_kafka()
    require_redis()
    prefix = f"tr{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "MDDE_BUS": kafka_url(), "MDDE_STATE": redis_url(), "MDDE_TOPIC_PREFIX": prefix,
           "COLUMNS": "200"}
    yield env
    with open_bus(settings=Settings(bus=kafka_url(), topic_prefix=prefix)) as bus:
        bus.delete_topics([t for t in bus.list_topics() if t.startswith(f"{prefix}.")])


def mdde(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mdde_stream", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def trained(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    run_id = f"train-{uuid.uuid4().hex[:8]}"
    out = tmp_path_factory.mktemp("ckpt")
    result = mdde(stack_env, "train", "--steps", "40", "--learning-starts", "10", "--checkpoint-every", "20",
                  "--run-id", run_id, "--out", str(out), *SMALL)
    assert result.returncode == 0, result.stdout + result.stderr
    return run_id, out


def test_train_writes_final_and_periodic_checkpoints(trained: tuple[str, Path]) -> None:
    run_id, out = trained
    final = json.loads((out / "config.json").read_text())
    assert final["extra"]["run_id"] == run_id
    assert final["updates"] == 40 - 10  # one update per step after learning starts (Table 5.5)
    for step in (20, 40):
        periodic = json.loads((out / f"step-{step:07d}" / "config.json").read_text())
        assert periodic["extra"]["env_steps"] == step
        assert (out / f"step-{step:07d}" / "model.safetensors").stat().st_size > 0
    assert json.loads((out / "step-0000020" / "config.json").read_text())["updates"] == 20 - 10


def test_train_writes_tensorboard_scalars_with_cleanrl_names(trained: tuple[str, Path]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_id, out = trained
    acc = EventAccumulator(str(out / "tensorboard" / run_id))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"losses/critic", "losses/actor", "charts/return", "charts/policy_entropy"} <= tags
    returns = acc.Scalars("charts/return")
    assert [e.step for e in returns] == [20, 40]  # one per episode, at the env step it ended
    assert max(e.step for e in acc.Scalars("losses/critic")) == 40


def test_training_run_replays_verifies_and_exports(trained: tuple[str, Path], stack_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    run_id, _ = trained
    listed = mdde(stack_env, "replay")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if run_id in line)
    assert "0–1" in row
    verified = mdde(stack_env, "replay", "--run", run_id, "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count(": OK, 20 steps") == 2
    exported = mdde(stack_env, "replay", "--run", run_id, "--export", str(tmp_path / "ds"), "--format", "npz")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "exported 2 episode(s)" in exported.stdout


def test_reused_run_id_is_refused_unless_appended(trained: tuple[str, Path], stack_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    run_id, _ = trained
    args = ("train", "--steps", "20", "--learning-starts", "10", "--run-id", run_id, "--out", str(tmp_path), *SMALL)
    refused = mdde(stack_env, *args)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stdout + refused.stderr
    assert f"--run-id {run_id} is already recorded" in refused.stderr and "--append" in refused.stderr
    assert not (tmp_path / "model.safetensors").exists()

    appended = mdde(stack_env, *args, "--append")
    assert appended.returncode == 0, appended.stdout + appended.stderr
    listed = mdde(stack_env, "replay", "--run", run_id)
    assert listed.returncode == 0, listed.stderr
    assert f"run {run_id} episode 2: 20 steps" in listed.stdout  # numbered after the recorded ones


def test_smoke_run_warns_that_nothing_was_learned(stack_env: dict[str, str], tmp_path: Path) -> None:
    result = mdde(stack_env, "train", "--steps", "20", "--smoke", "--no-telemetry", "--no-tensorboard",
                  "--out", str(tmp_path), *SMALL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UNTRAINED" in result.stdout and "--learning-starts 25025" in result.stdout
    assert json.loads((tmp_path / "config.json").read_text())["updates"] == 0
    assert not (tmp_path / "tensorboard").exists()
