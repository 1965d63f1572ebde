"""``mdde-stream estimate``: the estimator on a JSON file, for scripts and quick checks.

Input (ids are strings; node order is the order of ``allocation``: it is the node index that
Algorithm 1 gives spare reads by and Algorithm 2 breaks ties by)::

    {"allocation": {"n0": ["f0", "f1"], ...}, "baseline_reads": {"n0": {"f0": 120, ...}, ...},
     "baseline_throughput": 9500.0, "j": 0.0, "k": 0.7, "split": "participation"}

``j``, ``k`` and ``split`` are optional (defaults: 0, 0.7, Algorithm 2 as MDDE ran it; ``split`` may
also be ``participation-ascending`` or ``even``, see :mod:`mdde_stream.estimator`).

Output: ``{"throughput", "reads": {node: {fragment: int}}, "node_reads", "imbalance_baseline",
"imbalance_current"}`` on stdout. Bad input exits with code 2 and a message naming the field.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from pydantic import ValidationError

from mdde_stream.benchmark.locator import NoReplicaError
from mdde_stream.cli.checks import EXIT_USAGE, fail
from mdde_stream.estimator import EstimateCase, estimate_mapping

logger = logging.getLogger(__name__)

BAD_INPUT_EXIT_CODE = EXIT_USAGE


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        parts.append(f"{location}: {item['msg']}" if location else item["msg"])
    return "; ".join(parts)


def estimate_command(
    input: Path = typer.Option(..., "--input", help="JSON file with allocation, baseline reads and throughput."),  # noqa: A002
) -> None:
    """Estimate throughput and reads for an allocation from a baseline benchmark (thesis Alg. 1-2)."""
    try:
        raw = json.loads(input.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read --input {input}: {exc.strerror or exc}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"--input {input} is not valid JSON: {exc}")
    except RecursionError:
        fail(f"--input {input} is nested too deeply to be an estimate case")
    if not isinstance(raw, dict):
        fail(f"--input {input} must hold a JSON object, got {type(raw).__name__}")
    try:
        case = EstimateCase.model_validate(raw)
        result = estimate_mapping(case)
    except ValidationError as exc:
        fail(_describe(exc))
    except NoReplicaError as exc:
        fail(f"allocation: {exc}")
    except ValueError as exc:  # e.g. j and k that make the throughput formula undefined
        fail(f"j/k: {exc}")
    try:
        typer.echo(json.dumps(result, allow_nan=False))
    except ValueError:  # never a NaN/Infinity on stdout: that is not JSON
        fail("the estimate is not a finite number for these inputs")
