"""Table-driven tests of the default scenario's pure logic: decoding, masks, observations, rewards."""

from __future__ import annotations

import numpy as np
import pytest

from mdde_stream.env.default_scenario import DefaultScenario
from mdde_stream.env.scenario import Measurement, StepFacts
from mdde_stream.events import ActionKind
from mdde_stream.registry.codes import validate

NODES = [f"n{w}" for w in range(4)]
FRAGS = [f"f{f}" for f in range(20)]


def initial_allocation(w: int = 4, f: int = 20) -> np.ndarray:
    alloc = np.zeros((w, f), dtype=bool)
    for frag in range(f):
        alloc[frag * w // f, frag] = True
    return alloc


@pytest.fixture
def scenario() -> DefaultScenario:
    return DefaultScenario(NODES, FRAGS)


def test_action_space_size_follows_the_thesis(scenario: DefaultScenario) -> None:
    assert scenario.n_actions == 4 * 20 + 20 + 1 == 101
    assert scenario.action_space("n0").n == 101


def test_spaces_are_the_same_object_on_every_call(scenario: DefaultScenario) -> None:
    assert scenario.action_space("n0") is scenario.action_space("n3")
    assert scenario.observation_space("n1") is scenario.observation_space("n1")
    assert scenario.observation_space("n1")["observation"].shape == (4, 20, 3)
    assert scenario.observation_space("n1")["action_mask"].shape == (101,)


@pytest.mark.parametrize(
    ("agent", "action", "kind", "fragment", "source", "target"),
    [
        (1, 0, ActionKind.SKIP, None, None, None),
        (1, 1, ActionKind.DELETE, 0, None, 1),
        (1, 20, ActionKind.DELETE, 19, None, 1),
        (1, 21, ActionKind.COPY, 0, 0, 1),
        (1, 21 + 20 + 3, ActionKind.COPY, 3, 1, 1),  # the always-invalid self -> self slot
        (0, 100, ActionKind.COPY, 19, 3, 0),
        (3, 21 + 2 * 20 + 7, ActionKind.COPY, 7, 2, 3),
    ],
)
def test_decoding_table(scenario, agent, action, kind, fragment, source, target) -> None:
    d = scenario.decode(agent, action)
    assert (d.kind, d.fragment, d.source, d.target) == (kind, fragment, source, target)


def test_action_index_inverts_decode(scenario: DefaultScenario) -> None:
    for action in range(scenario.n_actions):
        d = scenario.decode(2, action)
        assert scenario.action_index(d.kind, d.fragment, d.source) == action
    with pytest.raises(ValueError, match="fragment index"):
        scenario.action_index(ActionKind.DELETE, 20)


def _registry_verdicts(scenario: DefaultScenario, alloc: np.ndarray) -> np.ndarray:
    """The registry's own validation rules, evaluated for every (agent, action)."""
    node_index = {n: i for i, n in enumerate(scenario.node_ids)}
    frag_index = {f: i for i, f in enumerate(scenario.fragment_ids)}
    counts = alloc.sum(axis=0)
    out = np.zeros((len(scenario.node_ids), scenario.n_actions), dtype=np.int8)
    for a in range(len(scenario.node_ids)):
        for n in range(scenario.n_actions):
            d = scenario.decode(a, n)
            name = lambda i: None if i is None else scenario.node_ids[i]  # noqa: E731
            frag = None if d.fragment is None else scenario.fragment_ids[d.fragment]
            verdict = validate(d.kind, frag, name(d.source), name(d.target), node_index, frag_index,
                               lambda w, f: bool(alloc[w, f]), lambda f: int(counts[f]))
            out[a, n] = verdict.accepted
    return out


@pytest.mark.parametrize(("w", "f"), [(4, 20), (2, 3), (5, 7), (3, 12)])
def test_mask_equals_registry_rules_on_random_allocations(w: int, f: int) -> None:
    scenario = DefaultScenario([f"n{i}" for i in range(w)], [f"f{i}" for i in range(f)])
    rng = np.random.default_rng(w * 100 + f)
    for _ in range(60):
        alloc = rng.random((w, f)) < rng.uniform(0.1, 0.9)
        alloc[rng.integers(w, size=f), np.arange(f)] = True  # every fragment keeps a replica
        assert np.array_equal(scenario.masks(alloc), _registry_verdicts(scenario, alloc))


def test_mask_cases_on_the_initial_allocation(scenario: DefaultScenario) -> None:
    m = scenario.masks(initial_allocation())
    assert m.dtype == np.int8
    assert m[:, 0].all()  # skip allowed
    assert not m[:, 1:21].any()  # every fragment has a single replica: no delete is legal
    assert m[0, 21 + 1 * 20 + 5] == 1  # n0 may copy f5 from n1
    assert m[0, 21 + 0 * 20 + 0] == 0  # copy f0 from n0 to n0: self slot
    assert m[1, 21 + 0 * 20 + 0] == 1  # n1 may copy f0 from n0
    assert m[1, 21 + 0 * 20 + 5] == 0  # n0 does not hold f5
    assert m.sum() == 4 * (1 + 15)


def test_delete_mask_follows_allocation_not_reads(scenario: DefaultScenario) -> None:
    # MDDE masked deletes by reads: a held, replicated fragment nobody read could not be deleted.
    alloc = initial_allocation()
    alloc[1, 0] = True  # f0 now on n0 and n1, never read
    m = scenario.masks(alloc)
    assert m[0, 1] == 1 and m[1, 1] == 1
    assert m[2, 1] == 0  # n2 does not hold f0


def test_without_skip_the_action_space_has_no_dead_slot() -> None:
    """MDDE's agents without do-nothing build |W|·|F| + |F| actions: deletes first, then copies."""
    s = DefaultScenario(["n0", "n1"], ["f0", "f1"], allow_skip=False)
    assert s.action_space("n0").n == 2 * 2 + 2
    assert s.decode(1, 0).kind is ActionKind.DELETE and s.decode(1, 0).fragment == 0
    assert s.decode(1, 2).kind is ActionKind.COPY and (s.decode(1, 2).source, s.decode(1, 2).fragment) == (0, 0)
    assert s.action_index(ActionKind.COPY, 1, 0) == 3
    with pytest.raises(ValueError, match="no skip"):
        s.action_index(ActionKind.SKIP)
    alloc = np.array([[True, True], [False, False]])
    m = s.masks(alloc)
    assert m[1].tolist() == [0, 0, 1, 1, 0, 0]  # n1 can copy f0 or f1 from n0
    assert m[0].tolist() == [0, 0, 0, 0, 0, 0]  # n0 holds every last replica: nothing is legal, as in MDDE


def test_mdde_delete_mask_reads_the_popularity_of_other_replicas(scenario: DefaultScenario) -> None:
    """MDDE's agent tested channel 1 (reads) of the other nodes: a delete is legal only when another
    node's replica was read in the latest measurement."""
    s = DefaultScenario([f"n{i}" for i in range(4)], [f"f{i}" for i in range(20)], delete_mask="mdde")
    alloc = initial_allocation()
    alloc[1, 0] = True  # f0 on n0 and n1
    reads = np.zeros((4, 20), dtype=np.int64)
    assert not s.masks(alloc, Measurement(1.0, reads, "estimate"))[:, 1:21].any()  # nobody read the copies
    reads[1, 0] = 5  # n1's replica was read
    m = s.masks(alloc, Measurement(1.0, reads, "estimate"))
    assert m[0, 1] == 1  # n0 may delete f0: another replica was read
    assert m[1, 1] == 0  # n1's only *other* replica (n0's) was not read
    with pytest.raises(ValueError, match="delete_mask"):
        DefaultScenario(["n0", "n1"], ["f0", "f1"], delete_mask="nope")


def test_observation_channels(scenario: DefaultScenario) -> None:
    alloc = initial_allocation()
    reads = np.zeros((4, 20), dtype=np.int64)
    reads[2, 10] = 30
    reads[0, 0] = 10
    obs = scenario.observe(alloc, Measurement(100.0, reads, "simulated"), scenario.masks(alloc))
    o = obs["n2"]["observation"]
    assert o.dtype == np.float32 and o.shape == (4, 20, 3)
    assert np.array_equal(o[:, :, 0], alloc)
    assert o[2, 10, 1] == pytest.approx(0.75) and o[0, 0, 1] == pytest.approx(0.25)
    assert o[:, :, 2].sum() == 20 and o[2, :, 2].all()
    assert scenario.observation_space("n2").contains(obs["n2"])
    assert obs["n1"]["observation"] is not obs["n2"]["observation"]


def _facts(step, accepted, skipped, legal, alloc, bench=None) -> StepFacts:
    return StepFacts(step, np.array(accepted), np.array(skipped), np.array(legal), alloc, bench)


@pytest.mark.parametrize(
    ("accepted", "skipped", "legal", "allow_skip", "conflicts_valid", "expected"),
    [
        ([True, True, True, True], [False] * 4, [True] * 4, True, False, [1, 1, 1, 1]),
        ([True, False, True, False], [False, False, True, False], [True, False, True, True], True, False,
         [1, -1, 0.25, -1]),
        ([True, True, True, True], [True, True, False, False], [False, True, True, True], False, False,
         [-1, 0.25, 1, 1]),
        ([True, False, True, True], [False] * 4, [True, True, True, True], True, True, [1, 1, 1, 1]),
        ([True, False, True, True], [False] * 4, [True, False, True, True], True, True, [1, -1, 1, 1]),
    ],
)
def test_eq_3_8_on_steps_without_benchmark(accepted, skipped, legal, allow_skip, conflicts_valid, expected) -> None:
    s = DefaultScenario(NODES, FRAGS, do_nothing_worth=0.25, allow_skip=allow_skip,
                        conflicts_count_as_valid=conflicts_valid, benchmark_frequency=10)
    r = s.rewards(_facts(1, accepted, skipped, legal, initial_allocation()))
    assert r.tolist() == pytest.approx(expected)


def test_eq_3_9_on_a_benchmark_step_by_hand() -> None:
    s = DefaultScenario(NODES, FRAGS, benchmark_frequency=2, do_nothing_worth=0.5, storage_importance=0.1)
    alloc = initial_allocation()
    alloc[3, :] = True  # n3 holds all 20, the others 5 each
    # step 1: P = [1, -1, V=0.5, 1]
    r1 = s.rewards(_facts(1, [True, False, True, True], [False, False, True, False], [True] * 4, alloc))
    assert r1.tolist() == [1.0, -1.0, 0.5, 1.0]
    assert not s.is_benchmark_step(1) and s.is_benchmark_step(2) and s.is_benchmark_step(4)
    # step 2 (benchmark): P = [1, 1, -1, -1]; max(P, 0) means over the 2 steps: [1, 0.5, 0.25, 0.5]
    reads = np.zeros((4, 20), dtype=np.int64)
    reads[:, 0] = [400, 300, 200, 100]
    bench = Measurement(1000.0, reads, "estimate")
    r2 = s.rewards(_facts(2, [True, True, False, False], [False] * 4, [True] * 4, alloc, bench))
    tau = 1000.0
    share = np.array([0.4, 0.3, 0.2, 0.1])
    hist = np.array([1.0, 0.5, 0.25, 0.5])
    storage = 0.1 * tau * (20 - np.array([5, 5, 5, 20])) / 20
    assert r2 == pytest.approx(tau * share * hist + storage)
    assert r2.tolist() == pytest.approx([400 + 75, 150 + 75, 50 + 75, 50 + 0])


def test_reset_clears_the_history_window() -> None:
    s = DefaultScenario(NODES, FRAGS, benchmark_frequency=2)
    alloc = initial_allocation()
    s.rewards(_facts(1, [False] * 4, [False] * 4, [False] * 4, alloc))  # all invalid
    s.reset()
    reads = np.ones((4, 20), dtype=np.int64)
    r = s.rewards(_facts(2, [True] * 4, [False] * 4, [True] * 4, alloc, Measurement(400.0, reads, "estimate")))
    assert r.tolist() == pytest.approx([100.0] * 4)  # only the post-reset step counts: mean of [1]


def test_zero_reads_benchmark_gives_no_throughput_term() -> None:
    s = DefaultScenario(NODES, FRAGS, benchmark_frequency=1)
    r = s.rewards(_facts(1, [True] * 4, [False] * 4, [True] * 4, initial_allocation(),
                         Measurement(500.0, np.zeros((4, 20), dtype=np.int64), "estimate")))
    assert r.tolist() == [0.0] * 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"benchmark_frequency": 0}, "benchmark_frequency"), ({"storage_importance": -1.0}, "storage_importance")],
)
def test_invalid_hyperparameters_are_named(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        DefaultScenario(NODES, FRAGS, **kwargs)
