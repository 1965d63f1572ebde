"""The environment against PettingZoo's own contract checkers, plus what the contract does not cover:
reproducibility, recorded events, conflicts, truncation and the package-level factories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import mdde_stream
from mdde_stream import mdde_v0
from mdde_stream.bus import TopicPartition, open_bus
from mdde_stream.config import Settings, get_settings
from mdde_stream.env import EnvConfig, MddeParallelEnv, parallel_env
from mdde_stream.env.parallel import EventIds, trusted_event
from mdde_stream.env.wrappers import BenchmarkRewardScale
from mdde_stream.events import (
    ActionKind,
    ActionResult,
    ActionSubmitted,
    EstimatorResult,
    StepCompleted,
    decode_event,
)
from mdde_stream.policies import RandomValid, Starving


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, bus="", state="")


def read_topic(settings: Settings, short: str, run_id: str) -> list:
    with open_bus(settings=settings) as bus:
        topic = settings.topic(short)
        consumer = bus.consumer(f"reader-{short}")
        consumer.assign([TopicPartition(topic, p) for p in range(bus.list_topics()[topic])])
        events = []
        while True:
            records = consumer.poll(0.2, 10_000)
            if not records:
                break
            events += [decode_event(r.value) for r in records]
        consumer.close()
    return [e for e in events if e.run_id == run_id]


def test_parallel_api_test(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=60)
    parallel_api_test(env, num_cycles=200)
    env.close()


def test_aec_api_test(settings: Settings) -> None:
    env = mdde_v0.env(settings=settings, max_steps=40)
    api_test(env, num_cycles=100)
    env.close()


def test_parallel_seed_test(settings: Settings) -> None:
    parallel_seed_test(lambda: parallel_env(settings=settings, max_steps=30))


def test_package_factories_work_with_no_arguments_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python API records nothing by default: no ``./.mdde`` appears in the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MDDE_DATA_DIR", raising=False)
    monkeypatch.delenv("MDDE_BUS", raising=False)
    monkeypatch.delenv("MDDE_STATE", raising=False)
    get_settings.cache_clear()
    try:
        par = mdde_stream.parallel_env()
        obs, _ = par.reset(seed=3)
        assert par.possible_agents == ["n0", "n1", "n2", "n3"]
        assert obs["n0"]["observation"].shape == (4, 20, 3)
        assert par.action_space("n0").n == 101
        par.step(dict.fromkeys(par.possible_agents, 0))
        par.close()
        for factory in (mdde_v0.env, mdde_v0.raw_env):
            aec = factory()
            aec.reset(seed=3)
            assert aec.agent_selection == "n0"
            aec.close()
        assert list(tmp_path.iterdir()) == []
        assert mdde_stream.__version__ == "0.1.0"
        recorded = mdde_v0.parallel_env(publish_events=True)  # recording is one argument away
        recorded.reset(seed=3)
        recorded.close()
        assert (tmp_path / ".mdde" / "bus.sqlite").exists()
    finally:
        get_settings.cache_clear()


def test_state_is_the_global_allocation_and_popularity(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=30)
    obs, _ = env.reset(seed=2)
    state = env.state()
    assert env.state_space.contains(state) and state.shape == (4, 20, 2)
    assert np.array_equal(state[:, :, 0], env.allocation)
    assert np.array_equal(state, obs["n0"]["observation"][:, :, :2])
    assert state[:, :, 1].sum() == pytest.approx(1.0)
    env.close()


def test_every_step_reports_the_throughput_its_source_and_whether_it_was_measured(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=10, benchmark_frequency=3)
    _, infos = env.reset(seed=0)
    assert infos["n0"]["throughput_source"] == "simulated" and infos["n0"]["throughput_measured"]
    baseline = infos["n0"]["throughput"]
    skip = dict.fromkeys(env.possible_agents, 0)
    for t in range(1, 7):
        _, _, _, _, infos = env.step(skip)
        info = infos["n2"]
        assert info["throughput_measured"] == (t % 3 == 0)
        assert info["throughput_source"] == ("estimate" if t >= 3 else "simulated")
        assert info["throughput"] == pytest.approx(baseline)  # nothing moved
    env.close()


def test_reset_without_a_seed_continues_the_seeded_stream(settings: Settings) -> None:
    """Gymnasium's convention: reset(seed=s) fixes the episodes that follow seedless resets."""

    def seeds(first: int) -> list[int]:
        env = parallel_env(settings=settings, max_steps=5, benchmark="simulated")
        env.reset(seed=first)
        out = [env._seed]
        for _ in range(3):
            env.reset()
            out.append(env._seed)
        env.close()
        return out

    a, b, c = seeds(5), seeds(5), seeds(6)
    assert a == b and a[0] == 5 and len(set(a)) == 4
    assert a[1:] != c[1:]


