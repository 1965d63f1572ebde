"""The stage: MDDE as a PettingZoo environment, with pluggable scenarios and benchmark sources."""

from __future__ import annotations

import sys
import types
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
    "env",
    "parallel_env",
]


def parallel_env(settings: Settings | None = None, render_mode: str | None = None, **config: Any) -> MddeParallelEnv:
    """The parallel environment; keyword arguments are :class:`EnvConfig` fields (validated)."""
    return MddeParallelEnv(EnvConfig(**config), settings=settings, render_mode=render_mode)


def env(settings: Settings | None = None, render_mode: str | None = None, **config: Any):
    """The AEC environment: the parallel one through PettingZoo's converter (order-enforced),
    with out-of-bounds actions rejected before they reach the registry."""
    from pettingzoo.utils import wrappers
    from pettingzoo.utils.conversions import parallel_to_aec_wrapper

    aec = parallel_to_aec_wrapper(parallel_env(settings=settings, render_mode=render_mode, **config))
    return wrappers.OrderEnforcingWrapper(wrappers.AssertOutOfBoundsWrapper(aec))


class _CallableModule(types.ModuleType):
    """Lets ``mdde_stream.env(**config)`` work although ``mdde_stream.env`` is also this package:
    once the package is imported, Python binds the attribute to the module, so the module itself
    must behave like the ``env`` factory."""

    def __call__(self, *args: Any, **kwargs: Any):
        return env(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
