"""Entry point of the registry service (`mdde-stream service registry`): see :mod:`mdde_stream.services.registry`."""

import sys

from mdde_stream.services.registry import main

if __name__ == "__main__":
    sys.exit(main())
