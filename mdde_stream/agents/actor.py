"""An actor process: steps its own environment with the latest policy and feeds the shared replay.

Actors scale horizontally (``mdde-stream actor``, a compose service with replicas). Each one:

1. opens its own environment (events off by default: experience goes to Redis, not the bus);
2. acts random-valid until the learner has published weights, then samples its masked actors
   (Gumbel-max), checking for a newer weight version every ``sync_every`` steps;
3. pushes transitions in chunks of ``push_every`` (one Lua round trip per chunk);
4. reports episode returns, and stops when the learner sets the stop key or after ``max_steps``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from mdde_stream.agents.checkpoint import load_policy_bytes
from mdde_stream.agents.maddpg import Maddpg, joint, random_valid
from mdde_stream.agents.memory import Transition, make_transition
from mdde_stream.agents.memory_redis import PolicyChannel, RedisReplay

logger = logging.getLogger(__name__)


@dataclass
class ActorConfig:
    """What one actor process needs; everything is plain data so it crosses process boundaries."""

    redis_url: str
    """Redis holding the replay memory and the policy channel."""
    prefix: str
    """Key prefix of the replay memory (one per training run)."""
    capacity: int
    """Capacity of the replay ring (must equal the learner's)."""
    env: dict[str, Any] = field(default_factory=dict)
    """``EnvConfig`` fields of this actor's environment."""
    actor_id: int | None = None
    """Index of this actor; also offsets its seed. None: claim the next free one from the memory."""
    seed: int = 0
    """Base seed; the actor uses ``seed + 1000·actor_id``."""
    max_steps: int | None = None
    """Stop after this many environment steps (None: until the learner says stop)."""
    push_every: int = 32
    """Transitions per replay write."""
    sync_every: int = 100
    """Environment steps between two checks for newer policy weights."""
    compress: bool = True
    """zlib-compress transitions in Redis."""


@dataclass
class ActorStats:
    actor_id: int = -1
    steps: int = 0
    episodes: int = 0
    policy_version: int = 0
    seconds: float = 0.0

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def run_actor(config: ActorConfig) -> ActorStats:
    """The actor loop; returns when stopped (stop key, ``max_steps``) and flushes what it holds."""
    from mdde_stream.env import parallel_env

    torch.set_num_threads(1)
    replay = RedisReplay.from_url(config.redis_url, config.prefix, config.capacity, config.compress)
    if config.actor_id is None:
        config = replace(config, actor_id=replay.claim_actor_id())
    actor_id: int = config.actor_id  # type: ignore[assignment]
    seed = config.seed + 1000 * actor_id
    rng = np.random.default_rng(seed)
    channel = PolicyChannel(replay.client, config.prefix)
    env_options = {"publish_events": False, **config.env}
    env = parallel_env(**env_options)
    agents = list(env.possible_agents)
    policy: Maddpg | None = None
    stats = ActorStats(actor_id=actor_id)
    pending: list[Transition] = []
    started = time.perf_counter()
    try:
        observations, _ = env.reset(seed=seed)
        replay.register_actor(actor_id)
        obs, mask = joint(observations, agents)
        episode_return = np.zeros(len(agents))
        while config.max_steps is None or stats.steps < config.max_steps:
            if stats.steps % config.sync_every == 0:
                fetched = channel.fetch(stats.policy_version)
                if fetched is not None:
                    stats.policy_version, data = fetched
                    policy = load_policy_bytes(data, into=policy)
                    logger.debug("actor %d: policy version %d", actor_id, stats.policy_version)
            action = policy.act(obs, mask, rng) if policy is not None else random_valid(mask, rng)
            next_observations, rewards, terms, truncs, _ = env.step(dict(zip(agents, action.tolist())))
            reward = np.array([rewards[a] for a in agents], dtype=np.float32)
            next_obs, next_mask = joint(next_observations, agents)
            terminated = any(terms.values())
            pending.append(make_transition(obs, mask, action, reward, next_obs, next_mask, terminated))
            episode_return += reward
            obs, mask = next_obs, next_mask
            stats.steps += 1
            if len(pending) >= config.push_every:
                replay.push(pending, writer=actor_id)
                pending.clear()
                if replay.stop_requested():
                    break
            if terminated or any(truncs.values()):
                replay.report_returns(dict(zip(agents, episode_return.tolist())), actor_id)
                stats.episodes += 1
                episode_return[:] = 0.0
                observations, _ = env.reset()
                obs, mask = joint(observations, agents)
        if pending:
            replay.push(pending, writer=actor_id)
    finally:
        stats.seconds = time.perf_counter() - started
        env.close()
        replay.client.close()
    logger.info("actor %d: %d steps, %d episodes, %.0f steps/s, policy v%d", actor_id, stats.steps,
                stats.episodes, stats.steps_per_second, stats.policy_version)
    return stats
