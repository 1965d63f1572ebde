"""`mdde-stream reproduce --benchmark simulated` through the real entry point, small settings, no servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdde_stream.reproduce import thesis

SMALL = ["--runs", "2", "--episodes", "3", "--steps", "60", "--operations", "4000", "--records", "1000", "--quiet"]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDDE_")}
    env["MDDE_DATA_DIR"] = str(tmp / "data")
    return env


def _reproduce(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mdde_stream", "reproduce", *args], capture_output=True, text=True,
                          env=_env(tmp), timeout=600)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("reproduce")
    out = tmp / "out"
    return _reproduce(tmp, "--benchmark", "simulated", "--out", str(out), *SMALL,
                      "--why", "table-5.12-thr-delta=see the estimator's range"), out


def test_writes_the_page_the_documents_and_the_configuration(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = run
    assert proc.returncode == 0, proc.stderr
    assert "effective configuration" in proc.stdout and "report written to" in proc.stdout
    for name in ("reproduce.html", "results.json", "results.md", "config.json", "edge-cases/edge_cases.json"):
        assert (out / name).stat().st_size > 0, name
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["runs"] == 2 and config["random_valid"]["max_steps"] == 60
    assert config["random_valid"]["benchmark"] == "estimate" and config["connections"]["data_nodes"] == []


def test_json_sets_ours_beside_the_thesis_for_every_table(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    doc = json.loads((run[1] / "results.json").read_text())
    numbers = {}
    for case, steps in (("starving", 17), ("greedy", 16)):
        c = doc["edge_cases"][case]
        assert c["runs"] == 2
        for source, t in c["tables"].items():
            numbers[t["thesis_table"]] = t
            assert len(t["thesis"]) == len(t["ours"]) == len(t["share_difference_points"]) == steps
            assert all(sum(row) == 4000 for row in t["ours"])  # our reads per step, as configured
            assert t["thesis"] == [list(r) for r in thesis.READS_TABLES[(case, source)].rows]
            assert t["mean_abs_share_difference"] >= 0
        assert "thesis_pct" in c["estimate_gap"] and "ours_pct" in c["estimate_gap"]
    assert sorted(numbers) == ["5.1", "5.2", "5.3", "5.4"]
    rv = doc["random_valid"]
    assert rv["episodes"] == 3 and len(rv["per_episode"]) == 3 and rv["baseline_source"] == "simulated"
    assert {t["thesis_table"] for t in rv["tables"].values()} == {"5.12", "5.13", "5.14"}
    for t in rv["tables"].values():
        assert sum(t["ours"]["reads_pct"]) == pytest.approx(100.0)
        assert sum(t["thesis"]["reads_pct"]) == pytest.approx(100.0, abs=0.01)
    # The best measurement counts the baseline too: no episode reads below it.
    assert all(e["thr_delta_pct"] >= 0 and e["thr_delta_pct"] >= e["thr_delta_last_pct"] for e in rv["per_episode"])
    variants = rv["delete_mask_variants"]
    assert set(variants) == {"replicas", "mdde"} and all(v["episodes"] == 3 for v in variants.values())
    assert doc["config"]["edge_cases"]["fragment_numbering_applied"] == "thesis"
    assert doc["config"]["random_valid"]["fragment_numbering"] == "thesis"
    ids = {t["id"]: t for t in doc["targets"]}
    assert set(ids) == {"table-5.1", "table-5.2", "table-5.3", "table-5.4", "table-5.12-thr-delta", "table-5.12-reads"}
    assert ids["table-5.12-thr-delta"]["why"] == "see the estimator's range"
    assert doc["timing"]["estimate_s"] > 0 and doc["timing"]["benchmarks"] == 2 * (17 + 16)


def test_page_is_self_contained_and_shows_both_columns(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    page = (run[1] / "reproduce.html").read_text()
    for text in ("Table 5.1", "Table 5.4", "5.12", "5.14", "ours", "thesis", "<svg", "§5.2.3"):
        assert text in page, text
    assert "src=\"http" not in page and "href=\"http" not in page


@pytest.mark.parametrize(("args", "names"), [
    (["--runs", "0"], "--runs"),
    (["--episodes", "0"], "--episodes"),
    (["--benchmark", "psychic"], "--benchmark"),
    (["--why", "table-9.9=because"], "--why"),
    (["--why", "no-equals-sign"], "--why"),
])
def test_bad_options_exit_2_with_one_line_naming_the_option(tmp_path: Path, args: list[str], names: str) -> None:
    proc = _reproduce(tmp_path, "--out", str(tmp_path / "out"), *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in proc.stderr


def test_an_unwritable_out_folder_exits_2_naming_out(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _reproduce(tmp_path, "--out", str(blocker / "report"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "not writable" in lines[0]


def test_real_without_the_stack_configured_exits_2_naming_what_is_missing(tmp_path: Path) -> None:
    proc = _reproduce(tmp_path, "--benchmark", "real", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "--benchmark real needs MDDE_BUS" in proc.stderr and "Traceback" not in proc.stderr


def test_the_edge_case_part_renders_alone(run: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path) -> None:
    """Written before the random-valid episodes start, so a failure there keeps the long part."""
    from mdde_stream.reproduce.report import write_all

    doc = json.loads((run[1] / "results.json").read_text())
    doc["random_valid"] = None
    doc["targets"] = [t for t in doc["targets"] if not t["id"].startswith("table-5.12")]
    paths = write_all(doc, tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert len(paths) == 3 and "Table 5.4" in text and "Tables 5.12" not in text
