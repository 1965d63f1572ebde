"""Simulated benchmark, replica locator and the outcome triple."""

from __future__ import annotations

import numpy as np
import pytest

from mdde_stream.benchmark import BenchmarkOutcome, NoReplicaError, ReplicaLocator, SimulatedBenchmark
from mdde_stream.workloads import Distribution, WorkloadSpec, generate_keys

W, F, RECORDS = 4, 20, 10_000
RECORD_FRAGMENT = np.arange(RECORDS, dtype=np.int64) % F


def uniform_keys(n: int = 100_000, seed: int = 0) -> np.ndarray:
    return generate_keys(WorkloadSpec(record_count=RECORDS, operation_count=n), seed)


def all_on(node: int, w: int = W) -> np.ndarray:
    alloc = np.zeros((w, F), dtype=bool)
    alloc[node] = True
    return alloc


def spread(w: int = W) -> np.ndarray:
    alloc = np.zeros((w, F), dtype=bool)
    alloc[np.arange(F) % w, np.arange(F)] = True
    return alloc


# --- locator ---------------------------------------------------------------------------------


def test_locator_picks_fewest_in_flight_with_lowest_index_on_ties() -> None:
    alloc = np.array([[1, 1], [1, 0], [1, 1]], dtype=bool)
    loc = ReplicaLocator(alloc)
    assert loc.replicas(0) == (0, 1, 2) and loc.replicas(1) == (0, 2)
    assert [loc.acquire(0) for _ in range(4)] == [0, 1, 2, 0]
    assert loc.in_flight == (2, 1, 1)
    assert loc.acquire(1) == 2  # n0 has 2 in flight, n2 has 1
    loc.release(0)
    loc.release(0)
    assert loc.choose(0) == 0 and loc.in_flight == (0, 1, 2)
    with pytest.raises(ValueError, match="no read in flight"):
        loc.release(0)


def test_locator_raises_for_fragment_without_replica() -> None:
    loc = ReplicaLocator(np.array([[1, 0]], dtype=bool))
    with pytest.raises(NoReplicaError, match="fragment 1 has no replica"):
        loc.acquire(1)


# --- simulated benchmark ---------------------------------------------------------------------


def test_everything_on_one_node_yields_that_nodes_rate() -> None:
    outcome = SimulatedBenchmark(W).run(all_on(2), RECORD_FRAGMENT, uniform_keys())
    assert outcome.throughput == pytest.approx(10_000.0, rel=1e-6)
    assert outcome.node_reads.tolist() == [0, 0, 100_000, 0]
    assert outcome.source == "simulated"
    assert outcome.duration_s == pytest.approx(10.0, rel=1e-6)


def test_even_spread_over_four_equal_nodes_is_about_four_times_faster() -> None:
    bench = SimulatedBenchmark(W)
    one = bench.run(all_on(0), RECORD_FRAGMENT, uniform_keys()).throughput
    even = bench.run(spread(), RECORD_FRAGMENT, uniform_keys())
    assert 3.6 < even.throughput / one <= 4.0
    assert even.node_reads.min() > 0.24 * 100_000


def test_full_replication_balances_through_the_locator() -> None:
    outcome = SimulatedBenchmark(W).run(np.ones((W, F), dtype=bool), RECORD_FRAGMENT, uniform_keys())
    assert outcome.throughput == pytest.approx(40_000.0, rel=0.01)
    assert outcome.node_reads.max() - outcome.node_reads.min() <= 4


def test_heterogeneous_rates_show() -> None:
    bench = SimulatedBenchmark(2, service_rates=[10_000.0, 30_000.0])
    keys = uniform_keys()
    # Full replication: least-in-flight routing keeps both busy, so rates add up.
    full = bench.run(np.ones((2, F), dtype=bool), RECORD_FRAGMENT, keys)
    assert full.throughput == pytest.approx(40_000.0, rel=0.01)
    assert full.node_reads[1] > 2.5 * full.node_reads[0]
    # Half the fragments each: the slow node must serve half the reads, so it bounds the run.
    half = np.zeros((2, F), dtype=bool)
    half[0, :10] = True
    half[1, 10:] = True
    assert bench.run(half, RECORD_FRAGMENT, keys).throughput == pytest.approx(20_000.0, rel=0.02)
    on_fast = bench.run(all_on(1, 2), RECORD_FRAGMENT, keys).throughput
    on_slow = bench.run(all_on(0, 2), RECORD_FRAGMENT, keys).throughput
    assert on_fast == pytest.approx(3 * on_slow, rel=1e-6)


def test_reads_land_on_replicas_and_count_every_key() -> None:
    alloc = spread() | np.roll(spread(), 1, axis=0)
    keys = uniform_keys(20_000, seed=3)
    outcome = SimulatedBenchmark(W).run(alloc, RECORD_FRAGMENT, keys)
    assert outcome.total_reads == 20_000
    assert (outcome.reads[~alloc] == 0).all()
    np.testing.assert_array_equal(outcome.fragment_reads, np.bincount(RECORD_FRAGMENT[keys], minlength=F))


