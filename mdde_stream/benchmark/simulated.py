"""A seeded, closed-loop discrete-event model of the read benchmark, for runs without data nodes.

Model (one sentence each, because the numbers it produces feed rewards):

1. ``clients`` clients each keep exactly one read outstanding; a client that gets its answer
   immediately issues the next key of the workload sequence (keys are consumed in order).
2. Each read goes to the replica with the fewest reads in flight (the shared
   :class:`~mdde_stream.benchmark.locator.ReplicaLocator` policy; lowest node index on ties).
3. Each node is a single FIFO server with mean service time ``1 / service_rate``; with
   ``service_cv == 0`` service is deterministic, otherwise each read's service time is drawn from a
   gamma distribution with that coefficient of variation (seeded, so runs repeat exactly).
4. Throughput = reads / makespan, where makespan is the simulated time of the last completion.

So one node holding everything yields that node's rate, and an even spread over equal nodes yields
close to the sum of their rates; a slow node holding a popular fragment drags throughput down.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence

import numpy as np

from mdde_stream.benchmark.locator import NoReplicaError, as_allocation, replica_lists
from mdde_stream.benchmark.outcome import BenchmarkOutcome

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_RATE = 10_000.0
"""Reads per second one simulated node serves when no rates are given."""


class SimulatedBenchmark:
    """The embedded stand-in for the Redis benchmark: same workload keys, same replica policy."""

    def __init__(
        self,
        node_count: int,
        service_rates: Sequence[float] | None = None,
        clients: int = 50,
        service_cv: float = 0.0,
    ) -> None:
        if node_count < 1:
            raise ValueError(f"node_count must be at least 1, got {node_count}")
        if clients < 1:
            raise ValueError(f"clients must be at least 1, got {clients}")
        if service_cv < 0:
            raise ValueError(f"service_cv must be non-negative, got {service_cv}")
        rates = [DEFAULT_SERVICE_RATE] * node_count if service_rates is None else [float(r) for r in service_rates]
        if len(rates) != node_count:
            raise ValueError(f"service_rates has {len(rates)} entries for {node_count} nodes")
        if any(not np.isfinite(r) or r <= 0 for r in rates):
            raise ValueError(f"service_rates must be positive and finite, got {rates}")
        self.node_count = node_count
        self.service_rates = tuple(rates)
        self.clients = clients
        self.service_cv = float(service_cv)

    def run(
        self,
        allocation: np.ndarray,
        record_fragment: np.ndarray,
        keys: np.ndarray,
        seed: int = 0,
    ) -> BenchmarkOutcome:
        """Serve ``keys`` (record indices) against ``allocation`` and return <tau, N, R>.

        ``record_fragment[k]`` is the fragment of record ``k``. ``seed`` only matters when
        ``service_cv > 0``. The outcome's ``duration_s`` is the simulated makespan, not wall time.
        Raises :class:`NoReplicaError` if a read fragment has no replica (unread ones may lack one).
        """
        alloc = as_allocation(allocation)
        if alloc.shape[0] != self.node_count:
            raise ValueError(f"allocation has {alloc.shape[0]} nodes, the benchmark models {self.node_count}")
        fragment_count = alloc.shape[1]
        frags = self._fragments_of(record_fragment, keys, fragment_count)
        self._check_replicas(alloc, frags, fragment_count)

        n = int(frags.size)
        if n == 0:
            return BenchmarkOutcome.from_reads(np.zeros(alloc.shape, dtype=np.int64), 0.0, "simulated")
        base = [1.0 / r for r in self.service_rates]
        if self.service_cv > 0:
            shape = 1.0 / (self.service_cv**2)
            factors = np.random.default_rng(seed).gamma(shape, 1.0 / shape, size=n).tolist()
        else:
            factors = None
        chosen, makespan = self._simulate(replica_lists(alloc), frags.tolist(), base, factors)

        cells = np.asarray(chosen, dtype=np.int64) * fragment_count + frags
        reads = np.bincount(cells, minlength=self.node_count * fragment_count)
        reads = reads.reshape(self.node_count, fragment_count)
        outcome = BenchmarkOutcome.from_reads(reads, makespan, "simulated")
        logger.debug("simulated %d reads in %.4f simulated s: %.1f reads/s", n, makespan, outcome.throughput)
        return outcome

    def _simulate(
        self,
        replicas: list[tuple[int, ...]],
        frag_list: list[int],
        base: list[float],
        factors: list[float] | None,
    ) -> tuple[list[int], float]:
        """The event loop; returns the node chosen for each read and the makespan.

        Because a node is a FIFO single server, a read's completion time is known when it is
        dispatched (max(now, node free at) + service time), so the heap only holds one pending
        completion per client and each event is a single ``heapreplace``.
        """
        n = len(frag_list)
        reps_of = [replicas[f] for f in frag_list]
        in_flight = [0] * self.node_count
        free_at = [0.0] * self.node_count
        chosen = [0] * n
        heap: list[tuple[float, int, int]] = []
        first = min(self.clients, n)
        for i in range(first):
            reps = reps_of[i]
            node = reps[0] if len(reps) == 1 else min(reps, key=in_flight.__getitem__)
            in_flight[node] += 1
            service = base[node] if factors is None else base[node] * factors[i]
            finish = free_at[node] + service
            free_at[node] = finish
            chosen[i] = node
            heap.append((finish, i, node))
        heapq.heapify(heap)

        replace = heapq.heapreplace
        getter = in_flight.__getitem__
        now = 0.0
        for i in range(first, n):
            now, _, done = heap[0]
            in_flight[done] -= 1
            reps = reps_of[i]
            node = reps[0] if len(reps) == 1 else min(reps, key=getter)
            in_flight[node] += 1
            start = free_at[node]
            if start < now:
                start = now
            finish = start + (base[node] if factors is None else base[node] * factors[i])
            free_at[node] = finish
            chosen[i] = node
            replace(heap, (finish, i, node))
        makespan = max(entry[0] for entry in heap)
        return chosen, makespan

    @staticmethod
    def _fragments_of(record_fragment: np.ndarray, keys: np.ndarray, fragment_count: int) -> np.ndarray:
        rf = np.asarray(record_fragment)
        k = np.asarray(keys)
        if rf.ndim != 1 or k.ndim != 1:
            raise ValueError("record_fragment and keys must be 1-D arrays")
        if rf.size and not np.issubdtype(rf.dtype, np.integer):
            raise ValueError(f"record_fragment must hold integers, got {rf.dtype}")
        if k.size and not np.issubdtype(k.dtype, np.integer):
            raise ValueError(f"keys must hold integers, got {k.dtype}")
        if rf.size and (rf.min() < 0 or rf.max() >= fragment_count):
            raise ValueError(f"record_fragment values must lie in [0, {fragment_count})")
        if k.size and (k.min() < 0 or k.max() >= rf.size):
            raise ValueError(f"keys must be record indices in [0, {rf.size})")
        return rf[k].astype(np.int64, copy=False) if k.size else np.zeros(0, dtype=np.int64)

    @staticmethod
    def _check_replicas(alloc: np.ndarray, frags: np.ndarray, fragment_count: int) -> None:
        if frags.size == 0:
            return
        read = np.bincount(frags, minlength=fragment_count) > 0
        missing = np.flatnonzero(read & ~alloc.any(axis=0))
        if missing.size:
            raise NoReplicaError(
                int(missing[0]), f"{missing.size} read fragment(s) without replica: {missing[:10].tolist()}"
            )
