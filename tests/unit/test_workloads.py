"""Key choosers: determinism, shape, and the statistical signature of each distribution."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pydantic import ValidationError

from mdde_stream.workloads import (
    PRESETS,
    SCRAMBLED_ITEM_COUNT,
    Distribution,
    WorkloadSpec,
    fnv1a_64,
    generate_keys,
    preset,
    zeta,
    zipfian_ranks,
)

ALL = list(Distribution)


def spec(distribution: Distribution, **kw: object) -> WorkloadSpec:
    return WorkloadSpec(distribution=distribution, **kw)


def counts(keys: np.ndarray, n: int = 10_000) -> np.ndarray:
    return np.bincount(keys, minlength=n)


def top_share(keys: np.ndarray, fraction: float = 0.01, n: int = 10_000) -> float:
    c = np.sort(counts(keys, n))[::-1]
    return float(c[: int(n * fraction)].sum() / keys.size)


@pytest.mark.parametrize("records", [1, 2, 3, 777])
@pytest.mark.parametrize("distribution", ALL)
def test_keys_are_in_range_int64_and_of_requested_length(distribution: Distribution, records: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent nan/overflow in the vectorised maths
        keys = generate_keys(spec(distribution, record_count=records, operation_count=5_000), seed=3)
    assert keys.dtype == np.int64
    assert keys.shape == (5_000,)
    assert keys.min() >= 0 and keys.max() < records
    if records > 1 and distribution is not Distribution.SEQUENTIAL:
        assert np.unique(keys).size > 1


def test_zero_operations_gives_an_empty_sequence() -> None:
    assert generate_keys(spec(Distribution.ZIPFIAN, operation_count=0), seed=0).shape == (0,)


@pytest.mark.parametrize("distribution", ALL)
def test_same_seed_same_sequence_and_hot_records(distribution: Distribution) -> None:
    s = spec(distribution)
    a, b = generate_keys(s, seed=42), generate_keys(s, seed=42)
    np.testing.assert_array_equal(a, b)
    ca, cb = counts(a), counts(b)
    # Most and least read records stay the same across runs with one seed (stable ordering).
    np.testing.assert_array_equal(np.argsort(-ca, kind="stable")[:20], np.argsort(-cb, kind="stable")[:20])
    np.testing.assert_array_equal(np.argsort(ca, kind="stable")[:20], np.argsort(cb, kind="stable")[:20])


@pytest.mark.parametrize("distribution", [d for d in ALL if d is not Distribution.SEQUENTIAL])
def test_different_seeds_differ(distribution: Distribution) -> None:
    s = spec(distribution, operation_count=1_000)
    assert not np.array_equal(generate_keys(s, seed=1), generate_keys(s, seed=2))


def test_uniform_is_flat_by_chi_square() -> None:
    n = 1_000
    keys = generate_keys(spec(Distribution.UNIFORM, record_count=n, operation_count=100_000), seed=5)
    expected = keys.size / n
    chi2 = float(((counts(keys, n) - expected) ** 2 / expected).sum())
    # 999 degrees of freedom: mean 999, sd ~45; 1,200 is > 4 sd out.
    assert chi2 < 1_200
    assert top_share(keys, 0.01, n) < 0.02


def test_zipfian_is_skewed_but_scrambled_over_the_range() -> None:
    keys = generate_keys(spec(Distribution.ZIPFIAN), seed=11)
    assert top_share(keys) > 0.15  # uniform would give ~0.01
    hottest = np.argsort(-counts(keys))[:10]
    # Scrambled: the hottest records are spread, not all clustered at the low end of the range.
    assert hottest.max() - hottest.min() > 2_000


def test_latest_hottest_keys_are_the_highest_indices() -> None:
    keys = generate_keys(spec(Distribution.LATEST), seed=13)
    c = counts(keys)
    assert top_share(keys) > 0.4
    assert int(np.argmax(c)) == 9_999
    assert c[-100:].sum() > 20 * c[:100].sum()
    assert c[9_999] > c[9_990] > c[9_000]


def test_hotspot_respects_hot_set_and_op_fractions() -> None:
    s = spec(Distribution.HOTSPOT, params={"hot_set_fraction": 0.1, "hot_op_fraction": 0.9})
    keys = generate_keys(s, seed=17)
    hot = keys < 1_000
    assert abs(hot.mean() - 0.9) < 0.01
    assert counts(keys)[:1_000].min() > 0  # the whole hot set is used


def test_sequential_walks_in_order_and_wraps() -> None:
    s = spec(Distribution.SEQUENTIAL, record_count=5, operation_count=12, params={"start": 3})
    assert generate_keys(s, seed=0).tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]


def test_exponential_concentrates_on_the_latest_records() -> None:
    s = spec(Distribution.EXPONENTIAL, params={"percentile": 95, "fraction": 0.1})
    keys = generate_keys(s, seed=19)
    # 95% of reads fall within the last 10% of the records.
    assert abs((keys >= 9_000).mean() - 0.95) < 0.01
    assert counts(keys)[-10:].sum() > counts(keys)[-1_010:-1_000].sum()


def test_zeta_matches_exact_sum_and_ycsb_constant() -> None:
    exact = float(np.sum(np.arange(1, 2_500_001, dtype=np.float64) ** -0.99))
    assert zeta(2_500_000, 0.99) == pytest.approx(exact, rel=1e-12)
    # YCSB precomputes zeta(10^10, 0.99) for its scrambled zipfian.
    assert zeta(SCRAMBLED_ITEM_COUNT, 0.99) == pytest.approx(26.46902820178302, rel=1e-9)


def test_zipfian_rank_frequencies_follow_the_power_law() -> None:
    rng = np.random.default_rng(0)
    ranks = zipfian_ranks(rng, 400_000, 1_000, 0.99)
    c = np.bincount(ranks, minlength=1_000) / ranks.size
    z = zeta(1_000, 0.99)
    # Ranks 0 and 1 are exact in Gray et al.'s method; beyond that it approximates the
    # cumulative mass, so check the head's share instead of single ranks.
    for r in (0, 1):
        assert c[r] == pytest.approx((r + 1) ** -0.99 / z, rel=0.03)
    for head in (10, 100, 500):
        assert c[:head].sum() == pytest.approx(zeta(head, 0.99) / z, rel=0.05)


def _fnv1a_reference(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) % 2**64
    return h


def test_fnv1a_64_matches_a_byte_wise_reference() -> None:
    assert _fnv1a_reference(b"a") == 0xAF63DC4C8601EC8C  # published FNV-1a test vector
    values = np.array([0, 1, 255, 123_456_789, SCRAMBLED_ITEM_COUNT - 1], dtype=np.int64)
    for value, hashed in zip(values.tolist(), fnv1a_64(values).tolist()):
        raw = _fnv1a_reference(int(value).to_bytes(8, "little"))
        signed = raw - 2**64 if raw >= 2**63 else raw
        assert hashed == abs(signed)


def test_presets_match_the_thesis_appendix() -> None:
    assert set(PRESETS) == {"uniform", "latest", "uniform-large", "latest-large"}
    for name, s in PRESETS.items():
        assert (s.record_count, s.operation_count, s.clients) == (10_000, 100_000, 50)
        assert s.distribution.value == name.split("-")[0]
    large = preset("latest-large")
    assert (large.field_count, large.field_length_min, large.field_length_max) == (100, 3_000, 3_000)
    with pytest.raises(KeyError, match="unknown workload preset"):
        preset("nope")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"distribution": "uniform", "params": {"constant": 0.5}}, "constant"),
        ({"distribution": "zipfian", "params": {"constant": 1.5}}, "constant"),
        ({"distribution": "hotspot", "params": {"hot_op_fraction": 2}}, "hot_op_fraction"),
        ({"field_length_min": 10, "field_length_max": 5}, "field_length_min"),
        ({"record_count": 0}, "record_count"),
        ({"distribution": "gaussian"}, "distribution"),
    ],
)
def test_invalid_specs_name_the_problem(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        WorkloadSpec(**kwargs)


def test_param_falls_back_to_ycsb_defaults() -> None:
    s = spec(Distribution.HOTSPOT, params={"hot_set_fraction": 0.3})
    assert s.param("hot_set_fraction") == 0.3
    assert s.param("hot_op_fraction") == 0.8
    with pytest.raises(KeyError, match="no parameter"):
        s.param("constant")
