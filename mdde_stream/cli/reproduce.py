"""``mdde-stream reproduce``: run the thesis's §5.2 edge cases and Table 5.12-5.14 evaluation, write
our figures beside the published ones (``reproduce.html``, ``results.json``, ``results.md``,
``config.json``), and print the targets met or not."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mdde_stream.cli.checks import fail, require_plots, writable_dir
from mdde_stream.config import get_settings
from mdde_stream.reproduce.results import WHY_IDS

logger = logging.getLogger(__name__)
console = Console(stderr=True)


def parse_why(values: list[str]) -> dict[str, str]:
    """``ID=TEXT`` pairs for the targets' "why" field."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not text.strip():
            raise ValueError(f"--why must be ID=TEXT, got {value!r}")
        if key not in WHY_IDS:
            raise ValueError(f"--why: unknown target {key!r}; choose from {', '.join(WHY_IDS)}")
        out[key] = text.strip()
    return out


def reproduce_command(
    benchmark: str = typer.Option("simulated", "--benchmark", help="simulated, or real (Kafka + data nodes)."),
    runs: int = typer.Option(3, "--runs", help="Runs per edge case (the thesis ran 11; its tables show the first)."),
    episodes: int = typer.Option(100, "--episodes", help="Random-valid episodes (the thesis ran 1000)."),
    steps: int = typer.Option(1001, "--steps", help="Steps per random-valid episode (Table 5.5: 1001)."),
    out: Path = typer.Option(Path("reproduce"), "--out", help="Folder for reproduce.html, results.json/.md, config.json."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first run / episode."),
    operations: int = typer.Option(100_000, "--operations", help="Reads per edge-case benchmark (thesis: 100,000)."),
    records: int = typer.Option(10_000, "--records", help="Records (thesis: 10,000)."),
    clients: int = typer.Option(50, "--clients", help="Benchmark clients (thesis: 50)."),
    workers: int = typer.Option(2, "--workers", help="real: benchmark workers to start (0: use running ones)."),
    key_prefix: str = typer.Option("reproduce:", "--key-prefix", help="real: key prefix of the dataset on the nodes."),
    timeout: float = typer.Option(300.0, "--timeout", help="real: seconds to wait for one benchmark result."),
    why: list[str] = typer.Option([], "--why", help="ID=TEXT: why a target stays outside (from evidence)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Set the thesis's Tables 5.1-5.4, §5.2.3 and Tables 5.12-5.14 beside ours, with the targets."""
    from mdde_stream.reproduce.runner import ReproduceConfig, config_document, run_reproduce

    try:
        cfg = ReproduceConfig(benchmark=benchmark, runs=runs, episodes=episodes, steps=steps, out=str(out), seed=seed,
                              operations=operations, records=records, clients=clients, workers=workers,
                              key_prefix=key_prefix, timeout_s=timeout, why=parse_why(why))
        cfg.validate()
        settings = get_settings()
        if benchmark == "real" and (len(settings.data_node_urls) < 4 or not settings.bus.startswith("kafka://")):
            raise ValueError(f"--benchmark real needs MDDE_BUS=kafka://... and 4 MDDE_DATA_NODES (got bus "
                             f"{settings.bus or 'embedded'!r}, {len(settings.data_node_urls)} data nodes); "
                             "see `mdde-stream stack env`")
    except ValueError as exc:
        fail(str(exc))
    writable_dir(out, "--out")
    require_plots()  # the edge-case figures: before the runs, not after them
    typer.echo("effective configuration:")
    typer.echo(json.dumps(config_document(cfg, settings), indent=1))
    try:
        if quiet:
            doc = run_reproduce(cfg, settings)
        else:
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                doc = run_reproduce(cfg, settings, progress)
    except ValueError as exc:
        fail(str(exc))
    except (RuntimeError, TimeoutError, OSError) as exc:  # unreachable bus or data node, services missing
        fail(f"{type(exc).__name__}: {exc}", 1)
    for t in doc["targets"]:
        fig = t["figure"]
        shown = " / ".join(f"{v:.2f}" for v in fig) if isinstance(fig, list) else f"{fig:.2f}"
        typer.echo(f"{'met    ' if t['met'] else 'NOT MET'} {t['description']}: {shown} ({t['limit']})")
    for case, c in doc["edge_cases"].items():
        g = c["estimate_gap"]
        typer.echo(f"§5.2.3 {case}: estimate vs benchmark {g['ours_pct']:+.2f} % (thesis {g['thesis_pct']:+.2f} %)")
    typer.echo(f"report written to {out / 'reproduce.html'}")
