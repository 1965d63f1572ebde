"""The learner side of the hive mind: sample the shared Redis replay, update, publish weights.

``run_learner`` keeps the thesis's update ratio — one update per ``update_every`` environment steps
pushed by *all* actors together — so adding actors adds experience, not staleness. The first
weights are published when learning starts; until then actors explore random-valid, exactly like
the single-process loop. ``train_distributed`` starts ``n`` actor processes and runs the learner in
the calling process (the shape the compose service uses, in one command).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mdde_stream.agents.actor import ActorConfig, run_actor
from mdde_stream.agents.checkpoint import policy_bytes
from mdde_stream.agents.maddpg import Checkpoint, Emit, Maddpg, MaddpgConfig, build_for_env
from mdde_stream.agents.memory_redis import PolicyChannel, RedisReplay

logger = logging.getLogger(__name__)


@dataclass
class LearnerStats:
    updates: int = 0
    env_steps: int = 0
    published: int = 0
    seconds: float = 0.0
    sampling_seconds: float = 0.0
    """From the start until the actors had pushed ``total_steps`` (excludes the catch-up updates)."""
    returns: list[float] = field(default_factory=list)
    episodes_by_actor: dict[int, int] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)


def run_learner(learner: Maddpg, replay: RedisReplay, channel: PolicyChannel, total_steps: int,
                emit: Emit | None = None, publish_every: int = 20, telemetry_every: int = 20,
                timeout_s: float | None = None, idle_sleep_s: float = 0.005,
                checkpoint: Checkpoint | None = None, checkpoint_every: int = 0) -> LearnerStats:
    """Learn until the actors have pushed ``total_steps`` transitions, stop them, and finish the
    updates owed for everything they pushed (one per ``update_every`` steps after ``learning_starts``).

    ``checkpoint`` is called each time the pushed env steps pass a multiple of ``checkpoint_every``."""
    cfg = learner.config
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    stats = LearnerStats()
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    episode = 0
    stopping = False
    next_checkpoint = checkpoint_every
    try:
        while True:
            pushed = replay.pushed
            stats.env_steps = pushed
            if checkpoint is not None and checkpoint_every > 0 and pushed >= next_checkpoint:
                checkpoint(learner, pushed)
                next_checkpoint = (pushed // checkpoint_every + 1) * checkpoint_every
            episode = _absorb_returns(stats, replay, pushed, episode, emit)
            if not stopping and pushed >= total_steps:
                # Enough experience: stop the actors, then catch up on the updates it is owed.
                replay.request_stop()
                stopping = True
                stats.sampling_seconds = time.perf_counter() - started
            due = 0 if pushed < cfg.learning_starts else (pushed - cfg.learning_starts) // cfg.update_every + 1
            if stats.updates >= due:
                if stopping:
                    break
                if timeout_s is not None and time.perf_counter() - started > timeout_s:
                    logger.warning("learner timed out after %.0f s with %d/%d steps", timeout_s, pushed, total_steps)
                    break
                time.sleep(idle_sleep_s)
                continue
            metrics = learner.update(replay.sample(cfg.batch_size, rng))
            stats.updates += 1
            if stats.updates == 1 or stats.updates % publish_every == 0:
                channel.publish(policy_bytes(learner))
                stats.published += 1
            if emit is not None and stats.updates % telemetry_every == 0:
                emit(pushed, episode, {"losses/critic": metrics["losses/critic"], "losses/actor": metrics["losses/actor"],
                                       "charts/updates": float(stats.updates), "charts/replay_size": float(len(replay)),
                                       "charts/env_steps_per_second": pushed / (time.perf_counter() - started)})
    finally:
        replay.request_stop()
        stats.seconds = time.perf_counter() - started
        stats.last_metrics = metrics
    return stats


def _absorb_returns(stats: LearnerStats, replay: RedisReplay, step: int, episode: int, emit: Emit | None) -> int:
    """Move the actors' episode returns into ``stats`` (and telemetry); returns the episode count."""
    for report in replay.drain_returns():
        total = float(sum(report["returns"].values()))
        actor_id = int(report["actor"])
        stats.returns.append(total)
        stats.episodes_by_actor[actor_id] = stats.episodes_by_actor.get(actor_id, 0) + 1
        if emit is not None:
            emit(step, episode, {"charts/return": total, "charts/actor": float(actor_id)})
        episode += 1
    return episode


