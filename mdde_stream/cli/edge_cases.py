"""``mdde-stream edge-cases``: the thesis's starving and greedy cases (§5.2), written as a report folder.

The work is :func:`mdde_stream.edge_cases_report.run_edge_cases`; this module checks the options
before it starts and prints the summary.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mdde_stream.cli.checks import fail, require_plots, writable_dir
from mdde_stream.edge_cases import FRAGMENT_COUNT
from mdde_stream.edge_cases_report import run_edge_cases, shares_text


def edge_cases_command(
    benchmark: str = typer.Option("simulated", "--benchmark", help="real (Kafka + data nodes) or simulated"),
    runs: int = typer.Option(3, "--runs", min=1, help="repetitions with seeds seed..seed+runs-1"),
    out: Path = typer.Option(Path("edge-cases"), "--out", help="report folder"),
    operations: int = typer.Option(100_000, "--operations", min=1, help="reads per benchmark (thesis: 100,000)"),
    records: int = typer.Option(10_000, "--records", min=FRAGMENT_COUNT, help="records (thesis: 10,000)"),
    clients: int = typer.Option(50, "--clients", min=1, help="concurrent clients (thesis: 50)"),
    seed: int = typer.Option(0, "--seed", help="workload seed of the first run"),
    case: list[str] = typer.Option(["starving", "greedy"], "--case", help="case(s) to run"),
    workers: int = typer.Option(2, "--workers", min=0, help="real: benchmark workers to start (0: use running ones)"),
    key_prefix: str = typer.Option("edge:", "--key-prefix", help="real: key prefix of the dataset on the nodes"),
    timeout: float = typer.Option(300.0, "--timeout", help="real: seconds to wait for one benchmark result"),
    service_cv: float = typer.Option(0.0, "--service-cv", min=0.0, help="simulated: service time variation"),
    grouping: str = typer.Option("hashed", "--grouping", help="fragmenter: hashed | contiguous record grouping"),
    numbering: str = typer.Option("thesis", "--numbering",
                                  help="fragmenter: 'thesis' (blocks on w0, w2, w3, w1, as Table 5.3 shows) | 'node'"),
) -> None:
    """Reproduce the thesis's starving and greedy edge cases (§5.2) and write tables, plots and JSON."""
    writable_dir(out, "--out")
    require_plots()  # before the runs, not after them
    typer.echo(f"configuration: benchmark={benchmark} runs={runs} operations={operations} records={records} "
               f"clients={clients} seed={seed} cases={','.join(case)} grouping={grouping} numbering={numbering} "
               f"(stored in {out / 'edge_cases.json'})")
    try:
        doc = run_edge_cases(benchmark, runs, out, operations=operations, records=records, clients=clients,
                             seed=seed, cases=tuple(case), workers=workers, key_prefix=key_prefix,
                             timeout_s=timeout, service_cv=service_cv, grouping=grouping, numbering=numbering)
    except ValueError as exc:
        fail(str(exc))
    except (RuntimeError, TimeoutError) as exc:  # unreachable data node or bus, missing services
        fail(f"{type(exc).__name__}: {exc}", 1)
    for name, s in doc["cases"].items():
        typer.echo(f"{name}: {s['step_count']} steps, τ {s['throughput_start']:.0f} -> {s['throughput_end']:.0f} "
                   f"reads/s, final shares {shares_text(s['final_benchmark_share'])}, "
                   f"mean relative estimate error {s['mean_relative_error']:.1%}")
    typer.echo(f"report written to {out}")
