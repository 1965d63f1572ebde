"""The thesis's edge-case evaluation (§5.2): scripted agents, benchmark and estimator side by side.

Two cases on 4 nodes x 20 fragments (5 per node from the fragmenter):

* **starving** (uniform workload): the last agent (w3) copies the lowest-index fragment it lacks,
  from the lowest-index holder, one per step; every other agent deletes the lowest-index fragment
  it holds that w3 already held at the start of the step. 16 steps; all reads end on w3.
* **greedy** (latest workload): every agent copies its lowest-index missing fragment each step until
  every node holds everything. 15 steps; reads end ~25 % per node.

Actions go through the registry (``Registry.apply_actions``, ascending agent order, the same rules
as the environment), then ``Registry.shuffle()`` moves the data on real data nodes. At every step,
including step 0 (the initial allocation), the benchmark measures ⟨τ, N, R⟩ and the estimator
estimates it from the step-0 benchmark (the baseline). Each run uses its own workload seed; runs
differ only in which records are read, which gives the spread shown in the plots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mdde_stream.benchmark.outcome import BenchmarkOutcome
from mdde_stream.benchmark.simulated import SimulatedBenchmark
from mdde_stream.estimator import DEFAULT_J, DEFAULT_K, estimate
from mdde_stream.events import ActionKind, ActionSubmitted
from mdde_stream.registry import Registry
from mdde_stream.workloads import PRESETS, WorkloadSpec, generate_keys

logger = logging.getLogger(__name__)

CASE_WORKLOADS: dict[str, str] = {"starving": "uniform", "greedy": "latest"}
"""Workload preset of each case, as in the thesis."""

NODE_COUNT = 4
FRAGMENT_COUNT = 20

Action = tuple[int, ActionKind, str, str | None, str]
"""(agent index, kind, fragment, source, target)."""


def starving_actions(matrix: np.ndarray, node_ids: Sequence[str], fragment_ids: Sequence[str]) -> list[Action]:
    """One step of the starving script against the allocation at the start of the step."""
    collector = len(node_ids) - 1
    actions: list[Action] = []
    held_by_collector = matrix[collector]
    for w in range(collector):
        shared = np.flatnonzero(matrix[w] & held_by_collector)
        if shared.size:
            actions.append((w, ActionKind.DELETE, fragment_ids[shared[0]], None, node_ids[w]))
    lacking = np.flatnonzero(~held_by_collector)
    if lacking.size:
        f = int(lacking[0])
        source = int(np.flatnonzero(matrix[:, f])[0])
        actions.append((collector, ActionKind.COPY, fragment_ids[f], node_ids[source], node_ids[collector]))
    return sorted(actions, key=lambda a: a[0])


def greedy_actions(matrix: np.ndarray, node_ids: Sequence[str], fragment_ids: Sequence[str]) -> list[Action]:
    """One step of the greedy script: every node copies its lowest-index missing fragment."""
    actions: list[Action] = []
    for w in range(len(node_ids)):
        lacking = np.flatnonzero(~matrix[w])
        if lacking.size:
            f = int(lacking[0])
            source = int(np.flatnonzero(matrix[:, f])[0])
            actions.append((w, ActionKind.COPY, fragment_ids[f], node_ids[source], node_ids[w]))
    return actions


SCRIPTS: dict[str, Callable[[np.ndarray, Sequence[str], Sequence[str]], list[Action]]] = {
    "starving": starving_actions,
    "greedy": greedy_actions,
}


class Bench(Protocol):
    """Measures an allocation; ``prepare`` runs after each step's actions (e.g. the data shuffle)."""

    source: str

    def prepare(self, registry: Registry) -> None: ...

    def measure(self, registry: Registry, seed: int, step: int, run_id: str) -> BenchmarkOutcome: ...


