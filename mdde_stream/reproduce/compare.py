"""The arithmetic that sets our figures beside the thesis's: shares, differences, Thr. Δ, targets.

Pure functions over arrays, so each definition is pinned by unit tests and written down once:

* **share** of a node in a step: its reads / the step's total reads, in percent.
* **share difference** (Tables 5.1-5.4): ours − thesis, in percentage points, per node and step;
  the table's figure is the mean over steps and nodes of its absolute value. Row 0 is the thesis's
  step "-" (the baseline), row ``k + 1`` its step ``k``.
* **estimate-vs-benchmark difference** (§5.2.3): the thesis compares the mean throughput curves of
  its 11 runs (Figures 5.2/5.4) and reports how much lower the estimate is "on average"; ours is the
  mean over the thesis's steps 0..N-1 (every step after an action; at step "-" the estimate *is* the
  benchmark) of (τ_estimate − τ_benchmark) / τ_benchmark × 100, on the per-step means over runs.
* **Thr. Δ %** (Tables 5.9-5.17): "percentage throughput difference ... compared with the baseline
  throughput at the first step": (τ / τ_baseline − 1) × 100 for the episode's best measurement (the
  baseline included, so an episode that never gains shows 0 %), and the reads share per agent of
  that same measurement. The original implementation (akharitonov/mdde,
  ``DefaultScenario._dump_scenario_stats_at_bench``) writes one CSV row per benchmark — step, each
  agent's reads, total reads, throughput — and the scripts that turned those rows into Tables
  5.9-5.17 are not in its repository, so the reading comes from the tables themselves: each row pairs
  one Thr. Δ with one set of shares summing to 100 % (one measurement); the random agents' worst
  episode (Table 5.14, +140.632 %) sits 1.7 points below the best (+142.323 %) with even shares, and
  every worst MADDPG row (Table 5.11) is exactly 0.000 % with the initial shares — what the episode's
  best measurement gives, not its last (random-valid agents keep copying and deleting to the end:
  ours end between +85 and +140 %, their best measurements between +134 and +142 %). The last measurement is kept beside it
  (``thr_delta_last_pct``) to show how much the reading matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def shares_pct(rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Each row's values as percent of the row total (a zero row stays zero)."""
    arr = np.asarray(rows, dtype=np.float64)
    totals = arr.sum(axis=-1, keepdims=True)
    return np.divide(arr * 100.0, totals, out=np.zeros_like(arr), where=totals > 0)