def wait_for_actors(replay: RedisReplay, processes: list[Any], external: int = 0, timeout_s: float = 180.0) -> None:
    """Block until every actor — our processes and ``external`` ones started elsewhere on the same
    prefix (``mdde-stream actor``, compose replicas) — has registered, so all take part from the start."""
    expected = len(processes) + external
    deadline = time.monotonic() + timeout_s
    while len(replay.actors()) < expected:
        dead = [p.name for p in processes if not p.is_alive()]
        if dead:
            raise RuntimeError(f"actor processes exited before starting: {dead}")
        if time.monotonic() > deadline:
            hint = f" ({external} expected from elsewhere: started with --prefix {replay.prefix}?)" if external else ""
            raise TimeoutError(
                f"only {len(replay.actors())}/{expected} actors registered under {replay.prefix!r} "
                f"in {timeout_s:.0f} s{hint}"
            )
        time.sleep(0.05)


@dataclass
class DistributedResult:
    learner: Maddpg
    stats: LearnerStats
    prefix: str


def train_distributed(config: MaddpgConfig, env_options: dict[str, Any], redis_url: str, actors: int,
                      capacity: int = 100_000, prefix: str | None = None, emit: Emit | None = None,
                      publish_every: int = 20, keep_keys: bool = False, timeout_s: float | None = None,
                      compress: bool = True, external_actors: int = 0,
                      wait_timeout_s: float = 180.0, checkpoint: Checkpoint | None = None,
                      checkpoint_every: int = 0) -> DistributedResult:
    """``actors`` actor processes + this process as the learner, through one Redis replay memory.

    ``external_actors`` more are expected to join from elsewhere on the same ``prefix`` (they claim
    their own indices); learning starts once all have registered.
    """
    from mdde_stream.env import parallel_env

    if actors < 0 or external_actors < 0 or actors + external_actors < 1:
        raise ValueError(f"at least one actor is needed, got {actors} here and {external_actors} external")
    prefix = prefix or f"mdde:replay:{uuid.uuid4().hex[:12]}"
    replay = RedisReplay.from_url(redis_url, prefix, capacity, compress)
    replay.clear_stop()  # a stop left by an earlier run on this prefix must not end this one
    channel = PolicyChannel(replay.client, prefix)
    probe = parallel_env(**{"publish_events": False, **env_options})
    try:
        learner = build_for_env(probe, config)
    finally:
        probe.close()
    torch.set_num_threads(config.torch_threads)
    base = ActorConfig(redis_url=redis_url, prefix=prefix, capacity=capacity, env=dict(env_options),
                       seed=config.seed, compress=compress)
    ctx = mp.get_context("spawn")
    processes = [ctx.Process(target=_actor_main, args=(base,), name=f"mdde-actor-{i}", daemon=True)
                 for i in range(actors)]
    for p in processes:
        p.start()
    stats: LearnerStats | None = None
    try:
        wait_for_actors(replay, processes, external_actors, wait_timeout_s)
        stats = run_learner(learner, replay, channel, config.total_steps, emit=emit, publish_every=publish_every,
                            telemetry_every=max(1, config.telemetry_every // config.update_every), timeout_s=timeout_s,
                            checkpoint=checkpoint, checkpoint_every=checkpoint_every)
    finally:
        replay.request_stop()
        for p in processes:
            p.join(timeout=60)
            if p.is_alive():
                logger.error("actor process %s did not stop; terminating it", p.name)
                p.terminate()
        failed = [p.name for p in processes if p.exitcode not in (0, None)]
        if stats is not None:  # episodes the actors finished while stopping
            _absorb_returns(stats, replay, stats.env_steps, len(stats.returns), emit)
        if not keep_keys:
            replay.clear()
        replay.client.close()
    if failed:
        raise RuntimeError(f"actor processes failed: {failed} (see their log output)")
    assert stats is not None
    return DistributedResult(learner, stats, prefix)


def _actor_main(config: ActorConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_actor(config)
