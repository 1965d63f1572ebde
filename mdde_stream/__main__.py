"""``python -m mdde_stream`` runs the ``mdde-stream`` command line (for environments without the script)."""

from mdde_stream.cli import app

app(prog_name="mdde-stream")
