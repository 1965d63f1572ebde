"""Entry point of the replay re-emitter: a recorded run played again under a new run id, paced.

    python -m producers.replay --run run-1234abcd --episode 0 --speed 5

The same as ``mdde-stream replay --speed``; its options are listed by ``--help``.
"""

import sys

from mdde_stream.cli import app

if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(app(["replay", *args, *([] if "--speed" in args else ["--speed", "1"])], prog_name="mdde-stream"))
