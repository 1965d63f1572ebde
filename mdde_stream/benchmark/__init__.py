"""Benchmarks that measure <tau, N, R> for an allocation: the shared result type, the replica
locator both benchmarks use, and the simulated benchmark that runs without data nodes."""

from mdde_stream.benchmark.locator import NoReplicaError, ReplicaLocator, replica_lists
from mdde_stream.benchmark.outcome import BenchmarkOutcome
from mdde_stream.benchmark.simulated import DEFAULT_SERVICE_RATE, SimulatedBenchmark

__all__ = [
    "BenchmarkOutcome",
    "DEFAULT_SERVICE_RATE",
    "NoReplicaError",
    "ReplicaLocator",
    "SimulatedBenchmark",
    "replica_lists",
]
