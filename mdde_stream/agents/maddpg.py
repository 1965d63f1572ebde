"""MADDPG for discrete, masked actions (Lowe et al. 2017), readable top to bottom.

* One **actor** per agent maps the agent's own observation to action logits. Illegal actions are
  masked (logit -> a large negative number) *before* the Gumbel-softmax sample or the argmax, so an
  agent never proposes a masked action, neither while acting nor inside the update.
* One **centralised critic** per agent scores the joint observation and the joint (one-hot) action.
  The target actions the critics bootstrap from are sampled from the target actors under the
  *next* state's masks, so the critic never learns the value of an action the environment forbids.
* Actor update: replace agent i's action in the sampled joint action with a straight-through
  Gumbel-softmax sample of its masked logits and ascend critic i (plus a small penalty on the raw
  logits, the reference implementation's "actor feature regularisation").

Defaults follow the thesis's Table 5.5: two hidden layers of ⌊0.7·(obs + actions)⌋ units for actors
and critics, learning rate 0.001, τ 0.01, γ 0.95, learning starts after 25 episodes of 1,001 steps
(25,025), weights updated at every step ("multi-step 1"); batch 100 and gradient-norm clip 0.5 from
the MADDPG reference implementation the thesis ran.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdde_stream.agents.memory import Batch, LocalReplay, ReplayMemory, make_transition

logger = logging.getLogger(__name__)

MASKED_LOGIT = -1e9  # finite, so an all-masked row still gives a valid (uniform) softmax


@dataclass
class MaddpgConfig:
    """Hyperparameters of the learner and its training loop."""

    hidden: int | None = None
    """Units of each of the actors' two hidden layers; None: ⌊0.7·(obs + actions)⌋ as in the thesis."""
    critic_hidden: int | None = None
    """Units of each of the critics' two hidden layers; None: the same as the actors'."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actors."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critics."""
    tau: float = 0.01
    """Polyak factor of the target networks: target ← τ·online + (1 − τ)·target after each update."""
    gamma: float = 0.95
    """Discount factor."""
    batch_size: int = 100
    """Transitions per gradient step."""
    learning_starts: int = 25_025
    """Environment steps taken with the random-valid policy before the first update."""
    update_every: int = 1
    """Environment steps between two updates (one update of every agent each time)."""
    buffer_size: int = 1_000_000
    """Capacity of the in-process replay memory (the Redis one has its own)."""
    grad_norm_clip: float = 0.5
    """Max gradient norm of every optimiser step (0 disables clipping)."""
    actor_reg: float = 1e-3
    """Weight of the mean squared raw logits in the actor loss (keeps logits from exploding)."""
    temperature: float = 1.0
    """Gumbel-softmax temperature inside the updates."""
    reward_scale: float = 1e-4
    """Multiplies rewards before the critics see them. Benchmark-step rewards are throughput-scaled
    (~10⁴ with the estimator) while correctness rewards are ±1; unscaled, the critics' squared error
    is dominated by the former. 1.0 reproduces the thesis's raw rewards."""
    total_steps: int = 100_000
    """Environment steps of one training run."""
    seed: int = 0
    """Seeds torch, numpy and the environment."""
    torch_threads: int = 1
    """CPU threads torch may use (the learner shares the machine with environments and actors)."""
    telemetry_every: int = 100
    """Environment steps between two telemetry events (losses, exploration)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaddpgConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown MADDPG config fields: {sorted(unknown)}")
        return cls(**data)


def thesis_hidden(obs_dim: int, n_actions: int) -> int:
    """⌊0.7·(obs + actions)⌋, the layer width the thesis used."""
    return int(0.7 * (obs_dim + n_actions))


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Two ReLU hidden layers of ``hidden`` units."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits with every illegal action (mask 0) pushed to a large negative value."""
    return logits.masked_fill(mask == 0, MASKED_LOGIT)


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters()):
            t.mul_(1.0 - tau).add_(o, alpha=tau)


