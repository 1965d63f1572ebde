"""Benchmark sources of the environment: estimate / simulated figures, and the real-mode request/wait
protocol over the embedded bus (a responder thread plays the benchmark aggregator)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from mdde_stream.benchmark import BenchmarkOutcome, SimulatedBenchmark
from mdde_stream.bus import open_bus
from mdde_stream.config import Settings
from mdde_stream.env import parallel_env
from mdde_stream.env.benchmarking import BenchmarkTimeout, workload_spec
from mdde_stream.estimator import estimate
from mdde_stream.events import BenchmarkRequested, BenchmarkResult
from mdde_stream.registry import fragment_layout
from mdde_stream.workloads import generate_keys


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, bus="", state="")


def test_estimate_mode_uses_the_simulated_baseline_and_the_estimator(settings: Settings) -> None:
    env = parallel_env(settings=settings, workload="uniform", benchmark_frequency=1, operations=20_000,
                       publish_events=False)
    env.reset(seed=4)
    record_fragment, _, _ = fragment_layout(10_000, 4, 20)
    spec = workload_spec("uniform", 10_000, 20_000, 50)
    baseline = SimulatedBenchmark(4, clients=50).run(env.allocation, record_fragment, generate_keys(spec, 4), seed=4)
    assert env.initial.throughput == baseline.throughput
    assert np.array_equal(env.initial.reads, baseline.reads)
    env.step({"n0": 21 + 20 + 5, "n1": 0, "n2": 0, "n3": 0})  # n0 copies f5 from n1
    expected = estimate(env.allocation, baseline)
    assert env.latest.source == "estimate"
    assert env.latest.throughput == pytest.approx(expected.throughput)
    assert np.array_equal(env.latest.reads, expected.reads)
    # One baseline per environment (thesis §5.3): a later reset, even with another seed, reuses it.
    env.reset(seed=9)
    assert env.initial.throughput == baseline.throughput
    assert np.array_equal(env.initial.reads, baseline.reads)
    env.close()


def test_workload_spec_accepts_presets_and_distributions() -> None:
    assert workload_spec("latest", 500, None, 8).operation_count == 100_000
    assert workload_spec("zipfian", 500, 10, 8).distribution.value == "zipfian"
    with pytest.raises(ValueError, match="unknown workload 'nope'"):
        workload_spec("nope", 500, None, 8)


def responder(settings: Settings, stop: threading.Event, served: list[str]) -> None:
    """Answers benchmark requests like the aggregator will: simulated figures, labelled real."""
    bus = open_bus(settings=settings)
    consumer = bus.consumer("fake-aggregator")
    consumer.subscribe([settings.topic(BenchmarkRequested.TOPIC)])
    producer = bus.producer()
    record_fragment, _, _ = fragment_layout(1_000, 4, 20)
    nodes, frags = [f"n{i}" for i in range(4)], [f"f{i}" for i in range(20)]
    try:
        while not stop.is_set():
            for record in consumer.poll(0.05):
                req = BenchmarkRequested.model_validate_json(record.value)
                alloc = np.array([[f in req.allocation.get(n, []) for f in frags] for n in nodes])
                spec = workload_spec(req.workload, req.record_count, req.operation_count, req.clients)
                out = SimulatedBenchmark(4, clients=req.clients).run(alloc, record_fragment,
                                                                     generate_keys(spec, req.seed), req.seed)
                m = out.to_mapping(nodes, frags)
                result = BenchmarkResult(run_id=req.run_id, step=req.step, request_id=req.request_id, source="real",
                                         throughput=out.throughput * 0.5, reads=m["reads"],
                                         node_reads=m["node_reads"], operations=out.total_reads,
                                         duration_s=out.duration_s)
                producer.produce(settings.topic(result.TOPIC), result.to_bytes(), key=result.key)
                producer.flush()
                served.append(req.request_id)
            consumer.commit()
    finally:
        producer.close()
        consumer.close()
        bus.close()


def test_real_mode_requests_a_benchmark_and_waits_for_its_result(settings: Settings) -> None:
    env = parallel_env(settings=settings, benchmark="real", records=1_000, operations=2_000, benchmark_frequency=2,
                       max_steps=4, benchmark_timeout_s=20)
    stop, served = threading.Event(), []
    thread = threading.Thread(target=responder, args=(settings, stop, served), daemon=True)
    thread.start()
    try:
        env.reset(seed=2)
        assert env.initial.source == "real" and len(served) == 1
        skip = dict.fromkeys(env.possible_agents, 0)
        env.step({**skip, "n3": 21 + 0 * 20 + 0})
        assert len(served) == 1  # no benchmark on step 1 (S = 2)
        env.step(skip)
        assert len(served) == 2 and env.latest.source == "real"
        assert env.latest.total_reads == 2_000
        assert env.latest.node_reads[3] > 0  # the answer was computed for the allocation sent (n3 holds f0)
    finally:
        stop.set()
        thread.join(5)
        env.close()


def test_real_mode_without_workers_fails_with_a_clear_timeout(settings: Settings) -> None:
    env = parallel_env(settings=settings, benchmark="real", records=1_000, benchmark_timeout_s=0.5)
    with pytest.raises(BenchmarkTimeout, match=r"no .*benchmark.results result .* are the benchmark workers"):
        env.reset(seed=0)
    env.close()


def test_benchmark_outcome_mapping_round_trip_is_what_real_mode_parses() -> None:
    reads = np.zeros((4, 20), dtype=np.int64)
    reads[1, 3] = 7
    out = BenchmarkOutcome(10.0, reads, 1.0, 7, "real")
    nodes, frags = [f"n{i}" for i in range(4)], [f"f{i}" for i in range(20)]
    assert BenchmarkOutcome.from_mapping(out.to_mapping(nodes, frags), nodes, frags) == out
