"""Read workloads: which record each benchmark read asks for, seeded and vectorised.

The key choosers follow the YCSB core workload's request distributions, so runs here are comparable
with the thesis's measurements (Appendix C: 10,000 records, 100,000 reads, 50 clients):

- ``uniform``: every record equally likely.
- ``zipfian``: YCSB's *scrambled* zipfian. Ranks are drawn from a zipfian (constant 0.99) over a
  very large item space (10^10 items), then each rank is hashed with 64-bit FNV-1a onto the record
  range, so the popular records are scattered instead of clustered at low indices.
- ``latest``: a zipfian over the records, counted back from the most recently inserted one; the
  highest record indices are the hottest.
- ``hotspot``: a fraction ``hot_op_fraction`` of reads goes uniformly to the first
  ``hot_set_fraction`` of the records, the rest uniformly to the others.
- ``sequential``: records in order from ``start``, wrapping around.
- ``exponential``: also counted back from the latest record, with an exponentially distributed
  distance such that ``percentile`` % of reads fall within the last ``fraction`` of the records.

The zipfian draw is Gray et al.'s closed-form method ("Quickly generating billion-record synthetic
databases", SIGMOD 1994), the one YCSB uses. ``generate_keys`` returns record indices; which fragment
a record belongs to is the registry's business (it passes a ``record_fragment`` array to the
benchmarks).
"""

from __future__ import annotations

import logging
import math
from enum import Enum
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

logger = logging.getLogger(__name__)

ZIPFIAN_CONSTANT = 0.99
SCRAMBLED_ITEM_COUNT = 10_000_000_000
"""Item space of the scrambled zipfian before hashing onto the records (YCSB's choice)."""

_FNV_OFFSET_BASIS = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


class Distribution(str, Enum):
    UNIFORM = "uniform"
    ZIPFIAN = "zipfian"
    LATEST = "latest"
    HOTSPOT = "hotspot"
    SEQUENTIAL = "sequential"
    EXPONENTIAL = "exponential"


# Parameters each distribution accepts, with YCSB's defaults; anything else is rejected.
PARAM_DEFAULTS: dict[Distribution, dict[str, float]] = {
    Distribution.UNIFORM: {},
    Distribution.ZIPFIAN: {"constant": ZIPFIAN_CONSTANT},
    Distribution.LATEST: {"constant": ZIPFIAN_CONSTANT},
    Distribution.HOTSPOT: {"hot_set_fraction": 0.2, "hot_op_fraction": 0.8},
    Distribution.SEQUENTIAL: {"start": 0.0},
    Distribution.EXPONENTIAL: {"percentile": 95.0, "fraction": 0.8571428571},
}


