"""``mdde-stream report RUN`` (an HTML report that needs no server) and ``mdde-stream dashboards
import | validate | export`` (the Kibana saved objects). The indexer is ``mdde-stream service indexer``."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from mdde_stream.config import get_settings

logger = logging.getLogger(__name__)

dashboards_app = typer.Typer(help="Kibana saved objects (dashboards/mdde.ndjson).", no_args_is_help=True)


def report_command(
    run_id: str = typer.Argument(..., help="The run whose events to read from the bus (MDDE_BUS)."),
    out: Path = typer.Option(None, "--out", "-o", help="HTML file to write (default: <data_dir>/reports/RUN.html)."),
) -> None:
    """Write a self-contained HTML report of one run (plots and heatmaps, no server needed)."""
    from mdde_stream.cli.checks import fail
    from mdde_stream.plots import PlotsUnavailable
    from mdde_stream.telemetry.report import ReportError, write_report

    try:
        path = write_report(run_id, get_settings(), out)
    except (ReportError, PlotsUnavailable) as exc:
        fail(str(exc))
    except OSError as exc:  # --out in a folder that cannot be written
        fail(f"--out {out}: {exc.strerror or exc}")
    typer.echo(str(path))


@dashboards_app.command("import")
def dashboards_import(
    kibana: str = typer.Option(None, "--kibana", help="Kibana URL (default: MDDE_KIBANA)."),
    path: Path = typer.Option(None, "--file", help="ndjson to import (default: dashboards/mdde.ndjson)."),
) -> None:
    """Import the saved objects into Kibana, overwriting the previous version (same ids, no copies)."""
    from mdde_stream.telemetry.dashboards import DEFAULT_PATH, DashboardError, import_dashboards

    try:
        result = import_dashboards(kibana or get_settings().kibana, path or DEFAULT_PATH)
    except DashboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"imported {result.get('successCount', 0)} saved objects")


def _saved_objects(path: Path) -> list[dict]:
    """The saved objects of ``--file``; a file that is not Kibana saved-objects ndjson is a bad option."""
    from mdde_stream.cli.checks import fail
    from mdde_stream.telemetry.dashboards import DashboardError, load_ndjson

    try:
        objects = load_ndjson(path)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--file {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})")
    except DashboardError as exc:
        fail(f"--file {path}: not Kibana saved-objects ndjson ({exc})")
    envelope = ("type", "id", "attributes")
    for n, obj in enumerate(objects, 1):
        if not isinstance(obj, dict) or any(key not in obj for key in envelope):
            fail(f"--file {path}: object {n} is not a Kibana saved object (it needs {', '.join(envelope)})")
    if not objects:
        fail(f"--file {path}: no saved object in it")
    return objects


@dashboards_app.command("validate")
def dashboards_validate(
    path: Path = typer.Option(None, "--file", help="ndjson to check (default: dashboards/mdde.ndjson)."),
) -> None:
    """Check references, data views and that every panel field is aggregatable in the index templates."""
    from mdde_stream.telemetry.dashboards import DEFAULT_PATH, render_ndjson, validate

    path = path or DEFAULT_PATH
    problems = validate(_saved_objects(path))
    if path == DEFAULT_PATH and path.read_text() != render_ndjson():
        problems.append(f"{path} is stale: run `mdde-stream dashboards export`")
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{path}: ok")


@dashboards_app.command("export")
def dashboards_export(
    path: Path = typer.Option(None, "--file", help="Where to write (default: dashboards/mdde.ndjson)."),
) -> None:
    """Regenerate the saved objects from the panel declarations."""
    from mdde_stream.telemetry.dashboards import DEFAULT_PATH, write_ndjson

    typer.echo(str(write_ndjson(path or DEFAULT_PATH)))
