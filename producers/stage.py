"""Entry point of the stage driver: episodes of the environment with a built-in policy, every action
published on the bus. ``--stage remote`` has the registry service apply them (``consumers/registry.py``).

    python -m producers.stage --stage remote --policy random-valid --episodes 3

The same as ``mdde-stream run``; its options are listed by ``--help``.
"""

import sys

from mdde_stream.cli import app

if __name__ == "__main__":
    sys.exit(app(["run", *sys.argv[1:]], prog_name="mdde-stream"))
