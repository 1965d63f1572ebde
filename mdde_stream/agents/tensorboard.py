"""Learner metrics as TensorBoard event files, beside the bus telemetry.

The names are the same CleanRL-style ones the bus carries (``losses/critic``, ``charts/return``),
so TensorBoard groups them into the same sections as the Kibana dashboards. The x axis is the
environment step, as in CleanRL.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

logger = logging.getLogger(__name__)


def tensorboard_available() -> bool:
    """True when ``torch.utils.tensorboard`` can write (it needs the ``tensorboard`` package)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardSink:
    """An emit callback writing one scalar per metric into ``logdir``."""

    def __init__(self, logdir: Path, hparams: dict[str, object] | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = Path(logdir)
        self._writer = SummaryWriter(log_dir=str(self.logdir))
        if hparams:
            # CleanRL's habit: the configuration as a markdown table in the TEXT tab.
            rows = "\n".join(f"|{k}|{v}|" for k, v in sorted(hparams.items()))
            self._writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")

    def __call__(self, step: int, episode: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if math.isfinite(value):
                self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()