def test_benchmark_reward_scale_divides_benchmark_steps_only(settings: Settings) -> None:
    plain = parallel_env(settings=settings, max_steps=10, benchmark_frequency=2)
    scaled = BenchmarkRewardScale(parallel_env(settings=settings, max_steps=10, benchmark_frequency=2))
    _, infos = plain.reset(seed=1)
    scaled.reset(seed=1)
    skip = dict.fromkeys(plain.possible_agents, 0)
    for t in (1, 2):
        _, r_plain, *_ = plain.step(skip)
        _, r_scaled, *_ = scaled.step(skip)
        factor = 1.0 if t == 1 else 1.0 / infos["n0"]["throughput"]
        assert r_scaled == pytest.approx({a: v * factor for a, v in r_plain.items()})
    assert max(r_plain.values()) > 1_000 and max(r_scaled.values()) < 10
    plain.close()
    scaled.close()


def rollout(env: MddeParallelEnv, seed: int, steps: int) -> list:
    policy = RandomValid(seed)
    obs, _ = env.reset(seed=seed)
    trace = []
    for _ in range(steps):
        actions = policy.act(obs)
        obs, rewards, _, _, _ = env.step(actions)
        trace.append((actions, rewards, {a: o["observation"].copy() for a, o in obs.items()}))
    return trace


def test_reset_with_seed_is_reproducible(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=50, benchmark_frequency=3, workload="latest")
    first = rollout(env, 7, 40)
    second = rollout(env, 7, 40)
    other = parallel_env(settings=settings, max_steps=50, benchmark_frequency=3, workload="latest")
    third = rollout(other, 7, 40)
    for a, b, c in zip(first, second, third):
        assert a[0] == b[0] == c[0] and a[1] == b[1] == c[1]
        for agent in a[2]:
            assert np.array_equal(a[2][agent], b[2][agent]) and np.array_equal(a[2][agent], c[2][agent])
    env.close()
    other.close()


def test_reset_restores_the_initial_allocation_and_clears_history(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=50, benchmark_frequency=2, do_nothing_worth=0.0,
                       storage_importance=0.0)
    env.reset(seed=1)
    initial = env.allocation.copy()
    env.step({"n0": 21 + 20 + 5, "n1": 0, "n2": 0, "n3": 0})  # n0 copies f5 from n1
    assert env.allocation[0, 5]
    obs, _ = env.reset()
    assert np.array_equal(env.allocation, initial) and env.step_count == 0
    assert np.array_equal(obs["n0"]["observation"][:, :, 0], initial)
    # the benchmark window restarted: one valid step, then the benchmark step sees only these two
    env.step({"n0": 0, "n1": 0, "n2": 0, "n3": 0})
    _, rewards, *_ = env.step({"n0": 0, "n1": 0, "n2": 0, "n3": 0})
    assert all(r == 0.0 for r in rewards.values())  # skip worth V = 0 -> throughput term 0, ϱ = 0
    env.close()


def test_conflicts_are_resolved_by_agent_order_and_reported(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=10, benchmark_frequency=100, publish_events=True)
    env.reset(seed=0)
    skip = dict.fromkeys(env.possible_agents, 0)
    env.step({**skip, "n1": 21 + 0 * 20 + 0})  # n1 copies f0 from n0: f0 now has 2 replicas
    assert env.action_masks[0, 1] == 1 and env.action_masks[1, 1] == 1  # both may delete f0
    _, rewards, _, _, infos = env.step({**skip, "n0": 1, "n1": 1})  # both delete f0: n0 goes first
    assert infos["n0"]["accepted"] and not infos["n1"]["accepted"]
    assert infos["n1"]["conflict"] and infos["n1"]["legal"] and infos["n1"]["code"] == 2604
    assert rewards["n0"] == 1.0 and rewards["n1"] == -1.0
    assert env.allocation[:, 0].tolist() == [False, True, False, False]
    env.close()
    steps = read_topic(settings, "steps", env.run_id)
    assert [s.conflicts for s in steps] == [0, 1]
    assert [(s.accepted, s.rejected, s.skipped) for s in steps] == [(1, 0, 3), (1, 1, 2)]
    results = read_topic(settings, "action-results", env.run_id)
    assert [r.conflict for r in results if r.step == 2] == [False, True, False, False]


def test_invalid_actions_reach_the_registry_and_cost_minus_one(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=10, benchmark_frequency=100, do_nothing_worth=0.0)
    env.reset(seed=0)
    # n0: delete its last replica of f0; n1: copy f0 from itself (self slot); n2: copy f0 from n1 (n1 lacks it)
    _, rewards, _, _, infos = env.step({"n0": 1, "n1": 21 + 20 + 0, "n2": 21 + 20 + 0, "n3": 0})
    assert [infos[a]["code"] for a in ("n0", "n1", "n2")] == [2604, 2602, 2606]
    assert not any(infos[a]["legal"] or infos[a]["conflict"] for a in ("n0", "n1", "n2"))
    assert [rewards[a] for a in ("n0", "n1", "n2", "n3")] == [-1.0, -1.0, -1.0, 0.0]
    env.close()


