"""``mdde-stream stack up | status | down | env``: the local stack from the command line."""

from __future__ import annotations

import logging
import time

import typer
from rich.console import Console
from rich.table import Table

from mdde_stream.config import Settings, get_settings
from mdde_stream.stack.manager import stack_env, stack_status, start_stack, stop_stack
from mdde_stream.stack.process import StackError

logger = logging.getLogger(__name__)

stack_app = typer.Typer(help="Run Redis, Kafka and Elasticsearch locally (no Docker).", no_args_is_help=True)
console = Console()

ONLY_HELP = "Comma-separated subset: redis,kafka,elasticsearch (default: all)."
NODES_HELP = "Number of Redis data-node servers (default: MDDE_STACK_DATA_NODES)."


def _settings(data_nodes: int | None) -> Settings:
    settings = get_settings()
    if data_nodes is not None:
        settings = settings.model_copy(update={"stack_data_nodes": data_nodes})
    return settings


def _progress(message: str) -> None:
    console.print(f"  {message}")


def _status_table(status: dict[str, dict[str, object]]) -> Table:
    table = Table(title="mdde-stream local stack")
    for column in ("service", "state", "pid", "port", "url"):
        table.add_column(column, overflow="fold")
    colours = {"up": "green", "down": "red", "unhealthy": "yellow"}
    for name, row in status.items():
        state = str(row["state"])
        table.add_row(
            name,
            f"[{colours.get(state, 'white')}]{state}[/]",
            str(row["pid"] or "-"),
            str(row["port"]),
            str(row["url"]),
        )
    logs = sorted({str(row["log"]).rsplit("/", 1)[0] for row in status.values()})
    table.caption = f"logs: {', '.join(logs)}"
    return table


@stack_app.command()
def up(
    only: str | None = typer.Option(None, "--only", help=ONLY_HELP),
    data_nodes: int | None = typer.Option(None, "--data-nodes", min=1, help=NODES_HELP),
) -> None:
    """Start the services (or leave them running) and wait until each answers."""
    settings = _settings(data_nodes)
    console.print(f"[bold]Starting local stack[/] in {settings.stack_dir}")
    started = time.monotonic()
    try:
        result = start_stack(settings, services=only, progress=_progress)
    except StackError as exc:
        console.print(f"[bold red]stack up failed[/] after {time.monotonic() - started:.1f} s:")
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    console.print(_status_table({name: s.as_dict() for name, s in result.items()}))
    console.print(f"[green]stack up in {time.monotonic() - started:.1f} s[/]. Point the library at it with:")
    for key, value in stack_env(settings).items():
        console.print(f"export {key}={value}", markup=False, highlight=False, soft_wrap=True)


@stack_app.command()
def status(
    only: str | None = typer.Option(None, "--only", help=ONLY_HELP),
    data_nodes: int | None = typer.Option(None, "--data-nodes", min=1, help=NODES_HELP),
) -> None:
    """Show each service as up / down / unhealthy with pid and port; exit 1 unless all are up."""
    try:
        rows = stack_status(_settings(data_nodes), services=only)
    except StackError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    console.print(_status_table(rows))
    if any(row["state"] != "up" for row in rows.values()):
        raise typer.Exit(1)


@stack_app.command()
def down(
    only: str | None = typer.Option(None, "--only", help=ONLY_HELP),
    data_nodes: int | None = typer.Option(None, "--data-nodes", min=1, help=NODES_HELP),
    wipe: bool = typer.Option(False, "--wipe", help="Also delete the services' data (keeps downloaded jars)."),
) -> None:
    """Stop the services cleanly (SIGTERM, wait, SIGKILL as a last resort)."""
    try:
        stopped = stop_stack(_settings(data_nodes), services=only, wipe=wipe, progress=_progress)
    except StackError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"stopped {len(stopped)} service(s)" if stopped else "nothing was running")


@stack_app.command()
def env(
    data_nodes: int | None = typer.Option(None, "--data-nodes", min=1, help=NODES_HELP),
) -> None:
    """Print `export MDDE_...=...` lines for the running stack (use with eval)."""
    for key, value in stack_env(_settings(data_nodes)).items():
        typer.echo(f"export {key}={value}")
