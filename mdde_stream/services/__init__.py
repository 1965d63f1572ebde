"""The pipeline's long-running consumers, on one runtime (``runtime.py``): registry, estimator,
benchmark aggregator, benchmark worker, indexer. ``consumers/`` holds their runnable entry points."""