class WorkloadSpec(BaseModel):
    """What a benchmark run reads and how the dataset it reads is shaped.

    ``field_count`` and ``field_length_min/max`` describe the records the data-node loader writes
    (YCSB's field count and field length range); the key choosers ignore them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    distribution: Distribution = Distribution.UNIFORM
    record_count: PositiveInt = 10_000
    operation_count: int = Field(default=100_000, ge=0)
    field_count: PositiveInt = 10
    field_length_min: PositiveInt = 100
    field_length_max: PositiveInt = 100
    clients: PositiveInt = 50
    params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> WorkloadSpec:
        if self.field_length_min > self.field_length_max:
            raise ValueError(
                f"field_length_min ({self.field_length_min}) exceeds field_length_max ({self.field_length_max})"
            )
        allowed = PARAM_DEFAULTS[self.distribution]
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(
                f"params {unknown} are not used by the {self.distribution.value} distribution "
                f"(it accepts {sorted(allowed) or 'none'})"
            )
        p = {**allowed, **self.params}
        if "constant" in p and not 0.0 < p["constant"] < 1.0:
            raise ValueError(f"params.constant must lie in (0, 1), got {p['constant']}")
        for name in ("hot_set_fraction", "hot_op_fraction"):
            if name in p and not 0.0 <= p[name] <= 1.0:
                raise ValueError(f"params.{name} must lie in [0, 1], got {p[name]}")
        if "percentile" in p and not 0.0 < p["percentile"] < 100.0:
            raise ValueError(f"params.percentile must lie in (0, 100), got {p['percentile']}")
        if "fraction" in p and not p["fraction"] > 0.0:
            raise ValueError(f"params.fraction must be positive, got {p['fraction']}")
        if "start" in p and (p["start"] < 0 or p["start"] != int(p["start"])):
            raise ValueError(f"params.start must be a non-negative integer, got {p['start']}")
        return self

    def param(self, name: str) -> float:
        """A distribution parameter, falling back to its YCSB default."""
        defaults = PARAM_DEFAULTS[self.distribution]
        if name not in defaults:
            raise KeyError(f"the {self.distribution.value} distribution has no parameter {name!r}")
        return float(self.params.get(name, defaults[name]))


def _thesis(distribution: Distribution, large: bool) -> WorkloadSpec:
    # Listings C.3/C.4 set minfieldlength=1800 and fieldlength=3000, but YCSB's default
    # fieldlengthdistribution is "constant", which uses fieldlength alone: every field is 3,000 chars.
    shape: dict[str, Any] = (
        {"field_count": 100, "field_length_min": 3_000, "field_length_max": 3_000} if large else {}
    )
    return WorkloadSpec(
        distribution=distribution, record_count=10_000, operation_count=100_000, clients=50, **shape
    )


PRESETS: dict[str, WorkloadSpec] = {
    "uniform": _thesis(Distribution.UNIFORM, large=False),
    "latest": _thesis(Distribution.LATEST, large=False),
    "uniform-large": _thesis(Distribution.UNIFORM, large=True),
    "latest-large": _thesis(Distribution.LATEST, large=True),
}
"""The thesis's Appendix C workloads: "normal" records use YCSB's default shape (10 fields of 100
characters), "large" ones 100 fields of a constant 3,000 characters (YCSB's constant field length)."""


def preset(name: str) -> WorkloadSpec:
    """A thesis workload by name (``uniform``, ``latest``, ``uniform-large``, ``latest-large``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown workload preset {name!r}; choose one of {sorted(PRESETS)}") from None


def generate_keys(spec: WorkloadSpec, seed: int) -> np.ndarray:
    """The record index of each of ``spec.operation_count`` reads, as int64; same seed, same keys."""
    rng = np.random.default_rng(seed)
    n = spec.record_count
    size = spec.operation_count
    dist = spec.distribution
    if dist is Distribution.UNIFORM:
        keys = rng.integers(0, n, size=size, dtype=np.int64)
    elif dist is Distribution.ZIPFIAN:
        theta = spec.param("constant")
        ranks = zipfian_ranks(rng, size, SCRAMBLED_ITEM_COUNT, theta)
        keys = (fnv1a_64(ranks) % np.uint64(n)).astype(np.int64)
    elif dist is Distribution.LATEST:
        keys = (n - 1) - zipfian_ranks(rng, size, n, spec.param("constant"))
    elif dist is Distribution.HOTSPOT:
        keys = _hotspot(rng, size, n, spec.param("hot_set_fraction"), spec.param("hot_op_fraction"))
    elif dist is Distribution.SEQUENTIAL:
        start = int(spec.param("start"))
        keys = (start + np.arange(size, dtype=np.int64)) % n
    elif dist is Distribution.EXPONENTIAL:
        keys = _exponential(rng, size, n, spec.param("percentile"), spec.param("fraction"))
    else:  # pragma: no cover - the enum is exhaustive
        raise ValueError(f"unsupported distribution {dist!r}")
    return keys


def zeta(n: int, theta: float) -> float:
    """sum_{i=1..n} i^-theta: exact up to a million items, Euler-Maclaurin beyond.

    The scrambled zipfian needs zeta over 10^10 items, far too many to sum; the expansion is
    accurate to well below 1e-9 there (YCSB hard-codes 26.46902820178302 for theta 0.99).
    """
    return _zeta(int(n), float(theta))


@lru_cache(maxsize=64)
def _zeta(n: int, theta: float) -> float:
    if n < 1:
        raise ValueError(f"zeta needs at least one item, got {n}")
    head = min(n, 1_000_000)
    total = float(np.sum(np.arange(1, head + 1, dtype=np.float64) ** -theta))
    if n == head:
        return total
    # Tail sum_{i=head+1..n} f(i) with f(x) = x^-theta:
    # integral_head^n f + (f(n) - f(head)) / 2 + (f'(n) - f'(head)) / 12.
    a, b = float(head), float(n)
    integral = (b ** (1 - theta) - a ** (1 - theta)) / (1 - theta)
    ends = (b**-theta - a**-theta) / 2
    slope = (-theta * b ** (-theta - 1) + theta * a ** (-theta - 1)) / 12
    return total + integral + ends + slope


def zipfian_ranks(rng: np.random.Generator, size: int, item_count: int, theta: float) -> np.ndarray:
    """``size`` zipfian ranks in [0, item_count): rank 0 is the most popular (Gray et al.)."""
    zetan = zeta(item_count, theta)
    zeta2 = 1.0 + 0.5**theta
    u = rng.random(size)
    uz = u * zetan
    if item_count <= 2:  # the closed form divides by zero there; ranks 0 and 1 are exact anyway
        return (uz >= 1.0).astype(np.int64)
    alpha = 1.0 / (1.0 - theta)
    eta = (1.0 - (2.0 / item_count) ** (1.0 - theta)) / (1.0 - zeta2 / zetan)
    ranks = (item_count * np.power(eta * u - eta + 1.0, alpha)).astype(np.int64)
    ranks[uz < zeta2] = 1
    ranks[uz < 1.0] = 0
    np.clip(ranks, 0, item_count - 1, out=ranks)
    return ranks


def fnv1a_64(values: np.ndarray) -> np.ndarray:
    """64-bit FNV-1a over each value's eight little-endian bytes, folded to a non-negative magnitude.

    The hash is read as a signed 64-bit number and its absolute value returned (as uint64), which is
    how the scrambled zipfian turns it into an index.
    """
    v = np.asarray(values).astype(np.uint64)
    h = np.full(v.shape, _FNV_OFFSET_BASIS, dtype=np.uint64)
    mask = np.uint64(0xFF)
    eight = np.uint64(8)
    for _ in range(8):
        h ^= v & mask
        h *= _FNV_PRIME  # wraps modulo 2^64, as the hash requires
        v >>= eight
    negative = h >= np.uint64(1 << 63)
    return np.where(negative, ~h + np.uint64(1), h)


def _hotspot(rng: np.random.Generator, size: int, n: int, hot_set: float, hot_ops: float) -> np.ndarray:
    hot_count = int(n * hot_set)
    cold_count = n - hot_count
    if hot_count == 0 or cold_count == 0:
        return rng.integers(0, n, size=size, dtype=np.int64)
    hot = rng.random(size) < hot_ops
    u = rng.random(size)
    return np.where(hot, u * hot_count, hot_count + u * cold_count).astype(np.int64)


def _exponential(rng: np.random.Generator, size: int, n: int, percentile: float, fraction: float) -> np.ndarray:
    # Rate chosen so that `percentile` % of distances fall below fraction * n; distances that would
    # point before the first record are drawn again (as YCSB does).
    gamma = -math.log(1.0 - percentile / 100.0) / (n * fraction)
    keys = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        distance = np.floor(-np.log1p(-rng.random(todo.size)) / gamma).astype(np.int64)
        candidate = (n - 1) - distance
        ok = candidate >= 0
        keys[todo[ok]] = candidate[ok]
        todo = todo[~ok]
    return keys
