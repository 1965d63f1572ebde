"""Entry point of the estimator service: ``python -m consumers.estimator [OPTIONS]`` is ``mdde-stream service estimator``.

The service itself is :mod:`mdde_stream.services.estimator`; ``--help`` lists the options.
"""

import sys

from mdde_stream.cli import app

if __name__ == "__main__":
    sys.exit(app(["service", "estimator", *sys.argv[1:]], prog_name="mdde-stream"))
