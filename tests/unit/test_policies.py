"""Built-in policies: random-valid obeys the mask, and the thesis's scripted edge cases end where §5.2 says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdde_stream.config import Settings
from mdde_stream.env import parallel_env
from mdde_stream.policies import DoNothing, Greedy, RandomValid, Starving, make_policy


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, bus="", state="")


def run_to_end(env, policy, seed: int = 0) -> int:
    obs, _ = env.reset(seed=seed)
    steps = 0
    while env.agents:
        obs, _, _, _, infos = env.step(policy.act(obs))
        steps += 1
        if isinstance(policy, (RandomValid, Starving, Greedy)):
            assert all(i["accepted"] for i in infos.values()), infos
    return steps


def test_random_valid_only_picks_unmasked_actions_and_is_seeded(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=200, publish_events=False)
    obs, _ = env.reset(seed=0)
    a, b = RandomValid(5), RandomValid(5)
    for _ in range(200):
        if not env.agents:
            break
        acts = a.act(obs)
        assert acts == b.act(obs)
        for agent, action in acts.items():
            assert obs[agent]["action_mask"][action] == 1
        obs, *_ = env.step(acts)
    env.close()


def test_starving_case_thesis_5_2(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=16, benchmark_frequency=1, publish_events=False)
    assert run_to_end(env, Starving()) == 16
    assert env.allocation.sum(axis=1).tolist() == [0, 0, 0, 20]
    share = env.latest.node_reads / env.latest.total_reads
    assert share.tolist() == [0.0, 0.0, 0.0, 1.0]
    env.close()


def test_greedy_case_thesis_5_2(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=15, benchmark_frequency=1, workload="latest",
                       publish_events=False)
    assert run_to_end(env, Greedy()) == 15
    assert env.allocation.all()
    share = env.latest.node_reads / env.latest.total_reads
    assert np.allclose(share, 0.25, atol=0.02), share
    env.close()


def test_do_nothing_keeps_the_allocation(settings: Settings) -> None:
    env = parallel_env(settings=settings, max_steps=10, publish_events=False)
    env.reset(seed=0)
    start = env.allocation.copy()
    run_to_end(env, DoNothing())
    assert np.array_equal(env.allocation, start)
    env.close()


def test_make_policy_names() -> None:
    assert isinstance(make_policy("greedy"), Greedy)
    assert isinstance(make_policy("random-valid", seed=1), RandomValid)
    with pytest.raises(ValueError, match="unknown policy 'x'"):
        make_policy("x")