class SimulatedBench:
    """The seeded simulated benchmark with the same node rates as the real one."""

    source = "simulated"

    def __init__(self, spec: WorkloadSpec, record_fragment: np.ndarray, rates: Sequence[float],
                 service_cv: float = 0.0) -> None:
        self.spec = spec
        self.record_fragment = record_fragment
        self.bench = SimulatedBenchmark(len(rates), rates, clients=spec.clients, service_cv=service_cv)
        self._keys: dict[int, np.ndarray] = {}

    def prepare(self, registry: Registry) -> None:
        registry.shuffle()  # without data nodes this only retires the move queue

    def measure(self, registry: Registry, seed: int, step: int, run_id: str) -> BenchmarkOutcome:
        keys = self._keys.get(seed)
        if keys is None:
            keys = self._keys[seed] = generate_keys(self.spec, seed)
        return self.bench.run(registry.allocation(), self.record_fragment, keys, seed=seed + step)


class RealBench:
    """The real benchmark over the bus: shuffle the data, then request and wait for the result."""

    source = "real"

    def __init__(self, benchmark_for: Callable[[str], Any]) -> None:
        # benchmark_for(workload preset) -> a RealBenchmark for that workload.
        self._for = benchmark_for
        self.workload = ""

    def prepare(self, registry: Registry) -> None:
        registry.shuffle()

    def measure(self, registry: Registry, seed: int, step: int, run_id: str) -> BenchmarkOutcome:
        bench = self._for(self.workload)
        outcome = bench.run(registry.allocation_map(), seed=seed, run_id=run_id, step=step)
        result = bench.last_result
        if result is not None and result.missing:
            raise RuntimeError(f"step {step}: {result.missing} reads found no record; the data shuffle is broken")
        return outcome


@dataclass
class StepRecord:
    step: int
    actions: list[dict[str, Any]]
    allocation: dict[str, list[str]]
    benchmark: BenchmarkOutcome
    estimate: BenchmarkOutcome


@dataclass
class CaseRun:
    seed: int
    steps: list[StepRecord] = field(default_factory=list)


def run_case(case: str, registry: Registry, bench: Bench, runs: int, seed: int = 0,
             j: float = DEFAULT_J, k: float = DEFAULT_K, max_steps: int = 100) -> list[CaseRun]:
    """Run ``case`` ``runs`` times from the registry's snapshot; one :class:`CaseRun` per run."""
    script = SCRIPTS[case]
    results: list[CaseRun] = []
    for r in range(runs):
        registry.reset()
        bench.prepare(registry)
        run = CaseRun(seed=seed + r)
        run_id = f"edge-{case}-{seed + r}"
        baseline = bench.measure(registry, run.seed, 0, run_id)
        run.steps.append(_record(0, [], registry, baseline, baseline, j, k))
        for step in range(1, max_steps + 1):
            planned = script(registry.allocation(), registry.node_ids, registry.fragment_ids)
            if not planned:
                break
            events = [
                ActionSubmitted(run_id=run_id, episode=r, step=step, agent=registry.node_ids[a],
                                agent_index=a, action_index=0, kind=kind, fragment=frag, source=src,
                                target=dst, step_size=len(planned))
                for a, kind, frag, src, dst in planned
            ]
            rejected = [res for res in registry.apply_actions(events) if not res.accepted]
            if rejected:
                raise RuntimeError(f"{case} step {step}: the registry rejected {rejected[0].kind.value} "
                                   f"by {rejected[0].agent}: {rejected[0].message}")
            bench.prepare(registry)
            outcome = bench.measure(registry, run.seed, step, run_id)
            run.steps.append(_record(step, planned, registry, outcome, baseline, j, k))
        else:
            raise RuntimeError(f"{case} did not finish within {max_steps} steps")
        logger.info("%s run %d: %d steps, throughput %.0f -> %.0f reads/s", case, r, len(run.steps) - 1,
                    run.steps[0].benchmark.throughput, run.steps[-1].benchmark.throughput)
        results.append(run)
    registry.reset()
    bench.prepare(registry)
    return results


def _record(step: int, planned: list[Action], registry: Registry, outcome: BenchmarkOutcome,
            baseline: BenchmarkOutcome, j: float, k: float) -> StepRecord:
    est = estimate(registry.allocation(), baseline, j, k).to_outcome("estimator")
    actions = [
        {"agent": registry.node_ids[a], "kind": kind.value, "fragment": frag, "source": src, "target": dst}
        for a, kind, frag, src, dst in planned
    ]
    return StepRecord(step, actions, registry.allocation_map(), outcome, est)


