"""Entry point of the benchmark aggregator service: see :mod:`mdde_stream.services.benchmark_aggregator`."""

import sys

from mdde_stream.services.benchmark_aggregator import main

if __name__ == "__main__":
    sys.exit(main())
