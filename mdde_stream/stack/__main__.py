"""``python -m mdde_stream.stack up|status|down|env``."""

from mdde_stream.stack.cli import stack_app

stack_app(prog_name="python -m mdde_stream.stack")
