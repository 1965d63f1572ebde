"""The runnable entry points and the layering the README describes.

``consumers/`` and ``producers/`` are thin: each runs one ``mdde-stream`` command, so it takes the
same options. The library imports neither, and only the Kafka adapter imports confluent_kafka.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ENTRY_POINTS = {
    "consumers.registry": "--step-timeout",
    "consumers.estimator": "--group",
    "consumers.benchmark_aggregator": "--group",
    "consumers.benchmark_worker": "--retries",
    "consumers.indexer": "--retention-days",
    "producers.stage": "--policy",
    "producers.replay": "--speed",
}


def test_every_entry_point_module_is_listed() -> None:
    found = {f"{p.parent.name}.{p.stem}" for folder in ("consumers", "producers")
             for p in (ROOT / folder).glob("*.py") if p.stem != "__init__"}
    assert found == set(ENTRY_POINTS)


@pytest.mark.parametrize(("module", "option"), sorted(ENTRY_POINTS.items()))
def test_entry_point_runs_its_command(module: str, option: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert option in result.stdout


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_library_layering() -> None:
    library = ROOT / "mdde_stream"
    offenders: list[str] = []
    for path in sorted(library.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for name in _imports(path):
            top = name.split(".")[0]
            if top in ("consumers", "producers"):
                offenders.append(f"{relative} imports {name}")
            if top == "confluent_kafka" and relative != "mdde_stream/bus/kafka.py":
                offenders.append(f"{relative} imports {name} outside the Kafka adapter")
            if top == "argparse" and relative.startswith("mdde_stream/services/"):
                offenders.append(f"{relative} parses its own options (the CLI package owns them)")
    assert offenders == []
