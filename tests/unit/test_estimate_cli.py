"""``estimate`` command: JSON in, JSON out, exit code 2 naming the field on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from mdde_stream.cli.estimate import BAD_INPUT_EXIT_CODE, estimate_command
from mdde_stream.estimator import estimate_mapping
from tests.unit.mdde_reference import mdde_registry_estimate

app = typer.Typer()
app.command("estimate")(estimate_command)


@app.callback()
def _root() -> None:
    """Keeps ``estimate`` a named sub-command, as in the project CLI."""


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # newer click keeps stderr apart already
        return CliRunner()


CASE = {
    "allocation": {"n0": ["f0", "f1"], "n1": ["f1"], "n2": ["f2"], "n3": []},
    "baseline_reads": {"n0": {"f0": 40, "f1": 20}, "n2": {"f2": 20}},
    "baseline_throughput": 8000.0,
    "j": 0.0,
    "k": 0.7,
}


def write(tmp_path: Path, payload: object) -> Path:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(payload) if not isinstance(payload, str) else payload, encoding="utf-8")
    return path


def test_prints_the_estimate_as_json(tmp_path: Path) -> None:
    """By hand: f1 (20 reads) on n0 (load 40) and n1 (0): n0 takes ceil(20 x 0/40) = 0, n1 all 20.
    Totals 60/0/20/0 -> 40/20/20/0 of 80: D = 400/80 = 5 -> 240/80 = 3, delta = 2/6,
    tau' = 8000 x (1 + 1.7/3)."""
    result = runner().invoke(app, ["estimate", "--input", str(write(tmp_path, CASE))])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out == estimate_mapping(CASE)
    assert out["reads"] == {"n0": {"f0": 40, "f1": 0}, "n1": {"f1": 20}, "n2": {"f2": 20}, "n3": {}}
    assert out["node_reads"] == {"n0": 40, "n1": 20, "n2": 20, "n3": 0}
    assert (out["imbalance_baseline"], out["imbalance_current"]) == (5.0, 3.0)
    assert out["throughput"] == pytest.approx(8000.0 * (1 + 1.7 / 3))


def test_even_split_is_a_named_option(tmp_path: Path) -> None:
    result = runner().invoke(app, ["estimate", "--input", str(write(tmp_path, {**CASE, "split": "even"}))])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reads"]["n0"] == {"f0": 40, "f1": 10}


@pytest.mark.parametrize("seed", range(5))
def test_latest_case_gives_what_mdde_gave(tmp_path: Path, seed: int) -> None:
    """A 4 x 20 case shaped like the thesis's greedy run (Table 5.3's baseline, fragments copied at
    random) through the command: reads and tau' as MDDE's registry computed them."""
    rng = np.random.default_rng(seed)
    nodes = ["w3", "w2", "w1", "w0"]  # any order: it is the node index, in MDDE and here
    reads = np.zeros((4, 20), dtype=np.int64)
    alloc = np.zeros((4, 20), dtype=bool)
    for w, total in enumerate((85634, 7174, 4263, 2929)):
        alloc[w, w * 5 : w * 5 + 5] = True
        reads[w, w * 5 : w * 5 + 5] = rng.multinomial(total, rng.dirichlet(np.ones(5)))
    alloc |= rng.random((4, 20)) < 0.4
    case = {
        "allocation": {n: [f"f{f}" for f in range(20) if alloc[w, f]] for w, n in enumerate(nodes)},
        "baseline_reads": {n: {f"f{f}": int(reads[w, f]) for f in range(20) if reads[w, f]} for w, n in enumerate(nodes)},
        "baseline_throughput": 2_500.0,
    }
    result = runner().invoke(app, ["estimate", "--input", str(write(tmp_path, case))])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    tau, mdde_reads = mdde_registry_estimate(alloc, reads, 2_500.0)
    assert (mdde_reads >= 0).all()
    assert out["throughput"] == pytest.approx(tau, rel=1e-12)
    assert out["reads"] == {n: {f"f{f}": int(mdde_reads[w, f]) for f in range(20) if alloc[w, f]}
                            for w, n in enumerate(nodes)}


def test_node_order_of_the_input_is_the_node_index(tmp_path: Path) -> None:
    """Two reads for three empty holders go to the first two nodes as listed in ``allocation``."""
    case = {"allocation": {"b": ["f0"], "c": ["f0"], "a": ["f0"]}, "baseline_reads": {"a": {"f0": 2}},
            "baseline_throughput": 10.0}
    result = runner().invoke(app, ["estimate", "--input", str(write(tmp_path, case))])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["node_reads"] == {"b": 1, "c": 1, "a": 0}


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({**CASE, "baseline_throughput": "fast"}, "baseline_throughput"),
        ({**CASE, "baseline_reads": {"n0": {"f0": -3}}}, "baseline_reads.n0.f0"),
        ({k: v for k, v in CASE.items() if k != "allocation"}, "allocation"),
        ({**CASE, "allocation": {"n0": ["f0"], "n1": [], "n2": [], "n3": []}}, "no replica"),
        ({**CASE, "extra": 1}, "extra"),
        ({**CASE, "j": -5.0}, "j=-5.0"),
        ({**CASE, "split": "fair"}, "split"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(tmp_path: Path, payload: object, needle: str) -> None:
    result = runner().invoke(app, ["estimate", "--input", str(write(tmp_path, payload))])
    assert result.exit_code == BAD_INPUT_EXIT_CODE
    assert needle in result.stderr
    assert result.stdout == ""


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner().invoke(app, ["estimate", "--input", str(tmp_path / "absent.json")])
    assert result.exit_code == BAD_INPUT_EXIT_CODE
    assert "cannot read --input" in result.stderr


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('{"allocation":{"n0":["f0"]},"baseline_reads":{"n0":{"f0":5}},"baseline_throughput":1e309}', "baseline_throughput"),
        ('{"allocation":{"n0":["f0"]},"baseline_reads":{"n0":{"f0":5}},"baseline_throughput":5,"j":1e308}', "j"),
        ("[" * 100_000, "nested too deeply"),
        ('{"allocation":{"n0":["f0"]},"baseline_reads":{"n0":{"f0":5}},"baseline_throughput":NaN}', "baseline_throughput"),
    ],
)
def test_non_finite_or_hostile_input_is_refused_with_one_line(tmp_path, text: str, names: str) -> None:  # noqa: ANN001
    """Never NaN/Infinity on stdout (not JSON), never a traceback: exit 2 naming the field."""
    path = tmp_path / "case.json"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "mdde_stream", "estimate", "--input", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert names in result.stderr and len(result.stderr.strip().splitlines()) == 1
