"""The estimator: Eq. 3.3-3.7 and Algorithms 1-2 on worked examples, against MDDE's arithmetic.

Worked examples are computed by hand (the comments show the arithmetic). ``mdde_registry_estimate``
restates how MDDE's registry computed an estimate, so the property tests can hold ours to it
wherever MDDE produced no negative read.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mdde_stream.benchmark import BenchmarkOutcome, NoReplicaError
from mdde_stream.estimator import (
    DEFAULT_J,
    DEFAULT_K,
    DEFAULT_SPLIT,
    SPLITS,
    _redistribute_arrays,
    _redistribute_small,
    estimate,
    estimate_mapping,
    imbalance,
    max_imbalance,
    natural_key,
    pairwise_gap_sum,
    redistribute,
    throughput_factor,
)
from tests.unit.mdde_reference import mdde_registry_estimate


def reference_even(alloc: np.ndarray, reads: np.ndarray) -> np.ndarray:
    """The even split written the obvious way, one fragment and one read at a time."""
    w_count, f_count = alloc.shape
    fragment_reads = reads.sum(axis=0)
    replicas = alloc.sum(axis=0)
    order = sorted(range(f_count), key=lambda f: (replicas[f], -fragment_reads[f], f))
    out = np.zeros(alloc.shape, dtype=np.int64)
    load = [0] * w_count
    for f in order:
        holders = [w for w in range(w_count) if alloc[w, f]]
        share, rest = divmod(int(fragment_reads[f]), len(holders))
        ranked = sorted(holders, key=lambda w: (load[w], w))  # least loaded before f, lowest index
        for w in holders:
            out[w, f] += share
        for w in ranked[:rest]:
            out[w, f] += 1
        for w in holders:
            load[w] += int(out[w, f])
    return out


def singles_then(extra: list[tuple[list[int], int]], singles: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Node w holds fragment w alone with ``singles[w]`` reads; then fragments (holders, reads) follow."""
    w_count = len(singles)
    alloc = np.zeros((w_count, w_count + len(extra)), dtype=bool)
    reads = np.zeros(alloc.shape, dtype=np.int64)
    for w, r in enumerate(singles):
        alloc[w, w] = True
        reads[w, w] = r
    for i, (holders, r) in enumerate(extra):
        alloc[holders, w_count + i] = True
        reads[holders[0], w_count + i] = r  # where the baseline read it does not matter
    return alloc, reads


# --- Eq. 3.3-3.7 -----------------------------------------------------------------------------


def test_defaults_are_the_thesis_hyperparameters() -> None:
    assert (DEFAULT_J, DEFAULT_K, DEFAULT_SPLIT) == (0.0, 0.7, "participation")


def test_imbalance_compares_every_node_with_every_node() -> None:
    assert imbalance(np.array([25, 25, 25, 25])) == 0.0
    assert imbalance(np.array([100, 0, 0, 0])) == 6.0 == max_imbalance(4)  # 3 nodes x 2 directions
    # |10-20| + |10-30| + |10-40| + |20-30| + |20-40| + |30-40| = 100, both directions 200, / 100.
    assert imbalance(np.array([10, 20, 30, 40])) == pytest.approx(2.0)
    assert imbalance(np.array([3, 1])) == pytest.approx(1.0) and max_imbalance(2) == 2.0
    assert imbalance(np.array([0, 0])) == 0.0
    assert pairwise_gap_sum([40, 10, 30, 20]) == 200


def test_latest_baseline_to_an_even_spread_is_the_thesis_range() -> None:
    """Table 5.3's baseline ("-") and Table 5.4's last step (full replication), by hand.

    Baseline 2929, 4263, 7174, 85634: sum over pairs of gaps 251,026, both directions 502,052,
    / 100,000 = 5.02052. Last step 24967, 25011 x 3: gaps 3 x 44 = 132, x2 = 264 -> 0.00264.
    delta = (5.02052 - 0.00264) / 6 = 0.83631333; tau'/tau = 1 + 1.7 delta = 2.42173267.
    """
    base = np.array([2929, 4263, 7174, 85634])
    final = np.array([24967, 25011, 25011, 25011])
    assert imbalance(base) == pytest.approx(5.02052)
    assert imbalance(final) == pytest.approx(0.00264)
    assert throughput_factor(imbalance(base), imbalance(final), 4) == pytest.approx(2.42173267)
    assert throughput_factor(imbalance(base), 0.0, 4) == pytest.approx(1 + 1.7 * 5.02052 / 6)  # x2.42


