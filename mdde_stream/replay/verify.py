"""Verify a recorded episode: rebuild it and compare every verdict, allocation and reward.

Checks, per step, in this order (the first mismatch is reported, with the recorded event's
topic, partition and offset, and the replay stops there):

1. the step's actions agree with its ``StepCompleted.actions`` (the recording is self-consistent);
2. each agent's ``ActionResult`` (accepted, code, conflict) equals the rebuilt registry's verdict;
3. the allocation after the step equals the recorded initial allocation with the recorded accepted
   actions applied, and the rebuilt environment's; replica and storage counts match ``StepCompleted``;
4. each agent's reward equals the recorded one exactly (floats compared bit for bit);
5. benchmark steps: flag, throughput and per-node reads; the episode's end flags.

Before step 1 the reset is checked: node and fragment ids, initial allocation, baseline measurement.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdde_stream.config import Settings
from mdde_stream.events import ActionKind, Event
from mdde_stream.replay.rebuild import EpisodeRebuild, ReplayedStep
from mdde_stream.replay.recording import EpisodeRecording

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Divergence:
    """The first place where the rebuilt episode differs from the recording."""

    step: int
    agent: str | None
    what: str
    expected: Any
    got: Any
    where: str = ""

    def __str__(self) -> str:
        who = f", agent {self.agent}" if self.agent is not None else ""
        at = f" (recorded at {self.where})" if self.where else ""
        return f"step {self.step}{who}: {self.what}: expected {self.expected!r}{at}, got {self.got!r}"


@dataclass
class VerifyReport:
    run_id: str
    episode: int
    steps: int = 0
    checks: int = 0
    divergence: Divergence | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.divergence is None

    def __str__(self) -> str:
        head = f"run {self.run_id} episode {self.episode}"
        if self.ok:
            return f"{head}: OK, {self.steps} steps, {self.checks} checks in {self.elapsed_s:.3f} s"
        return f"{head}: DIVERGES at {self.divergence}"


class _Check:
    """Counts comparisons and raises the first divergence."""

    def __init__(self, locations: dict[str, str]) -> None:
        self.count = 0
        self.locations = locations

    def eq(self, step: int, agent: str | None, what: str, expected: Any, got: Any, source: Event | None = None) -> None:
        self.count += 1
        if expected != got or type(expected) is float and type(got) is float and _bits(expected) != _bits(got):
            where = self.locations.get(source.event_id, "") if source is not None else ""
            raise _Diverged(Divergence(step, agent, what, expected, got, where))


class _Diverged(Exception):
    def __init__(self, divergence: Divergence) -> None:
        self.divergence = divergence


def _bits(x: float) -> bytes:
    return np.float64(x).tobytes()


def verify_episode(recording: EpisodeRecording, settings: Settings | None = None) -> VerifyReport:
    """Rebuild ``recording`` and compare it; raises ``IncompleteRecordingError`` when it lacks events."""
    started_at = time.perf_counter()
    report = VerifyReport(recording.run_id, recording.episode)
    check = _Check({r.event.event_id: r.where for r in recording.events})
    with EpisodeRebuild(recording, settings) as rebuild:
        try:
            _check_reset(rebuild, check)
            expected = _initial_matrix(rebuild)
            for replayed in rebuild.steps():
                _check_step(rebuild, replayed, expected, check)
                report.steps += 1
        except _Diverged as exc:
            report.divergence = exc.divergence
    report.checks = check.count
    report.elapsed_s = time.perf_counter() - started_at
    log = logger.info if report.ok else logger.warning
    log("%s", report)
    return report


def _initial_matrix(rebuild: EpisodeRebuild) -> np.ndarray:
    env, started = rebuild.env, rebuild.started
    f_pos = {f: i for i, f in enumerate(env.fragment_ids)}
    m = np.zeros((len(env.node_ids), len(env.fragment_ids)), dtype=bool)
    for w, node in enumerate(env.node_ids):
        for frag in started.allocation.get(node, []):
            m[w, f_pos[frag]] = True
    return m


def _check_reset(rebuild: EpisodeRebuild, check: _Check) -> None:
    env, started = rebuild.env, rebuild.started
    rebuild.reset()
    if started.agents:
        check.eq(0, None, "agents", started.agents, list(env.possible_agents), started)
    if started.node_ids:
        check.eq(0, None, "node ids", started.node_ids, list(env.node_ids), started)
    if started.fragment_ids:
        check.eq(0, None, "fragment ids", started.fragment_ids, list(env.fragment_ids), started)
    check.eq(0, None, "initial allocation", {n: sorted(fs) for n, fs in started.allocation.items()},
             {n: sorted(fs) for n, fs in _allocation_map(env).items()}, started)
    assert env.initial is not None
    if started.baseline_throughput is not None:
        check.eq(0, None, "baseline throughput", started.baseline_throughput, float(env.initial.throughput), started)
    if started.baseline_reads:
        got = {n: {f: int(v) for f, v in zip(env.fragment_ids, row) if v}
               for n, row in zip(env.node_ids, env.initial.reads.tolist())}
        want = {n: {f: v for f, v in row.items() if v} for n, row in started.baseline_reads.items()}
        check.eq(0, None, "baseline reads", {n: r for n, r in want.items() if r}, {n: r for n, r in got.items() if r},
                 started)


def _allocation_map(env: Any) -> dict[str, list[str]]:
    return {n: [env.fragment_ids[f] for f in np.flatnonzero(row)] for n, row in zip(env.node_ids, env.allocation)}


def _check_step(rebuild: EpisodeRebuild, replayed: ReplayedStep, expected: np.ndarray, check: _Check) -> None:
    env = rebuild.env
    rec = replayed.record
    t = rec.step
    summary = rec.summary
    assert summary is not None
    if summary.actions:
        check.eq(t, None, "actions of StepCompleted vs ActionSubmitted", summary.actions, replayed.actions, summary)
    n_pos = {n: i for i, n in enumerate(env.node_ids)}
    f_pos = {f: i for i, f in enumerate(env.fragment_ids)}
    for i, agent in enumerate(rebuild.agents):
        action = rec.actions[i]
        result = rec.result_for(action)
        assert result is not None
        info = replayed.infos[agent]
        check.eq(t, agent, "action result accepted", result.accepted, info["accepted"], result)
        check.eq(t, agent, "action result code", result.code, info["code"], result)
        check.eq(t, agent, "action result conflict", result.conflict, info["conflict"], result)
        if result.accepted and action.kind is not ActionKind.SKIP:
            expected[n_pos[action.target], f_pos[action.fragment]] = action.kind is ActionKind.COPY  # type: ignore[index]
    got = replayed.allocation
    if not np.array_equal(expected, got):
        cells = [f"{env.node_ids[w]}/{env.fragment_ids[f]}: {'held' if expected[w, f] else 'absent'}"
                 for w, f in np.argwhere(expected != got)[:5]]
        check.eq(t, None, "allocation (recorded initial allocation + recorded accepted actions)",
                 "; ".join(cells), "the opposite in the rebuilt registry", None)
    if summary.replicas:
        check.eq(t, None, "replicas per fragment", summary.replicas,
                 dict(zip(env.fragment_ids, got.sum(axis=0).tolist())), summary)
    if summary.storage:
        check.eq(t, None, "fragments per node", summary.storage, dict(zip(env.node_ids, got.sum(axis=1).tolist())),
                 summary)
    for agent in rebuild.agents:
        check.eq(t, agent, "reward", summary.rewards.get(agent), replayed.rewards[agent], summary)
    bench = env.scenario.is_benchmark_step(t)
    check.eq(t, None, "benchmark step", summary.benchmark, bench, summary)
    if bench and summary.throughput is not None:
        assert env.latest is not None
        check.eq(t, None, "throughput", summary.throughput, float(env.latest.throughput), summary)
        check.eq(t, None, "reads per node", summary.node_reads,
                 dict(zip(env.node_ids, env.latest.node_reads.tolist())), summary)
    first = rebuild.agents[0]
    check.eq(t, None, "truncated", summary.truncated, replayed.truncations[first], summary)
    check.eq(t, None, "terminated", summary.terminated, replayed.terminations[first], summary)
