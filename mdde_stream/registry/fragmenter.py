"""The fragmenter: horizontal, contiguous, equal-size fragments, evenly placed in key order.

Pure integer arithmetic over record indices, so the layout is the same in every process and on
every run (nothing depends on Python's hash randomisation). Record ``i`` belongs to fragment
``i * F // R``; fragment ``f`` starts on node ``f * W // F``. With F a multiple of W every node starts
with F / W fragments (the thesis's 20 fragments over 4 nodes = 5 each); otherwise sizes differ by one.
"""

from __future__ import annotations

import numpy as np


def node_ids(node_count: int) -> list[str]:
    return [f"n{w}" for w in range(node_count)]


def fragment_ids(fragment_count: int) -> list[str]:
    return [f"f{f}" for f in range(fragment_count)]


def fragment_layout(
    record_count: int, node_count: int, fragment_count: int
) -> tuple[np.ndarray, dict[str, tuple[int, int]], dict[str, list[str]]]:
    """(record index -> fragment index, fragment -> record range [start, end), node -> fragments)."""
    if node_count < 1:
        raise ValueError(f"node_count must be ≥ 1, got {node_count}")
    if fragment_count < node_count:
        raise ValueError(f"fragment_count ({fragment_count}) must be ≥ node_count ({node_count}): every node starts with data")
    if record_count < fragment_count:
        raise ValueError(f"record_count ({record_count}) must be ≥ fragment_count ({fragment_count}): no empty fragments")
    bounds = [f * record_count // fragment_count for f in range(fragment_count + 1)]
    frags = fragment_ids(fragment_count)
    ranges = {frags[f]: (bounds[f], bounds[f + 1]) for f in range(fragment_count)}
    record_fragment = np.repeat(np.arange(fragment_count, dtype=np.int32), np.diff(bounds))
    allocation: dict[str, list[str]] = {n: [] for n in node_ids(node_count)}
    for f in range(fragment_count):
        allocation[f"n{f * node_count // fragment_count}"].append(frags[f])
    return record_fragment, ranges, allocation
