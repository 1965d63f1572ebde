"""Entry point of the registry service: ``python -m consumers.registry [OPTIONS]`` is ``mdde-stream service registry``.

The service itself is :mod:`mdde_stream.services.registry`; ``--help`` lists the options.
"""

import sys

from mdde_stream.cli import app

if __name__ == "__main__":
    sys.exit(app(["service", "registry", *sys.argv[1:]], prog_name="mdde-stream"))
