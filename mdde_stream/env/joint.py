"""The MDDE team as one Gymnasium agent: what a single-agent tool (Minari, Gymnasium) can make and step.

Minari records and recovers Gymnasium environments, which have one agent. This wrapper presents the
PettingZoo ``ParallelEnv`` as its joint agent: the observation is ``{agent: {observation,
action_mask}}``, the action ``{agent: index}``, the reward the sum over agents (the team reward of
Eq 3.8/3.9), ``terminated``/``truncated`` true once every agent is, and ``info["agent_rewards"]``
(agent order) plus the per-agent infos keep what the sum hides. It is registered with Gymnasium as
``mdde/JointMdde-v0``; exported datasets carry its spec with the episode's configuration, so
``MinariDataset.recover_environment()`` rebuilds the environment that produced them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "mdde/JointMdde-v0"
ENTRY_POINT = "mdde_stream.env.joint:JointMddeEnv"


class JointMddeEnv(gym.Env):
    """``mdde_v0.parallel_env(**config)`` with one joint action and the summed reward."""

    metadata = {"render_modes": []}

    def __init__(self, **config: Any) -> None:
        from mdde_stream.env import parallel_env

        self.parallel = parallel_env(**config)
        self.agents: list[str] = list(self.parallel.possible_agents)
        self.observation_space = gym.spaces.Dict({a: self.parallel.observation_space(a) for a in self.agents})
        self.action_space = gym.spaces.Dict({a: self.parallel.action_space(a) for a in self.agents})

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        observations, infos = self.parallel.reset(seed=seed, options=options)
        return observations, {"agents": infos}

    def step(self, action: dict[str, Any]):  # type: ignore[override]
        actions = {a: int(action[a]) for a in self.agents}
        observations, rewards, terms, truncs, infos = self.parallel.step(actions)
        agent_rewards = np.array([rewards[a] for a in self.agents], dtype=np.float64)
        info = {"agent_rewards": agent_rewards, "agents": infos}
        return (observations, float(agent_rewards.sum()), all(terms.values()), all(truncs.values()), info)

    def close(self) -> None:
        self.parallel.close()


def register() -> None:
    """Make ``gym.make("mdde/JointMdde-v0", **config)`` work (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=ENTRY_POINT, disable_env_checker=True)


def env_spec(config: dict[str, Any]) -> gym.envs.registration.EnvSpec:
    """The Gymnasium spec of the joint environment with ``config`` (JSON values) as its keyword arguments."""
    register()
    return gym.envs.registration.EnvSpec(id=ENV_ID, entry_point=ENTRY_POINT, kwargs=dict(config),
                                         disable_env_checker=True)
