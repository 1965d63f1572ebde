"""MDDE's registry estimate restated step by step, negative remainders included, for the tests.

Facts from MDDE's registry (its counterfeit benchmark runner): what it sorted, in which direction,
how it rounded and what it divided by. The tests hold :mod:`mdde_stream.estimator` to it wherever
MDDE dealt no negative read count.
"""

from __future__ import annotations

import math

import numpy as np


def mdde_registry_estimate(
    alloc: np.ndarray, reads: np.ndarray, tau: float, j: float = 0.0, k: float = 0.7
) -> tuple[float, np.ndarray]:
    """tau' and R' the way MDDE's registry computed them (node index = row, fragment ties = column).

    Fragments sorted by replica count ascending, then reads descending (a stable sort). Per fragment:
    one replica takes everything; reads <= replicas gives one read to each of the first holders by
    node index; otherwise each holder's participation is load / (sum of the holders' loads), or
    1 / |holders| while that sum is 0, the holders are sorted by participation *descending* (stable),
    the i-th takes ceil(reads * participation of the i-th from the end), and the last takes the
    remainder, negative or not. D is sum over ordered node pairs of |p_a - p_b| on participations
    (doubles), M = 2(|W| - 1), tau' = 10^(log10 tau - direction * log10(1 + delta + beta)) with
    direction -1 only when D fell.
    """
    w_count, f_count = alloc.shape
    fragment_reads = [int(r) for r in reads.sum(axis=0)]
    fragments = sorted(
        ((f, [w for w in range(w_count) if alloc[w, f]]) for f in range(f_count)),
        key=lambda item: (len(item[1]), -fragment_reads[item[0]]),
    )
    counter = [0] * w_count
    out = np.zeros((w_count, f_count), dtype=np.int64)
    for f, holders in fragments:
        total, n = fragment_reads[f], len(holders)
        if n == 1:
            deal = [(holders[0], total)]
        elif total <= n:
            deal = [(w, 1) for w in holders[:total]]
        else:
            held = sum(counter[w] for w in holders)
            participation = [(w, counter[w] / held if held > 0 else 1.0 / n) for w in holders]
            participation.sort(key=lambda item: item[1], reverse=True)
            mirrored = participation[::-1]
            deal, remaining = [], total
            for i, (w, _) in enumerate(participation):
                chunk = math.ceil(total * mirrored[i][1]) if i < n - 1 else remaining
                remaining -= chunk
                deal.append((w, chunk))
        for w, chunk in deal:
            counter[w] += chunk
            out[w, f] = chunk

    def disbalance(shares: list[float]) -> float:
        return sum(abs(x - y) for x in shares for y in shares)

    base_totals = [int(r) for r in reads.sum(axis=1)]
    d_base = disbalance([r / sum(base_totals) for r in base_totals])
    d_new = disbalance([r / float(sum(counter)) for r in counter])
    direction = -1 if d_base > d_new else 1
    m = (w_count - 1) * 2
    delta = abs(d_base - d_new) / m
    beta = abs(d_base - d_new) * ((k - j) / m) + j
    return 10 ** (math.log10(tau) - direction * math.log10(1 + delta + beta)), out
