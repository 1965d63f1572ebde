"""Evaluation in the shape of the thesis's Tables 5.9–5.17, for baselines and trained MADDPG.

Per policy, over ``E`` episodes of the default scenario (estimator benchmark, latest workload,
storage importance 0.5, do-nothing worth 1.0 unless overridden):

* throughput change of the last measurement vs the episode's first (initial allocation), as the
  average, best and worst episode;
* each agent's share of the reads in the last measurement (mean over episodes);
* invalid, conflicting and skip rates over all agent-steps: *invalid* = rejected for its own sake
  (masked choice or illegal skip), *conflicting* = legal at step start but rejected because an earlier
  agent's action in the same step invalidated it, *skip* = the do-nothing action.

Results come back as dataclasses and are written as ``results.json`` and SVG plots.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mdde_stream.policies import Observations, Policy, make_policy

logger = logging.getLogger(__name__)

DEFAULT_EVAL_ENV: dict[str, Any] = {"publish_events": False}
"""Evaluation runs the environment's own defaults (Table 5.5, ``EnvConfig``) unless told otherwise."""


class MaddpgPolicy(Policy):
    """A trained MADDPG checkpoint acting greedily (argmax of the masked actor logits)."""

    def __init__(self, checkpoint: str | Path) -> None:
        from mdde_stream.agents.checkpoint import load_checkpoint

        self.learner, self.extra = load_checkpoint(checkpoint)
        self.name = f"maddpg:{Path(checkpoint).name}"

    def act(self, observations: Observations) -> dict[str, int]:
        from mdde_stream.agents.maddpg import joint

        agents = list(observations)
        obs, mask = joint(observations, agents)
        dims = self.learner.dims
        if obs.shape != (dims.n_agents, dims.obs_dim) or mask.shape[1] != dims.n_actions:
            raise ValueError(f"checkpoint expects {dims.n_agents} agents × obs {dims.obs_dim} / {dims.n_actions} "
                             f"actions, the environment gives {obs.shape} / {mask.shape[1]}")
        return dict(zip(agents, self.learner.act(obs, mask).tolist()))


def policy_from_spec(spec: str, seed: int = 0) -> Policy:
    """``random-valid`` / ``greedy`` / ``starving`` / ``do-nothing`` or ``maddpg:CHECKPOINT_DIR``."""
    if spec.startswith("maddpg:"):
        return MaddpgPolicy(spec.removeprefix("maddpg:"))
    return make_policy(spec, seed=seed)


@dataclass
class PolicyResult:
    policy: str
    episodes: int
    steps: int
    throughput_change_avg: float
    throughput_change_best: float
    throughput_change_worst: float
    reads_share: dict[str, float]
    invalid_rate: float
    conflict_rate: float
    skip_rate: float
    mean_return: float
    first_throughput: float
    last_throughput: float
    throughput_curve: list[float] = field(default_factory=list)


