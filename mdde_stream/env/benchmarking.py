"""How the environment obtains ⟨τ, N, R⟩: one small interface, three modes.

* ``estimate`` — the thesis's estimator (Eq 3.3–3.7) from one baseline. As in the thesis (§5.3: "when
  the environment is initialized, YCSB workload is executed to generate ... baseline read counts with
  the throughput. All consecutive throughput measurements are performed using our estimation"), the
  baseline is measured once, at the first reset — by the simulated benchmark, or the real one with
  ``baseline="real"`` — and reused at every later reset: every episode starts from the same snapshot,
  so the reward scale stays the same from episode to episode.
* ``simulated`` — the seeded discrete-event benchmark (:class:`SimulatedBenchmark`) on every benchmark
  step: the same workload keys and replica policy as the real one.
* ``real`` — a :class:`BenchmarkRequested` on ``mdde.benchmark.requests``, answered by the benchmark
  workers' aggregator on ``mdde.benchmark.results``; the wait is bounded and names what is missing.

Simulated baselines depend only on (seed, allocation), and every reset restores the same initial
allocation, so they are cached: resetting an episode costs nothing after the first time.
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
from mdde_stream.events import RecordLayout
from mdde_stream.registry.fragmenter import Layout
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

    def needs_data(self) -> bool:
        """Whether the next call measures the data nodes (the stage must shuffle the data first)."""
        return False

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
    """Estimates from one baseline, measured at the first reset by ``measurer`` and kept."""

    mode = "estimate"

    def __init__(self, measurer: BenchmarkSource, j: float, k: float) -> None:
        self.measurer, self.j, self.k = measurer, j, k
        self._baseline: Measurement | None = None
        self._outcome: BenchmarkOutcome | None = None  # the baseline, validated once: estimate() trusts it

    @property
    def baseline_source(self) -> str:
        return self.measurer.mode

    def needs_data(self) -> bool:
        return self._baseline is None and self.measurer.needs_data()

    def baseline(self, request: BenchmarkRequest) -> Measurement:
        if self._baseline is None:
            m = self.measurer.baseline(request)
            self._outcome = BenchmarkOutcome(m.throughput, m.reads, 0.0, m.total_reads, m.source)
            self._baseline = m
        return self._baseline

    def measure(self, request: BenchmarkRequest) -> Measurement:
        if self._outcome is None:
            raise RuntimeError("estimate requested before a baseline: call reset() first")
        est = estimate(request.allocation, self._outcome, self.j, self.k)
        return Measurement(est.throughput, est.reads, "estimate")

    def close(self) -> None:
        self.measurer.close()


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
                 spec: WorkloadSpec, timeout_s: float, layout: Layout, wire_layout: RecordLayout) -> None:
        from mdde_stream.benchmark.client import RealBenchmark

        self.node_ids, self.fragment_ids = node_ids, fragment_ids
        # Fragments are slot ranges; the workers map the workload's keys to slots with ``wire_layout``.
        self._client = RealBenchmark(bus, settings, node_ids, fragment_ids, spec, fragment_records=layout.ranges,
                                     record_layout=wire_layout, timeout_s=timeout_s)

    def needs_data(self) -> bool:
        return True

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


def make_source(mode: str, *, spec: WorkloadSpec, layout: Layout, wire_layout: RecordLayout | None = None,
                node_ids: list[str], fragment_ids: list[str], service_rates: Sequence[float] | None = None,
                j: float = 0.0, k: float = 0.7, bus: Bus | None = None, settings: Settings | None = None,
                timeout_s: float = 120.0, baseline: str = "simulated") -> BenchmarkSource:
    """The benchmark source for ``mode`` (``estimate`` | ``simulated`` | ``real``); ``baseline`` says what
    measures the estimator's one baseline (``simulated`` | ``real``)."""
    if mode == "simulated" or (mode == "estimate" and baseline == "simulated"):
        sim = SimulatedSource(_Simulation(spec, layout.record_fragment, len(node_ids), service_rates))
        return EstimateSource(sim, j, k) if mode == "estimate" else sim
    if mode == "real" or (mode == "estimate" and baseline == "real"):
        if bus is None or settings is None:
            raise ValueError("the real benchmark needs a bus and settings")
        wire = wire_layout or RecordLayout(nodes=len(node_ids), grouping="contiguous")
        real = RealSource(bus, settings, node_ids, fragment_ids, spec, timeout_s, layout, wire)
        return EstimateSource(real, j, k) if mode == "estimate" else real
    raise ValueError(f"unknown benchmark mode {mode!r} or baseline {baseline!r}: use real, simulated or estimate")
