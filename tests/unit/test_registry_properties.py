"""Property tests: random (also invalid and conflicting) steps on MemoryStore and RedisStore.

Checked after every action or step: each verdict equals the pure rule (``codes.validate``) run on
an independent model of the allocation; no fragment ever loses its last replica; the mask rule
(``Registry.valid_action`` at step start) agrees with the registry (an action valid at step start
is accepted unless an earlier agent of the same step changed the state, reported as a conflict);
redelivered steps change nothing; after ``shuffle()`` (and ``reset()``) the data on every node
matches the allocation exactly.

Volume: ``MDDE_PROPERTY_STEPS`` (default 100,000) random steps of 1–4 agents on memory and
``MDDE_PROPERTY_STEPS_REDIS`` (default 100,000) on Redis in the bulk test, on top of the
hypothesis-generated examples. The Redis cases need a real server (MDDE_STATE, MDDE_DATA_NODES).
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdde_stream.datanodes import DataNodes, RecordSpec
from mdde_stream.events import ActionKind, ActionSubmitted
from mdde_stream.registry import MemoryStore, Registry, fragment_layout, validate
from mdde_stream.registry.base import AllocationStore
from mdde_stream.registry.redis_store import RedisStore
from mdde_stream.registry.testing import data_node_urls, redis_state_url, require_redis, unique_prefix

W, F, RECORDS = 4, 20, 100
NODES = [f"n{i}" for i in range(W)]
FRAGS = [f"f{i}" for i in range(F)]
KINDS = [ActionKind.SKIP, ActionKind.COPY, ActionKind.DELETE]
BULK_STEPS = {
    "memory": int(os.environ.get("MDDE_PROPERTY_STEPS", "100000")),
    "redis": int(os.environ.get("MDDE_PROPERTY_STEPS_REDIS", "100000")),
}
BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.integration)]


class Model:
    """Independent reference state: a plain matrix judged with the pure rule."""

    def __init__(self, m: np.ndarray) -> None:
        self.m = m.copy()
        self.nidx = {n: i for i, n in enumerate(NODES)}
        self.fidx = {f: i for i, f in enumerate(FRAGS)}

    def judge(self, a: ActionSubmitted):  # noqa: ANN201 - Verdict
        m = self.m
        return validate(a.kind, a.fragment, a.source, a.target, self.nidx, self.fidx,
                        lambda w, f: bool(m[w, f]), lambda f: int(m[:, f].sum()))

    def apply(self, a: ActionSubmitted) -> bool:
        v = self.judge(a)
        if v.accepted and a.kind is not ActionKind.SKIP:
            self.m[self.nidx[a.target], self.fidx[a.fragment]] = a.kind is ActionKind.COPY
        return v.accepted


class Harness:
    """A registry on one backend, its model, and the checks run after each step."""

    def __init__(self, backend: str, data_nodes: DataNodes | None = None) -> None:
        _, self.ranges, alloc = fragment_layout(RECORDS, W, F)
        if backend == "memory":
            store: AllocationStore = MemoryStore()
        else:
            store = RedisStore(client=require_redis(redis_state_url()), prefix=unique_prefix("prop"))
        store.setup(NODES, FRAGS, alloc, self.ranges)
        if data_nodes is not None:
            data_nodes.load(self.ranges, alloc)
        store.snapshot()
        self.reg = Registry(store, data_nodes)
        self.model = Model(store.matrix())
        self.snap = self.model.m.copy()
        self.steps = 0
        self.history: list[list[ActionSubmitted]] = []

    def close(self) -> None:
        if isinstance(self.reg.store, RedisStore):
            self.reg.store.wipe()

    def step(self, actions: list[ActionSubmitted]) -> None:
        mask = {a.event_id: self.reg.valid_action(a.kind, a.fragment, a.source, a.target).accepted for a in actions}
        results = self.reg.apply_actions(actions)
        assert [r.agent_index for r in results] == sorted(a.agent_index for a in actions)
        by_id = {a.event_id: a for a in actions}
        changed_earlier = False
        for r in results:
            a = by_id[r.action_event_id]
            expected = self.model.judge(a)
            assert (r.accepted, r.code, r.message) == (expected.accepted, expected.code, expected.message), a
            self.model.apply(a)
            if mask[a.event_id] and not r.accepted:
                assert r.conflict and changed_earlier, f"unmasked action rejected without an earlier change: {a}"
            if r.conflict:
                assert mask[a.event_id] and not r.accepted
            changed_earlier = changed_earlier or (r.accepted and a.kind is not ActionKind.SKIP)
        m = self.reg.allocation()
        assert np.array_equal(m, self.model.m)
        assert m.sum(axis=0).min() >= 1, "a fragment lost its last replica"
        self.steps += 1
        self.history.append(actions)
        if len(self.history) > 2_000:
            del self.history[:1_000]

    def redeliver(self, rng: random.Random) -> None:
        """Replay a recent step (as the bus would after a crash): recorded verdicts, no change.

        Recent, because stores remember a bounded number of verdicts (250,000 by default).
        """
        before = self.reg.store.matrix().copy()
        moves = len(self.reg.store.pending_moves()) if self.steps % 50 == 0 else None
        old = rng.choice(self.history[-1_000:])
        for r in self.reg.apply_actions(old):
            assert (r.accepted, r.code) == _verdict_tuple(self.reg.store, r.action_event_id)
        assert np.array_equal(self.reg.store.matrix(), before)
        if moves is not None:
            assert len(self.reg.store.pending_moves()) == moves

    def shuffle_and_check(self) -> None:
        self.reg.shuffle()
        self.check_data(self.model.m)

    def reset_and_check(self) -> None:
        self.reg.reset()
        self.model.m = self.snap.copy()
        assert np.array_equal(self.reg.store.matrix(), self.snap)
        assert self.reg.store.pending_moves() == []
        self.check_data(self.snap)

    def check_data(self, m: np.ndarray) -> None:
        if self.reg.data_nodes is not None:
            assert self.reg.data_nodes.mismatches(m, NODES, self.ranges, FRAGS) == []


def _verdict_tuple(store: AllocationStore, event_id: str) -> tuple:
    v = store.verdict_of(event_id)
    assert v is not None
    return v.accepted, (int(v.code) if v.code is not None else None)


def random_action(rng: random.Random, agent: int, step: int, size: int, m: np.ndarray) -> ActionSubmitted:
    """Mostly plausible actions (own node as target), with invalid ids and missing fields mixed in."""
    kind = rng.choice(KINDS)
    roll = rng.random()
    node = NODES[agent]
    frag = rng.choice(FRAGS)
    if roll < 0.05:
        frag = rng.choice(["fX", "", "f99"])
    source = rng.choice(NODES) if roll < 0.9 else rng.choice([None, "nX", node])
    target = node if roll < 0.8 else rng.choice([*NODES, None, "nZ"])
    if roll > 0.97:
        frag = None
    if kind is ActionKind.COPY and roll < 0.6:
        holders = np.flatnonzero(m[:, FRAGS.index(frag)]) if frag in FRAGS else []
        if len(holders):
            source = NODES[rng.choice(list(holders))]
    return ActionSubmitted(run_id="prop", step=step, agent=node, agent_index=agent, action_index=0, kind=kind,
                           fragment=frag, source=source if kind is ActionKind.COPY else None, target=target,
                           step_size=size)


def _step_strategy() -> st.SearchStrategy[list[tuple]]:
    ids = st.sampled_from(FRAGS + ["fX"]) | st.none()
    nodes = st.sampled_from(NODES + ["nX"]) | st.none()
    one = st.tuples(st.sampled_from(KINDS), ids, nodes, nodes)
    return st.lists(one, min_size=1, max_size=W)


def _events(raw: list[tuple], step: int, order: random.Random) -> list[ActionSubmitted]:
    agents = list(range(len(raw)))
    order.shuffle(agents)  # the registry must sort by agent index itself
    return [ActionSubmitted(run_id="hyp", step=step, agent=f"a{agents[i]}", agent_index=agents[i], action_index=0,
                            kind=k, fragment=f, source=s, target=t, step_size=len(raw))
            for i, (k, f, s, t) in enumerate(raw)]


@pytest.fixture
def data_nodes() -> Iterator[DataNodes]:
    urls = data_node_urls()[:W]
    for url in urls:
        require_redis(url, "data node", "MDDE_DATA_NODES")
    assert len(urls) == W, f"need {W} data nodes in MDDE_DATA_NODES, got {urls}"
    spec = RecordSpec(record_count=RECORDS, field_count=2, field_length_min=8, field_length_max=8,
                      key_prefix=f"p{uuid.uuid4().hex[:10]}:user")
    dn = DataNodes(dict(zip(NODES, urls)), spec)
    yield dn
    for node in NODES:
        dn.delete_range(node, 0, RECORDS)
    dn.close()


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_step_strategy(), min_size=1, max_size=40), seed=st.integers(0, 2**16))
def test_generated_steps_keep_invariants(backend: str, steps: list[list[tuple]], seed: int) -> None:
    h = Harness(backend)
    order = random.Random(seed)
    try:
        for i, raw in enumerate(steps):
            h.step(_events(raw, i, order))
            if i % 7 == 6:
                h.redeliver(order)
    finally:
        h.close()


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["memory", "redis"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), shuffle_every=st.integers(1, 12), reset_every=st.integers(5, 60))
def test_data_nodes_match_allocation_after_shuffle_and_reset(
    backend: str, data_nodes: DataNodes, seed: int, shuffle_every: int, reset_every: int
) -> None:
    h = Harness(backend, data_nodes)
    rng = random.Random(seed)
    try:
        for i in range(60):
            h.step([random_action(rng, a, i, W, h.model.m) for a in range(W)])
            if i % shuffle_every == shuffle_every - 1:
                h.shuffle_and_check()
            if i % reset_every == reset_every - 1:
                h.reset_and_check()
        h.shuffle_and_check()
        h.reset_and_check()
    finally:
        h.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_bulk_random_steps(backend: str) -> None:
    """The volume run: MDDE_PROPERTY_STEPS(_REDIS) seeded random steps, resets and redeliveries mixed in."""
    total = BULK_STEPS[backend]
    seed = int(os.environ.get("MDDE_PROPERTY_SEED", "0")) or random.randrange(2**32)
    rng = random.Random(seed)
    h = Harness(backend)
    try:
        while h.steps < total:
            size = rng.choice([1, 2, 3, W, W, W])
            agents = rng.sample(range(W), size)
            h.step([random_action(rng, a, h.steps, size, h.model.m) for a in agents])
            if h.steps % 97 == 0:
                h.redeliver(rng)
            if h.steps % 1_000 == 0:
                assert np.array_equal(h.reg.store.matrix(), h.model.m), f"seed {seed}"
                h.reg.shuffle()
            if h.steps % 2_503 == 0:
                h.reset_and_check()
    except AssertionError as exc:
        raise AssertionError(f"bulk run failed at step {h.steps} (MDDE_PROPERTY_SEED={seed})") from exc
    finally:
        h.close()
    assert h.steps == total
    print(f"\n{backend}: {h.steps} random steps checked (seed {seed})")
