"""The training progress bar: env steps done, and the latest losses and episode return beside it.

It is an emit callback like the telemetry sinks, so it shows exactly what the bus and TensorBoard
receive, at the same cadence (every ``telemetry_every`` steps and at each episode's end).
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3g}"


class TrainingProgress:
    """A rich progress bar over ``total`` env steps; use as a context manager and as an emit callback."""

    def __init__(self, total: int, console: Console | None = None, disable: bool = False) -> None:
        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"),
            console=console, disable=disable,
        )
        self._task = self._progress.add_task("train", total=total, stats="learning not started")
        self.latest: dict[str, float] = {}
        self.episodes = 0

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, step: int, episode: int, metrics: dict[str, float]) -> None:
        self.latest.update(metrics)
        if "charts/return" in metrics:
            self.episodes += 1
        stats = (f"episodes {self.episodes} · return {_fmt(self.latest.get('charts/return'))} · "
                 f"critic {_fmt(self.latest.get('losses/critic'))} · actor {_fmt(self.latest.get('losses/actor'))}")
        self._progress.update(self._task, completed=step, stats=stats)

    def finish(self, steps: int) -> None:
        self._progress.update(self._task, completed=steps)
