"""Record episodes for replay tests and benchmarks: random-valid policy, events on the given bus."""

from __future__ import annotations

import logging
from typing import Any

from mdde_stream.config import Settings
from mdde_stream.env import EnvConfig
from mdde_stream.env.config import new_run_id
from mdde_stream.policies import RandomValid
from mdde_stream.runner import RunSummary, run_episodes

logger = logging.getLogger(__name__)


def record_episodes(
    settings: Settings,
    episodes: int = 1,
    steps: int = 20,
    seed: int = 0,
    run_id: str | None = None,
    **config: Any,
) -> RunSummary:
    """Run ``episodes`` random-valid episodes of ``steps`` steps, recording them on ``settings.bus``."""
    cfg = EnvConfig(max_steps=steps, seed=seed, run_id=run_id or new_run_id(), **{"publish_events": True, **config})
    return run_episodes(cfg, RandomValid(seed), episodes, settings=settings)
