"""`mdde-stream report` through the real entry point: bad run names are one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
from mdde_stream.telemetry.sample import publish, sample_run


def report(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDDE_")}
    env.update(MDDE_DATA_DIR=str(data_dir), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "mdde_stream", "report", *args], capture_output=True, text=True,
                          env=env, cwd=data_dir, timeout=120, check=False)


def test_unknown_run_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    result = report(tmp_path, "run-nope")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "run 'run-nope' has no events" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.html"))


def test_run_names_cannot_leave_the_reports_folder(tmp_path: Path) -> None:
    for name in ("../escape", "/etc/passwd", "a/b", ".."):
        result = report(tmp_path, name)
        assert result.returncode == 2, (name, result.stderr)
        assert "is not a run id" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.parent.rglob("escape.html"))


def test_a_recorded_run_is_written_under_reports(tmp_path: Path) -> None:
    with open_bus(settings=Settings(data_dir=tmp_path, bus="")) as bus:
        publish(sample_run("recorded", episodes=1, steps=3, seed=1), bus, Settings(data_dir=tmp_path, bus=""))
    result = report(tmp_path, "recorded")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "reports" / "recorded.html"
    assert result.stdout.strip() == str(path) and path.stat().st_size > 500_000  # the runtime is inlined
    bad = report(tmp_path, "recorded", "--out", "/proc/nope/report.html")
    assert bad.returncode == 2 and "--out" in bad.stderr and "Traceback" not in bad.stderr
