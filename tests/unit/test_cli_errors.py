"""Bad input through the real entry point: one line naming the option, exit code 2, no traceback.

Every case here fails before any service is contacted, so no stack is needed; the checks that
need one (a reused run id) are in ``tests/integration/test_train_cli.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def mdde(*args: str, tmp_path: Path, preamble: str = "", **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m mdde_stream ARGS`` (with ``preamble`` run first), on an embedded data dir."""
    env = {**os.environ, "MDDE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200", **settings}
    code = f"{preamble}\nimport runpy, sys\nsys.argv = ['mdde-stream', *{list(args)!r}]\n" \
           "runpy.run_module('mdde_stream', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def assert_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(("args", "words"), [
    (("run", "--workload", "nonsense", "--episodes", "1"), ("--workload", "nonsense")),
    (("edge-cases", "--out", "/proc/nope"), ("--out", "/proc/nope")),
    (("train", "--lr", "-1", "--steps", "10"), ("--lr", "-1")),
    (("train", "--lr", "0", "--steps", "10"), ("--lr",)),
    (("train", "--out", "/proc/nope", "--steps", "50", "--learning-starts", "0"), ("--out", "/proc/nope")),
    (("train", "--workload", "nonsense"), ("--workload",)),
    (("train", "--benchmark", "bogus"), ("--benchmark", "bogus")),
    (("train", "--steps", "10"), ("--steps 10", "--learning-starts 25025", "--smoke")),
    (("train", "--append", "--steps", "50", "--learning-starts", "0", "--out", "{tmp}/ckpt"), ("--append", "--run-id")),
    (("train", "--run-id", "bad id!", "--steps", "50", "--learning-starts", "0", "--out", "{tmp}/ckpt"),
     ("--run-id",)),
    (("train", "--actors", "1", "--redis", "redis://127.0.0.1:1/0", "--steps", "50", "--learning-starts", "0",
      "--out", "{tmp}/ckpt"), ("--redis", "127.0.0.1:1")),
    (("actor", "--prefix", "p", "--redis", "redis://127.0.0.1:1/0"), ("--redis",)),
    (("evaluate", "--policies", "bogus", "--episodes", "1", "--episode-steps", "5", "--out", "{tmp}/ev"),
     ("--policies", "bogus")),
    (("evaluate", "--policies", "maddpg:{tmp}/none", "--episodes", "1", "--episode-steps", "5", "--out", "{tmp}/ev"),
     ("--policies", "config.json")),
    (("evaluate", "--out", "/proc/nope", "--episodes", "1"), ("--out",)),
    (("replay", "--since", "yesterday"), ("--since", "yesterday")),
    (("replay", "--run", "r1", "--speed", "0"), ("--speed",)),
    (("replay", "--verify"), ("select something",)),
    (("service", "registry", "--step-timeout", "0"), ("--step-timeout",)),
    (("service", "registry", "--record-shape", "huge"), ("--record-shape", "huge")),
])
def test_bad_option_is_one_line_exit_2(args: tuple[str, ...], words: tuple[str, ...], tmp_path: Path) -> None:
    args = tuple(a.replace("{tmp}", str(tmp_path)) for a in args)
    assert_usage_error(mdde(*args, tmp_path=tmp_path), *words)


@pytest.mark.parametrize("args", [("run", "--nodes", "0"), ("edge-cases", "--clients", "0"),
                                  ("train", "--steps", "0"), ("train", "--checkpoint-every", "-1"),
                                  ("service", "registry", "--max-records", "0"), ("worker", "benchmark", "--retries", "-1"),
                                  ("service", "indexer", "--retention-days", "0")])
def test_out_of_range_count_is_exit_2_without_traceback(args: tuple[str, ...], tmp_path: Path) -> None:
    result = mdde(*args, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert next(a for a in args if a.startswith("--")) in result.stderr


def test_dashboards_validate_rejects_a_file_that_is_not_saved_objects(tmp_path: Path) -> None:
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello\n")
    other_json = tmp_path / "other.ndjson"
    other_json.write_text('{"name": "x"}\n')
    for path in (not_json, other_json, tmp_path / "missing.ndjson"):
        assert_usage_error(mdde("dashboards", "validate", "--file", str(path), tmp_path=tmp_path), "--file", str(path))


def test_dashboards_validate_accepts_the_projects_file(tmp_path: Path) -> None:
    result = mdde("dashboards", "validate", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": ok")


def test_missing_extra_is_named_with_its_brackets(tmp_path: Path) -> None:
    """Console markup must not eat ``[telemetry]`` (it printed ``pip install 'mdde-stream'``)."""
    block = "import sys\nsys.modules['elasticsearch'] = None"  # makes `import elasticsearch` fail
    result = mdde("replay", "--run", "r1", "--reindex", tmp_path=tmp_path, preamble=block)
    assert_usage_error(result, "--reindex", "pip install 'mdde-stream[telemetry]'")


def test_train_without_torch_names_the_learn_extra(tmp_path: Path) -> None:
    block = "import sys\nsys.modules['torch'] = None"
    result = mdde("train", "--steps", "50", "--learning-starts", "0", tmp_path=tmp_path, preamble=block)
    assert_usage_error(result, "train", "pip install 'mdde-stream[learn]'")


def test_help_of_train_names_the_new_options(tmp_path: Path) -> None:
    result = mdde("train", "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for option in ("--checkpoint-every", "--run-id", "--append", "--smoke", "--tensorboard"):
        assert option in result.stdout


TRAIN_SMALL = ("--steps", "20", "--episode-steps", "20", "--learning-starts", "5", "--nodes", "2", "--fragments", "4")


@pytest.mark.parametrize("args", [("run", "--episodes", "1", "--steps", "5", "--no-report"),
                                  ("train", *TRAIN_SMALL, "--out", "{tmp}/ckpt"),
                                  ("actor", "--prefix", "p", "--redis", "redis://127.0.0.1:1/0")])
def test_unreachable_registry_redis_is_named(args: tuple[str, ...], tmp_path: Path) -> None:
    """Nothing listens on port 1: the setting is named before any environment is built."""
    args = tuple(a.replace("{tmp}", str(tmp_path)) for a in args)
    result = mdde(*args, tmp_path=tmp_path, MDDE_STATE="redis://127.0.0.1:1/0")
    assert_usage_error(result, "MDDE_STATE", "127.0.0.1:1")


def test_unreachable_bus_is_named_before_training(tmp_path: Path) -> None:
    result = mdde("train", *TRAIN_SMALL, "--out", str(tmp_path / "ckpt"), tmp_path=tmp_path,
                  MDDE_BUS="kafka://127.0.0.1:1", MDDE_STATE="")
    assert_usage_error(result, "MDDE_BUS", "not reachable")
    assert not (tmp_path / "ckpt" / "model.safetensors").exists()
