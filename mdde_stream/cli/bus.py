"""``mdde-stream schemas``, ``topics`` and ``dead-letters``: what is on the bus and what it accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import typer
from rich.console import Console
from rich.table import Table

from mdde_stream.config import get_settings

console = Console()

schemas_app = typer.Typer(help="Event schemas (JSON Schema export).", no_args_is_help=True)
topics_app = typer.Typer(help="Bus topics: create the project's topics, list them.", no_args_is_help=True)


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
