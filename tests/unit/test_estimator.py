"""The estimator: redistribution invariants, the throughput formula, and the mapping shape."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mdde_stream.benchmark import BenchmarkOutcome, NoReplicaError
from mdde_stream.estimator import (
    _redistribute_arrays,
    _redistribute_small,
    estimate,
    estimate_mapping,
    imbalance,
    natural_key,
    redistribute,
    throughput_factor,
)


def reference_redistribute(alloc: np.ndarray, reads: np.ndarray) -> np.ndarray:
    """Algorithms 1-2 written the obvious way, one fragment and one read at a time."""
    w_count, f_count = alloc.shape
    fragment_reads = reads.sum(axis=0)
    replicas = alloc.sum(axis=0)
    order = sorted(range(f_count), key=lambda f: (replicas[f], -fragment_reads[f], f))
    out = np.zeros(alloc.shape, dtype=np.int64)
    load = [0] * w_count
    for f in order:
        holders = [w for w in range(w_count) if alloc[w, f]]
        total = int(fragment_reads[f])
        share, rest = divmod(total, len(holders))
        ranked = sorted(holders, key=lambda w: (load[w], w))  # least loaded before f, lowest index
        for w in holders:
            out[w, f] += share
        for w in ranked[:rest]:
            out[w, f] += 1
        for w in holders:
            load[w] += int(out[w, f])
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A baseline allocation with its reads, and a current allocation (every fragment held)."""
    w = draw(st.integers(1, 6))
    f = draw(st.integers(1, 12))
    owners = draw(st.lists(st.integers(0, w - 1), min_size=f, max_size=f))
    base = np.zeros((w, f), dtype=bool)
    base[owners, range(f)] = True
    extra = np.array(draw(st.lists(st.booleans(), min_size=w * f, max_size=w * f))).reshape(w, f)
    base |= extra & draw(st.booleans())
    reads = np.array(draw(st.lists(st.integers(0, 50), min_size=w * f, max_size=w * f))).reshape(w, f)
    reads = (reads * base).astype(np.int64)
    current = np.array(draw(st.lists(st.booleans(), min_size=w * f, max_size=w * f))).reshape(w, f)
    keep = draw(st.lists(st.integers(0, w - 1), min_size=f, max_size=f))
    current[keep, range(f)] = True
    return base, reads, current