@dataclass
class Dims:
    """Shapes the networks are built for (saved with every checkpoint)."""

    n_agents: int
    obs_dim: int
    n_actions: int
    hidden: int
    critic_hidden: int


class Maddpg(nn.Module):
    """The networks and optimisers of all agents, plus acting and one update step."""

    def __init__(self, n_agents: int, obs_dim: int, n_actions: int, config: MaddpgConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or MaddpgConfig()
        hidden = cfg.hidden or thesis_hidden(obs_dim, n_actions)
        self.dims = Dims(n_agents, obs_dim, n_actions, hidden, cfg.critic_hidden or hidden)
        joint = n_agents * (obs_dim + n_actions)
        self.actors = nn.ModuleList(mlp(obs_dim, hidden, n_actions) for _ in range(n_agents))
        self.critics = nn.ModuleList(mlp(joint, self.dims.critic_hidden, 1) for _ in range(n_agents))
        self.target_actors = nn.ModuleList(mlp(obs_dim, hidden, n_actions) for _ in range(n_agents))
        self.target_critics = nn.ModuleList(mlp(joint, self.dims.critic_hidden, 1) for _ in range(n_agents))
        self.target_actors.load_state_dict(self.actors.state_dict())
        self.target_critics.load_state_dict(self.critics.state_dict())
        self.actor_opts = [torch.optim.Adam(a.parameters(), lr=cfg.actor_lr) for a in self.actors]
        self.critic_opts = [torch.optim.Adam(c.parameters(), lr=cfg.critic_lr) for c in self.critics]
        self.updates = 0

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, A) masked logits of every agent for joint observation (N, D) and masks (N, A)."""
        o = torch.as_tensor(obs, dtype=torch.float32)
        m = torch.as_tensor(mask)
        rows = [masked(actor(o[i]), m[i]) for i, actor in enumerate(self.actors)]
        return torch.stack(rows).numpy()

    def act(self, obs: np.ndarray, mask: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """(N,) actions: greedy argmax of the masked logits, or with ``rng`` a Gumbel-max sample
        (the hard Gumbel-softmax of the update, seeded by the caller's generator)."""
        logits = self.logits(obs, mask)
        if rng is not None:
            logits = logits - np.log(-np.log(rng.uniform(1e-12, 1.0, size=logits.shape)))
            logits = np.where(np.asarray(mask) == 0, -np.inf, logits)
        return logits.argmax(axis=1).astype(np.int64)

    @staticmethod
    def entropy(logits: np.ndarray) -> float:
        """Mean entropy of the masked action distributions (an exploration gauge)."""
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return float(-(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1).mean())

    # -- learning -------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step of every critic and actor, then the soft target update."""
        cfg = self.config
        n, a_dim = self.dims.n_agents, self.dims.n_actions
        obs = torch.as_tensor(batch["obs"], dtype=torch.float32)  # (B, N, D)
        mask = torch.as_tensor(batch["mask"])  # (B, N, A)
        actions = F.one_hot(torch.as_tensor(batch["action"], dtype=torch.int64), a_dim).float()  # (B, N, A)
        rewards = torch.as_tensor(batch["reward"], dtype=torch.float32) * cfg.reward_scale  # (B, N)
        next_obs = torch.as_tensor(batch["next_obs"], dtype=torch.float32)
        next_mask = torch.as_tensor(batch["next_mask"])
        not_done = 1.0 - torch.as_tensor(batch["done"], dtype=torch.float32)  # (B,)
        if not_done.shape != rewards.shape[:1] or rewards.shape[1:] != (n,):
            raise ValueError(f"batch shapes do not fit {n} agents: reward {tuple(rewards.shape)}, "
                             f"done {tuple(not_done.shape)}")
        joint_obs, joint_next_obs = obs.flatten(1), next_obs.flatten(1)

        # Target joint action: a masked Gumbel-softmax sample of every target actor.
        with torch.no_grad():
            next_actions = torch.stack(
                [F.gumbel_softmax(masked(self.target_actors[j](next_obs[:, j]), next_mask[:, j]),
                                  tau=cfg.temperature, hard=True) for j in range(n)], dim=1)
            target_in = torch.cat([joint_next_obs, next_actions.flatten(1)], dim=1)

        metrics: dict[str, float] = {}
        critic_in = torch.cat([joint_obs, actions.flatten(1)], dim=1)
        for i in range(n):
            # Critic i: regress Q_i(s, a) onto r_i + γ Q'_i(s', a').
            with torch.no_grad():
                y = rewards[:, i] + cfg.gamma * not_done * self.target_critics[i](target_in).squeeze(-1)
            q = self.critics[i](critic_in).squeeze(-1)
            critic_loss = F.mse_loss(q, y)
            self.critic_opts[i].zero_grad()
            critic_loss.backward()
            self._clip(self.critics[i])
            self.critic_opts[i].step()

            # Actor i: its own action re-sampled (differentiably) from its masked logits.
            raw = self.actors[i](obs[:, i])
            own = F.gumbel_softmax(masked(raw, mask[:, i]), tau=cfg.temperature, hard=True)
            joint_actions = torch.cat([actions[:, :i], own.unsqueeze(1), actions[:, i + 1 :]], dim=1)
            q_pi = self.critics[i](torch.cat([joint_obs, joint_actions.flatten(1)], dim=1))
            actor_loss = -q_pi.mean() + cfg.actor_reg * (raw**2).mean()
            self.actor_opts[i].zero_grad()
            actor_loss.backward()
            self._clip(self.actors[i])
            self.actor_opts[i].step()

            metrics[f"losses/critic_{i}"] = critic_loss.item()
            metrics[f"losses/actor_{i}"] = actor_loss.item()
            metrics[f"losses/q_{i}"] = q.mean().item()

        soft_update(self.target_actors, self.actors, cfg.tau)
        soft_update(self.target_critics, self.critics, cfg.tau)
        self.updates += 1
        metrics["losses/critic"] = float(np.mean([metrics[f"losses/critic_{i}"] for i in range(n)]))
        metrics["losses/actor"] = float(np.mean([metrics[f"losses/actor_{i}"] for i in range(n)]))
        return metrics

    def _clip(self, module: nn.Module) -> None:
        if self.config.grad_norm_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), self.config.grad_norm_clip)


