"""The fragmenter: equal fragments formed per data node, hashed grouping, explicit numbering."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mdde_stream.registry import fragment_layout
from mdde_stream.registry.fragmenter import layout_of, record_layout
from mdde_stream.workloads import PRESETS, generate_keys

SHAPES = [(10_000, 4, 20), (103, 3, 7), (20, 4, 20), (1_000, 2, 2), (99_999, 5, 40), (7, 1, 1)]


@pytest.mark.parametrize(("records", "nodes", "fragments"), SHAPES)
@pytest.mark.parametrize("grouping", ["hashed", "contiguous"])
def test_slot_ranges_are_contiguous_equal_and_cover_every_record(
    records: int, nodes: int, fragments: int, grouping: str
) -> None:
    layout = fragment_layout(records, nodes, fragments, grouping)  # type: ignore[arg-type]
    assert sorted(layout.record_slot.tolist()) == list(range(records))  # a permutation: every record once
    ranges = layout.ranges
    assert list(ranges) == [f"f{i}" for i in range(fragments)]
    starts, ends = [a for a, _ in ranges.values()], [b for _, b in ranges.values()]
    assert starts[0] == 0 and ends[-1] == records and starts[1:] == ends[:-1]
    sizes = np.array([b - a for a, b in ranges.values()])
    assert sizes.max() - sizes.min() <= 1 and sizes.min() >= 1
    for i, (a, b) in enumerate(ranges.values()):  # key -> fragment agrees with the slot ranges
        keys = np.flatnonzero((layout.record_slot >= a) & (layout.record_slot < b))
        assert np.all(layout.record_fragment[keys] == i)
    assert list(layout.allocation) == [f"n{w}" for w in range(nodes)]
    placed = sorted((f for frags in layout.allocation.values() for f in frags), key=lambda f: int(f[1:]))
    assert placed == list(ranges)
    per_node = [len(f) for f in layout.allocation.values()]
    assert max(per_node) - min(per_node) <= 1 and min(per_node) >= 1


@pytest.mark.parametrize("grouping", ["hashed", "contiguous"])
@pytest.mark.parametrize("numbering", ["node", "thesis"])
def test_each_node_holds_one_contiguous_key_block_in_node_order(grouping: str, numbering: str) -> None:
    """Records sit on nodes as YCSB loaded them (node w: keys [w·R/W, (w+1)·R/W)); only their grouping
    into the node's fragments and the fragments' indices change."""
    layout = fragment_layout(10_000, 4, 20, grouping, numbering)  # type: ignore[arg-type]
    for w, (node, frags) in enumerate(layout.allocation.items()):
        held = np.flatnonzero(np.isin(layout.record_fragment, [int(f[1:]) for f in frags]))
        assert held.tolist() == list(range(w * 2_500, (w + 1) * 2_500)), node


def test_thesis_default_is_five_fragments_of_500_records_per_node() -> None:
    layout = fragment_layout(10_000, 4, 20)
    assert layout.allocation["n0"] == ["f0", "f1", "f2", "f3", "f4"]
    assert layout.allocation["n3"] == ["f15", "f16", "f17", "f18", "f19"]
    assert layout.ranges["f0"] == (0, 500) and layout.ranges["f19"] == (9_500, 10_000)


def test_thesis_numbering_puts_the_index_blocks_on_w0_w2_w3_w1() -> None:
    """Table 5.3's run: f0–f4 on w0, f5–f9 on w2, f10–f14 on w3 (the hot node), f15–f19 on w1."""
    layout = fragment_layout(10_000, 4, 20, numbering="thesis")
    assert layout.allocation == {
        "n0": [f"f{i}" for i in range(0, 5)],
        "n1": [f"f{i}" for i in range(15, 20)],
        "n2": [f"f{i}" for i in range(5, 10)],
        "n3": [f"f{i}" for i in range(10, 15)],
    }
    custom = fragment_layout(10_000, 4, 20, numbering=[3, 2, 1, 0])
    assert custom.allocation["n3"] == [f"f{i}" for i in range(5)]


def test_contiguous_node_numbering_is_the_identity() -> None:
    layout = fragment_layout(10_000, 4, 20, "contiguous", "node")
    assert np.array_equal(layout.record_slot, np.arange(10_000))


def test_hashed_grouping_spreads_the_hot_nodes_reads_over_its_fragments() -> None:
    """Under *latest* the last node serves ~86 % of the reads (Table 5.3's baseline 85.6 %). Contiguous
    ranges put most of them in one fragment; hashed grouping shares them, so giving away any hot fragment
    costs the node a comparable slice (Table 5.4: ~17 k of ~85 k reads per fragment)."""
    keys = generate_keys(PRESETS["latest"], seed=0)
    hashed = np.bincount(fragment_layout(10_000, 4, 20, "hashed").record_fragment[keys], minlength=20)
    contiguous = np.bincount(fragment_layout(10_000, 4, 20, "contiguous").record_fragment[keys], minlength=20)
    assert 0.84 < hashed[15:].sum() / keys.size < 0.88
    assert contiguous[19] / keys.size > 0.6
    hot = hashed[15:] / hashed[15:].sum()
    assert hot.max() < 0.35 and hot.min() > 0.1


def test_hashed_grouping_is_seeded() -> None:
    a = fragment_layout(1_000, 4, 20, seed=1).record_slot
    b = fragment_layout(1_000, 4, 20, seed=2).record_slot
    assert not np.array_equal(a, b)
    assert np.array_equal(a, fragment_layout(1_000, 4, 20, seed=1).record_slot)


def test_wire_description_rebuilds_the_same_layout() -> None:
    spec = record_layout(4, "hashed", "thesis", 7)
    assert spec.numbering == [0, 2, 3, 1]
    assert np.array_equal(layout_of(spec, 10_000, 20).record_slot,
                          fragment_layout(10_000, 4, 20, "hashed", "thesis", 7).record_slot)
    assert record_layout(4, "hashed", "node", 0).numbering == []


@pytest.mark.parametrize(("records", "nodes", "fragments"), [(10, 4, 20), (100, 0, 4), (100, 5, 4)])
def test_impossible_layouts_are_refused(records: int, nodes: int, fragments: int) -> None:
    with pytest.raises(ValueError):
        fragment_layout(records, nodes, fragments)


@pytest.mark.parametrize("numbering", ["nope", [0, 0, 1, 2], [0, 1, 2]])
def test_bad_numberings_are_refused(numbering: object) -> None:
    with pytest.raises(ValueError, match="numbering"):
        fragment_layout(1_000, 4, 20, numbering=numbering)  # type: ignore[arg-type]


def test_layout_does_not_depend_on_hash_seed() -> None:
    code = (
        "from mdde_stream.registry import fragment_layout;"
        "l = fragment_layout(1234, 3, 12); print(l.record_slot.tolist(), sorted(l.ranges.items()), l.allocation)"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": seed, "PATH": ""}, capture_output=True,
                       text=True, check=True).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1
