"""Entry point of the benchmark aggregator: ``python -m consumers.benchmark_aggregator [OPTIONS]`` is ``mdde-stream service benchmark-aggregator``.

The service itself is :mod:`mdde_stream.services.benchmark_aggregator`; ``--help`` lists the options.
"""

import sys

from mdde_stream.cli import app

if __name__ == "__main__":
    sys.exit(app(["service", "benchmark-aggregator", *sys.argv[1:]], prog_name="mdde-stream"))
