"""The fragmenter: equal-size horizontal fragments formed per data node (thesis §3.2.1, lines 1664–1682).

Records are loaded onto the nodes first — node ``w`` holds a contiguous block of keys, in node order,
as YCSB inserted them through MDDE's registry (under the *latest* workload the last node holds the
newest, hottest keys: the thesis's baseline reads 2.9 / 4.3 / 7.2 / 85.6 %). Then each node's records
are cut into that node's fragments. Two things decide which records end up together and which index
each fragment gets, and both are explicit options here:

* **grouping** — ``hashed`` (default): a node's records are grouped into its fragments in a seeded,
  deterministic pseudo-random order (a 64-bit mix of the key and the seed), as MDDE's fragmenter did
  by taking each node's record set in the order the store listed it, which is not key order. Hot keys
  therefore spread over all of a node's fragments. ``contiguous``: fragments are key ranges (one
  fragment of the latest workload's hot node then carries ~69 % of all reads).
* **numbering** — which node's fragments carry which block of indices. ``node`` (default): f0…f4 on
  n0, f5…f9 on n1, …; ``thesis``: the blocks belong to w0, w2, w3, w1 in that order (f0–f4 on w0,
  f5–f9 on w2, f10–f14 on w3, f15–f19 on w1), the numbering the thesis's run shows in Table 5.3
  (MDDE's registry numbered fragments in a hash map's node order). Greedy agents copy in index order,
  so this decides when the hot fragments move. Any permutation of the nodes may be given instead.

Everything downstream works in **slots**: slot ``s`` is the ``s``-th record in fragment order, and
fragment ``f`` is the slot range ``[f·R/F, (f+1)·R/F)``, so stores, data nodes and benchmark tasks
keep contiguous ranges. A workload chooses **keys**; :attr:`Layout.record_slot` maps key → slot.
With ``contiguous`` grouping and ``node`` numbering the map is the identity.

Pure integer arithmetic: the same layout in every process and on every run (nothing depends on
Python's hash randomisation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from mdde_stream.events import RecordLayout

Grouping = Literal["hashed", "contiguous"]
NUMBERINGS: dict[str, tuple[int, ...] | None] = {"node": None, "thesis": (0, 2, 3, 1)}
"""Named fragment numberings: node index of each block of fragment indices (None: node order)."""

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def node_ids(node_count: int) -> list[str]:
    return [f"n{w}" for w in range(node_count)]


def fragment_ids(fragment_count: int) -> list[str]:
    return [f"f{f}" for f in range(fragment_count)]


def block_order(numbering: str | Sequence[int], node_count: int) -> tuple[int, ...]:
    """The node of each block of fragment indices for a named numbering or an explicit permutation."""
    if isinstance(numbering, str):
        if numbering not in NUMBERINGS:
            raise ValueError(f"unknown fragment numbering {numbering!r}: use one of {sorted(NUMBERINGS)} or a node permutation")
        order = NUMBERINGS[numbering]
        if order is None:
            return tuple(range(node_count))
        if len(order) != node_count:
            raise ValueError(f"fragment numbering {numbering!r} is defined for {len(order)} nodes, not {node_count}")
        return order
    order = tuple(int(w) for w in numbering)
    if sorted(order) != list(range(node_count)):
        raise ValueError(f"fragment numbering {list(order)} is not a permutation of the {node_count} node indices")
    return order


def _mix64(values: np.ndarray, seed: int) -> np.ndarray:
    """SplitMix64's finaliser over ``values + seed``: a fixed, well-spread 64-bit hash (wraps on purpose)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9) & _MASK64
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB) & _MASK64
        return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class Layout:
    """The initial fragmentation: where every record sits and which node holds which fragment."""

    record_slot: np.ndarray
    """key -> slot (a permutation of ``range(R)``)."""
    record_fragment: np.ndarray
    """key -> fragment index (what a benchmark needs to count reads per fragment)."""
    ranges: dict[str, tuple[int, int]]
    """fragment -> slot range ``[start, end)``."""
    allocation: dict[str, list[str]]
    """node -> fragments it starts with (every node present, in node order)."""

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``(record_fragment, ranges, allocation)``."""
        return iter((self.record_fragment, self.ranges, self.allocation))


def fragment_layout(
    record_count: int,
    node_count: int,
    fragment_count: int,
    grouping: Grouping = "hashed",
    numbering: str | Sequence[int] = "node",
    seed: int = 0,
) -> Layout:
    """The layout of ``record_count`` records over ``node_count`` nodes in ``fragment_count`` fragments.

    Fragment ``f`` covers slots ``[f·R//F, (f+1)·R//F)`` and belongs to block ``f·W//F``; block ``b`` is
    node ``order[b]``. Each node's keys are the contiguous key range of its block's size, taken in node
    order; ``hashed`` grouping lays them into the block's slots sorted by their 64-bit mix.
    """
    if node_count < 1:
        raise ValueError(f"node_count must be ≥ 1, got {node_count}")
    if fragment_count < node_count:
        raise ValueError(f"fragment_count ({fragment_count}) must be ≥ node_count ({node_count}): every node starts with data")
    if record_count < fragment_count:
        raise ValueError(f"record_count ({record_count}) must be ≥ fragment_count ({fragment_count}): no empty fragments")
    if grouping not in ("hashed", "contiguous"):
        raise ValueError(f"unknown grouping {grouping!r}: use 'hashed' or 'contiguous'")
    return _layout(record_count, node_count, fragment_count, grouping, block_order(numbering, node_count), seed)


@lru_cache(maxsize=32)
def _layout(record_count: int, node_count: int, fragment_count: int, grouping: str,
            order: tuple[int, ...], seed: int) -> Layout:
    bounds = [f * record_count // fragment_count for f in range(fragment_count + 1)]
    frags = fragment_ids(fragment_count)
    ranges = {frags[f]: (bounds[f], bounds[f + 1]) for f in range(fragment_count)}
    allocation: dict[str, list[str]] = {n: [] for n in node_ids(node_count)}
    # Slot range of each node: its block of fragments.
    node_slots: dict[int, tuple[int, int]] = {}
    for f in range(fragment_count):
        w = order[f * node_count // fragment_count]
        allocation[f"n{w}"].append(frags[f])
        start, end = node_slots.get(w, (bounds[f], bounds[f + 1]))
        node_slots[w] = (min(start, bounds[f]), max(end, bounds[f + 1]))
    record_slot = np.empty(record_count, dtype=np.int64)
    key_start = 0
    for w in range(node_count):
        slot_start, slot_end = node_slots[w]
        keys = np.arange(key_start, key_start + slot_end - slot_start, dtype=np.int64)
        key_start += keys.size
        if grouping == "hashed":
            keys = keys[np.argsort(_mix64(keys, seed), kind="stable")]
        record_slot[keys] = np.arange(slot_start, slot_end, dtype=np.int64)
    slot_fragment = np.repeat(np.arange(fragment_count, dtype=np.int32), np.diff(bounds))
    record_fragment = slot_fragment[record_slot]
    for array in (record_slot, record_fragment):
        array.setflags(write=False)
    return Layout(record_slot, record_fragment, ranges, allocation)


def layout_of(spec: RecordLayout, record_count: int, fragment_count: int) -> Layout:
    """The layout a :class:`RecordLayout` (as carried by benchmark requests and tasks) describes."""
    return fragment_layout(record_count, spec.nodes, fragment_count, spec.grouping, spec.numbering or "node", spec.seed)


def record_layout(node_count: int, grouping: Grouping, numbering: str | Sequence[int], seed: int) -> RecordLayout:
    """The wire description of a layout (what a benchmark worker needs to map keys to slots)."""
    order = block_order(numbering, node_count)
    return RecordLayout(nodes=node_count, grouping=grouping,
                        numbering=[] if order == tuple(range(node_count)) else list(order), seed=seed)
