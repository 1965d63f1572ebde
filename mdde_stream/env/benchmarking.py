"""How the environment obtains ⟨τ, N, R⟩: one small interface, three modes.

* ``estimate`` — the thesis's estimator (Eq 3.3–3.7) from the latest baseline; the baseline is a
  simulated benchmark of the episode's initial allocation (no data nodes in the embedded mode). Cheap
  enough to run on every benchmark step of a learning loop.
* ``simulated`` — the seeded discrete-event benchmark (:class:`SimulatedBenchmark`) on every benchmark
  step: the same workload keys and replica policy as the real one.
* ``real`` — a :class:`BenchmarkRequested` on ``mdde.benchmark.requests``, answered by the benchmark
  workers' aggregator on ``mdde.benchmark.results``; the wait is bounded and names what is missing.

Baselines depend only on (seed, allocation), and every reset restores the same initial allocation, so
they are cached: resetting an episode costs nothing after the first time.
"""

from __future__ import annotations

import abc
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mdde_stream.benchmark import BenchmarkOutcome, SimulatedBenchmark
from mdde_stream.benchmark.client import BenchmarkTimeout
from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings
from mdde_stream.env.scenario import Measurement
from mdde_stream.estimator import estimate
from mdde_stream.workloads import PRESETS, WorkloadSpec, generate_keys

logger = logging.getLogger(__name__)

__all__ = [
    "BenchmarkRequest",
    "BenchmarkSource",
    "BenchmarkTimeout",
    "EstimateSource",
    "RealSource",
    "SimulatedSource",
    "from_outcome",
    "make_source",
    "workload_spec",
]


def workload_spec(name: str, records: int, operations: int | None, clients: int) -> WorkloadSpec:
    """A thesis preset (``uniform``, ``latest``, ...) or a bare distribution name, sized for this env."""
    base = PRESETS.get(name)
    if base is None:
        try:
            base = WorkloadSpec(distribution=name)
        except ValueError:
            raise ValueError(f"unknown workload {name!r}: use a preset {sorted(PRESETS)} or a distribution name") from None
    update = {"record_count": records, "clients": clients}
    if operations is not None:
        update["operation_count"] = operations
    return WorkloadSpec(**{**base.model_dump(), **update})


def from_outcome(outcome: BenchmarkOutcome) -> Measurement:
    return Measurement(outcome.throughput, np.asarray(outcome.reads, dtype=np.int64), outcome.source)


@dataclass
class BenchmarkRequest:
    """What a source needs to measure one allocation (identifiers only matter for ``real``)."""

    allocation: np.ndarray
    seed: int
    run_id: str
    episode: int
    step: int


class BenchmarkSource(abc.ABC):
    """Turns an allocation into a :class:`Measurement`."""

    mode: str = ""

    @abc.abstractmethod
    def baseline(self, request: BenchmarkRequest) -> Measurement:
        """Measurement of the episode's initial allocation (called at reset)."""

    @abc.abstractmethod
    def measure(self, request: BenchmarkRequest) -> Measurement:
        """Measurement of the current allocation on a benchmark step."""

    def close(self) -> None:
        """Release consumers or connections."""


class _Simulation:
    """Workload keys per seed and the simulated benchmark, shared by ``estimate`` and ``simulated``."""

    CACHE_SIZE = 256

    def __init__(self, spec: WorkloadSpec, record_fragment: np.ndarray, node_count: int,
                 service_rates: Sequence[float] | None) -> None:
        self.spec = spec
        self.record_fragment = record_fragment
        self.bench = SimulatedBenchmark(node_count, service_rates, clients=spec.clients)
        self._keys: dict[int, np.ndarray] = {}
        self._runs: OrderedDict[tuple[int, bytes], BenchmarkOutcome] = OrderedDict()

    def keys(self, seed: int) -> np.ndarray:
        keys = self._keys.get(seed)
        if keys is None:
            keys = self._keys[seed] = generate_keys(self.spec, seed)
        return keys

    def run(self, allocation: np.ndarray, seed: int, cache: bool) -> BenchmarkOutcome:
        key = (seed, np.packbits(allocation).tobytes())
        outcome = self._runs.get(key) if cache else None
        if outcome is None:
            outcome = self.bench.run(allocation, self.record_fragment, self.keys(seed), seed=seed)
            if cache:
                self._runs[key] = outcome
                if len(self._runs) > self.CACHE_SIZE:
                    self._runs.popitem(last=False)
        elif cache:
            self._runs.move_to_end(key)
        return outcome