def test_all_reads_on_one_node_to_an_even_spread_multiplies_by_two_plus_k() -> None:
    w, f = 4, 20
    one = np.zeros((w, f), dtype=bool)
    one[0] = True
    spread = np.zeros((w, f), dtype=bool)
    spread[np.arange(f) % w, np.arange(f)] = True
    up = estimate(spread, (one * 500, 10_000.0))
    assert (up.imbalance_baseline, up.imbalance_current) == (6.0, 0.0)  # delta = 1, beta = k
    assert up.throughput == pytest.approx(10_000.0 * 2.7)
    down = estimate(one, (up.reads, up.throughput))
    assert down.throughput == pytest.approx(10_000.0)


def test_throughput_factor_formula() -> None:
    assert throughput_factor(0.5, 0.5, 4) == 1.0  # zeta(0) = 1, delta = 0, beta = j = 0
    # delta = 3 / 6 = 0.5, beta = 0.5 * (0.7 - 0.1) + 0.1 = 0.4: x (1 + 0.5 + 0.4) when D falls.
    assert throughput_factor(3.0, 0.0, 4, j=0.1, k=0.7) == pytest.approx(1.9)
    assert throughput_factor(0.0, 3.0, 4, j=0.1, k=0.7) == pytest.approx(1 / 1.9)
    assert throughput_factor(0.5, 0.5, 4, j=0.1) == pytest.approx(1 / 1.1)  # unchanged: tau / (1 + j)
    assert throughput_factor(0.0, 0.0, 1) == 1.0  # one node: M = 0, nothing to balance
    with pytest.raises(ValueError, match="must be positive"):
        throughput_factor(0.0, 0.0, 4, j=-2.0)


def test_same_allocation_keeps_throughput_with_j_zero_and_divides_by_one_plus_j_otherwise() -> None:
    alloc = np.eye(4, 8, dtype=bool) | np.eye(4, 8, k=4, dtype=bool)
    reads = alloc * np.arange(1, 9) * 100
    baseline = BenchmarkOutcome.from_reads(reads, 2.0, "simulated")
    same = estimate(alloc, baseline)
    assert same.throughput == pytest.approx(baseline.throughput)
    np.testing.assert_array_equal(same.reads, reads)
    assert same.imbalance_current == same.imbalance_baseline
    assert estimate(alloc, baseline, j=0.1).throughput == pytest.approx(baseline.throughput / 1.1)


def test_a_permutation_of_the_node_totals_never_flips_zeta() -> None:
    """Same loads on other nodes: D is equal, so zeta(0) = 1 and tau' = tau / (1 + j) exactly.

    MDDE summed D in doubles in node order, so its two sums could differ in the last bit and give
    tau * (1 + j) instead; the thesis's zeta(0) = 1 is what is kept here.
    """
    reads = np.array([[49, 0], [0, 103], [0, 0]], dtype=np.int64)
    moved = np.array([[0, 0], [0, 1], [1, 0]], dtype=bool)  # n0's fragment now on n2
    result = estimate(moved, (reads, 1000.0), j=0.1)
    assert result.imbalance_current == result.imbalance_baseline
    assert result.throughput == pytest.approx(1000.0 / 1.1)
    assert mdde_registry_estimate(moved, reads, 1000.0, j=0.1)[0] == pytest.approx(1100.0)


# --- Algorithms 1-2, worked by hand ------------------------------------------------------------


def test_least_loaded_holder_gets_the_largest_chunk() -> None:
    # Loads 60 / 30 / 10 from single replicas; a fragment on all three with 50 reads. Participation
    # 0.6 / 0.3 / 0.1: n0 takes ceil(50 x 0.1) = 5, n1 ceil(50 x 0.3) = 15, n2 the remaining 30.
    alloc, reads = singles_then([([0, 1, 2], 50)], [60, 30, 10])
    np.testing.assert_array_equal(redistribute(alloc, reads)[:, 3], [5, 15, 30])
    np.testing.assert_array_equal(redistribute(alloc, reads, "even")[:, 3], [16, 17, 17])  # spares to the least loaded


