"""The replica locator: which node serves a read of a fragment.

The thesis's benchmark sends each read to the replica with the fewest reads in flight, breaking ties
by the lowest node index. The simulated benchmark and the real benchmark workers share this one
policy so that their per-node read counts are comparable.

The locator is not thread-safe: one instance per worker loop, or guard it with a lock.
"""

from __future__ import annotations

import logging

import numpy as np

from mdde_stream.benchmark.errors import BenchmarkError

logger = logging.getLogger(__name__)


class NoReplicaError(BenchmarkError, ValueError):
    """A fragment that is read (or must be read) has no replica in the allocation."""

    def __init__(self, fragment: int, detail: str = "") -> None:
        self.fragment = fragment
        message = f"fragment {fragment} has no replica in the allocation"
        super().__init__(f"{message}: {detail}" if detail else message)


def replica_lists(allocation: np.ndarray) -> list[tuple[int, ...]]:
    """For each fragment, the nodes holding it in ascending index order (empty if none)."""
    alloc = as_allocation(allocation)
    fragments, nodes = np.nonzero(alloc.T)  # row-major over fragments -> nodes come out sorted
    result: list[list[int]] = [[] for _ in range(alloc.shape[1])]
    for f, w in zip(fragments.tolist(), nodes.tolist()):
        result[f].append(w)
    return [tuple(r) for r in result]


def as_allocation(allocation: np.ndarray) -> np.ndarray:
    """Validate and return a (W, F) boolean allocation matrix (no copy when already boolean)."""
    alloc = np.asarray(allocation)
    if alloc.ndim != 2:
        raise ValueError(f"allocation must be a 2-D (nodes x fragments) matrix, got shape {alloc.shape}")
    if alloc.dtype != np.bool_:
        if alloc.size and not np.isin(alloc, (0, 1)).all():
            raise ValueError("allocation must hold only 0/1 or booleans")
        alloc = alloc.astype(np.bool_)
    return alloc


class ReplicaLocator:
    """Least-in-flight replica choice over a fixed allocation.

    ``acquire(f)`` picks the node for the next read of fragment ``f`` and counts it as in flight;
    ``release(w)`` marks one read on node ``w`` finished.
    """

    __slots__ = ("_replicas", "_in_flight")

    def __init__(self, allocation: np.ndarray) -> None:
        self._replicas = replica_lists(allocation)
        self._in_flight = [0] * int(np.asarray(allocation).shape[0])

    @property
    def node_count(self) -> int:
        return len(self._in_flight)

    @property
    def fragment_count(self) -> int:
        return len(self._replicas)

    @property
    def in_flight(self) -> tuple[int, ...]:
        return tuple(self._in_flight)

    def replicas(self, fragment: int) -> tuple[int, ...]:
        return self._replicas[fragment]

    def choose(self, fragment: int) -> int:
        """The node that would serve a read of ``fragment`` now, without counting it."""
        replicas = self._replicas[fragment]
        if not replicas:
            raise NoReplicaError(fragment)
        if len(replicas) == 1:
            return replicas[0]
        # min() keeps the first of equal keys and replicas are sorted: lowest index wins ties.
        return min(replicas, key=self._in_flight.__getitem__)

    def acquire(self, fragment: int) -> int:
        """Choose the node for a read of ``fragment`` and count the read as in flight there."""
        node = self.choose(fragment)
        self._in_flight[node] += 1
        return node

    def release(self, node: int) -> None:
        """One read on ``node`` finished."""
        if self._in_flight[node] <= 0:
            raise ValueError(f"node {node} has no read in flight to release")
        self._in_flight[node] -= 1
