"""Entry point of a benchmark worker: ``python -m consumers.benchmark_worker [OPTIONS]`` is ``mdde-stream worker benchmark``.

The service itself is :mod:`mdde_stream.services.benchmark_worker`; ``--help`` lists the options.
"""

import sys

from mdde_stream.cli import app

if __name__ == "__main__":
    sys.exit(app(["worker", "benchmark", *sys.argv[1:]], prog_name="mdde-stream"))
