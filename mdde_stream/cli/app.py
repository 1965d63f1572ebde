"""The ``mdde-stream`` application: every command, mounted in one place.

Each module of this package holds the commands of one area and checks their options before any
work starts (:mod:`mdde_stream.cli.checks`); the work itself lives in the library. Heavy modules are
imported inside the commands that need them, so ``mdde-stream --help`` starts fast and works without
the optional extras installed.
"""

from __future__ import annotations

import logging
import sys

import typer

from mdde_stream.cli.agents import actor, evaluate, train
from mdde_stream.cli.bus import dead_letters, schemas_app, topics_app
from mdde_stream.cli.edge_cases import edge_cases_command
from mdde_stream.cli.estimate import estimate_command
from mdde_stream.cli.replay import replay_command
from mdde_stream.cli.reproduce import reproduce_command
from mdde_stream.cli.run import run
from mdde_stream.cli.services import service_app, worker_app
from mdde_stream.cli.stack import stack_app
from mdde_stream.cli.telemetry import dashboards_app, report_command

app = typer.Typer(
    name="mdde-stream",
    help="Multi-agent Data Distribution Environment as an event-streaming pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# The environment and its experiments.
app.command("run")(run)
app.command("estimate")(estimate_command)
app.command("edge-cases")(edge_cases_command)
app.command("reproduce")(reproduce_command)
# Learning.
app.command("train")(train)
app.command("actor")(actor)
app.command("evaluate")(evaluate)
# Recorded runs and their telemetry.
app.command("replay")(replay_command)
app.command("report")(report_command)
app.add_typer(dashboards_app, name="dashboards", help="Kibana saved objects: export, validate, import.")
# The pipeline: its services, its bus, and the local stack they run on.
app.add_typer(service_app, name="service")
app.add_typer(worker_app, name="worker")
app.add_typer(schemas_app, name="schemas")
app.add_typer(topics_app, name="topics")
app.command("dead-letters")(dead_letters)
app.add_typer(stack_app, name="stack", help="Start, inspect and stop the real local stack (no Docker).")
