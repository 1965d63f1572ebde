"""Entry point of the estimator service (`mdde-stream service estimator`): see :mod:`mdde_stream.services.estimator`."""

import sys

from mdde_stream.services.estimator import main

if __name__ == "__main__":
    sys.exit(main())
