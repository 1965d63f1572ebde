"""The result of one benchmark run: the thesis's triple <tau, N, R>.

tau is the throughput (reads per second), R the reads served per node and fragment (a W x F matrix)
and N the reads per node (R summed over fragments). The simulated benchmark, the real Redis
benchmark's aggregator and the estimator all speak this one shape, so rewards and observations do
not care where a figure came from; ``source`` says it for telemetry.

Fast paths use the matrix indexed 0..W-1 / 0..F-1; event payloads use :meth:`to_mapping`, keyed by
the string ids the caller chooses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BenchmarkOutcome:
    """Throughput, reads per (node, fragment), how long the run took and where it came from.

    ``reads`` is copied into a read-only int64 array so an outcome can be shared between the
    environment, telemetry and the estimator without anyone mutating the baseline by accident.
    ``total_reads`` must equal ``reads.sum()``: every counted read was served by some replica.
    """

    throughput: float
    reads: np.ndarray
    duration_s: float
    total_reads: int
    source: str

    def __post_init__(self) -> None:
        reads = np.array(self.reads, dtype=np.int64, copy=True)
        if reads.ndim != 2:
            raise ValueError(f"reads must be a 2-D (nodes x fragments) matrix, got shape {reads.shape}")
        if reads.size and reads.min() < 0:
            raise ValueError("reads must be non-negative")
        total = int(reads.sum())
        if int(self.total_reads) != total:
            raise ValueError(f"total_reads={self.total_reads} does not match the sum of reads ({total})")
        if not np.isfinite(self.throughput) or self.throughput < 0:
            raise ValueError(f"throughput must be a finite non-negative number, got {self.throughput}")
        if not np.isfinite(self.duration_s) or self.duration_s < 0:
            raise ValueError(f"duration_s must be a finite non-negative number, got {self.duration_s}")
        reads.setflags(write=False)
        object.__setattr__(self, "reads", reads)
        object.__setattr__(self, "total_reads", total)
        object.__setattr__(self, "throughput", float(self.throughput))
        object.__setattr__(self, "duration_s", float(self.duration_s))

    @classmethod
    def from_reads(cls, reads: np.ndarray, duration_s: float, source: str) -> BenchmarkOutcome:
        """Build an outcome whose throughput is total reads / duration (0 for an empty run)."""
        total = int(np.asarray(reads, dtype=np.int64).sum())
        throughput = total / duration_s if duration_s > 0 else 0.0
        return cls(throughput, reads, duration_s, total, source)

    @property
    def node_count(self) -> int:
        return int(self.reads.shape[0])

    @property
    def fragment_count(self) -> int:
        return int(self.reads.shape[1])

    @property
    def node_reads(self) -> np.ndarray:
        """N: reads served by each node, shape (W,)."""
        return self.reads.sum(axis=1)

    @property
    def fragment_reads(self) -> np.ndarray:
        """Reads of each fragment over all its replicas, shape (F,)."""
        return self.reads.sum(axis=0)

    def popularity(self) -> np.ndarray:
        """kappa = reads(f, w) / total reads, the observation's popularity channel (zeros if no reads)."""
        if self.total_reads == 0:
            return np.zeros(self.reads.shape, dtype=np.float64)
        return self.reads / float(self.total_reads)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BenchmarkOutcome):
            return NotImplemented
        return (
            self.throughput == other.throughput
            and self.duration_s == other.duration_s
            and self.total_reads == other.total_reads
            and self.source == other.source
            and self.reads.shape == other.reads.shape
            and bool(np.array_equal(self.reads, other.reads))
        )

    __hash__ = None  # type: ignore[assignment]  # holds an array: equal outcomes need not hash alike

    def to_mapping(self, node_ids: Sequence[str], fragment_ids: Sequence[str]) -> dict[str, Any]:
        """A JSON-ready dict keyed by string ids; ``reads`` lists only non-zero cells to stay small."""
        self._check_ids(node_ids, fragment_ids)
        reads: dict[str, dict[str, int]] = {}
        rows, cols = np.nonzero(self.reads)
        for w, f, value in zip(rows.tolist(), cols.tolist(), self.reads[rows, cols].tolist()):
            reads.setdefault(node_ids[w], {})[fragment_ids[f]] = value
        return {
            "throughput": self.throughput,
            "duration_s": self.duration_s,
            "total_reads": self.total_reads,
            "source": self.source,
            "node_reads": dict(zip(node_ids, self.node_reads.tolist())),
            "reads": reads,
        }

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], node_ids: Sequence[str], fragment_ids: Sequence[str]
    ) -> BenchmarkOutcome:
        """Inverse of :meth:`to_mapping`; cells missing from ``reads`` are zero, unknown ids are errors."""
        node_index = {n: i for i, n in enumerate(node_ids)}
        fragment_index = {f: i for i, f in enumerate(fragment_ids)}
        if len(node_index) != len(node_ids) or len(fragment_index) != len(fragment_ids):
            raise ValueError("node_ids and fragment_ids must not contain duplicates")
        matrix = np.zeros((len(node_ids), len(fragment_ids)), dtype=np.int64)
        for node, row in dict(data.get("reads", {})).items():
            if node not in node_index:
                raise ValueError(f"reads: unknown node id {node!r}")
            for fragment, value in dict(row).items():
                if fragment not in fragment_index:
                    raise ValueError(f"reads.{node}: unknown fragment id {fragment!r}")
                matrix[node_index[node], fragment_index[fragment]] = int(value)
        total = data.get("total_reads", int(matrix.sum()))
        return cls(
            float(data["throughput"]),
            matrix,
            float(data.get("duration_s", 0.0)),
            int(total),
            str(data.get("source", "unknown")),
        )

    def _check_ids(self, node_ids: Sequence[str], fragment_ids: Sequence[str]) -> None:
        if len(node_ids) != self.node_count or len(fragment_ids) != self.fragment_count:
            raise ValueError(
                f"expected {self.node_count} node ids and {self.fragment_count} fragment ids, "
                f"got {len(node_ids)} and {len(fragment_ids)}"
            )
        if len(set(node_ids)) != len(node_ids) or len(set(fragment_ids)) != len(fragment_ids):
            raise ValueError("node_ids and fragment_ids must not contain duplicates")
