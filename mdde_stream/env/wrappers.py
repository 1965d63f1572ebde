"""Optional wrappers around the environment; the environment itself keeps the thesis's rewards.

By the thesis's design (Eq 3.8 / 3.9) a reward is ±1 or V on ordinary steps and throughput-scaled on
benchmark steps: τ · reads share · correctness + ϱ · τ · free storage share, about 10⁴ with the default
workload (τ of the order of 10⁴ reads/s). Learners that prefer rewards of one scale can divide the
benchmark-step rewards by a throughput.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.wrappers import BaseParallelWrapper


class BenchmarkRewardScale(BaseParallelWrapper):
    """Divides the rewards of benchmark steps by ``throughput`` (default: the episode's baseline τ₀, so
    Eq 3.9's τ becomes the relative throughput τ/τ₀); rewards of other steps pass unchanged."""

    def __init__(self, env: Any, throughput: float | None = None) -> None:
        super().__init__(env)
        if throughput is not None and not throughput > 0:
            raise ValueError(f"throughput must be positive, got {throughput}")
        self.fixed = throughput
        self.scale = 1.0

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        observations, infos = self.env.reset(seed=seed, options=options)
        first: dict[str, Any] = next(iter(infos.values()), {})
        base = self.fixed or first.get("throughput") or 1.0
        self.scale = 1.0 / float(base)
        return observations, infos

    def step(self, actions: dict[str, int]):  # type: ignore[override]
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        if any(info.get("throughput_measured") for info in infos.values()):
            rewards = {agent: r * self.scale for agent, r in rewards.items()}
        return observations, rewards, terminations, truncations, infos