class EstimateSource(BenchmarkSource):
    mode = "estimate"

    def __init__(self, simulation: _Simulation, j: float, k: float) -> None:
        self.sim, self.j, self.k = simulation, j, k
        self._baseline: BenchmarkOutcome | None = None

    def baseline(self, request: BenchmarkRequest) -> Measurement:
        self._baseline = self.sim.run(request.allocation, request.seed, cache=True)
        return from_outcome(self._baseline)

    def measure(self, request: BenchmarkRequest) -> Measurement:
        if self._baseline is None:
            raise RuntimeError("estimate requested before a baseline: call reset() first")
        est = estimate(request.allocation, self._baseline, self.j, self.k)
        return Measurement(est.throughput, est.reads, "estimate")


class SimulatedSource(BenchmarkSource):
    mode = "simulated"

    def __init__(self, simulation: _Simulation) -> None:
        self.sim = simulation

    def baseline(self, request: BenchmarkRequest) -> Measurement:
        return from_outcome(self.sim.run(request.allocation, request.seed, cache=True))

    def measure(self, request: BenchmarkRequest) -> Measurement:
        # Small memo too: allocations recur within and across episodes and the run is deterministic.
        return from_outcome(self.sim.run(request.allocation, request.seed, cache=True))


class RealSource(BenchmarkSource):
    """Request a benchmark on the bus and wait for its result (the workers run elsewhere)."""

    mode = "real"

    def __init__(self, bus: Bus, settings: Settings, node_ids: list[str], fragment_ids: list[str],
                 spec: WorkloadSpec, timeout_s: float, record_fragment: np.ndarray) -> None:
        from mdde_stream.benchmark.client import RealBenchmark

        self.node_ids, self.fragment_ids = node_ids, fragment_ids
        # Fragments are contiguous record ranges (the fragmenter's layout): tell the planner which.
        ranges = {
            fragment_ids[f]: (int(idx[0]), int(idx[-1]) + 1)
            for f in range(len(fragment_ids))
            if (idx := np.flatnonzero(record_fragment == f)).size
        }
        self._client = RealBenchmark(bus, settings, node_ids, fragment_ids, spec, fragment_records=ranges,
                                     timeout_s=timeout_s)

    def _request(self, request: BenchmarkRequest) -> Measurement:
        alloc = {
            self.node_ids[w]: [self.fragment_ids[f] for f in np.flatnonzero(row)]
            for w, row in enumerate(request.allocation)
        }
        return from_outcome(self._client.run(alloc, request.seed, request.run_id, request.episode, request.step))

    def baseline(self, request: BenchmarkRequest) -> Measurement:
        return self._request(request)

    def measure(self, request: BenchmarkRequest) -> Measurement:
        return self._request(request)

    def close(self) -> None:
        self._client.close()


def make_source(mode: str, *, spec: WorkloadSpec, record_fragment: np.ndarray, node_ids: list[str],
                fragment_ids: list[str], service_rates: Sequence[float] | None = None, j: float = 0.0,
                k: float = 0.7, bus: Bus | None = None, settings: Settings | None = None,
                timeout_s: float = 120.0) -> BenchmarkSource:
    """The benchmark source for ``mode`` (``estimate`` | ``simulated`` | ``real``)."""
    if mode in ("estimate", "simulated"):
        sim = _Simulation(spec, record_fragment, len(node_ids), service_rates)
        return EstimateSource(sim, j, k) if mode == "estimate" else SimulatedSource(sim)
    if mode == "real":
        if bus is None or settings is None:
            raise ValueError("the real benchmark needs a bus and settings")
        return RealSource(bus, settings, node_ids, fragment_ids, spec, timeout_s, record_fragment)
    raise ValueError(f"unknown benchmark mode {mode!r}: use real, simulated or estimate")