def share_difference(ours: np.ndarray | Sequence[Sequence[float]],
                     thesis: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Ours − thesis share per step and node, in percentage points, over the common steps."""
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(thesis, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"reads tables must be steps x nodes with the same nodes, got {a.shape} and {b.shape}")
    n = min(len(a), len(b))
    return shares_pct(a[:n]) - shares_pct(b[:n])


def mean_abs_share_difference(ours: np.ndarray | Sequence[Sequence[float]],
                              thesis: np.ndarray | Sequence[Sequence[float]]) -> float:
    """Mean over steps and nodes of |our share − thesis share|, in percentage points."""
    return float(np.abs(share_difference(ours, thesis)).mean())


def relative_difference_pct(estimate: Sequence[float], benchmark: Sequence[float]) -> np.ndarray:
    """Per step (τ_estimate − τ_benchmark) / τ_benchmark × 100 (steps with τ_benchmark = 0 give NaN)."""
    e, b = np.asarray(estimate, dtype=np.float64), np.asarray(benchmark, dtype=np.float64)
    if e.shape != b.shape:
        raise ValueError(f"estimate and benchmark curves differ in length: {e.shape} vs {b.shape}")
    return np.divide((e - b) * 100.0, b, out=np.full_like(e, np.nan), where=b > 0)


def estimate_gap(estimate: Sequence[float], benchmark: Sequence[float],
                 window: tuple[int, int] | None = None) -> float:
    """§5.2.3's "on average" difference over the thesis's steps 0..N-1 (or ``window``, inclusive).

    ``estimate`` and ``benchmark`` are curves indexed like our steps: index 0 the baseline (the
    thesis's step "-"), index ``k + 1`` the thesis's step ``k``.
    """
    diff = relative_difference_pct(estimate, benchmark)[1:]
    if window is not None:
        diff = diff[window[0]: window[1] + 1]
    diff = diff[np.isfinite(diff)]
    return float(diff.mean()) if diff.size else float("nan")


def thr_delta_pct(baseline: float, last: float) -> float:
    """Thr. Δ %: the throughput change of ``last`` against the episode's ``baseline``, in percent."""
    if baseline <= 0:
        raise ValueError(f"baseline throughput must be positive, got {baseline}")
    return (last / baseline - 1.0) * 100.0


@dataclass
class Episode:
    """One random-valid episode: its baseline, its best measurement (baseline included) and its last."""

    seed: int
    baseline: float
    last: float
    best: float
    last_node_reads: list[int]
    best_node_reads: list[int] = field(default_factory=list)
    baseline_source: str = ""
    curve: list[float] = field(default_factory=list)

    @property
    def thr_delta_pct(self) -> float:
        """Thr. Δ of the episode's best measurement (the tables' reading)."""
        return thr_delta_pct(self.baseline, self.best)

    @property
    def thr_delta_last_pct(self) -> float:
        return thr_delta_pct(self.baseline, self.last)

    @property
    def reads_pct(self) -> list[float]:
        """Reads share per agent in the best measurement."""
        return shares_pct(np.asarray(self.best_node_reads or self.last_node_reads, dtype=np.float64)).tolist()

    @property
    def last_reads_pct(self) -> list[float]:
        return shares_pct(np.asarray(self.last_node_reads, dtype=np.float64)).tolist()


def agent_tables(episodes: Sequence[Episode]) -> dict[str, dict[str, float | list[float] | int]]:
    """Tables 5.12-5.14 in our numbers: average over episodes, and the best and the worst episode.

    The average row averages Thr. Δ and each agent's share over episodes (the thesis's average row
    sums to 100 %, which only a per-share mean guarantees); best and worst are single episodes picked
    by Thr. Δ, with their own shares.
    """
    if not episodes:
        raise ValueError("no episodes to summarise")
    deltas = np.array([e.thr_delta_pct for e in episodes])
    lasts = np.array([e.thr_delta_last_pct for e in episodes])
    shares = np.array([e.reads_pct for e in episodes])
    best, worst = int(deltas.argmax()), int(deltas.argmin())
    return {
        "average": {"thr_delta_pct": float(deltas.mean()), "reads_pct": shares.mean(axis=0).tolist(),
                    "thr_delta_last_pct": float(lasts.mean()), "thr_delta_std": float(deltas.std()),
                    "thr_delta_last_std": float(lasts.std())},
        "best": {"thr_delta_pct": float(deltas[best]), "reads_pct": shares[best].tolist(),
                 "thr_delta_last_pct": float(lasts[best]), "episode": best},
        "worst": {"thr_delta_pct": float(deltas[worst]), "reads_pct": shares[worst].tolist(),
                  "thr_delta_last_pct": float(lasts[worst]), "episode": worst},
    }


@dataclass
class Target:
    """One "Done when" figure: ours, the limit, met or not, and why (filled from evidence)."""

    id: str
    description: str
    figure: float | list[float]
    limit: str
    met: bool
    why: str = ""


def share_target(table: str, figure: float, limit_points: float) -> Target:
    return Target(f"table-{table}", f"Table {table}: mean |share difference| per node per step",
                  round(figure, 3), f"≤ {limit_points:g} points", bool(figure <= limit_points))


def thr_delta_target(figure: float, thesis: float, tolerance: float) -> Target:
    return Target("table-5.12-thr-delta", "Table 5.12: random-valid Thr. Δ % (average over episodes)",
                  round(figure, 3), f"{thesis:g} ± {tolerance:g} points",
                  bool(abs(figure - thesis) <= tolerance))


def reads_target(shares: Sequence[float], centre: float, tolerance: float) -> Target:
    values = [round(float(s), 3) for s in shares]
    return Target("table-5.12-reads", "Table 5.12: random-valid % of reads per agent (average over episodes)",
                  values, f"{centre:g} ± {tolerance:g} % each",
                  bool(all(abs(s - centre) <= tolerance for s in values)))
