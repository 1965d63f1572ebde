"""Simulated benchmark: wall time for 100,000 reads, and simulated throughput by allocation.

Run: ``python bench/bench_simulated.py``. Reference points: one second of wall time per 100,000
reads (the budget), and one node's service rate (10,000 reads/s) for the throughput ratios.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mdde_stream.benchmark import DEFAULT_SERVICE_RATE, SimulatedBenchmark  # noqa: E402
from mdde_stream.workloads import generate_keys, preset  # noqa: E402

W, F = 4, 20


def main() -> None:
    record_fragment = np.arange(10_000, dtype=np.int64) % F
    one = np.zeros((W, F), dtype=bool)
    one[0] = True
    even = np.zeros((W, F), dtype=bool)
    even[np.arange(F) % W, np.arange(F)] = True
    cases = {"all on one node": one, "spread evenly": even, "full replication": np.ones((W, F), dtype=bool)}
    bench = SimulatedBenchmark(W)
    print(f"{'workload':<9} {'allocation':<18} {'wall ms':>8} {'vs 1 s':>7} {'reads/s':>10} {'vs 1 node':>9}")
    for workload in ("uniform", "latest"):
        keys = generate_keys(preset(workload), seed=0)
        for name, alloc in cases.items():
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                outcome = bench.run(alloc, record_fragment, keys)
                best = min(best, time.perf_counter() - start)
            ratio = outcome.throughput / DEFAULT_SERVICE_RATE
            print(f"{workload:<9} {name:<18} {best * 1e3:8.1f} {best:6.2f}x {outcome.throughput:10.0f} {ratio:8.2f}x")


if __name__ == "__main__":
    main()
