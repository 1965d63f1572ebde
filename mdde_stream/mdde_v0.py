"""MDDE, version 0 of the environment, in PettingZoo's module style.

    from mdde_stream import mdde_v0

    env = mdde_v0.parallel_env()      # ParallelEnv (the native form)
    env = mdde_v0.env()               # AEC, with PettingZoo's order-enforcing and bounds-checking wrappers
    env = mdde_v0.raw_env()           # AEC without wrappers

Keyword arguments are :class:`~mdde_stream.env.EnvConfig` fields (validated; the defaults are the
thesis's Table 5.5), plus ``settings`` and ``render_mode``. The version in the name changes whenever
a change to the environment would change the results of a seeded run.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec_wrapper

from mdde_stream.config import Settings
from mdde_stream.env import parallel_env

__all__ = ["env", "parallel_env", "raw_env"]


def raw_env(settings: Settings | None = None, render_mode: str | None = None, **config: Any):
    return parallel_to_aec_wrapper(parallel_env(settings=settings, render_mode=render_mode, **config))


def env(settings: Settings | None = None, render_mode: str | None = None, **config: Any):
    """Out-of-bounds actions are rejected before they reach the registry; calls out of order raise."""
    return wrappers.OrderEnforcingWrapper(
        wrappers.AssertOutOfBoundsWrapper(raw_env(settings=settings, render_mode=render_mode, **config))
    )
