"""Entry point of the benchmark worker service: see :mod:`mdde_stream.services.benchmark_worker`."""

import sys

from mdde_stream.services.benchmark_worker import main

if __name__ == "__main__":
    sys.exit(main())
