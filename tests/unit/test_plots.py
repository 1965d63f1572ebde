"""The shared plotting layer: fixed colours, round ticks, SVG through vl-convert, and the report's specs."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.dom.minidom

import pytest

from mdde_stream.plots import FIXED, PALETTE, colour_of, grouped_bars_svg, round_ticks
from mdde_stream.telemetry.documents import documents_by_kind
from mdde_stream.telemetry.panels import PANELS
from mdde_stream.telemetry.report import panel_rows, panel_spec
from mdde_stream.telemetry.sample import sample_run


def test_an_agent_and_its_node_share_a_colour_and_outcomes_keep_theirs() -> None:
    assert colour_of("agent2") == colour_of("n2") == colour_of("worker-2") == PALETTE[2]
    assert colour_of("valid") != colour_of("invalid") != colour_of("skip")
    assert not set(PALETTE) & {FIXED[k] for k in ("valid", "invalid", "skip", "conflict")}
    assert colour_of("some-run") == colour_of("some-run") in PALETTE


def test_round_ticks() -> None:
    assert round_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    assert round_ticks(3, 47) == [10, 20, 30, 40]
    assert round_ticks(0, 5) == [0, 1, 2, 3, 4, 5]


def colour_pairs(spec: dict) -> list[tuple[str, str]]:
    """(name, colour) of every explicit colour scale in a Vega-Lite spec, wherever it is nested."""
    pairs: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            scale = node.get("scale") if isinstance(node.get("scale"), dict) else {}
            if "domain" in scale and "range" in scale and isinstance(scale["range"], list):
                pairs.extend(zip(scale["domain"], scale["range"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return pairs


def test_report_specs_keep_colours_and_units_across_panels() -> None:
    docs = documents_by_kind(sample_run("colours", episodes=2, steps=6, seed=4))
    seen: dict[str, str] = {}
    for panel in PANELS:
        rows = panel_rows(panel, docs[panel.kind])
        assert {r["e"] for r in rows} == {"all", "0", "1"}, panel.id
        spec = panel_spec(panel, rows)
        assert spec["datasets"]["rows"] == rows
        assert {"name": "episode", "value": "all"} in spec["params"]
        for name, colour in colour_pairs(spec):
            assert seen.setdefault(name, colour) == colour == colour_of(name), (panel.id, name)
        if panel.unit == "%":
            assert '".0%"' in str(spec).replace("'", '"'), panel.id
    assert {"agent0", "n0", "valid", "invalid", "skip", "simulated", "estimate"} <= set(seen)


def test_grouped_bars_are_an_svg_with_one_bar_per_value() -> None:
    svg = grouped_bars_svg("Rates", ["random", "greedy"], {"invalid": [0.1, 0.0], "skip": [0.2, 0.75]},
                           "share of actions (%)", "outcome", percent=True)
    doc = xml.dom.minidom.parseString(svg)
    bars = [p for g in doc.getElementsByTagName("g") if g.getAttribute("class").startswith("mark-rect role-mark")
            for p in g.getElementsByTagName("path")]
    assert len(bars) == 4
    assert {FIXED["invalid"], FIXED["skip"]} <= {b.getAttribute("fill") for b in bars}
    assert "share of actions (%)" in svg and "75%" in svg and "outcome" in svg
    with pytest.raises(ValueError, match="has 1 values for 2 categories"):
        grouped_bars_svg("x", ["a", "b"], {"s": [1.0]}, "y")


def test_without_the_plots_extra_the_error_names_it() -> None:
    code = ("import sys; sys.modules['altair'] = None\n"
            "from mdde_stream.plots import PlotsUnavailable, altair\n"
            "import mdde_stream.telemetry, mdde_stream.edge_cases_report  # importable without it\n"
            "try:\n    altair()\nexcept PlotsUnavailable as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert re.search(r"pip install 'mdde-stream\[plots\]'", out), out
