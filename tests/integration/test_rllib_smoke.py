"""RLlib trains on the environment through its PettingZoo wrapper, with action masking (``rllib`` extra).

Needs the ``rllib`` extra, which the test command installs; without it the test fails and says so.
No servers needed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

try:
    import ray.rllib  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the extra
    pytest.fail(f"the `rllib` extra is not installed ({exc}): pip install -e '.[rllib]'", pytrace=False)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import rllib_train  # noqa: E402

pytestmark = pytest.mark.slow


def test_ppo_runs_a_few_iterations_with_masked_actions() -> None:
    env_config = {"nodes": 2, "fragments": 4, "records": 400, "max_steps": 25}
    summaries = rllib_train.train(3, env_config, batch=200, minibatch=50, hidden=32)
    assert [s["iteration"] for s in summaries] == [1, 2, 3]
    steps = [s["env_steps"] for s in summaries]
    assert steps[0] >= 200 and steps[0] < steps[1] < steps[2]
    assert all(s["episode_return_mean"] is not None and math.isfinite(s["episode_return_mean"]) for s in summaries)
    wrapper = rllib_train.RllibMaskedObservations
    assert wrapper.chosen >= 2 * steps[-1]  # two agents act on every sampled step
    assert wrapper.illegal == 0
