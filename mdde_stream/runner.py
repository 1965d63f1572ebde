"""Run episodes of the environment with a built-in policy and summarise them (``mdde-stream run``).

The summary answers the questions a researcher asks first: did throughput move from the episode's
initial allocation, where do reads land at the end, how many actions were valid, what did each agent
earn. The run's events land on the bus as the environment records them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mdde_stream.config import Settings
from mdde_stream.env import EnvConfig, MddeParallelEnv
from mdde_stream.policies import Policy

logger = logging.getLogger(__name__)


@dataclass
class EpisodeStats:
    episode: int
    steps: int
    first_throughput: float
    last_throughput: float
    final_node_reads: np.ndarray
    actions: int
    valid: int
    conflicts: int
    returns: np.ndarray

    @property
    def throughput_change(self) -> float:
        """Relative change of τ from the episode's initial allocation to its last measurement."""
        if self.first_throughput <= 0:
            return 0.0
        return self.last_throughput / self.first_throughput - 1.0


@dataclass
class RunSummary:
    run_id: str
    agents: list[str]
    episodes: list[EpisodeStats] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.episodes)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def throughput_change(self) -> float:
        return float(np.mean([e.throughput_change for e in self.episodes])) if self.episodes else 0.0

    @property
    def first_throughput(self) -> float:
        return float(np.mean([e.first_throughput for e in self.episodes])) if self.episodes else 0.0

    @property
    def last_throughput(self) -> float:
        return float(np.mean([e.last_throughput for e in self.episodes])) if self.episodes else 0.0

    @property
    def reads_share(self) -> np.ndarray:
        """Mean over episodes of each node's share of reads in the episode's last measurement."""
        shares = []
        for e in self.episodes:
            total = e.final_node_reads.sum()
            shares.append(e.final_node_reads / total if total > 0 else np.zeros(len(self.agents)))
        return np.mean(shares, axis=0) if shares else np.zeros(len(self.agents))

    @property
    def valid_rate(self) -> float:
        actions = sum(e.actions for e in self.episodes)
        return sum(e.valid for e in self.episodes) / actions if actions else 0.0

    @property
    def conflicts(self) -> int:
        return sum(e.conflicts for e in self.episodes)

    @property
    def mean_reward(self) -> np.ndarray:
        """Mean per-step reward of each agent over the whole run."""
        if not self.steps:
            return np.zeros(len(self.agents))
        return np.sum([e.returns for e in self.episodes], axis=0) / self.steps


def run_episodes(
    config: EnvConfig,
    policy: Policy,
    episodes: int,
    settings: Settings | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Run ``episodes`` episodes of ``config.max_steps`` steps; ``on_step(episode, step)`` after each step.

    Episode ``e`` is reset with seed ``config.seed + e`` (and the policy too), so a run is reproducible
    from its configuration alone.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = MddeParallelEnv(config, settings=settings)
    summary = RunSummary(config.run_id, list(env.possible_agents))
    started = time.perf_counter()
    try:
        for e in range(episodes):
            seed = config.seed + e
            policy.reset(seed)
            obs, _ = env.reset(seed=seed)
            assert env.initial is not None
            first = env.initial.throughput
            returns = np.zeros(len(env.possible_agents))
            actions = valid = conflicts = steps = 0
            while env.agents:
                chosen = policy.act(obs)
                obs, rewards, _, _, infos = env.step(chosen)
                steps += 1
                returns += np.fromiter(rewards.values(), dtype=np.float64, count=len(rewards))
                for agent, info in infos.items():
                    actions += 1
                    if info["accepted"] and (chosen[agent] != 0 or info["legal"]):
                        valid += 1
                    conflicts += info["conflict"]
                if on_step is not None:
                    on_step(e, steps)
            latest = env.latest
            assert latest is not None
            summary.episodes.append(
                EpisodeStats(e, steps, first, latest.throughput, latest.node_reads.copy(), actions, valid, conflicts, returns)
            )
    finally:
        env.close()
        summary.elapsed_s = time.perf_counter() - started
    logger.info("run %s: %d episodes, %d steps in %.2f s", summary.run_id, episodes, summary.steps, summary.elapsed_s)
    return summary