@settings(max_examples=300, deadline=None)
@given(cases())
def test_redistribution_invariants_and_matches_reference(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    _, reads, current = case
    new = redistribute(current, reads)
    assert new.dtype == np.int64
    assert (new >= 0).all()
    np.testing.assert_array_equal(new.sum(axis=0), reads.sum(axis=0))  # per-fragment sums exact
    assert (new[~current] == 0).all()  # only replica nodes get reads
    np.testing.assert_array_equal(new, reference_redistribute(current, reads))


@settings(max_examples=200, deadline=None)
@given(cases())
def test_list_and_array_forms_both_match_the_reference(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Small shapes take the list form; the array form must give the same answer on them too."""
    _, reads, current = case
    expected = reference_redistribute(current, reads)
    np.testing.assert_array_equal(_redistribute_small(current, reads.sum(axis=0)), expected)
    np.testing.assert_array_equal(_redistribute_arrays(current, reads.sum(axis=0)), expected)


@st.composite
def large_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Enough fragments with left-over reads to take the vectorised dealing path."""
    w = draw(st.integers(2, 10))
    f = draw(st.integers(60, 160))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    current = rng.random((w, f)) < draw(st.sampled_from([0.2, 0.5, 0.9, 1.0]))
    current[rng.integers(0, w, f), np.arange(f)] = True
    high = draw(st.sampled_from([3, 20, 10_000]))  # few reads -> near-equal loads, many -> far apart
    reads = rng.integers(0, high, (w, f)).astype(np.int64)
    return current, reads


@settings(max_examples=60, deadline=None)
@given(large_cases())
def test_vectorised_dealing_matches_reference(case: tuple[np.ndarray, np.ndarray]) -> None:
    current, reads = case
    np.testing.assert_array_equal(redistribute(current, reads), reference_redistribute(current, reads))


@settings(max_examples=200, deadline=None)
@given(cases())
def test_direction_of_the_estimate_follows_balance(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    _, reads, current = case
    result = estimate(current, (reads, 1000.0))
    if result.imbalance_current < result.imbalance_baseline:
        assert result.throughput > 1000.0
    elif result.imbalance_current > result.imbalance_baseline:
        assert result.throughput < 1000.0
    else:
        assert result.throughput == pytest.approx(1000.0)


def test_single_replica_gets_all_and_few_reads_go_one_per_replica_least_loaded_first() -> None:
    alloc = np.array([[1, 1, 0], [0, 1, 1], [0, 1, 1]], dtype=bool)
    reads = np.array([[7, 2, 0], [0, 0, 0], [0, 0, 5]], dtype=np.int64)
    new = redistribute(alloc, reads)
    # f0 (1 replica) first: n0 gets 7. f2 (2 replicas, 5 reads): 2 each, the spare to n1 (tie -> lower index).
    # f1 (3 replicas, 2 reads <= 3): one each to the least loaded, n2 (2) then n1 (3), never n0 (7).
    np.testing.assert_array_equal(new, [[7, 0, 0], [0, 1, 3], [0, 1, 2]])


def test_same_allocation_keeps_throughput_with_j_zero_and_divides_by_one_plus_j_otherwise() -> None:
    alloc = np.eye(4, 8, dtype=bool) | np.eye(4, 8, k=4, dtype=bool)
    reads = alloc * np.arange(1, 9) * 100
    baseline = BenchmarkOutcome.from_reads(reads, 2.0, "simulated")
    same = estimate(alloc, baseline)
    assert same.throughput == pytest.approx(baseline.throughput)
    np.testing.assert_array_equal(same.reads, reads)
    assert same.imbalance_current == pytest.approx(same.imbalance_baseline)
    assert estimate(alloc, baseline, j=0.1).throughput == pytest.approx(baseline.throughput / 1.1)


def test_spreading_a_hot_node_raises_and_concentrating_lowers_throughput() -> None:
    w, f = 4, 20
    one = np.zeros((w, f), dtype=bool)
    one[0] = True
    reads = one * 500
    spread = np.zeros((w, f), dtype=bool)
    spread[np.arange(f) % w, np.arange(f)] = True
    up = estimate(spread, (reads, 10_000.0))
    # D goes from 2(W-1)/W = 1.5 to 0: delta = 1.5 / 6, beta = 0.7 delta, tau' = tau (1 + 1.7 delta).
    assert up.imbalance_baseline == pytest.approx(1.5)
    assert up.imbalance_current == pytest.approx(0.0)
    assert up.throughput == pytest.approx(10_000.0 * (1 + 1.7 * 0.25))
    down = estimate(one, (up.reads, up.throughput))
    assert down.throughput == pytest.approx(up.throughput / (1 + 1.7 * 0.25))


def test_throughput_factor_formula() -> None:
    assert throughput_factor(0.5, 0.5, 4) == 1.0
    assert throughput_factor(0.6, 0.0, 4, j=0.1, k=0.7) == pytest.approx(1 + 0.1 + (0.1 * 0.6 + 0.1))
    assert throughput_factor(0.0, 0.6, 4, j=0.0, k=0.7) == pytest.approx(1 / (1 + 0.1 + 0.07))
    assert throughput_factor(0.0, 0.0, 1) == 1.0  # one node: M = 0, nothing to balance
    with pytest.raises(ValueError, match="must be positive"):
        throughput_factor(0.0, 0.0, 4, j=-2.0)


def test_imbalance_measures_node_totals() -> None:
    assert imbalance(np.array([5, 5, 5, 5])) == 0.0
    assert imbalance(np.array([20, 0, 0, 0])) == pytest.approx(1.5)
    assert imbalance(np.array([0, 0])) == 0.0


def test_new_nodes_without_baseline_reads_and_zero_read_fragments_are_fine() -> None:
    reads = np.array([[10, 0, 4], [0, 0, 0]], dtype=np.int64)  # n1 is new; f1 never read
    alloc = np.array([[1, 0, 1], [1, 1, 1]], dtype=bool)
    result = estimate(alloc, (reads, 100.0))
    np.testing.assert_array_equal(result.reads, [[5, 0, 2], [5, 0, 2]])
    assert result.throughput > 100.0


def test_fragment_without_replica_is_a_clear_error() -> None:
    reads = np.array([[1, 2], [3, 4]], dtype=np.int64)
    alloc = np.array([[1, 0], [1, 0]], dtype=bool)
    with pytest.raises(NoReplicaError, match="fragment 1 has no replica"):
        estimate(alloc, (reads, 10.0))


def test_shape_mismatch_and_negative_reads_are_rejected() -> None:
    with pytest.raises(ValueError, match="nodes x fragments"):
        estimate(np.ones((2, 3), dtype=bool), (np.ones((3, 2), dtype=np.int64), 1.0))
    with pytest.raises(ValueError, match="non-negative"):
        estimate(np.ones((1, 2), dtype=bool), (np.array([[1, -1]]), 1.0))


def test_natural_fragment_order() -> None:
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]


def mapping_case() -> dict[str, object]:
    return {
        "allocation": {"n0": ["f0", "f1"], "n1": ["f1", "f2"], "n2": ["f2", "f10"]},
        "baseline_reads": {"n0": {"f0": 30, "f1": 10}, "n1": {"f2": 6}, "n2": {"f10": 4}},
        "baseline_throughput": 1000.0,
    }


def test_estimate_mapping_shape_and_values() -> None:
    out = estimate_mapping(mapping_case())
    assert set(out) == {"throughput", "reads", "node_reads", "imbalance_baseline", "imbalance_current"}
    assert out["reads"] == {"n0": {"f0": 30, "f1": 5}, "n1": {"f1": 5, "f2": 3}, "n2": {"f2": 3, "f10": 4}}
    assert out["node_reads"] == {"n0": 35, "n1": 8, "n2": 7}
    assert out["imbalance_current"] < out["imbalance_baseline"]
    assert out["throughput"] > 1000.0


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: c["baseline_reads"]["n0"].update(f0=-1), "baseline_reads.n0.f0"),
        (lambda c: c.pop("baseline_throughput"), "baseline_throughput"),
        (lambda c: c["baseline_reads"].update(n9={"f0": 1}), "baseline_reads"),
        (lambda c: c["baseline_reads"]["n1"].update(f7=3), "f7"),
        (lambda c: c.update(allocation={}), "allocation"),
    ],
)
def test_estimate_mapping_rejects_bad_input_naming_the_field(mutate: object, field: str) -> None:
    case = mapping_case()
    mutate(case)  # type: ignore[operator]
    with pytest.raises(ValidationError) as info:
        estimate_mapping(case)
    text = str(info.value)
    assert field.split(".")[0] in text and field.split(".")[-1] in text
