"""The pipeline's long-running consumers, on one runtime (``runtime.py``): registry, estimator,
benchmark aggregator, benchmark worker, indexer. ``mdde_stream/cli/services.py`` holds their
commands and ``consumers/`` their runnable entry points.

The default consumer groups live here, where the commands can read them without importing a service.
"""

REGISTRY_GROUP = "mdde-registry"
ESTIMATOR_GROUP = "mdde-estimator"
AGGREGATOR_GROUP = "mdde-benchmark-aggregator"
WORKER_GROUP = "mdde-benchmark-workers"