def _stats(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max()), "std": float(arr.std())}


def _shares(outcome: BenchmarkOutcome) -> list[float]:
    total = outcome.total_reads
    return [float(v) / total if total else 0.0 for v in outcome.node_reads.tolist()]


def summarize(case: str, runs: list[CaseRun], node_ids: Sequence[str], fragment_ids: Sequence[str]) -> dict[str, Any]:
    """Per-step statistics over runs, final read shares and the mean relative estimate error."""
    step_count = len(runs[0].steps)
    if any(len(run.steps) != step_count for run in runs):
        raise ValueError(f"{case}: runs have different step counts")
    steps = []
    errors: list[float] = []
    share_errors: list[float] = []
    for s in range(step_count):
        at = [run.steps[s] for run in runs]
        bench_tp = [rec.benchmark.throughput for rec in at]
        est_tp = [rec.estimate.throughput for rec in at]
        if s > 0:
            errors += [abs(e - b) / b for e, b in zip(est_tp, bench_tp) if b > 0]
            share_errors += [
                float(np.abs(np.subtract(_shares(rec.estimate), _shares(rec.benchmark))).max()) for rec in at
            ]
        steps.append({
            "step": s,
            "actions": at[0].actions,
            "allocation": at[0].allocation,
            "benchmark_throughput": _stats(bench_tp),
            "estimate_throughput": _stats(est_tp),
            "benchmark_node_reads": np.mean([rec.benchmark.node_reads for rec in at], axis=0).tolist(),
            "estimate_node_reads": np.mean([rec.estimate.node_reads for rec in at], axis=0).tolist(),
            "benchmark_node_share": np.mean([_shares(rec.benchmark) for rec in at], axis=0).tolist(),
            "estimate_node_share": np.mean([_shares(rec.estimate) for rec in at], axis=0).tolist(),
        })
    first, last = steps[0], steps[-1]
    return {
        "case": case,
        "workload": CASE_WORKLOADS[case],
        "nodes": list(node_ids),
        "fragments": list(fragment_ids),
        "step_count": step_count - 1,
        "steps": steps,
        "heatmaps": {
            "benchmark_start": _mean_matrix(runs, 0, "benchmark"),
            "benchmark_end": _mean_matrix(runs, -1, "benchmark"),
            "estimate_start": _mean_matrix(runs, 0, "estimate"),
            "estimate_end": _mean_matrix(runs, -1, "estimate"),
        },
        "final_benchmark_share": last["benchmark_node_share"],
        "final_estimate_share": last["estimate_node_share"],
        "throughput_start": first["benchmark_throughput"]["mean"],
        "throughput_end": last["benchmark_throughput"]["mean"],
        "mean_relative_error": float(np.mean(errors)) if errors else 0.0,
        "mean_max_share_error": float(np.mean(share_errors)) if share_errors else 0.0,
        "runs": [
            {
                "seed": run.seed,
                "steps": [
                    {
                        "step": rec.step,
                        "benchmark": rec.benchmark.to_mapping(node_ids, fragment_ids),
                        "estimate": rec.estimate.to_mapping(node_ids, fragment_ids),
                    }
                    for rec in run.steps
                ],
            }
            for run in runs
        ],
    }


def _mean_matrix(runs: list[CaseRun], index: int, which: str) -> list[list[float]]:
    mats = [getattr(run.steps[index], which).reads for run in runs]
    return np.mean(mats, axis=0).tolist()


def simulated_bench(case: str, operations: int, records: int, record_fragment: np.ndarray,
                    rates: Sequence[float], clients: int = 50, service_cv: float = 0.0) -> SimulatedBench:
    """The simulated bench for ``case`` with its thesis workload, sized as asked."""
    spec = workload_for(case, operations, records, clients)
    return SimulatedBench(spec, record_fragment, rates, service_cv)


def workload_for(case: str, operations: int, records: int, clients: int = 50) -> WorkloadSpec:
    base = PRESETS[CASE_WORKLOADS[case]]
    return base.model_copy(update={"operation_count": operations, "record_count": records, "clients": clients})
