"""The edge-case evaluation on the simulated benchmark: the thesis's end states, and the report files."""

from __future__ import annotations

import json
import xml.dom.minidom
from pathlib import Path

import numpy as np
import pytest

from mdde_stream.config import Settings
from mdde_stream.edge_cases import greedy_actions, starving_actions
from mdde_stream.edge_cases_report import run_edge_cases
from mdde_stream.events import ActionKind
from mdde_stream.registry import fragment_layout

NODES = ["n0", "n1", "n2", "n3"]
FRAGS = [f"f{i}" for i in range(20)]


def _initial() -> np.ndarray:
    _, _, alloc = fragment_layout(1_000, 4, 20)
    return np.array([[f in alloc[n] for f in FRAGS] for n in NODES])


def test_starving_script_deletes_only_what_the_collector_already_holds() -> None:
    m = _initial()
    first = starving_actions(m, NODES, FRAGS)
    assert first == [(3, ActionKind.COPY, "f0", "n0", "n3")]
    m[3, 0] = True
    second = starving_actions(m, NODES, FRAGS)
    assert second == [(0, ActionKind.DELETE, "f0", None, "n0"), (3, ActionKind.COPY, "f1", "n0", "n3")]


def test_greedy_script_copies_each_nodes_lowest_missing_fragment() -> None:
    actions = greedy_actions(_initial(), NODES, FRAGS)
    assert [(a[0], a[2], a[3]) for a in actions] == [(0, "f5", "n1"), (1, "f0", "n0"), (2, "f0", "n0"), (3, "f0", "n0")]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("edge")
    settings = Settings(bus="", state="", data_nodes="", benchmark_node_rates="2000", data_dir=out)
    doc = run_edge_cases("simulated", 3, out, settings=settings, operations=20_000, records=2_000)
    return doc, out


def test_starving_ends_with_every_read_on_w3_and_throughput_falls_to_one_node(report: tuple[dict, Path]) -> None:
    s = report[0]["cases"]["starving"]
    assert s["step_count"] == 16
    assert s["final_benchmark_share"] == [0.0, 0.0, 0.0, 1.0]
    assert s["final_estimate_share"] == [0.0, 0.0, 0.0, 1.0]
    assert s["throughput_end"] == pytest.approx(2_000, rel=0.01)  # one node at its service rate
    assert s["throughput_start"] > 3 * s["throughput_end"]
    # The step-0 estimate is the baseline itself.
    assert s["steps"][0]["estimate_throughput"] == s["steps"][0]["benchmark_throughput"]


def test_greedy_ends_near_a_quarter_per_node_and_beats_the_starving_end(report: tuple[dict, Path]) -> None:
    doc = report[0]
    g = doc["cases"]["greedy"]
    assert g["step_count"] == 15
    assert g["final_benchmark_share"] == pytest.approx([0.25] * 4, abs=0.03)
    assert g["final_estimate_share"] == pytest.approx([0.25] * 4, abs=0.03)
    assert g["throughput_end"] > 3 * doc["cases"]["starving"]["throughput_end"]
    assert g["throughput_end"] > 2 * g["throughput_start"]  # latest workload starts on the hot last node
    assert all(step["allocation"]["n0"] == FRAGS for step in g["steps"][-1:])


def test_errors_are_reported_and_runs_give_a_spread(report: tuple[dict, Path]) -> None:
    for case in report[0]["cases"].values():
        assert 0 < case["mean_relative_error"] < 5
        assert len(case["runs"]) == 3
        assert {run["seed"] for run in case["runs"]} == {0, 1, 2}
        spread = [s["benchmark_throughput"]["max"] - s["benchmark_throughput"]["min"] for s in case["steps"]]
        assert max(spread) > 0


def marks(svg: xml.dom.minidom.Document, kind: str) -> list:
    """The drawn items of Vega's mark groups of one kind (``mark-line``, ``mark-rect``, …)."""
    groups = [g for g in svg.getElementsByTagName("g") if g.getAttribute("class").startswith(f"{kind} role-mark")]
    return [p for g in groups for p in g.getElementsByTagName("path")]


def texts(svg: xml.dom.minidom.Document) -> set[str]:
    return {"".join(n.data for n in t.childNodes if n.nodeType == n.TEXT_NODE) for t in svg.getElementsByTagName("text")}


def test_report_folder_has_json_tables_and_valid_svgs(report: tuple[dict, Path]) -> None:
    doc, out = report
    assert json.loads((out / "edge_cases.json").read_text())["cases"].keys() == {"starving", "greedy"}
    tables = (out / "tables.md").read_text()
    assert "## starving: benchmark reads per node" in tables and "## greedy: estimate reads per node" in tables
    assert "| 16 | n1−f19 |" in tables  # thesis numbering: w1 (f15–f19) empties last, as in Table 5.1
    for case in ("starving", "greedy"):
        for name in (f"throughput-{case}.svg", f"heatmap-{case}.svg"):
            svg = xml.dom.minidom.parse(str(out / name))
            assert svg.documentElement.tagName == "svg"
        plot = xml.dom.minidom.parse(str(out / f"throughput-{case}.svg"))
        assert len(marks(plot, "mark-line")) == 2 and len(marks(plot, "mark-area")) == 2  # mean + band per source
        assert {"benchmark", "estimate", "throughput τ (reads/s)", "step"} <= texts(plot)
        heat = xml.dom.minidom.parse(str(out / f"heatmap-{case}.svg"))
        assert len(marks(heat, "mark-rect")) == 4 * 4 * 20  # 4 panels × nodes × fragments
        assert "reads (mean over runs)" in texts(heat)  # the colour scale's legend
        assert {"benchmark, start", "estimate, end", "f19", "n3"} <= texts(heat)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    settings = Settings(bus="", state="", data_nodes="", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown case"):
        run_edge_cases("simulated", 1, tmp_path, settings=settings, cases=("lazy",))
    with pytest.raises(ValueError, match="real or simulated"):
        run_edge_cases("estimated", 1, tmp_path, settings=settings)
    with pytest.raises(ValueError, match="needs 4 MDDE_DATA_NODES"):
        run_edge_cases("real", 1, tmp_path, settings=settings)