def test_skewed_workload_on_one_fragment_holder_is_slower_than_uniform() -> None:
    latest = generate_keys(WorkloadSpec(distribution=Distribution.LATEST), seed=1)
    hot = np.zeros(RECORDS, dtype=np.int64)
    hot[-500:] = 1  # the latest records form fragment 1 ...
    alloc = np.zeros((W, 2), dtype=bool)
    alloc[:, 0] = True
    alloc[3, 1] = True  # ... held by one node only
    bench = SimulatedBenchmark(W)
    skewed = bench.run(alloc, hot, latest).throughput
    uniform = bench.run(alloc, hot, uniform_keys()).throughput
    assert skewed < 0.8 * uniform


def test_deterministic_and_jitter_is_seeded() -> None:
    keys = uniform_keys(20_000)
    plain = SimulatedBenchmark(W)
    assert plain.run(spread(), RECORD_FRAGMENT, keys, seed=1) == plain.run(spread(), RECORD_FRAGMENT, keys, seed=2)
    noisy = SimulatedBenchmark(W, service_cv=1.0)
    a = noisy.run(spread(), RECORD_FRAGMENT, keys, seed=1)
    assert a == noisy.run(spread(), RECORD_FRAGMENT, keys, seed=1)
    assert a.throughput != noisy.run(spread(), RECORD_FRAGMENT, keys, seed=2).throughput
    assert a.throughput == pytest.approx(plain.run(spread(), RECORD_FRAGMENT, keys).throughput, rel=0.1)


def test_read_of_fragment_without_replica_is_a_clear_error() -> None:
    alloc = spread()
    alloc[:, 7] = False
    with pytest.raises(NoReplicaError, match="fragment 7 has no replica"):
        SimulatedBenchmark(W).run(alloc, RECORD_FRAGMENT, uniform_keys(1_000))


def test_unread_fragment_without_replica_is_allowed() -> None:
    alloc = spread()
    alloc[:, 7] = False
    keys = np.flatnonzero(RECORD_FRAGMENT != 7)[:1_000]
    assert SimulatedBenchmark(W).run(alloc, RECORD_FRAGMENT, keys).total_reads == 1_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"node_count": 0}, "node_count"),
        ({"node_count": 2, "service_rates": [1.0]}, "service_rates"),
        ({"node_count": 2, "service_rates": [1.0, 0.0]}, "positive"),
        ({"node_count": 2, "clients": 0}, "clients"),
    ],
)
def test_bad_configuration_is_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatedBenchmark(**kwargs)  # type: ignore[arg-type]


def test_bad_run_inputs_are_rejected() -> None:
    bench = SimulatedBenchmark(W)
    with pytest.raises(ValueError, match="allocation has 3 nodes"):
        bench.run(np.ones((3, F), dtype=bool), RECORD_FRAGMENT, uniform_keys(10))
    with pytest.raises(ValueError, match="keys must be record indices"):
        bench.run(spread(), RECORD_FRAGMENT, np.array([RECORDS]))
    with pytest.raises(ValueError, match="record_fragment values"):
        bench.run(spread(), RECORD_FRAGMENT + F, uniform_keys(10))


def test_empty_run() -> None:
    outcome = SimulatedBenchmark(W).run(spread(), RECORD_FRAGMENT, np.zeros(0, dtype=np.int64))
    assert outcome.total_reads == 0 and outcome.throughput == 0.0


# --- outcome ---------------------------------------------------------------------------------


def test_outcome_mapping_round_trip_and_views() -> None:
    reads = np.array([[3, 0, 1], [0, 0, 6]])
    outcome = BenchmarkOutcome.from_reads(reads, 2.0, "simulated")
    assert outcome.throughput == 5.0 and outcome.total_reads == 10
    assert outcome.node_reads.tolist() == [4, 6] and outcome.fragment_reads.tolist() == [3, 0, 7]
    mapping = outcome.to_mapping(["n0", "n1"], ["f0", "f1", "f2"])
    assert mapping["reads"] == {"n0": {"f0": 3, "f2": 1}, "n1": {"f2": 6}}
    assert mapping["node_reads"] == {"n0": 4, "n1": 6}
    assert BenchmarkOutcome.from_mapping(mapping, ["n0", "n1"], ["f0", "f1", "f2"]) == outcome
    np.testing.assert_allclose(outcome.popularity(), reads / 10)


def test_outcome_is_immutable_and_validated() -> None:
    source = np.array([[1, 2]])
    outcome = BenchmarkOutcome.from_reads(source, 1.0, "x")
    source[0, 0] = 99
    assert outcome.reads[0, 0] == 1  # copied
    with pytest.raises(ValueError):
        outcome.reads[0, 0] = 5
    with pytest.raises(ValueError, match="total_reads"):
        BenchmarkOutcome(1.0, np.array([[1, 2]]), 1.0, 4, "x")
    with pytest.raises(ValueError, match="non-negative"):
        BenchmarkOutcome(1.0, np.array([[1, -2]]), 1.0, -1, "x")
    with pytest.raises(ValueError, match="unknown node id"):
        BenchmarkOutcome.from_mapping({"throughput": 1.0, "reads": {"nX": {"f0": 1}}}, ["n0"], ["f0"])
    with pytest.raises(ValueError, match="expected 1 node ids"):
        outcome.to_mapping(["n0", "n1"], ["f0", "f1"])
