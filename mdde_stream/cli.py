"""``mdde-stream``: one command line for the environment, its services and the local stack.

Heavy modules are imported inside the commands that need them, so ``mdde-stream --help`` and the
light commands start fast and work without the optional extras installed.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import cast

import typer
from rich.console import Console
from rich.table import Table

from mdde_stream.config import get_settings

app = typer.Typer(
    name="mdde-stream",
    help="Multi-agent Data Distribution Environment as an event-streaming pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

schemas_app = typer.Typer(help="Event schemas (JSON Schema export).", no_args_is_help=True)
topics_app = typer.Typer(help="Bus topics: create the project's topics, list them.", no_args_is_help=True)
service_app = typer.Typer(help="Long-running consumers of the pipeline.", no_args_is_help=True)
worker_app = typer.Typer(help="Horizontally scalable workers (run several in one group).", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(topics_app, name="topics")
app.add_typer(service_app, name="service")
app.add_typer(worker_app, name="worker")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# -- schemas -------------------------------------------------------------------------------------
@schemas_app.command("export")
def schemas_export(
    out: Path = typer.Option(None, "--out", help="Target folder (default: the repository's schemas/)."),
    check: bool = typer.Option(False, "--check", help="Only check that the folder is current; exit 1 if stale."),
) -> None:
    """Write every event's JSON Schema to schemas/ (or check it is current)."""
    from mdde_stream.schemas_export import DEFAULT_DIR, export_schemas, stale_files

    directory = out or DEFAULT_DIR
    if check:
        stale = stale_files(directory)
        if stale:
            console.print(f"[red]stale schema files in {directory}:[/red] {', '.join(stale)}")
            console.print("run `mdde-stream schemas export` and commit the result")
            raise typer.Exit(1)
        console.print(f"[green]schemas in {directory} are current[/green]")
        return
    for path in export_schemas(directory):
        console.print(f"wrote {path}")


# -- topics --------------------------------------------------------------------------------------
@topics_app.command("create")
def topics_create() -> None:
    """Create every project topic on the configured bus (MDDE_BUS), with its partition count."""
    from mdde_stream.bus import open_bus
    from mdde_stream.bus.topics import ensure_topics

    settings = get_settings()
    with open_bus(settings=settings) as bus:
        specs = ensure_topics(bus, settings)
        console.print(f"[green]{len(specs)} topics ready on {bus.url}[/green]")


@topics_app.command("list")
def topics_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List topics with their partitions and record counts."""
    from mdde_stream.bus import TopicPartition, open_bus

    with open_bus() as bus:
        rows = []
        for name, partitions in sorted(bus.list_topics().items()):
            records = sum(
                high - low for low, high in (bus.watermarks(TopicPartition(name, p)) for p in range(partitions))
            )
            rows.append({"topic": name, "partitions": partitions, "records": records})
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        table = Table("topic", "partitions", "records", title=bus.url)
        for row in rows:
            table.add_row(str(row["topic"]), str(row["partitions"]), str(row["records"]))
        console.print(table)


@app.command("dead-letters")
def dead_letters(
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many (the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """Show what landed in the dead-letter topic, with reasons and where it came from."""
    from mdde_stream.bus import TopicPartition, open_bus
    from mdde_stream.events import DeadLetter, decode_event

    settings = get_settings()
    topic = settings.topic(DeadLetter.TOPIC)
    with open_bus(settings=settings) as bus:
        partitions = bus.list_topics().get(topic)
        if partitions is None:
            console.print(f"no dead-letter topic {topic!r} on {bus.url} (run `mdde-stream topics create`)")
            raise typer.Exit(1)
        reader = bus.consumer(f"{settings.topic_prefix}-dead-letter-inspect")
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        reader.assign(tps)
        for tp in tps:
            low, high = bus.watermarks(tp)
            reader.seek(tp, max(low, high - limit))
        total = sum(high - max(low, high - limit) for low, high in (bus.watermarks(tp) for tp in tps))
        letters: list[DeadLetter] = []
        while len(letters) < total:
            batch = reader.poll(2.0)
            if not batch:
                break
            letters.extend(cast(DeadLetter, decode_event(r.value, (DeadLetter,))) for r in batch)
        reader.close()
    letters = sorted(letters, key=lambda d: d.ts)[-limit:]
    if as_json:
        for letter in letters:
            print(letter.model_dump_json(by_alias=True))
        return
    table = Table("time", "source", "error", "reason", title=f"{topic} ({len(letters)} shown)")
    for letter in letters:
        source = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        table.add_row(letter.ts.strftime("%H:%M:%S"), source, letter.error_type, letter.reason[:120])
    console.print(table)


_SERVICES: dict[str, tuple[typer.Typer, str, str]] = {
    "registry": (service_app, "mdde_stream.services.registry", "Apply agents' actions from mdde.actions to the allocation state."),
    "estimator": (service_app, "mdde_stream.services.estimator", "Answer estimate requests with the thesis's estimator."),
    "benchmark-aggregator": (
        service_app, "mdde_stream.services.benchmark_aggregator", "Combine workers' access logs into benchmark results.",
    ),
    "indexer": (service_app, "mdde_stream.services.indexer", "Bulk-index telemetry events into Elasticsearch."),
    "benchmark": (worker_app, "mdde_stream.services.benchmark_worker", "Execute benchmark tasks against the Redis data nodes."),
}


def _mount_service(name: str, group: typer.Typer, module_name: str, summary: str) -> None:
    """Services parse their own options (``--help`` shows them), so typer passes the words through."""

    @group.command(
        name,
        help=f"{summary} Options: see --help.",
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def _service(ctx: typer.Context) -> None:
        import importlib

        module = importlib.import_module(module_name)
        raise typer.Exit(module.main(list(ctx.args)) or 0)


for _name, (_group, _module, _summary) in _SERVICES.items():
    _mount_service(_name, _group, _module, _summary)


def _mount_optional() -> None:
    """Mount the commands that live in their own modules."""
    try:
        from mdde_stream.stack.cli import stack_app
    except ModuleNotFoundError:  # pragma: no cover - during development only
        return
    app.add_typer(stack_app, name="stack", help="Start, inspect and stop the real local stack (no Docker).")

    from mdde_stream.estimate_cli import estimate_command

    app.command("estimate")(estimate_command)

    from mdde_stream.run_cli import run

    app.command("run")(run)

    from mdde_stream.agents.cli import register as register_agents

    register_agents(app)

    from mdde_stream.edge_cases_cli import edge_cases_command

    app.command("edge-cases")(edge_cases_command)

    from mdde_stream.reproduce.cli import reproduce_command

    app.command("reproduce")(reproduce_command)

    from mdde_stream.telemetry.cli import dashboards_app, report_command

    app.command("report")(report_command)
    app.add_typer(dashboards_app, name="dashboards", help="Kibana saved objects: export, validate, import.")

    from mdde_stream.replay.cli import replay_command

    app.command("replay")(replay_command)


_mount_optional()
