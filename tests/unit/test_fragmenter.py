"""The fragmenter: contiguous, equal, deterministic fragments placed evenly in key order."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mdde_stream.registry import fragment_layout


@pytest.mark.parametrize(
    ("records", "nodes", "fragments"),
    [(10_000, 4, 20), (103, 3, 7), (20, 4, 20), (1_000, 2, 2), (99_999, 5, 40), (7, 1, 1)],
)
def test_fragments_are_contiguous_equal_and_cover_every_record(records: int, nodes: int, fragments: int) -> None:
    record_fragment, ranges, allocation = fragment_layout(records, nodes, fragments)
    assert record_fragment.shape == (records,)
    assert list(ranges) == [f"f{i}" for i in range(fragments)]
    # contiguous and in key order: the fragment index never decreases and steps by one
    assert np.all(np.diff(record_fragment) >= 0) and np.all(np.diff(record_fragment) <= 1)
    starts = [a for a, _ in ranges.values()]
    ends = [b for _, b in ranges.values()]
    assert starts[0] == 0 and ends[-1] == records and starts[1:] == ends[:-1]
    sizes = np.array([b - a for a, b in ranges.values()])
    assert sizes.max() - sizes.min() <= 1 and sizes.min() >= 1
    for i, (a, b) in enumerate(ranges.values()):
        assert np.all(record_fragment[a:b] == i)
    # each fragment on exactly one node, nodes in key order, counts differ by at most one
    assert list(allocation) == [f"n{w}" for w in range(nodes)]
    placed = [f for frags in allocation.values() for f in frags]
    assert placed == list(ranges)
    per_node = [len(f) for f in allocation.values()]
    assert max(per_node) - min(per_node) <= 1 and min(per_node) >= 1


def test_thesis_default_is_five_fragments_of_500_records_per_node() -> None:
    _, ranges, allocation = fragment_layout(10_000, 4, 20)
    assert allocation["n0"] == ["f0", "f1", "f2", "f3", "f4"]
    assert allocation["n3"] == ["f15", "f16", "f17", "f18", "f19"]
    assert ranges["f0"] == (0, 500) and ranges["f19"] == (9_500, 10_000)


@pytest.mark.parametrize(("records", "nodes", "fragments"), [(10, 4, 20), (100, 0, 4), (100, 5, 4)])
def test_impossible_layouts_are_refused(records: int, nodes: int, fragments: int) -> None:
    with pytest.raises(ValueError):
        fragment_layout(records, nodes, fragments)


def test_layout_does_not_depend_on_hash_seed() -> None:
    code = (
        "from mdde_stream.registry import fragment_layout;"
        "r, g, a = fragment_layout(1234, 3, 12); print(r.sum(), sorted(g.items()), a)"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": seed, "PATH": ""}, capture_output=True,
                       text=True, check=True).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1
