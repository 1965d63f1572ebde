"""Data nodes on real Redis servers: generation, shuffle, reset (MDDE_STATE, MDDE_DATA_NODES)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from mdde_stream.config import Settings
from mdde_stream.datanodes import DataNodeError, DataNodes, RecordSpec, generate_records
from mdde_stream.events import ActionKind, ActionSubmitted
from mdde_stream.registry import Registry, open_registry
from mdde_stream.registry.redis_store import RedisStore
from mdde_stream.registry.testing import data_node_urls, redis_state_url, require_redis, unique_prefix

pytestmark = pytest.mark.integration

RECORDS = 2_000
COPY, DELETE = ActionKind.COPY, ActionKind.DELETE


@pytest.fixture
def nodes() -> Iterator[DataNodes]:
    urls = data_node_urls()
    assert len(urls) >= 4, f"need 4 data nodes in MDDE_DATA_NODES, got {urls}"
    for url in urls[:4]:
        require_redis(url, "data node", "MDDE_DATA_NODES")
    spec = RecordSpec(record_count=RECORDS, seed=7, key_prefix=f"t{uuid.uuid4().hex[:10]}:user")
    dn = DataNodes({f"n{i}": u for i, u in enumerate(urls[:4])}, spec, batch_size=200)
    yield dn
    for node in dn.clients:
        dn.delete_range(node, 0, RECORDS)
    dn.close()


@pytest.fixture
def registry(nodes: DataNodes) -> Iterator[Registry]:
    url = redis_state_url()
    require_redis(url)
    prefix = unique_prefix("datanodes")
    reg = open_registry(Settings(state=url), 4, 20, RECORDS, data_nodes=nodes, prefix=prefix)
    yield reg
    assert isinstance(reg.store, RedisStore)
    reg.store.wipe()


def mismatches(reg: Registry, matrix: np.ndarray) -> list[str]:
    assert reg.data_nodes is not None
    return reg.data_nodes.mismatches(matrix, reg.node_ids, reg.store.fragment_records(), reg.fragment_ids)


def step(reg: Registry, *actions: tuple[ActionKind, str, str | None, str]) -> list[bool]:
    events = [
        ActionSubmitted(run_id="t", agent=f"n{i}", agent_index=i, action_index=0, kind=k, fragment=f, source=s,
                        target=t, step_size=len(actions))
        for i, (k, f, s, t) in enumerate(actions)
    ]
    return [r.accepted for r in reg.apply_actions(events)]


def test_generation_writes_every_record_on_its_node(registry: Registry, nodes: DataNodes) -> None:
    assert mismatches(registry, registry.allocation()) == []
    counts = nodes.present_counts(registry.node_ids, registry.store.fragment_records(), registry.fragment_ids)
    assert counts.sum() == RECORDS and counts[0, :5].tolist() == [100] * 5 and counts[0, 5:].sum() == 0
    # values are the seeded generator's bytes, fields field0..field9 of 100 chars
    for index in (0, 499, 500, 1234, RECORDS - 1):
        node = f"n{index * 4 // RECORDS}"
        stored = nodes.clients[node].hgetall(nodes.spec.key(index))
        (_, expected), = generate_records(nodes.spec, index, index + 1)
        assert {k.decode(): v for k, v in stored.items()} == expected
        assert len(expected) == 10 and all(len(v) == 100 for v in expected.values())
    assert registry.store.fragment_records()["f3"] == (300, 400)


def test_moves_wait_for_shuffle_then_data_matches_allocation(registry: Registry) -> None:
    before = registry.allocation().copy()
    assert step(registry, (COPY, "f0", "n0", "n1"), (COPY, "f7", "n1", "n2"), (DELETE, "f0", None, "n0")) == [True] * 3
    assert step(registry, (COPY, "f19", "n3", "n0"), (DELETE, "f19", None, "n3")) == [True, True]
    assert mismatches(registry, before) == []  # nothing moved yet
    assert registry.shuffle() == 5
    assert mismatches(registry, registry.allocation()) == []
    assert registry.shuffle() == 0
    assert np.array_equal(registry.store.physical_matrix(), registry.allocation())


def test_shuffle_interrupted_after_a_move_reruns_it_harmlessly(registry: Registry, nodes: DataNodes) -> None:
    step(registry, (COPY, "f2", "n0", "n3"), (DELETE, "f2", None, "n0"))
    moves = registry.store.pending_moves()
    ranges = registry.store.fragment_records()
    for move in moves:  # executed, but the process "died" before marking them done
        nodes.execute(move, ranges[move.fragment])
    assert registry.shuffle() == 2
    assert mismatches(registry, registry.allocation()) == []


def test_reset_restores_data_of_changed_cells_only(registry: Registry) -> None:
    snap = registry.allocation().copy()
    step(registry, (COPY, "f1", "n0", "n2"), (DELETE, "f1", None, "n0"), (COPY, "f12", "n2", "n3"))
    registry.shuffle()
    step(registry, (COPY, "f8", "n1", "n0"), (DELETE, "f12", None, "n2"))  # queued, never shuffled
    assert registry.reset() == 5
    assert np.array_equal(registry.allocation(), snap)
    assert registry.store.pending_moves() == []
    assert mismatches(registry, snap) == []
    assert registry.reset() == 0
    assert mismatches(registry, snap) == []


def test_sync_data_follows_a_reset_made_without_data_nodes(registry: Registry, nodes: DataNodes) -> None:
    """A remote stage resets the shared state with no data nodes; the service's sync moves the data back."""
    snap = registry.allocation().copy()
    step(registry, (COPY, "f1", "n0", "n2"), (DELETE, "f1", None, "n0"))
    assert registry.sync_data() == 2  # the queue leads from the nodes to the allocation: run in order
    assert mismatches(registry, registry.allocation()) == []
    stage_side = Registry(registry.store)  # attached to the same state, without data nodes
    stage_side.reset()
    step(stage_side, (COPY, "f7", "n1", "n3"))
    assert mismatches(registry, snap) != []  # the nodes still hold the shuffled data
    assert registry.sync_data() == 3  # f1 back on n0 and off n2, f7 copied to n3
    assert mismatches(registry, registry.allocation()) == []
    assert registry.store.pending_moves() == []
    assert registry.sync_data() == 0


def test_attaching_with_data_nodes_reloads_nodes_that_disagree(registry: Registry, nodes: DataNodes) -> None:
    assert isinstance(registry.store, RedisStore)
    nodes.delete_range("n2", 1000, 1100)  # e.g. a flushed node: f10 is gone
    attached = open_registry(Settings(state=redis_state_url()), 4, 20, RECORDS, data_nodes=nodes,
                             prefix=registry.store.prefix, reuse=True)
    assert mismatches(attached, attached.allocation()) == []


def test_copy_from_a_node_without_the_data_fails_loudly(registry: Registry, nodes: DataNodes) -> None:
    with pytest.raises(DataNodeError, match="on neither node"):
        nodes.copy_range("n1", "n2", 0, 10)  # records 0..9 live on n0 only
    nodes.copy_range("n0", "n2", 0, 10)
    assert nodes.copy_range("n1", "n2", 0, 10) == 0  # source lacks them, target has them: fine


def test_large_preset_shape() -> None:
    spec = RecordSpec.preset("large", record_count=3)
    rows = list(generate_records(spec, 0, 3))
    lengths = [len(v) for _, r in rows for v in r.values()]
    assert len(rows[0][1]) == 100 and min(lengths) == max(lengths) == 3000
