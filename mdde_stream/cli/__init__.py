"""The ``mdde-stream`` command line (typer): :data:`app` holds every command."""

from mdde_stream.cli.app import app

__all__ = ["app"]