def test_mdde_ranks_the_most_loaded_first_so_the_least_loaded_absorbs_rounding() -> None:
    # Loads 10 / 20, 10 reads to deal. MDDE: n1 (2/3) first takes ceil(10 x 1/3) = 4, n0 the rest 6.
    # The pseudo-code's ascending order: n0 first takes ceil(10 x 2/3) = 7, n1 the rest 3.
    alloc, reads = singles_then([([0, 1], 10)], [10, 20])
    np.testing.assert_array_equal(redistribute(alloc, reads)[:, 2], [6, 4])
    np.testing.assert_array_equal(redistribute(alloc, reads, "participation-ascending")[:, 2], [7, 3])
    np.testing.assert_array_equal(redistribute(alloc, reads, "even")[:, 2], [5, 5])
    # Three holders, loads 10 / 20 / 40 (sum 70), 35 reads. MDDE: n2 ceil(35 x 10/70) = 5,
    # n1 ceil(35 x 20/70) = 10, n0 the remaining 20. Ascending: n0 ceil(35 x 40/70) = 20,
    # n1 ceil(35 x 20/70) = 10, n2 the remaining 5: the same here, where nothing is rounded.
    alloc, reads = singles_then([([0, 1, 2], 35)], [10, 20, 40])
    for split in ("participation", "participation-ascending"):
        np.testing.assert_array_equal(redistribute(alloc, reads, split)[:, 3], [20, 10, 5])


def test_participation_is_summed_over_the_holders_only() -> None:
    # n2 carries 1000 reads but does not hold the fragment: n0 (10) and n1 (30) share 40 reads as
    # 0.25 / 0.75, so n1 takes ceil(40 x 0.25) = 10 and n0 30. Summed over all nodes (1040) it
    # would be ceil(40 x 10/1040) = 1 and 39.
    alloc, reads = singles_then([([0, 1], 40)], [10, 30, 1000])
    np.testing.assert_array_equal(redistribute(alloc, reads)[:, 3], [30, 10, 0])


def test_chunks_use_mdde_double_arithmetic() -> None:
    # Loads 7 / 18, 25 reads: 25 x (7 / 25) is 7.000000000000001 in doubles, so n1 takes 8, not 7.
    alloc, reads = singles_then([([0, 1], 25)], [7, 18])
    assert 25 * (7 / 25) > 7
    np.testing.assert_array_equal(redistribute(alloc, reads)[:, 2], [17, 8])


def test_no_reads_dealt_yet_gives_every_holder_an_equal_participation() -> None:
    # Four empty holders, 9 reads: each 1/4, ceil(2.25) = 3 for n0, n1, n2 (ties in node order), n3 0.
    alloc = np.ones((4, 1), dtype=bool)
    np.testing.assert_array_equal(redistribute(alloc, np.array([[9], [0], [0], [0]])), [[3], [3], [3], [0]])


def test_never_a_negative_read_where_mdde_had_one() -> None:
    # Four empty holders, 5 reads: MDDE dealt 2, 2, 2 and left -1 to n3. Capped: 2, 2, 1, 0.
    alloc = np.ones((4, 1), dtype=bool)
    reads = np.array([[5], [0], [0], [0]])
    _, mdde = mdde_registry_estimate(alloc, reads, 1.0)
    np.testing.assert_array_equal(mdde, [[2], [2], [2], [-1]])
    for split in ("participation", "participation-ascending"):
        np.testing.assert_array_equal(redistribute(alloc, reads, split), [[2], [2], [1], [0]])
    # The same with one read already on each node (participation 1/4 each, from the loads).
    alloc, reads = singles_then([([0, 1, 2, 3], 5)], [1, 1, 1, 1])
    np.testing.assert_array_equal(mdde_registry_estimate(alloc, reads, 1.0)[1][:, 4], [2, 2, 2, -1])
    np.testing.assert_array_equal(redistribute(alloc, reads)[:, 4], [2, 2, 1, 0])


def test_few_reads_go_one_each_to_the_first_holders_in_node_order() -> None:
    # f0 alone on n0 (7 reads). f2 (2 replicas) comes before f1 (3 replicas): n1 and n2 are empty,
    # 1/2 each: n1 ceil(2.5) = 3, n2 2. f1 has 2 reads for 3 holders: n0 and n1, by node order,
    # although n0 is the busiest. The even split gives them to the least loaded instead (n2, n1).
    alloc = np.array([[1, 1, 0], [0, 1, 1], [0, 1, 1]], dtype=bool)
    reads = np.array([[7, 2, 0], [0, 0, 0], [0, 0, 5]], dtype=np.int64)
    np.testing.assert_array_equal(redistribute(alloc, reads), [[7, 1, 0], [0, 1, 3], [0, 0, 2]])
    np.testing.assert_array_equal(redistribute(alloc, reads, "even"), [[7, 0, 0], [0, 1, 3], [0, 1, 2]])


