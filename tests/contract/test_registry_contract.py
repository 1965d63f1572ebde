"""One contract for every allocation-state backend: MemoryStore and RedisStore (real Redis).

Both must judge every action identically (same codes, same messages), apply a repeated event id
at most once, keep the last replica of every fragment under concurrent callers, and restore the
snapshot on reset with the shuffle queue dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from mdde_stream.events import ActionKind, ActionSubmitted
from mdde_stream.registry import Code, MemoryStore, Registry, StoreError, Verdict, fragment_layout
from mdde_stream.registry.base import AllocationStore
from mdde_stream.registry.codes import reject
from mdde_stream.registry.redis_store import RedisStore
from mdde_stream.registry.testing import redis_state_url, require_redis, unique_prefix

COPY, DELETE, SKIP = ActionKind.COPY, ActionKind.DELETE, ActionKind.SKIP
NODES = ["n0", "n1", "n2"]
FRAGS = ["f0", "f1", "f2", "f3", "f4", "f5"]
ALLOC = {"n0": ["f0", "f1"], "n1": ["f2", "f3"], "n2": ["f4", "f5"]}
RANGES = {f"f{i}": (i * 10, i * 10 + 10) for i in range(6)}


def make_store(backend: str, prefix: str, dedupe_capacity: int = 250_000) -> AllocationStore:
    if backend == "memory":
        return MemoryStore(dedupe_capacity=dedupe_capacity)
    client = require_redis(redis_state_url())
    return RedisStore(client=client, prefix=prefix, dedupe_capacity=dedupe_capacity)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def prefix(backend: str) -> Iterator[str]:
    p = unique_prefix("contract")
    yield p
    if backend == "redis":
        RedisStore(client=require_redis(redis_state_url()), prefix=p).wipe()


@pytest.fixture
def store(backend: str, prefix: str) -> AllocationStore:
    s = make_store(backend, prefix)
    s.setup(NODES, FRAGS, ALLOC, RANGES)
    return s


def expected_matrix(alloc: dict[str, list[str]]) -> np.ndarray:
    m = np.zeros((len(NODES), len(FRAGS)), dtype=bool)
    for n, fs in alloc.items():
        for f in fs:
            m[NODES.index(n), FRAGS.index(f)] = True
    return m


def test_layout_and_queries(store: AllocationStore) -> None:
    assert store.is_initialised()
    assert store.node_ids() == NODES and store.fragment_ids() == FRAGS
    assert store.fragment_records() == RANGES
    assert np.array_equal(store.matrix(), expected_matrix(ALLOC))
    assert store.allocation_map() == ALLOC
    assert store.replicas("f3") == ["n1"]
    assert store.holds("n2", "f5") and not store.holds("n0", "f5")
    assert np.array_equal(store.snapshot_matrix(), store.matrix())
    assert np.array_equal(store.physical_matrix(), store.matrix())
    assert store.pending_moves() == []


def test_accepted_copy_and_delete_change_allocation_and_queue(store: AllocationStore) -> None:
    assert store.apply("e1", COPY, "f0", "n0", "n2") == Verdict(True)
    assert store.apply("e2", DELETE, "f0", None, "n0") == Verdict(True)
    assert store.apply("e3", SKIP, None, None, None) == Verdict(True)
    assert store.replicas("f0") == ["n2"]
    moves = store.pending_moves()
    assert [(m.kind, m.fragment, m.source, m.target) for m in moves] == [
        (COPY, "f0", "n0", "n2"),
        (DELETE, "f0", None, "n0"),
    ]
    assert moves[0].seq < moves[1].seq
    # physical state only changes when moves are completed (the shuffle)
    assert np.array_equal(store.physical_matrix(), expected_matrix(ALLOC))


REJECTIONS = [
    ((COPY, "f0", None, "n1"), reject(Code.MALFORMED, kind="copy", fields="fragment, source and target")),
    ((COPY, None, "n0", "n1"), reject(Code.MALFORMED, kind="copy", fields="fragment, source and target")),
    ((DELETE, "f0", "n0", None), reject(Code.MALFORMED, kind="delete", fields="fragment and target")),
    ((COPY, "f9", "n0", "n1"), reject(Code.UNKNOWN_ID, what="fragment", name="f9")),
    ((COPY, "f0", "n7", "n1"), reject(Code.UNKNOWN_ID, what="node", name="n7")),
    ((COPY, "f0", "n0", "n7"), reject(Code.UNKNOWN_ID, what="node", name="n7")),
    ((DELETE, "f9", None, "n0"), reject(Code.UNKNOWN_ID, what="fragment", name="f9")),
    ((DELETE, "f0", None, "n9"), reject(Code.LAST_REPLICA, fragment="f0", target="n9")),  # MDDE's order
    ((DELETE, "f0", None, "n1"), reject(Code.LAST_REPLICA, fragment="f0", target="n1")),  # only replica on n0
    ((COPY, "f0", "n0", "n0"), reject(Code.COPY_TO_SELF, fragment="f0", target="n0")),
    ((COPY, "f0", "n1", "n1"), reject(Code.COPY_TO_SELF, fragment="f0", target="n1")),
    ((COPY, "f0", "n1", "n2"), reject(Code.NOT_ON_NODE, fragment="f0", node="n1")),
    ((DELETE, "f0", None, "n0"), reject(Code.LAST_REPLICA, fragment="f0", target="n0")),
]


def test_delete_checks_follow_mddes_order(store: AllocationStore) -> None:
    """With two replicas the node checks come after the last-replica rule: unknown node, then not held."""
    assert store.apply("c", COPY, "f0", "n0", "n1").accepted
    assert store.apply("d1", DELETE, "f0", None, "n9") == reject(Code.UNKNOWN_ID, what="node", name="n9")
    assert store.apply("d2", DELETE, "f0", None, "n2") == reject(Code.NOT_ON_NODE, fragment="f0", node="n2")
    assert Code.MALFORMED.value not in {0, 2100, 2101, 2201, 2202, 2300, 2301, 2350, 2500, 2501, 2540,
                                        2601, 2602, 2603, 2604, 2605, 2606, 3100, 4100, 4101, 9999}


@pytest.mark.parametrize(("action", "expected"), REJECTIONS, ids=[f"{e.code}-{i}" for i, (_, e) in enumerate(REJECTIONS)])
def test_rejections_have_stable_codes_and_messages(store: AllocationStore, action: tuple, expected: Verdict) -> None:
    before = store.matrix().copy()
    assert store.apply("bad", *action) == expected
    assert np.array_equal(store.matrix(), before)
    assert store.pending_moves() == []


def test_duplicate_replica(store: AllocationStore) -> None:
    assert store.apply("a", COPY, "f0", "n0", "n1").accepted
    assert store.apply("b", COPY, "f0", "n0", "n1") == reject(Code.DUPLICATE_REPLICA, fragment="f0", target="n1")
    assert store.apply("c", COPY, "f0", "n1", "n0") == reject(Code.DUPLICATE_REPLICA, fragment="f0", target="n0")


def test_repeated_event_id_applies_at_most_once(store: AllocationStore) -> None:
    first = store.apply("same", COPY, "f0", "n0", "n1")
    assert first.accepted
    assert store.apply("del", DELETE, "f0", None, "n1").accepted  # state moved on
    # the redelivery would now be valid again, but it must not apply twice
    assert store.apply("same", COPY, "f0", "n0", "n1") == first
    assert store.replicas("f0") == ["n0"]
    assert len(store.pending_moves()) == 2
    assert store.verdict_of("same") == first
    assert store.verdict_of("never-seen") is None
    rejected = store.apply("r", DELETE, "f2", None, "n1")
    assert store.apply("r", SKIP, None, None, None) == rejected  # first verdict wins, whatever is resent


def test_remembered_verdicts_are_bounded_oldest_first(backend: str, prefix: str) -> None:
    s = make_store(backend, prefix, dedupe_capacity=2)
    s.setup(NODES, FRAGS, ALLOC, RANGES)
    s.apply_many([("e1", COPY, "f0", "n0", "n1"), ("e2", SKIP, None, None, None), ("e3", DELETE, "f0", None, "n1")])
    assert s.verdict_of("e1") is None
    assert s.verdict_of("e2") == Verdict(True) and s.verdict_of("e3") == Verdict(True)


def test_apply_many_is_ordered_and_dedupes_within_a_batch(store: AllocationStore) -> None:
    verdicts = store.apply_many(
        [
            ("a", COPY, "f2", "n1", "n0"),
            ("b", DELETE, "f2", None, "n1"),
            ("c", DELETE, "f2", None, "n0"),  # now the last replica
            ("a", COPY, "f2", "n1", "n0"),  # same id again in the batch
        ]
    )
    assert [v.accepted for v in verdicts] == [True, True, False, True]
    assert verdicts[2].code is Code.LAST_REPLICA
    assert store.replicas("f2") == ["n0"]


def test_redis_dedupe_survives_a_new_client() -> None:
    """In-memory state dies with its object; Redis state must serve a restarted process."""
    prefix = unique_prefix("contract")
    store = make_store("redis", prefix)
    store.setup(NODES, FRAGS, ALLOC, RANGES)
    v = store.apply("x", COPY, "f1", "n0", "n2")
    again = make_store("redis", prefix)  # as a restarted service would attach
    assert again.is_initialised() and again.node_ids() == NODES
    assert again.apply("x", COPY, "f1", "n0", "n2") == v
    assert again.replicas("f1") == ["n0", "n2"]
    assert len(again.pending_moves()) == 1
    again.wipe()
    assert not store.is_initialised()


def test_snapshot_and_reset(store: AllocationStore) -> None:
    store.apply("1", COPY, "f0", "n0", "n1")
    store.apply("2", COPY, "f0", "n0", "n2")
    store.snapshot()
    snap = store.matrix().copy()
    store.apply("3", DELETE, "f0", None, "n0")
    store.apply("4", COPY, "f5", "n2", "n0")
    store.apply("5", COPY, "f5", "n2", "n1")
    assert store.reset() == 3
    assert np.array_equal(store.matrix(), snap)
    assert store.pending_moves() == []
    assert store.reset() == 0
    # after a reset the replica counts are right again: deleting down to one replica still works
    assert store.apply("6", DELETE, "f0", None, "n0").accepted
    assert store.apply("7", DELETE, "f0", None, "n1").accepted
    assert store.apply("8", DELETE, "f0", None, "n2").code is Code.LAST_REPLICA


def test_complete_moves_is_a_prefix_and_idempotent(store: AllocationStore) -> None:
    store.apply("1", COPY, "f0", "n0", "n1")
    store.apply("2", DELETE, "f0", None, "n0")
    store.apply("3", COPY, "f4", "n2", "n0")
    moves = store.pending_moves()
    assert store.complete_moves(moves[:1]) == 1
    assert store.complete_moves(moves[:2]) == 1  # the first is already done
    phys = store.physical_matrix()
    assert phys[1, 0] and not phys[0, 0] and not phys[0, 4]
    assert store.pending_moves() == moves[2:]
    store.apply("4", COPY, "f1", "n0", "n1")
    later = store.pending_moves()
    assert [m.seq for m in later] == [moves[2].seq, later[1].seq]
    with pytest.raises(StoreError):
        store.complete_moves(later[1:])  # skipping the head is a bug in the caller
    assert store.drain_moves() == later
    assert store.pending_moves() == []
    assert np.array_equal(store.physical_matrix(), store.matrix())


def test_reset_leaves_physical_to_the_caller(store: AllocationStore) -> None:
    store.apply("1", COPY, "f0", "n0", "n1")
    store.drain_moves()
    store.reset()
    assert store.physical_matrix()[1, 0]  # data still there until the registry restores the nodes
    store.set_physical(store.snapshot_matrix())
    assert np.array_equal(store.physical_matrix(), expected_matrix(ALLOC))


def test_setup_wipes_previous_state(store: AllocationStore) -> None:
    store.apply("old", COPY, "f0", "n0", "n1")
    store.setup(NODES, FRAGS, ALLOC, RANGES)
    assert store.verdict_of("old") is None
    assert store.pending_moves() == []
    assert np.array_equal(store.matrix(), expected_matrix(ALLOC))


@pytest.mark.parametrize(
    "alloc",
    [{"n0": ["f0"]}, {"n0": ["f0", "f1", "f2", "f3", "f4", "f5"], "n9": []}, {"n0": ["f0", "f1", "f2", "f3", "f4", "fX"]}],
)
def test_setup_rejects_bad_layouts(backend: str, prefix: str, alloc: dict) -> None:
    with pytest.raises(ValueError):
        make_store(backend, prefix).setup(NODES, FRAGS, alloc, RANGES)


def test_uninitialised_store_refuses_actions(backend: str, prefix: str) -> None:
    s = make_store(backend, prefix)
    assert not s.is_initialised()
    with pytest.raises(StoreError):
        s.apply("e", COPY, "f0", "n0", "n1")


def test_wipe_removes_the_whole_state(store: AllocationStore) -> None:
    store.apply("before", COPY, "f0", "n0", "n1")
    assert store.wipe() > 0
    assert not store.is_initialised()
    assert store.wipe() == 0
    with pytest.raises(StoreError):
        store.apply("after", COPY, "f0", "n0", "n1")
    store.setup(NODES, FRAGS, ALLOC, RANGES)  # usable again, with nothing remembered
    assert store.verdict_of("before") is None


def test_last_replica_survives_concurrent_deletes(backend: str, prefix: str) -> None:
    """Every node holds f0; 8 threads race to delete it everywhere: exactly W-1 deletes win."""
    s = make_store(backend, prefix)
    s.setup(NODES, FRAGS, {"n0": FRAGS, "n1": ["f0"], "n2": ["f0"]}, RANGES)
    stores = [s if backend == "memory" else make_store(backend, prefix) for _ in range(8)]
    verdicts: list[Verdict] = []
    barrier = threading.Barrier(len(stores))

    def worker(i: int, st: AllocationStore) -> None:
        barrier.wait()
        for j in range(30):
            verdicts.append(st.apply(f"t{i}-{j}", DELETE, "f0", None, NODES[(i + j) % 3]))

    threads = [threading.Thread(target=worker, args=(i, st)) for i, st in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(v.accepted for v in verdicts) == 2
    assert len(s.replicas("f0")) == 1
    assert {v.code for v in verdicts if not v.accepted} <= {Code.LAST_REPLICA, Code.NOT_ON_NODE}


def _action(agent: int, kind: ActionKind, fragment: str | None = None, source: str | None = None,
            target: str | None = None, step: int = 1) -> ActionSubmitted:
    return ActionSubmitted(run_id="r", episode=0, step=step, agent=f"n{agent}", agent_index=agent,
                           action_index=0, kind=kind, fragment=fragment, source=source, target=target, step_size=3)


def test_registry_step_orders_by_agent_and_flags_conflicts(store: AllocationStore) -> None:
    reg = Registry(store)
    # agent 2 and agent 1 both copy f0 to themselves... but agent 0 deletes f0's only other copy first
    actions = [
        _action(2, DELETE, "f2", target="n1"),  # invalid at start (last replica) -> not a conflict
        _action(1, COPY, "f0", "n0", "n1"),
        _action(0, COPY, "f0", "n0", "n1"),
    ]
    assert reg.valid_action(COPY, "f0", "n0", "n1").accepted
    results = reg.apply_actions(actions)
    assert [r.agent_index for r in results] == [0, 1, 2]
    assert [r.accepted for r in results] == [True, False, False]
    assert results[1].code == Code.DUPLICATE_REPLICA and results[1].conflict
    assert results[2].code == Code.LAST_REPLICA and not results[2].conflict
    assert all(r.run_id == "r" and r.step == 1 for r in results)
    assert {r.action_event_id for r in results} == {a.event_id for a in actions}
    assert reg.valid_action(COPY, "f0", "n0", "n1").code is Code.DUPLICATE_REPLICA
    assert reg.fragments_of("n1") == ["f0", "f2", "f3"]
    assert reg.replicas("f0") == ["n0", "n1"]
    assert reg.counts() == {"nodes": 3, "fragments": 6, "replicas": 7}
    assert reg.allocation_map()["n1"] == ["f0", "f2", "f3"]
    assert np.array_equal(reg.allocation(), store.matrix())
    # redelivering the step returns the recorded verdicts and changes nothing
    again = reg.apply_actions(actions)
    assert [(r.accepted, r.code) for r in again] == [(r.accepted, r.code) for r in results]
    assert reg.counts()["replicas"] == 7


def test_registry_reset_without_data_nodes(store: AllocationStore) -> None:
    reg = Registry(store)
    reg.apply_actions([_action(1, COPY, "f0", "n0", "n1")])
    assert reg.shuffle() == 1  # retired: no data nodes to move anything on
    assert reg.reset() == 1
    assert reg.allocation_map() == ALLOC
    # Nothing moved the data back: the physical matrix still says n1 holds f0, so that a registry
    # with the data nodes (the service's sync_data) moves it back later.
    moved = expected_matrix(ALLOC)
    moved[1, 0] = True
    assert np.array_equal(store.physical_matrix(), moved)


def test_fragmenter_layout_loads_into_store(store: AllocationStore) -> None:
    _, ranges, alloc = fragment_layout(1000, 4, 20)
    store.setup(list(alloc), list(ranges), alloc, ranges)
    assert store.matrix().sum(axis=1).tolist() == [5, 5, 5, 5]
    assert store.matrix().sum(axis=0).tolist() == [1] * 20


def test_the_fence_only_rises_and_is_wiped_with_the_state(store: AllocationStore) -> None:
    assert store.fence() is None
    assert store.raise_fence(0, 7) == (0, 7)
    assert store.raise_fence(0, 3) == (0, 7)  # a late, lower fence never lowers it
    assert store.raise_fence(2, 2**32 - 1) == (2, 2**32 - 1)
    assert store.fence() == (2, 2**32 - 1)
    store.wipe()
    assert store.fence() is None
