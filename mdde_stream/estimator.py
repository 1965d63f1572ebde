"""The thesis's cheap throughput estimate (Algorithms 1-2, Equations 3.3-3.7).

A real benchmark is expensive, so between benchmarks the environment estimates <tau, N, R> for the
current allocation A' from a baseline benchmark (reads R, throughput tau):

1. **Redistribution (Algorithms 1-2).** Each fragment keeps the number of reads it had in the
   baseline, and these reads are dealt out over the nodes that hold it in A'. Fragments are handled
   in order of replica count (ascending), then baseline reads (descending), then index (MDDE broke
   this last tie by its catalogue's hash-map order, which nothing published pins down). ``loads[w]``
   is the reads dealt to node w so far.

   * One replica: it gets all the fragment's reads.
   * No more reads than replicas: the first ``reads`` holders in node order get one read each.
   * More reads than replicas (Algorithm 2, ``split="participation"``, the default): each holder's
     participation is its share of the reads dealt so far, summed over the fragment's holders only
     (``loads[w] / sum(loads[h] for h in holders)``; every holder has ``1 / |holders|`` while they
     have nothing yet). Holders are ranked by participation and the node at position i takes
     ``ceil(reads * p)`` of the node at the mirrored position, so the least loaded get the largest
     chunks; the last ranked takes what remains. This follows MDDE's own registry exactly, in double
     arithmetic: its sort ranks the *most* loaded first (a stable sort, ties in node order), so the
     least loaded holder comes last and absorbs the rounding. The thesis's pseudo-code ranks
     ascending instead (the most loaded absorbs the rounding); that reading is ``split=
     "participation-ascending"``. Both give every holder the same chunk up to the ceilings.

     **Never negative.** With near-equal participations the ceilings can add up to more than the
     fragment's reads (4 holders without load, 5 reads: 2 + 2 + 2), and MDDE then gave the last
     holder a negative count (-1). Here each chunk is capped at the reads still unassigned, so the
     holders ranked last get less, down to zero (2 + 2 + 1 + 0). When MDDE's remainder is not
     negative the cap never binds and the two agree read for read.
   * ``split="even"`` is a non-thesis alternative kept by name: ``reads // replicas`` each and the
     spare reads one each to the least-loaded holders (also used for fewer reads than replicas).

   R' has non-negative integer counts, sums exactly to each fragment's baseline reads, and is zero
   off the replicas.

2. **Imbalance (Eq. 3.3-3.4).** D(R) = sum_a sum_b |r_a - r_b| / sum(R) over the node totals r_w:
   every node against every node, itself included, each term normalised by the total. It is 0 when
   the nodes are loaded evenly and M = 2(|W| - 1) when one node serves every read, so
   delta = |D(R) - D(R')| / M spans [0, 1].

3. **Throughput (Eq. 3.5-3.7).** zeta = sign(D(R') - D(R)) with zeta(0) = 1,
   beta = delta * (k - j) + j, tau' = 10^(log10 tau - zeta log10(1 + delta + beta))
   = tau * (1 + delta + beta) ** -zeta. A more balanced A' (zeta = -1) raises the estimate, a less
   balanced one lowers it; from all reads on one node to an even spread the factor is 2 + k. With
   unchanged balance (delta = 0) tau' = tau / (1 + j): with the default j = 0 the estimate equals
   the baseline. D is compared as an exact integer (sum |r_a - r_b| over a common total) so that a
   permutation of the node totals never flips zeta through float rounding.

Performance (``bench/bench_estimator.py``): a 4 nodes x 20 fragments call costs 10-35 us, about
what the even split costs, against 3.4 ms published for MDDE's estimator. Algorithm 2 runs on plain
lists, one fragment at a time (each fragment's chunks depend on the loads the earlier ones left),
with three or four holders unrolled; the even split keeps a vectorised form for large shapes (see
``_deal_fixed_point``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import mul
from typing import Any, Literal, get_args

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    model_validator,
)

from mdde_stream.benchmark.locator import NoReplicaError
from mdde_stream.benchmark.outcome import BenchmarkOutcome

logger = logging.getLogger(__name__)

DEFAULT_J = 0.0
DEFAULT_K = 0.7

Split = Literal["participation", "participation-ascending", "even"]
"""How a fragment with more reads than replicas is dealt: Algorithm 2 as MDDE ran it (default),
Algorithm 2 as the thesis's pseudo-code orders it, or an even split (not the thesis's)."""

SPLITS: tuple[str, ...] = get_args(Split)
DEFAULT_SPLIT: Split = "participation"


@dataclass(frozen=True, eq=False)
class Estimate:
    """tau' and R' for the current allocation, with both imbalance figures (Eq. 3.3) for telemetry."""

    throughput: float
    reads: np.ndarray
    imbalance_baseline: float
    imbalance_current: float

    @property
    def node_reads(self) -> np.ndarray:
        return self.reads.sum(axis=1)

    def to_outcome(self, source: str = "estimator") -> BenchmarkOutcome:
        """The estimate as a benchmark-shaped result (duration 0: nothing was run)."""
        return BenchmarkOutcome(self.throughput, self.reads, 0.0, int(self.reads.sum()), source)


def pairwise_gap_sum(node_reads: list[int]) -> int:
    """sum_a sum_b |r_a - r_b| exactly, in O(W log W): the numerator of Eq. 3.3.

    Sorted ascending, r_(i) is larger than the i values before it and smaller than the W - 1 - i
    after it, so it enters the sum over unordered pairs with weight 2i - (W - 1); ordered pairs
    (a, b) and (b, a) double that.
    """
    last = len(node_reads) - 1
    return 2 * sum(map(mul, range(-last, last + 1, 2), sorted(node_reads)))


def imbalance(node_reads: np.ndarray) -> float:
    """D(R) (Eq. 3.3): sum_a sum_b |r_a - r_b| / sum r over node totals; 0 when nothing was read."""
    totals = np.asarray(node_reads)
    if totals.size and not np.array_equal(totals, np.floor(totals)):  # fractional shares: no exact path
        values = totals.astype(np.float64)
        total = float(values.sum())
        return float(np.abs(values[:, None] - values[None, :]).sum() / total) if total > 0 else 0.0
    counts = totals.astype(np.int64).tolist()
    total = sum(counts)
    return pairwise_gap_sum(counts) / total if total > 0 else 0.0


def max_imbalance(node_count: int) -> float:
    """M (Eq. 3.4) = 2(|W| - 1): D when one node serves every read."""
    return 2.0 * (node_count - 1)


def redistribute(
    allocation: np.ndarray, baseline_reads: np.ndarray, split: Split = DEFAULT_SPLIT
) -> np.ndarray:
    """R': the baseline's per-fragment reads dealt over the replicas of ``allocation`` (Alg. 1-2)."""
    alloc, reads = _check_inputs(allocation, np.asarray(baseline_reads))
    return _redistribute(alloc, reads.sum(axis=0), split)


def estimate(
    allocation: np.ndarray,
    baseline: BenchmarkOutcome | tuple[np.ndarray, float],
    j: float = DEFAULT_J,
    k: float = DEFAULT_K,
    split: Split = DEFAULT_SPLIT,
) -> Estimate:
    """Estimate tau' and R' for ``allocation`` (W x F bool) from the ``baseline`` benchmark.

    ``baseline`` is a :class:`BenchmarkOutcome` or a ``(reads, throughput)`` pair with reads of
    shape (W, F). Nodes without baseline reads (new nodes) are fine; a fragment without a replica
    in ``allocation`` raises :class:`NoReplicaError`.
    """
    if isinstance(baseline, BenchmarkOutcome):  # already validated: int64, non-negative, 2-D
        reads, tau = baseline.reads, baseline.throughput
        alloc, reads = _check_inputs(allocation, reads, trusted=True)
    else:
        reads, tau = baseline
        alloc, reads = _check_inputs(allocation, np.asarray(reads))
    new_reads, new_totals = _deal(alloc, reads.sum(axis=0), split)

    # Node totals are W numbers: plain Python beats numpy's per-call overhead here. Both totals are
    # the same (R' keeps every fragment's reads), so the integer numerators compare exactly.
    base_totals = reads.sum(axis=1).tolist()
    total = sum(base_totals)
    gaps_base = pairwise_gap_sum(base_totals)
    gaps_new = pairwise_gap_sum(new_totals)
    d_base = gaps_base / total if total else 0.0
    d_new = gaps_new / total if total and gaps_new != gaps_base else d_base
    throughput = throughput_factor(d_base, d_new, len(base_totals), j, k) * float(tau)
    return Estimate(throughput, new_reads, d_base, d_new)


def throughput_factor(
    d_base: float, d_new: float, node_count: int, j: float = DEFAULT_J, k: float = DEFAULT_K
) -> float:
    """tau' / tau from the two imbalances (Eq. 3.5-3.7)."""
    m = max_imbalance(node_count)
    delta = abs(d_base - d_new) / m if m > 0 else 0.0
    zeta = -1.0 if d_new < d_base else 1.0  # sign(D(R') - D(R)) with sign(0) = 1
    beta = delta * (k - j) + j
    base = 1.0 + delta + beta
    if base <= 0.0:
        raise ValueError(f"1 + delta + beta must be positive; j={j}, k={k} give {base}")
    return base**-zeta