def evaluate_policy(spec: str, episodes: int, env_options: dict[str, Any] | None = None, seed: int = 0) -> PolicyResult:
    """Run ``episodes`` episodes of one policy (episode e seeded ``seed + e``) and summarise them."""
    from mdde_stream.env import parallel_env

    options = {**DEFAULT_EVAL_ENV, **(env_options or {})}
    policy = policy_from_spec(spec, seed)
    env = parallel_env(**options)
    agents = list(env.possible_agents)
    changes, shares, returns, firsts, lasts = [], [], [], [], []
    curves: list[list[float]] = []
    counts = dict(actions=0, invalid=0, conflict=0, skip=0)
    steps = 0
    try:
        for e in range(episodes):
            policy.reset(seed + e)
            observations, infos = env.reset(seed=seed + e)
            latest = env.latest
            assert latest is not None  # reset measured the baseline
            first = float(infos[agents[0]].get("throughput") or latest.throughput)
            curve = [first]
            total = 0.0
            while env.agents:
                actions = policy.act(observations)
                observations, rewards, _, _, infos = env.step(actions)
                steps += 1
                total += float(sum(rewards.values()))
                for agent in agents:
                    info = infos[agent]
                    counts["actions"] += 1
                    counts["skip"] += int(actions[agent] == 0)
                    counts["conflict"] += int(bool(info.get("conflict")))
                    counts["invalid"] += int(not info.get("accepted", True) and not info.get("conflict"))
                latest = env.latest or latest
                curve.append(float(latest.throughput))
            last = float(latest.throughput)
            node_reads = np.asarray(latest.node_reads, dtype=np.float64)
            shares.append(node_reads / node_reads.sum() if node_reads.sum() > 0 else np.zeros(len(agents)))
            changes.append(last / first - 1.0 if first > 0 else 0.0)
            firsts.append(first)
            lasts.append(last)
            returns.append(total)
            curves.append(curve)
    finally:
        env.close()
    n = max(1, counts["actions"])
    return PolicyResult(
        policy=spec, episodes=episodes, steps=steps,
        throughput_change_avg=float(np.mean(changes)), throughput_change_best=float(np.max(changes)),
        throughput_change_worst=float(np.min(changes)),
        reads_share=dict(zip(agents, np.mean(shares, axis=0).tolist())),
        invalid_rate=counts["invalid"] / n, conflict_rate=counts["conflict"] / n, skip_rate=counts["skip"] / n,
        mean_return=float(np.mean(returns)), first_throughput=float(np.mean(firsts)),
        last_throughput=float(np.mean(lasts)), throughput_curve=np.mean(curves, axis=0).tolist(),
    )


def evaluate(specs: list[str], episodes: int, env_options: dict[str, Any] | None = None,
             seed: int = 0) -> list[PolicyResult]:
    return [evaluate_policy(spec, episodes, env_options, seed) for spec in specs]


def write_outputs(results: list[PolicyResult], out_dir: str | Path, env_options: dict[str, Any] | None = None) -> list[Path]:
    """``results.json`` plus three SVG plots (throughput change, reads share, action rates)."""
    from mdde_stream.plots import grouped_bars_svg

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [r.policy for r in results]
    doc = {"env": {**DEFAULT_EVAL_ENV, **(env_options or {})}, "results": [asdict(r) for r in results]}
    paths = [out / "results.json"]
    paths[0].write_text(json.dumps(doc, indent=2))
    charts = {
        "throughput_change.svg": grouped_bars_svg(
            "Throughput change vs the first step, over episodes", names,
            {k: [getattr(r, f"throughput_change_{k}") for r in results] for k in ("avg", "best", "worst")},
            "throughput change (%)", "episodes", percent=True),
        "reads_share.svg": grouped_bars_svg(
            "Share of reads per agent, last measurement", names,
            {a: [r.reads_share.get(a, 0.0) for r in results] for a in (results[0].reads_share if results else {})},
            "share of reads (%)", "agent", percent=True),
        "action_rates.svg": grouped_bars_svg(
            "Action outcome rates", names,
            {"invalid": [r.invalid_rate for r in results], "conflict": [r.conflict_rate for r in results],
             "skip": [r.skip_rate for r in results]}, "share of actions (%)", "outcome", percent=True),
    }
    for name, svg in charts.items():
        path = out / name
        path.write_text(svg)
        paths.append(path)
    return paths


def results_table(results: list[PolicyResult]):
    """A rich table with one row per policy."""
    from rich.table import Table

    agents = list(results[0].reads_share) if results else []
    table = Table("policy", "Δτ avg", "Δτ best", "Δτ worst", *[f"reads {a}" for a in agents],
                  "invalid", "conflict", "skip", "return", title="Evaluation (throughput change vs first step)")
    pct = lambda v: f"{100 * v:+.1f}%"  # noqa: E731
    for r in results:
        table.add_row(r.policy, pct(r.throughput_change_avg), pct(r.throughput_change_best),
                      pct(r.throughput_change_worst), *[f"{100 * r.reads_share[a]:.1f}%" for a in agents],
                      f"{100 * r.invalid_rate:.1f}%", f"{100 * r.conflict_rate:.1f}%", f"{100 * r.skip_rate:.1f}%",
                      f"{r.mean_return:.4g}")
    return table
