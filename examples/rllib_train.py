"""Train on mdde-stream with Ray RLlib's multi-agent API (PPO, action masking, parameter sharing).

Needs the ``rllib`` extra (``pip install "ray[rllib]" torch``). The environment goes to RLlib through
its PettingZoo wrapper, ``ParallelPettingZooEnv``; a thin PettingZoo wrapper in front of it only
renames the observation keys to what RLlib's action-masking module reads (``observations``,
``action_mask``), flattens the W×F×3 grid and casts the mask to float. Masked logits are pushed to
the float minimum inside the module, so no illegal action is ever sampled.

    python examples/rllib_train.py --iterations 5 --nodes 4 --fragments 20
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo.utils.wrappers import BaseParallelWrapper

from mdde_stream.env.config import EnvConfig, default_of

logger = logging.getLogger(__name__)

ENV_NAME = "mdde_stream_masked"


class RllibMaskedObservations(BaseParallelWrapper):
    """``{"observation": (W, F, 3), "action_mask": int8}`` -> ``{"observations": flat, "action_mask": float32}``.

    Counts the actions it forwards and how many of them were masked (class-wide, so a smoke test
    can check the masking end to end when RLlib samples in the driver process).
    """

    chosen = 0
    illegal = 0

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        agent = env.possible_agents[0]
        inner = env.observation_space(agent)
        size = int(np.prod(inner["observation"].shape))
        n = int(env.action_space(agent).n)
        self._space = spaces.Dict({
            "observations": spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32),
            "action_mask": spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32),
        })

    def observation_space(self, agent: str) -> spaces.Dict:
        return self._space

    def _convert(self, observations: dict[str, Any]) -> dict[str, Any]:
        self._masks = {a: o["action_mask"] for a, o in observations.items()}
        return {a: {"observations": np.asarray(o["observation"], dtype=np.float32).reshape(-1),
                    "action_mask": np.asarray(o["action_mask"], dtype=np.float32)} for a, o in observations.items()}

    def reset(self, seed: int | None = None, options: dict | None = None):
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._convert(observations), infos

    def step(self, actions: dict[str, int]):
        cls = type(self)
        cls.chosen += len(actions)
        cls.illegal += sum(1 for a, v in actions.items() if not self._masks[a][int(v)])
        observations, rewards, terms, truncs, infos = self.env.step({a: int(v) for a, v in actions.items()})
        # RLlib aggregates infos; keep them JSON-simple.
        infos = {a: {k: v for k, v in i.items() if isinstance(v, (bool, int, float))} for a, i in infos.items()}
        return self._convert(observations), rewards, terms, truncs, infos


def make_env(env_config: dict[str, Any]):
    """RLlib's env creator: the mdde-stream environment behind the PettingZoo wrapper."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from mdde_stream.env import parallel_env

    options = {"publish_events": False, **env_config}  # everything else: EnvConfig's Table 5.5 defaults
    return ParallelPettingZooEnv(RllibMaskedObservations(parallel_env(**options)))


def build_config(env_config: dict[str, Any], batch: int = 400, minibatch: int = 100, hidden: int | None = None):
    """PPO on the new API stack: one shared action-masking module for every agent."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
    from ray.tune.registry import register_env

    from mdde_stream.agents.maddpg import thesis_hidden

    register_env(ENV_NAME, make_env)
    nodes, fragments = env_config.get("nodes", 4), env_config.get("fragments", 20)
    width = hidden or thesis_hidden(nodes * fragments * 3, nodes * fragments + fragments + 1)
    return (
        PPOConfig()
        # RLlib's environment check steps random (unmasked) actions; PettingZoo's API test covers the env.
        .environment(ENV_NAME, env_config=env_config, disable_env_checking=True)
        .framework("torch")
        .env_runners(num_env_runners=0, rollout_fragment_length="auto")
        .learners(num_learners=0)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "shared")
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={
            "shared": RLModuleSpec(module_class=ActionMaskingTorchRLModule,
                                   model_config={"head_fcnet_hiddens": [width, width]}),
        }))
        .training(train_batch_size_per_learner=batch, minibatch_size=minibatch, num_epochs=2, lr=3e-4)
    )


def train(iterations: int, env_config: dict[str, Any], batch: int = 400, minibatch: int = 100,
          hidden: int | None = None) -> list[dict[str, Any]]:
    """Run ``iterations`` PPO iterations; returns one small summary per iteration."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    algo = build_config(env_config, batch, minibatch, hidden).build_algo()
    summaries = []
    try:
        for i in range(iterations):
            started = time.perf_counter()
            result = algo.train()
            runners = result.get("env_runners", {})
            summaries.append({
                "iteration": i + 1,
                "env_steps": int(runners.get("num_env_steps_sampled_lifetime", 0)),
                "episode_return_mean": runners.get("episode_return_mean"),
                "seconds": time.perf_counter() - started,
            })
            logger.info("iteration %d: %s", i + 1, summaries[-1])
    finally:
        algo.stop()
        ray.shutdown()
    return summaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=default_of("nodes"))
    parser.add_argument("--fragments", type=int, default=default_of("fragments"))
    parser.add_argument("--episode-steps", type=int, default=default_of("max_steps"), help="Table 5.5: 1,001")
    parser.add_argument("--batch", type=int, default=400)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env_config = {"nodes": args.nodes, "fragments": args.fragments, "max_steps": args.episode_steps}
    print("environment:", EnvConfig(**env_config).model_dump(mode="json"))
    for summary in train(args.iterations, env_config, batch=args.batch):
        print(summary)


if __name__ == "__main__":
    main()