def test_every_step_is_recorded_on_the_bus(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=12, benchmark_frequency=4, publish_events=True)
    policy = RandomValid(0)
    obs, _ = env.reset(seed=0)
    while env.agents:
        obs, *_ = env.step(policy.act(obs))
    env.close()
    steps = read_topic(settings, "steps", env.run_id)
    actions = read_topic(settings, "actions", env.run_id)
    results = read_topic(settings, "action-results", env.run_id)
    estimates = read_topic(settings, "estimator.results", env.run_id)
    assert [s.step for s in steps] == list(range(1, 13))
    assert [s.benchmark for s in steps] == [t % 4 == 0 for t in range(1, 13)]
    assert steps[-1].truncated and not any(s.truncated for s in steps[:-1])
    assert len(actions) == len(results) == 48
    assert {r.action_event_id for r in results} == {a.event_id for a in actions}
    assert len({a.event_id for a in actions}) == 48
    assert [e.step for e in estimates] == [4, 8, 12]
    assert estimates[0].throughput == steps[3].throughput
    for s in steps:
        assert sum(s.storage.values()) == sum(s.replicas.values())
        assert s.accepted + s.rejected + s.skipped >= 4
        assert set(s.actions) == {"n0", "n1", "n2", "n3"}


def test_truncation_after_max_steps_then_step_fails(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=3, publish_events=False)
    env.reset(seed=0)
    skip = dict.fromkeys(env.possible_agents, 0)
    for t in range(3):
        _, _, term, trunc, _ = env.step(skip)
        assert not any(term.values()) and all(trunc.values()) == (t == 2)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="no live agents"):
        env.step(skip)
    env.close()


def test_bad_actions_and_config_are_named(settings: Settings) -> None:
    env = parallel_env(settings=settings, publish_events=False)
    env.reset(seed=0)
    with pytest.raises(KeyError, match="n3"):
        env.step({"n0": 0, "n1": 0, "n2": 0})
    with pytest.raises(ValueError, match="actions must lie in"):
        env.step({"n0": 0, "n1": 0, "n2": 0, "n3": 101})
    env.close()
    with pytest.raises(ValueError, match="max_steps"):
        EnvConfig(max_steps=0)
    with pytest.raises(ValueError, match="fragments"):
        EnvConfig(nodes=8, fragments=4)
    with pytest.raises(ValueError, match="benchmark"):
        EnvConfig(benchmark="psychic")
    with pytest.raises(ValueError, match="unknown workload"):
        parallel_env(settings=settings, workload="nonsense", publish_events=False)


def test_simulated_benchmark_starving_ends_on_one_node_and_slower(settings: Settings) -> None:
    env = parallel_env(settings=settings, benchmark="simulated", benchmark_frequency=1, operations=5_000,
                       max_steps=16, publish_events=False, workload="uniform")
    obs, _ = env.reset(seed=0)
    before = env.latest.throughput
    policy = Starving()
    while env.agents:
        obs, *_ = env.step(policy.act(obs))
    assert env.latest.source == "simulated"
    assert env.allocation.sum(axis=1).tolist() == [0, 0, 0, 20]
    assert env.latest.node_reads.tolist() == [0, 0, 0, 5_000]
    assert env.latest.throughput < 0.3 * before  # one node serves what four served
    env.close()


def test_trusted_events_serialise_exactly_like_validated_ones() -> None:
    ids = EventIds()
    a, b = ids(), ids()
    assert a != b and len(a) == 32
    values = {"event_id": a, "run_id": "r", "episode": 1, "step": 2,
              "ts": ActionSubmitted(run_id="r", agent="x", agent_index=0, action_index=0, kind="skip").ts,
              "agent": "n0", "agent_index": 0, "action_index": 22, "kind": ActionKind.COPY, "fragment": "f1",
              "source": "n1", "target": "n0", "step_size": 4, "in_process": True}
    fast = trusted_event(ActionSubmitted, dict(values))
    slow = ActionSubmitted(**values)  # schema name and version come from the class's literals
    assert fast.to_bytes() == slow.to_bytes()
    assert decode_event(fast.to_bytes()) == slow


def test_recorded_step_and_estimate_events_validate(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=5, benchmark_frequency=5, publish_events=True)
    policy = RandomValid(1)
    obs, _ = env.reset(seed=0)
    while env.agents:
        obs, *_ = env.step(policy.act(obs))
    env.close()
    # read_topic decodes (validates) every record: trusted construction produced valid events
    assert len(read_topic(settings, "steps", env.run_id)) == 5
    (estimate,) = read_topic(settings, "estimator.results", env.run_id)
    assert isinstance(estimate, EstimatorResult) and sum(estimate.node_reads.values()) == 100_000
    assert all(isinstance(e, StepCompleted) for e in read_topic(settings, "steps", env.run_id))
    assert all(isinstance(e, ActionResult) for e in read_topic(settings, "action-results", env.run_id))