def _check_inputs(
    allocation: np.ndarray, reads: np.ndarray, trusted: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    alloc = allocation if isinstance(allocation, np.ndarray) and allocation.dtype == np.bool_ else None
    if alloc is None:
        alloc = np.asarray(allocation)
        if alloc.size and not np.isin(alloc, (0, 1)).all():
            raise ValueError("allocation must hold only 0/1 or booleans")
        alloc = alloc.astype(np.bool_)
    if not trusted and reads.dtype != np.int64:
        if reads.size and not np.array_equal(reads, np.floor(reads)):
            raise ValueError("baseline reads must be whole numbers")
        reads = reads.astype(np.int64)
    if alloc.ndim != 2 or reads.shape != alloc.shape:
        raise ValueError(
            f"allocation {alloc.shape} and baseline reads {reads.shape} must both be (nodes x fragments)"
        )
    if not trusted and reads.size and reads.min() < 0:
        raise ValueError("baseline reads must be non-negative")
    return alloc, reads


def _redistribute(alloc: np.ndarray, fragment_reads: np.ndarray, split: Split = DEFAULT_SPLIT) -> np.ndarray:
    return _deal(alloc, fragment_reads, split)[0]


def _deal(alloc: np.ndarray, fragment_reads: np.ndarray, split: Split) -> tuple[np.ndarray, list[int]]:
    """R' and its node totals (the participation dealer has them already: no second pass)."""
    if split == "participation" or split == "participation-ascending":
        return _redistribute_participation(alloc, fragment_reads, ascending=split != "participation")
    if split == "even":
        new_reads = _redistribute_even(alloc, fragment_reads)
        return new_reads, new_reads.sum(axis=1).tolist()
    raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")


def _replica_layout(alloc: np.ndarray) -> tuple[int, int, np.ndarray, list[int], list[int]]:
    """What both list dealers start from: ``(w_count, f_count, replica_count, counts, holders)``.

    ``replica_count`` is each fragment's number of replicas (an array, for ``np.lexsort``) and
    ``counts`` the same as a list; ``holders`` lists each fragment's nodes, ascending, back to back
    (fragment f's are ``holders[sum(counts[:f]) : sum(counts[: f + 1])]``). Raises
    ``NoReplicaError`` when a fragment has no replica.
    """
    w_count, f_count = alloc.shape
    replica_count = alloc.sum(axis=0)
    counts = replica_count.tolist()
    if 0 in counts:
        _raise_no_replica(replica_count)
    holders = alloc.T.nonzero()[1].tolist()
    return w_count, f_count, replica_count, counts, holders


def _redistribute_participation(
    alloc: np.ndarray, fragment_reads: np.ndarray, ascending: bool
) -> tuple[np.ndarray, list[int]]:
    """Algorithms 1-2 with Algorithm 2's inverse-participation chunks (see the module docstring).

    Ranking holders by their integer loads gives the same order as ranking the participations
    ``load / held`` (one positive divisor; distinct loads below 2**51 stay distinct doubles), while
    each chunk uses the double participation exactly as MDDE computed it: ``ceil(reads * (load /
    held))``. Written without comprehensions, and unrolled for three or four holders: on Python
    3.11 a comprehension or a loop over a few holders costs more than the statements it repeats.
    """
    w_count, f_count, replica_count, counts, holders = _replica_layout(alloc)
    if len(holders) == f_count:  # one replica each: every fragment's reads go to its only node
        new_reads = alloc * fragment_reads
        return new_reads, new_reads.sum(axis=1).tolist()
    starts = [0, *accumulate(counts)]
    reads = fragment_reads.tolist()
    loads = [0] * w_count
    rows = list(map(list, repeat([0] * f_count, w_count)))
    ceil = math.ceil
    by_load = loads.__getitem__
    descending = not ascending
    everyone = list(range(w_count))
    dealt = 0  # sum(loads), kept so that a fragment held everywhere needs no sum
    for f in np.lexsort((-fragment_reads, replica_count)).tolist():
        total = reads[f]
        count = counts[f]
        if count == 1:
            w = holders[starts[f]]
            loads[w] += total
            rows[w][f] = total
            dealt += total
            continue
        if count == w_count:
            nodes = everyone
            held = dealt
        else:
            nodes = holders[starts[f] : starts[f + 1]]
            held = sum(map(by_load, nodes))
        dealt += total
        if total <= count:  # one read each to the first holders in node order (Algorithm 1)
            for w in nodes[:total]:
                loads[w] += 1
                rows[w][f] = 1
            continue
        if count == 2:  # the common case after one copy
            a, b = nodes
            load_a = loads[a]
            load_b = loads[b]
            if not held:
                first, second, share = a, b, 0.5
            elif load_a >= load_b if descending else load_a <= load_b:
                first, second, share = a, b, load_b / held
            else:
                first, second, share = b, a, load_a / held
            chunk = ceil(total * share)  # share <= 1: never more than the fragment's reads
            loads[first] += chunk
            rows[first][f] = chunk
            loads[second] += total - chunk
            rows[second][f] = total - chunk
            continue
        ranked = sorted(nodes, key=by_load, reverse=descending)  # stable: ties keep node order
        if held and count <= 4:  # unrolled: half the cost of the loop below for 3 or 4 holders
            if count == 4:
                a, b, c, d = ranked
                load_a, load_b, load_c, load_d = loads[a], loads[b], loads[c], loads[d]
                chunk_a = ceil(total * (load_d / held))
                chunk_b = ceil(total * (load_c / held))
                chunk_c = ceil(total * (load_b / held))
                chunk_d = total - chunk_a - chunk_b - chunk_c
                if chunk_d >= 0:  # else the loop caps the chunks
                    loads[a] = load_a + chunk_a
                    loads[b] = load_b + chunk_b
                    loads[c] = load_c + chunk_c
                    loads[d] = load_d + chunk_d
                    rows[a][f] = chunk_a
                    rows[b][f] = chunk_b
                    rows[c][f] = chunk_c
                    rows[d][f] = chunk_d
                    continue
            else:
                a, b, c = ranked
                load_a, load_b, load_c = loads[a], loads[b], loads[c]
                chunk_a = ceil(total * (load_c / held))
                chunk_b = ceil(total * (load_b / held))
                chunk_c = total - chunk_a - chunk_b
                if chunk_c >= 0:
                    loads[a] = load_a + chunk_a
                    loads[b] = load_b + chunk_b
                    loads[c] = load_c + chunk_c
                    rows[a][f] = chunk_a
                    rows[b][f] = chunk_b
                    rows[c][f] = chunk_c
                    continue
        before = list(map(by_load, ranked))  # participations are fixed before any chunk is dealt
        left = total
        even = 1.0 / count
        for w, load in zip(ranked, before[:0:-1]):  # position i takes the share of position last - i
            chunk = ceil(total * (load / held if held else even))
            if chunk > left:  # MDDE let the last holder go negative here; cap the chunk instead
                chunk = left
            left -= chunk
            loads[w] += chunk
            rows[w][f] = chunk
        w = ranked[-1]
        loads[w] += left
        rows[w][f] = left
    return np.array(rows, dtype=np.int64), loads


VECTOR_DEAL_MIN_STEPS = 48
"""From this many fragments with reads left over, try the vectorised fixed point first."""

SMALL_CELLS = 160
"""Up to this many allocation cells (e.g. 4 x 20, 8 x 20) plain Python lists beat numpy's per-call cost."""


def _redistribute_even(alloc: np.ndarray, fragment_reads: np.ndarray) -> np.ndarray:
    """The even split: equal shares, spare reads one each to the least-loaded holders."""
    if alloc.size <= SMALL_CELLS:
        return _redistribute_small(alloc, fragment_reads)
    return _redistribute_arrays(alloc, fragment_reads)


def _redistribute_arrays(alloc: np.ndarray, fragment_reads: np.ndarray) -> np.ndarray:
    """The even split on arrays: equal shares at once, only the left-over reads dealt in order."""
    replica_count = alloc.sum(axis=0)
    if not replica_count.all():
        _raise_no_replica(replica_count)
    share, remainder = np.divmod(fragment_reads, replica_count)
    new_reads = alloc * share  # every replica's equal share; independent of processing order

    # Only the remainders depend on the order. A node's load when fragment f is dealt is its
    # cumulative equal shares up to f in processing order plus the remainders dealt so far; f's
    # own equal share is the same on all of f's replicas, so including it changes no ranking.
    # Candidates are ranked by one integer, load * W + node (smaller load, then lower index);
    # the node is key % W and each remainder read dealt to a node adds W to its later keys.
    order = np.lexsort((-fragment_reads, replica_count))  # stable: ties keep fragment index order
    steps = np.flatnonzero(remainder[order])  # positions (in processing order) with reads left over
    if not steps.size:
        return new_reads
    pending = order[steps]
    w_count = alloc.shape[0]
    keys = np.cumsum(new_reads.T[order], axis=0)[steps] * w_count + np.arange(w_count)
    settled = 0
    dealt = [0] * w_count
    if steps.size >= VECTOR_DEAL_MIN_STEPS:
        chosen, settled = _deal_fixed_point(keys, alloc.T[pending], remainder[pending])
        new_reads[:, pending[:settled]] += chosen[:settled].T
        if settled == steps.size:
            return new_reads
        dealt = (chosen[:settled].sum(axis=0) * w_count).tolist()
    rows, cols = _deal_sequential(keys[settled:], alloc, pending[settled:], replica_count, remainder, dealt)
    if len(rows) <= 8:
        for w, f in zip(rows, cols):
            new_reads[w, f] += 1
    else:
        new_reads[rows, cols] += 1
    return new_reads


def _raise_no_replica(replica_count: np.ndarray) -> None:
    missing = np.flatnonzero(np.asarray(replica_count) == 0)
    raise NoReplicaError(int(missing[0]), f"fragments without replica: {missing[:10].tolist()}")


def _redistribute_small(alloc: np.ndarray, fragment_reads: np.ndarray) -> np.ndarray:
    """The even split fragment by fragment on lists: the fastest form for small shapes.

    ``loads[w]`` is node w's reads dealt so far (equal shares and left-overs); a fragment's left-over
    reads go to its least-loaded replicas, ties to the lower node index (``sorted`` is stable).
    """
    w_count, f_count, replica_count, counts, holders = _replica_layout(alloc)
    if len(holders) == f_count:  # one replica each: every fragment's reads go to its only node
        return alloc * fragment_reads
    starts = [0] * f_count
    position = 0
    for f, count in enumerate(counts):
        starts[f] = position
        position += count
    reads = fragment_reads.tolist()
    loads = [0] * w_count
    rows: list[list[int]] = [[0] * f_count for _ in range(w_count)]
    for f in np.lexsort((-fragment_reads, replica_count)).tolist():
        count = counts[f]
        nodes = holders[starts[f] : starts[f] + count]
        share, extra = divmod(reads[f], count)
        for w in nodes:
            loads[w] += share
            rows[w][f] = share
        if extra:
            for w in sorted(nodes, key=loads.__getitem__)[:extra]:
                loads[w] += 1
                rows[w][f] += 1
    return np.array(rows, dtype=np.int64)


def _deal_sequential(
    keys: np.ndarray,
    alloc: np.ndarray,
    pending: np.ndarray,
    replica_count: np.ndarray,
    remainder: np.ndarray,
    dealt: list[int],
) -> tuple[list[int], list[int]]:
    """Deal the left-over reads one fragment at a time; returns the (node, fragment) cells to bump.

    ``dealt[w]`` is W times the left-over reads node w already got (updated in place).
    """
    w_count = alloc.shape[0]
    counts = replica_count[pending].tolist()
    holders = alloc.T[pending].nonzero()[1].tolist()  # each fragment's nodes, ascending, back to back
    rows: list[int] = []
    cols: list[int] = []
    start = 0
    for f, key, count, extra in zip(pending.tolist(), keys.tolist(), counts, remainder[pending].tolist()):
        end = start + count
        if count == 2:  # the common case after one copy: one read left, to the lighter node
            a, b = holders[start], holders[start + 1]
            chosen: list[int] = [a if key[a] + dealt[a] < key[b] + dealt[b] else b]
        else:
            if count == w_count:  # held everywhere: no need to look nodes up
                ranked = [k + d for k, d in zip(key, dealt)]
            else:
                ranked = [key[w] + dealt[w] for w in holders[start:end]]
            if extra == 1:
                chosen = [min(ranked) % w_count]
            else:
                ranked.sort()
                chosen = [k % w_count for k in ranked[:extra]]
        for w in chosen:
            dealt[w] += w_count
            rows.append(w)
            cols.append(f)
        start = end
    return rows, cols


def _deal_fixed_point(keys: np.ndarray, holds: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, int]:
    """Deal all steps at once by iterating: choices <- best nodes given reads dealt by choices.

    Row s of the result marks the nodes that get one of step s's left-over reads. Step s depends
    only on earlier steps, so once two successive rounds agree on steps 0..p-1 those steps are
    final; the returned ``settled`` is that p (all steps when the rounds agree entirely, which is
    then the sequential answer). Loads are usually far apart compared to the few left-over reads,
    so this settles in two or three rounds; when rounds barely advance (near-equal loads, e.g.
    everything replicated everywhere), it stops and the caller deals the rest sequentially.
    """
    step_count, w_count = keys.shape
    sentinel = np.iinfo(np.int64).max
    base = np.where(holds, keys, sentinel)
    kth = (extra - 1)[:, None]
    chosen = np.zeros(holds.shape, dtype=np.int64)
    settled = 0
    while True:
        before = np.cumsum(chosen, axis=0) - chosen  # reads dealt to each node in earlier steps
        ranked = np.where(holds, base + before * w_count, sentinel)
        cutoff = np.take_along_axis(np.sort(ranked, axis=1), kth, axis=1)
        update = (ranked <= cutoff).astype(np.int64)
        differs = np.flatnonzero((update != chosen).any(axis=1))
        agreed = int(differs[0]) if differs.size else step_count
        chosen = update
        if agreed == step_count:
            return chosen, step_count
        if agreed - settled < max(1, step_count // 8) and settled > 0:
            return chosen, agreed
        settled = max(settled, agreed, 1)  # round 1 always settles step 0


# ---------------------------------------------------------------------------------------------
# Mapping-based entry point (CLI, estimate-request events): string ids instead of indices.


def natural_key(identifier: str) -> tuple[Any, ...]:
    """Sort key that orders ``f2`` before ``f10`` so string ids keep their numeric order."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", identifier))


class EstimateCase(BaseModel):
    """An estimate request keyed by string ids.

    Node order is the order of ``allocation``: it is the node index (the first holders get the reads
    of a fragment with fewer reads than replicas; ties in participation keep it). Fragments are
    ordered naturally by id (``f2`` before ``f10``), the "fragment index" that breaks ties between
    fragments with equal replicas and reads.
    """

    # Finite numbers only, bounded so that τ′ = τ·(1 + δ + β)^±1 stays finite: the answer is JSON.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    allocation: dict[str, list[str]] = Field(min_length=1)
    baseline_reads: dict[str, dict[str, NonNegativeInt]]
    baseline_throughput: NonNegativeFloat = Field(le=1e15)
    j: float = Field(default=DEFAULT_J, ge=-1e6, le=1e6)
    k: float = Field(default=DEFAULT_K, ge=-1e6, le=1e6)
    split: Split = DEFAULT_SPLIT

    @model_validator(mode="after")
    def _check_ids(self) -> EstimateCase:
        for node, fragments in self.allocation.items():
            if len(set(fragments)) != len(fragments):
                raise ValueError(f"allocation.{node} lists a fragment twice")
        unknown = [n for n in self.baseline_reads if n not in self.allocation]
        if unknown:
            raise ValueError(f"baseline_reads: nodes {unknown} are not in allocation")
        held = {f for fragments in self.allocation.values() for f in fragments}
        for node, row in self.baseline_reads.items():
            orphans = sorted(f for f, r in row.items() if f not in held)
            if orphans:
                raise ValueError(f"baseline_reads.{node}: fragments {orphans} have no replica in allocation")
        return self

    @property
    def node_ids(self) -> list[str]:
        return list(self.allocation)

    @property
    def fragment_ids(self) -> list[str]:
        ids = {f for fragments in self.allocation.values() for f in fragments}
        return sorted(ids, key=natural_key)


def estimate_mapping(case: Mapping[str, Any] | EstimateCase) -> dict[str, Any]:
    """:func:`estimate` over string ids; input and output shapes are those of ``mdde-stream estimate``.

    Raises ``pydantic.ValidationError`` (which names the bad field) for malformed input.
    """
    parsed = case if isinstance(case, EstimateCase) else EstimateCase.model_validate(case)
    nodes, fragments = parsed.node_ids, parsed.fragment_ids
    f_index = {f: i for i, f in enumerate(fragments)}
    alloc = np.zeros((len(nodes), len(fragments)), dtype=np.bool_)
    reads = np.zeros(alloc.shape, dtype=np.int64)
    for w, node in enumerate(nodes):
        alloc[w, [f_index[f] for f in parsed.allocation[node]]] = True
        for fragment, value in parsed.baseline_reads.get(node, {}).items():
            reads[w, f_index[fragment]] = value
    result = estimate(alloc, (reads, parsed.baseline_throughput), parsed.j, parsed.k, parsed.split)
    return {
        "throughput": result.throughput,
        "reads": {
            node: {f: int(result.reads[w, f_index[f]]) for f in sorted(parsed.allocation[node], key=natural_key)}
            for w, node in enumerate(nodes)
        },
        "node_reads": dict(zip(nodes, result.node_reads.tolist())),
        "imbalance_baseline": result.imbalance_baseline,
        "imbalance_current": result.imbalance_current,
    }
