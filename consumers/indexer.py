"""Entry point of the indexer service: see :mod:`mdde_stream.services.indexer`."""

import sys

from mdde_stream.services.indexer import main

if __name__ == "__main__":
    sys.exit(main())
