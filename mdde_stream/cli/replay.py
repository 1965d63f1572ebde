"""``mdde-stream replay``: select recorded episodes from the bus and verify, export, re-index or re-emit them.

Exit codes: 0 done, 1 a verification diverged,
2 bad options, 3 the recording is missing, incomplete or corrupt.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mdde_stream.cli.checks import fail, require_extra

logger = logging.getLogger(__name__)
console = Console()

EXIT_DIVERGED, EXIT_USAGE, EXIT_RECORDING = 1, 2, 3


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not an ISO time (e.g. 2024-05-01T12:00:00Z)")
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def replay_command(
    run: str = typer.Option(None, "--run", help="Run id to replay."),
    episode: int = typer.Option(None, "--episode", min=0, help="Episode of the run (default: every episode)."),
    from_offset: int = typer.Option(None, "--from-offset", min=0, help="First offset (inclusive) in each partition."),
    to_offset: int = typer.Option(None, "--to-offset", min=1, help="Last offset (exclusive) in each partition."),
    topic: list[str] = typer.Option(None, "--topic", help="Topic short name(s) to read, e.g. steps (default: all)."),
    partition: int = typer.Option(None, "--partition", min=0, help="Read only this partition."),
    since: str = typer.Option(None, "--since", help="Records at or after this ISO time."),
    until: str = typer.Option(None, "--until", help="Records before this ISO time."),
    bus_url: str = typer.Option(None, "--bus", help="Bus URL (default: MDDE_BUS; empty = embedded)."),
    verify: bool = typer.Option(False, "--verify", help="Rebuild each episode and check it against the recording."),
    export: Path = typer.Option(None, "--export", help="Write the episodes as an offline-RL dataset to this folder."),
    fmt: str = typer.Option(None, "--format", help="Dataset format: minari (default if installed) or npz."),
    reindex_: bool = typer.Option(False, "--reindex", help="Index the episodes' telemetry into Elasticsearch again."),
    es_url: str = typer.Option(None, "--es", help="Elasticsearch URL (default: MDDE_ELASTICSEARCH)."),
    speed: float = typer.Option(None, "--speed", help="Re-emit the events to a new run id at this × recorded speed."),
    new_run_id: str = typer.Option(None, "--new-run-id", help="Run id for --speed (default: <run>-replay-<id>)."),
    skip_corrupt: bool = typer.Option(False, "--skip-corrupt", help="Skip corrupt events instead of stopping."),
) -> None:
    """Replay recorded episodes: --verify, --export DIR, --reindex, --speed X (with none of these, list the
    selected episodes; with no selection either, list the runs on the bus)."""
    from mdde_stream.bus import open_bus
    from mdde_stream.config import get_settings
    from mdde_stream.replay.exceptions import ReplayError
    from mdde_stream.replay.recording import group_episodes
    from mdde_stream.replay.selection import REPLAY_TOPICS, Selection, read_selection

    nothing_selected = all(v is None for v in (run, episode, from_offset, to_offset, since, until, partition)) \
        and not topic
    actions = verify or export is not None or reindex_ or speed is not None
    if nothing_selected and not actions:
        _list_runs(bus_url)
        return
    if reindex_:
        require_extra("elasticsearch", "telemetry", "--reindex")
    try:
        selection = Selection(
            run_id=run, episode=episode, from_offset=from_offset, to_offset=to_offset,
            since=_when(since, "--since"), until=_when(until, "--until"),
            topics=tuple(topic) if topic else REPLAY_TOPICS, partition=partition,
        )
    except ValueError as exc:
        fail(f"invalid selection: {exc}")
    if speed is not None and not speed > 0:
        fail(f"--speed must be > 0, got {speed}")
    if fmt not in (None, "minari", "npz"):
        fail(f"--format must be minari or npz, got {fmt!r}")

    settings = get_settings()
    diverged = False
    try:
        with open_bus(bus_url, settings=settings) as bus:
            selected = read_selection(bus, selection, settings, skip_corrupt=skip_corrupt)
            episodes = group_episodes(selected)
            console.print(f"{selection.describe()} on {bus.url}: {len(selected.events)} events, "
                          f"{len(episodes)} episode(s)")
            for bad in selected.corrupt:
                console.print(f"[yellow]skipped corrupt event {bad}[/yellow]")
            for ep in episodes:
                state = "complete" if ep.complete else f"[yellow]{len(ep.problems)} problem(s)[/yellow]"
                console.print(f"  {ep.name}: {ep.last_step} steps, {len(ep.events)} events, {state}")
                for problem in ep.problems:
                    console.print(f"    - {problem}")
            if verify:
                diverged = _verify(episodes, settings)
            if export is not None:
                from mdde_stream.replay.export import export_dataset

                path = export_dataset(episodes, export, fmt=fmt, settings=settings)  # type: ignore[arg-type]
                console.print(f"[green]exported {len(episodes)} episode(s) to {path}[/green]")
            if reindex_:
                from mdde_stream.replay.reindex import reindex

                done = reindex([e for ep in episodes for e in ep.events], es_url, settings)
                console.print(str(done), style="green", markup=False, highlight=False)
            if speed is not None:
                from mdde_stream.replay.reemit import reemit

                events = [e for ep in episodes for e in ep.events]
                console.print(f"[green]{reemit(bus, events, new_run_id, speed)}[/green]")
    except ReplayError as exc:
        fail(str(exc), EXIT_RECORDING)
    if diverged:
        raise typer.Exit(EXIT_DIVERGED)


def _list_runs(bus_url: str | None) -> None:
    """No selection: the runs on the bus with their episodes, and how to select one."""
    from mdde_stream.bus import open_bus
    from mdde_stream.config import get_settings
    from mdde_stream.replay.exceptions import ReplayError
    from mdde_stream.replay.runs import recorded_runs

    settings = get_settings()
    try:
        with open_bus(bus_url, settings=settings) as bus:
            runs = recorded_runs(bus, settings)
            where = bus.url
    except ReplayError as exc:
        fail(str(exc), EXIT_RECORDING)
    if not runs:
        console.print(f"no recorded run on {where}", markup=False, highlight=False)
        return
    table = Table("run", "episodes", "count", "first started (UTC)", "last started (UTC)", title=f"runs on {where}")
    for r in runs.values():
        table.add_row(r.run_id, r.describe_episodes(), str(len(r.episodes)),
                      r.first.strftime("%Y-%m-%d %H:%M:%S") if r.first else "",
                      r.last.strftime("%Y-%m-%d %H:%M:%S") if r.last else "")
    console.print(table)
    console.print("select one with --run RUN [--episode E], then --verify, --export DIR, --reindex or --speed X",
                  markup=False, highlight=False)


def _verify(episodes: list, settings: object) -> bool:
    """Verify each episode; returns True when any diverged."""
    from mdde_stream.replay.verify import verify_episode

    diverged = False
    for ep in episodes:
        ep.require_complete()
        report = verify_episode(ep, settings)  # type: ignore[arg-type]
        if report.ok:
            console.print(f"[green]{report}[/green]")
        else:
            diverged = True
            console.print(f"[red]{report}[/red]")
    return diverged