def test_fragments_are_dealt_by_replicas_ascending_then_reads_descending() -> None:
    # f0 alone on n0 (20). f2 (30 reads) goes before f1 (10) though its index is higher: with loads
    # 20 / 0 n0 takes ceil(30 x 0) = 0 and n1 all 30; then f1 on loads 20 / 30: n1 takes
    # ceil(10 x 20/50) = 4, n0 6.
    alloc = np.array([[1, 1, 1], [0, 1, 1]], dtype=bool)
    reads = np.array([[20, 10, 30], [0, 0, 0]], dtype=np.int64)
    np.testing.assert_array_equal(redistribute(alloc, reads), [[20, 6, 0], [0, 4, 30]])


def test_full_replication_ends_like_the_thesis_table_5_4_last_row() -> None:
    """Table 5.4, greedy case, last step (every fragment everywhere): 24967 / 25011 / 25011 / 25011.

    MDDE's ranking puts the least loaded holder last, so with near-equal loads the same node keeps
    absorbing the ceilings' excess: three nodes end equal and the last in node order a few dozen
    reads lower. (MDDE indexed its sample nodes redis_node_0..3 in a Java HashMap's order, 3, 2, 1,
    0, which makes w0 the last: the low one in the table.) The pseudo-code's ascending order and
    the even split both end within a read or two of 25,000.
    """
    rng = np.random.default_rng(3)
    reads = np.zeros((4, 20), dtype=np.int64)
    for node, total in enumerate((2929, 4263, 7174, 85634)):  # Table 5.3's baseline, five fragments each
        reads[node, node * 5 : node * 5 + 5] = rng.multinomial(total, rng.dirichlet(np.ones(5)))
    full = np.ones((4, 20), dtype=bool)
    totals = estimate(full, (reads, 1.0)).node_reads
    assert totals[:3].max() - totals[:3].min() <= 1
    assert 20 <= totals[:3].min() - totals[3] <= 60
    for split in ("participation-ascending", "even"):
        other = estimate(full, (reads, 1.0), split=split).node_reads  # type: ignore[arg-type]
        assert other.max() - other.min() <= 2


def test_new_nodes_without_baseline_reads_and_zero_read_fragments_are_fine() -> None:
    # f0 (10 reads) on n0 and the new n1: both empty, 1/2 each: n0 5, n1 5. f2 (4 reads) on loads
    # 5 / 5: n0 first takes ceil(4 x 0.5) = 2, n1 2. f1 was never read.
    reads = np.array([[10, 0, 4], [0, 0, 0]], dtype=np.int64)
    alloc = np.array([[1, 0, 1], [1, 1, 1]], dtype=bool)
    result = estimate(alloc, (reads, 100.0))
    np.testing.assert_array_equal(result.reads, [[5, 0, 2], [5, 0, 2]])
    assert result.throughput == pytest.approx(100.0 * 2.7)  # D from 2 = M (all on n0) to 0: delta 1


def test_unknown_split_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="split must be one of participation"):
        redistribute(np.ones((2, 1), dtype=bool), np.array([[3], [0]]), "fair")  # type: ignore[arg-type]


# --- Properties --------------------------------------------------------------------------------


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
    high = draw(st.sampled_from([6, 50, 5_000]))
    reads = np.array(draw(st.lists(st.integers(0, high), min_size=w * f, max_size=w * f))).reshape(w, f)
    reads = (reads * base).astype(np.int64)
    current = np.array(draw(st.lists(st.booleans(), min_size=w * f, max_size=w * f))).reshape(w, f)
    keep = draw(st.lists(st.integers(0, w - 1), min_size=f, max_size=f))
    current[keep, range(f)] = True
    return base, reads, current


