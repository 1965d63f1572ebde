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
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mdde_stream.benchmark import BenchmarkOutcome, SimulatedBenchmark
from mdde_stream.bus.base import Bus, TopicPartition
from mdde_stream.config import Settings
from mdde_stream.env.scenario import Measurement
from mdde_stream.estimator import estimate
from mdde_stream.events import BenchmarkRequested, BenchmarkResult, EventDecodeError, decode_event
from mdde_stream.workloads import PRESETS, WorkloadSpec, generate_keys

logger = logging.getLogger(__name__)


class BenchmarkTimeout(TimeoutError):
    """No benchmark result arrived in time (are the benchmark workers and aggregator running?)."""


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
                 spec: WorkloadSpec, timeout_s: float) -> None:
        self.bus, self.settings = bus, settings
        self.node_ids, self.fragment_ids = node_ids, fragment_ids
        self.spec, self.timeout_s = spec, timeout_s
        self._producer = bus.producer()
        self._consumer = bus.consumer(f"stage-bench-{time.time_ns()}", offset_reset="latest")
        # Assign at the current end of every partition before any request goes out, so a fast
        # answer cannot slip past a consumer that is still joining its group.
        topic = settings.topic(BenchmarkResult.TOPIC)
        partitions = bus.list_topics().get(topic)
        if partitions is None:
            raise RuntimeError(f"topic {topic!r} does not exist: create the project topics first")
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, bus.watermarks(tp)[1])

    def _request(self, request: BenchmarkRequest) -> Measurement:
        alloc = {
            self.node_ids[w]: [self.fragment_ids[f] for f in np.flatnonzero(row)]
            for w, row in enumerate(request.allocation)
        }
        event = BenchmarkRequested(
            run_id=request.run_id, episode=request.episode, step=request.step,
            workload=self.spec.distribution.value, record_count=self.spec.record_count,
            operation_count=self.spec.operation_count, clients=self.spec.clients,
            seed=request.seed, allocation=alloc,
        )
        self._producer.produce(self.settings.topic(event.TOPIC), event.to_bytes(), key=event.key)
        self._producer.flush()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for record in self._consumer.poll(min(0.5, max(0.0, deadline - time.monotonic()))):
                try:
                    result = decode_event(record.value, (BenchmarkResult,))
                except EventDecodeError as exc:
                    logger.warning("ignoring undecodable record on %s: %s", record.topic, exc.reason)
                    continue
                if result.request_id == event.request_id:  # type: ignore[attr-defined]
                    outcome = BenchmarkOutcome.from_mapping(result.model_dump(), self.node_ids, self.fragment_ids)
                    return from_outcome(outcome)
        raise BenchmarkTimeout(
            f"no {self.settings.topic(BenchmarkResult.TOPIC)} result for benchmark request {event.request_id} "
            f"(run {request.run_id}, step {request.step}) within {self.timeout_s:.0f} s; "
            "are the benchmark workers and the aggregator running?"
        )

    def baseline(self, request: BenchmarkRequest) -> Measurement:
        return self._request(request)

    def measure(self, request: BenchmarkRequest) -> Measurement:
        return self._request(request)

    def close(self) -> None:
        try:
            self._producer.close()
        finally:
            self._consumer.close()


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
        return RealSource(bus, settings, node_ids, fragment_ids, spec, timeout_s)
    raise ValueError(f"unknown benchmark mode {mode!r}: use real, simulated or estimate")