# -- environment glue ------------------------------------------------------------------------------
def joint(observations: dict[str, dict[str, np.ndarray]], agents: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """PettingZoo dict observations -> (N, D) float32 flat observations and (N, A) int8 masks."""
    obs = np.stack([np.asarray(observations[a]["observation"], dtype=np.float32).reshape(-1) for a in agents])
    mask = np.stack([np.asarray(observations[a]["action_mask"], dtype=np.int8) for a in agents])
    return obs, mask


def random_valid(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) uniformly random unmasked actions (skip when a row is all zero)."""
    noise = rng.random(mask.shape)
    return np.where(mask > 0, noise, -1.0).argmax(axis=1).astype(np.int64)


def build_for_env(env: Any, config: MaddpgConfig) -> Maddpg:
    """A learner sized for a PettingZoo environment with dict observations and discrete actions."""
    agent = env.possible_agents[0]
    obs_dim = int(np.prod(env.observation_space(agent)["observation"].shape))
    return Maddpg(len(env.possible_agents), obs_dim, int(env.action_space(agent).n), config)


@dataclass
class TrainResult:
    learner: Maddpg
    steps: int
    episodes: int
    returns: list[float] = field(default_factory=list)
    last_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


Emit = Callable[[int, int, dict[str, float]], None]  # (env step, episode, metrics)


Checkpoint = Callable[[Maddpg, int], None]  # (learner, env step)


def train(env: Any, config: MaddpgConfig, replay: ReplayMemory | None = None, emit: Emit | None = None,
          checkpoint: Checkpoint | None = None, checkpoint_every: int = 0) -> TrainResult:
    """Single-process training: one environment, one learner, in-process (or any) replay memory.

    ``emit`` receives telemetry (``charts/*``, ``losses/*``); see :mod:`mdde_stream.agents.telemetry`.
    ``checkpoint`` is called every ``checkpoint_every`` env steps (0: never), so a long run that is
    stopped keeps what it learned up to the last one.
    """
    cfg = config
    # Seeding: torch for the networks and the Gumbel noise of the updates, numpy for acting and sampling.
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)
    rng = np.random.default_rng(cfg.seed)

    agents = list(env.possible_agents)
    learner = build_for_env(env, cfg)
    replay = replay if replay is not None else LocalReplay(cfg.buffer_size)
    logger.info("MADDPG: %d agents, obs %d, actions %d, hidden %d/%d, %d steps", *(
        learner.dims.n_agents, learner.dims.obs_dim, learner.dims.n_actions, learner.dims.hidden,
        learner.dims.critic_hidden, cfg.total_steps))

    started = time.perf_counter()
    observations, _ = env.reset(seed=cfg.seed)
    obs, mask = joint(observations, agents)
    episode, episode_return = 0, np.zeros(len(agents))
    returns: list[float] = []
    metrics: dict[str, float] = {}
    invalid = 0
    for step in range(1, cfg.total_steps + 1):
        # 1. act: random-valid until learning starts, then a masked Gumbel-max sample of the actors.
        learning = step > cfg.learning_starts
        action = learner.act(obs, mask, rng) if learning else random_valid(mask, rng)
        next_observations, rewards, terms, truncs, infos = env.step(dict(zip(agents, action.tolist())))
        reward = np.array([rewards[a] for a in agents], dtype=np.float32)
        next_obs, next_mask = joint(next_observations, agents)
        terminated = any(terms.values())
        invalid += sum(1 for a in agents if not infos[a].get("accepted", True))

        # 2. store the joint transition (truncation is not termination: the critic still bootstraps).
        replay.push([make_transition(obs, mask, action, reward, next_obs, next_mask, terminated)])
        episode_return += reward
        obs, mask = next_obs, next_mask

        # 3. learn every `update_every` steps once enough experience is stored.
        if learning and step % cfg.update_every == 0:
            metrics = learner.update(replay.sample(cfg.batch_size, rng))

        # 4. report.
        if emit is not None and step % cfg.telemetry_every == 0:
            report = {k: v for k, v in metrics.items() if k in ("losses/critic", "losses/actor")}
            report["charts/policy_entropy"] = Maddpg.entropy(learner.logits(obs, mask))
            report["charts/random_actions"] = 0.0 if learning else 1.0
            report["charts/invalid_rate"] = invalid / (cfg.telemetry_every * len(agents))
            report["charts/steps_per_second"] = step / (time.perf_counter() - started)
            emit(step, episode, report)
            invalid = 0

        if checkpoint is not None and checkpoint_every > 0 and step % checkpoint_every == 0:
            checkpoint(learner, step)

        # 5. episode boundary.
        if terminated or any(truncs.values()):
            returns.append(float(episode_return.sum()))
            if emit is not None:
                emit(step, episode, {"charts/return": returns[-1],
                                     **{f"charts/return_{a}": float(r) for a, r in zip(agents, episode_return)}})
            episode += 1
            episode_return[:] = 0.0
            if step == cfg.total_steps:
                break  # no reset after the last step: a recorded run would get an empty episode
            observations, _ = env.reset()
            obs, mask = joint(observations, agents)

    return TrainResult(learner, cfg.total_steps, episode, returns, metrics, time.perf_counter() - started)
