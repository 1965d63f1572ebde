"""The stage: MDDE as a PettingZoo environment, with pluggable scenarios and benchmark sources."""

from __future__ import annotations

from typing import Any

from mdde_stream.config import Settings
from mdde_stream.env.config import EnvConfig
from mdde_stream.env.default_scenario import DefaultScenario
from mdde_stream.env.parallel import MddeParallelEnv
from mdde_stream.env.scenario import DecodedAction, Measurement, Scenario, StepFacts

__all__ = [
    "DecodedAction",
    "DefaultScenario",
    "EnvConfig",
    "Measurement",
    "MddeParallelEnv",
    "Scenario",
    "StepFacts",
    "parallel_env",
]


def parallel_env(settings: Settings | None = None, render_mode: str | None = None, **config: Any) -> MddeParallelEnv:
    """The parallel environment; keyword arguments are :class:`EnvConfig` fields (validated)."""
    return MddeParallelEnv(EnvConfig(**config), settings=settings, render_mode=render_mode)
