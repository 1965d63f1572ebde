"""Entry point of the indexer: ``python -m consumers.indexer [OPTIONS]`` is ``mdde-stream service indexer``.

The service itself is :mod:`mdde_stream.services.indexer`; ``--help`` lists the options.
"""

import sys

from mdde_stream.cli import app

if __name__ == "__main__":
    sys.exit(app(["service", "indexer", *sys.argv[1:]], prog_name="mdde-stream"))
