"""``mdde-stream run``: episodes of the default scenario with a built-in policy, on the embedded defaults."""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mdde_stream.cli.checks import fail, known_workload, reachable_state
from mdde_stream.env.config import default_of, describe

logger = logging.getLogger(__name__)
console = Console()


def run(
    episodes: int = typer.Option(5, "--episodes", min=1, help="Episodes to run."),
    steps: int = typer.Option(default_of("max_steps"), "--steps", min=1, help="Steps per episode (Table 5.5: 1,001)."),
    policy: str = typer.Option("random-valid", "--policy", help="random-valid | do-nothing | starving | greedy."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of episode 0 (episode e uses seed + e)."),
    benchmark: str = typer.Option("estimate", "--benchmark", help="estimate | simulated | real."),
    stage: str = typer.Option("local", "--stage", help="local (the registry in this process) | remote (the "
                              "registry service applies the published actions: `mdde-stream service registry`)."),
    run_id: str = typer.Option(None, "--run-id", help="Run id (default: generated)."),
    nodes: int = typer.Option(4, "--nodes", min=2, help="Data nodes (one agent each)."),
    fragments: int = typer.Option(20, "--fragments", min=1, help="Fragments."),
    workload: str = typer.Option(default_of("workload"), "--workload", help="Workload preset or distribution."),
    frequency: int = typer.Option(default_of("benchmark_frequency"), "--frequency", min=1,
                                  help="Benchmark every S steps (Table 5.5: 25)."),
    do_nothing_worth: float = typer.Option(default_of("do_nothing_worth"), "--do-nothing-worth",
                                           help="V, reward of a legal skip (Table 5.5: 1.0)."),
    storage_importance: float = typer.Option(default_of("storage_importance"), "--storage-importance", min=0.0,
                                             help="ϱ, weight of the storage term (Table 5.5: 0.5)."),
    operations: int = typer.Option(None, "--operations", min=1, help="Reads per benchmark (default: the preset's)."),
    benchmark_timeout: float = typer.Option(120.0, "--benchmark-timeout", min=0.01,
                                            help="Seconds to wait for a real benchmark result."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the run's HTML report at the end."),
) -> None:
    """Run episodes of the default scenario with a built-in policy and print a summary."""
    from pydantic import ValidationError

    from mdde_stream.env import EnvConfig
    from mdde_stream.env.benchmarking import BenchmarkTimeout
    from mdde_stream.env.stage_client import StageTimeout
    from mdde_stream.policies import make_policy
    from mdde_stream.runner import run_episodes

    known_workload(workload)
    reachable_state()

    options = dict(nodes=nodes, fragments=fragments, max_steps=steps, seed=seed, benchmark=benchmark,
                   workload=workload, benchmark_frequency=frequency, operations=operations,
                   benchmark_timeout_s=benchmark_timeout, do_nothing_worth=do_nothing_worth,
                   storage_importance=storage_importance, publish_events=True, stage=stage)
    if run_id:
        options["run_id"] = run_id
    try:
        config = EnvConfig(**options)
        chosen = make_policy(policy, seed=seed)
    except (ValidationError, ValueError) as exc:
        fail(f"invalid options: {exc}")

    console.print(f"run id: [bold]{config.run_id}[/bold]")
    # The configuration is also recorded with the run (every EpisodeStarted event carries it).
    console.print(f"configuration: {describe(config)}", markup=False, highlight=False)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet, transient=False,
    ) as progress:
        task = progress.add_task(f"{policy} · {benchmark}", total=episodes * steps)
        try:
            summary = run_episodes(config, chosen, episodes, on_step=lambda e, s: progress.advance(task))
        except (BenchmarkTimeout, StageTimeout) as exc:
            console.print(f"[red]run {config.run_id} stopped:[/red] {exc}")
            raise typer.Exit(1) from None

    table = Table(title=f"run {summary.run_id}: {episodes} episodes × {steps} steps, {policy}, {benchmark}")
    table.add_column("agent")
    table.add_column("reads share (end)", justify="right")
    table.add_column("mean reward / step", justify="right")
    for agent, share, reward in zip(summary.agents, summary.reads_share, summary.mean_reward):
        table.add_row(agent, f"{share:.1%}", f"{reward:.3f}")
    console.print(table)
    console.print(
        f"throughput: {summary.first_throughput:,.0f} → {summary.last_throughput:,.0f} reads/s "
        f"({summary.throughput_change:+.1%} vs the first step)"
    )
    console.print(
        f"valid action rate: {summary.valid_rate:.1%} "
        f"({summary.conflicts} rejected only because an earlier agent of the same step acted first)"
    )
    console.print(f"{summary.steps} steps in {summary.elapsed_s:.2f} s ({summary.steps_per_s:,.0f} steps/s)")
    console.print(f"events written to the bus; run id: {summary.run_id}")
    if report:
        from mdde_stream.plots import PlotsUnavailable
        from mdde_stream.telemetry.report import write_report

        try:
            console.print(f"report: {write_report(summary.run_id)}", markup=False)
        except PlotsUnavailable as exc:
            console.print(f"no report written: {exc}", markup=False)