@settings(max_examples=400, deadline=None)
@given(cases(), st.sampled_from([0.0, 0.1]))
def test_agrees_with_mdde_wherever_mdde_dealt_no_negative_read(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], j: float
) -> None:
    _, reads, current = case
    assume(current.shape[0] > 1 and reads.sum() > 0)  # MDDE divides by zero (M = 0, no reads) there
    ours = estimate(current, (reads, 1000.0), j, 0.7)
    mdde_tau, mdde_reads = mdde_registry_estimate(current, reads, 1000.0, j, 0.7)
    if (mdde_reads < 0).any():
        return  # covered by the invariants below
    np.testing.assert_array_equal(ours.reads, mdde_reads)
    if ours.imbalance_current == ours.imbalance_baseline:  # see the permutation test
        assert ours.throughput == pytest.approx(1000.0 / (1 + j))
    else:
        assert ours.throughput == pytest.approx(mdde_tau, rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(cases(), st.sampled_from(SPLITS))
def test_redistribution_invariants(case: tuple[np.ndarray, np.ndarray, np.ndarray], split: str) -> None:
    _, reads, current = case
    new = redistribute(current, reads, split)  # type: ignore[arg-type]
    assert new.dtype == np.int64
    assert (new >= 0).all()
    np.testing.assert_array_equal(new.sum(axis=0), reads.sum(axis=0))  # per-fragment sums exact
    assert (new[~current] == 0).all()  # only replica nodes get reads
    result = estimate(current, (reads, 1000.0), split=split)  # type: ignore[arg-type]
    np.testing.assert_array_equal(result.reads, new)
    if result.imbalance_current < result.imbalance_baseline:
        assert result.throughput > 1000.0
    elif result.imbalance_current > result.imbalance_baseline:
        assert result.throughput < 1000.0
    else:
        assert result.throughput == pytest.approx(1000.0)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_even_split_list_and_array_forms_match_the_reference(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Small shapes take the list form; the array form must give the same answer on them too."""
    _, reads, current = case
    expected = reference_even(current, reads)
    np.testing.assert_array_equal(redistribute(current, reads, "even"), expected)
    np.testing.assert_array_equal(_redistribute_small(current, reads.sum(axis=0)), expected)
    np.testing.assert_array_equal(_redistribute_arrays(current, reads.sum(axis=0)), expected)


@st.composite
def large_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Shapes beyond the list form's size; enough left-over reads for the vectorised even path."""
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
def test_large_shapes_match_mdde_and_the_even_reference(case: tuple[np.ndarray, np.ndarray]) -> None:
    current, reads = case
    np.testing.assert_array_equal(redistribute(current, reads, "even"), reference_even(current, reads))
    _, mdde_reads = mdde_registry_estimate(current, reads, 1.0)
    if not (mdde_reads < 0).any():
        np.testing.assert_array_equal(redistribute(current, reads), mdde_reads)


# --- Errors and the mapping shape --------------------------------------------------------------


def test_fragment_without_replica_is_a_clear_error() -> None:
    reads = np.array([[1, 2], [3, 4]], dtype=np.int64)
    alloc = np.array([[1, 0], [1, 0]], dtype=bool)
    for split in SPLITS:
        with pytest.raises(NoReplicaError, match="fragment 1 has no replica"):
            estimate(alloc, (reads, 10.0), split=split)  # type: ignore[arg-type]


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
    """By hand: f0 (30) and f10 (4) alone; f1 (10 reads) on n0/n1 with loads 30 / 0: n0 takes
    ceil(10 x 0) = 0, n1 10; f2 (6) on n1/n2 with loads 10 / 4: n1 takes ceil(6 x 4/14) = 2, n2 4.
    Totals 40/6/4 -> 30/12/8 of 50: D 144/50 = 2.88 -> 88/50 = 1.76, delta = 1.12 / 4 = 0.28,
    tau' = 1000 x (1 + 1.7 x 0.28) = 1476."""
    out = estimate_mapping(mapping_case())
    assert set(out) == {"throughput", "reads", "node_reads", "imbalance_baseline", "imbalance_current"}
    assert out["reads"] == {"n0": {"f0": 30, "f1": 0}, "n1": {"f1": 10, "f2": 2}, "n2": {"f2": 4, "f10": 4}}
    assert out["node_reads"] == {"n0": 30, "n1": 12, "n2": 8}
    assert out["imbalance_baseline"] == pytest.approx(2.88)
    assert out["imbalance_current"] == pytest.approx(1.76)
    assert out["throughput"] == pytest.approx(1476.0)
    even = estimate_mapping({**mapping_case(), "split": "even"})
    assert even["reads"] == {"n0": {"f0": 30, "f1": 5}, "n1": {"f1": 5, "f2": 3}, "n2": {"f2": 3, "f10": 4}}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: c["baseline_reads"]["n0"].update(f0=-1), "baseline_reads.n0.f0"),
        (lambda c: c.pop("baseline_throughput"), "baseline_throughput"),
        (lambda c: c["baseline_reads"].update(n9={"f0": 1}), "baseline_reads"),
        (lambda c: c["baseline_reads"]["n1"].update(f7=3), "f7"),
        (lambda c: c.update(allocation={}), "allocation"),
        (lambda c: c.update(split="fair"), "split"),
    ],
)
def test_estimate_mapping_rejects_bad_input_naming_the_field(mutate: object, field: str) -> None:
    case = mapping_case()
    mutate(case)  # type: ignore[operator]
    with pytest.raises(ValidationError) as info:
        estimate_mapping(case)
    text = str(info.value)
    assert field.split(".")[0] in text and field.split(".")[-1] in text
