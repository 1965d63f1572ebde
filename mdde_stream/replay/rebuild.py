"""Rebuild a recorded episode through the real environment code, step by step.

The environment is constructed from the recorded configuration, with a fresh in-memory registry
(``MemoryStore``) and no bus, reset with the recorded seed, and stepped with the recorded actions.
So what a verification compares is what the environment *does* today for that episode, not a
second implementation of its rules. Simulated and estimated benchmarks are seeded and rebuild
bit for bit; a real benchmark cannot be rerun, so its recorded results are fed back instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdde_stream.config import Settings, get_settings
from mdde_stream.env import EnvConfig, MddeParallelEnv
from mdde_stream.env.benchmarking import BenchmarkRequest, BenchmarkSource, EstimateSource
from mdde_stream.env.scenario import Measurement
from mdde_stream.events import EpisodeStarted
from mdde_stream.replay.exceptions import ReplayError
from mdde_stream.replay.recording import EpisodeRecording, StepRecord

logger = logging.getLogger(__name__)

#: Configuration fields that say where the original ran, not what it computed: replaced on rebuild.
_PLACEMENT = {"publish_events": False, "stage": "local", "state": "", "bus": None}


def rebuild_config(started: EpisodeStarted) -> EnvConfig:
    """The recorded ``EnvConfig``, placed in-process (memory registry, no bus, no remote stage)."""
    fields = EnvConfig.model_fields
    unknown = sorted(set(started.config) - set(fields))
    if unknown:
        raise ReplayError(
            f"run {started.run_id} episode {started.episode} was recorded with configuration fields "
            f"{unknown} that this version of the environment does not know; it cannot be rebuilt"
        )
    values: dict[str, Any] = {**started.config, **_PLACEMENT, "run_id": started.run_id}
    if values.get("benchmark") == "real":
        values["benchmark"] = "estimate"  # placeholder source; replaced by the recorded results
    values["baseline"] = "simulated"  # placeholder measurer; the recorded baseline replaces it
    return EnvConfig(**values)


def _reads_matrix(reads: dict[str, dict[str, int]], node_ids: list[str], fragment_ids: list[str]) -> np.ndarray:
    out = np.zeros((len(node_ids), len(fragment_ids)), dtype=np.int64)
    n_pos = {n: i for i, n in enumerate(node_ids)}
    f_pos = {f: i for i, f in enumerate(fragment_ids)}
    for node, row in reads.items():
        for frag, count in row.items():
            out[n_pos[node], f_pos[frag]] = count
    return out


class RecordedSource(BenchmarkSource):
    """Serves the recorded results of a real benchmark back to the environment, step by step."""

    mode = "real"

    def __init__(self, recording: EpisodeRecording, node_ids: list[str], fragment_ids: list[str]) -> None:
        self.recording = recording
        self.node_ids, self.fragment_ids = node_ids, fragment_ids

    def baseline(self, request: BenchmarkRequest) -> Measurement:
        started = self.recording.started
        assert started is not None
        if started.baseline_throughput is None:
            raise ReplayError(f"{self.recording.name}: the recorded EpisodeStarted has no baseline measurement")
        reads = _reads_matrix(started.baseline_reads, self.node_ids, self.fragment_ids)
        return Measurement(started.baseline_throughput, reads, "real")

    def measure(self, request: BenchmarkRequest) -> Measurement:
        rec = self.recording.steps.get(request.step)
        m = rec.measurement if rec is not None else None
        if m is None:
            raise ReplayError(
                f"{self.recording.name} step {request.step}: the real benchmark's result is not recorded on "
                "'benchmark.results'; a real benchmark cannot be rerun, so this step cannot be rebuilt"
            )
        return Measurement(m.throughput, _reads_matrix(m.reads, self.node_ids, self.fragment_ids), "real")


@dataclass
class ReplayedStep:
    """One recorded step and what the rebuilt environment made of it."""

    record: StepRecord
    actions: dict[str, int]
    observations: dict[str, Any]
    rewards: dict[str, float]
    terminations: dict[str, bool]
    truncations: dict[str, bool]
    infos: dict[str, dict[str, Any]]
    allocation: np.ndarray


class EpisodeRebuild:
    """The rebuilt environment of one recorded episode; ``reset`` then iterate ``steps``."""

    def __init__(self, recording: EpisodeRecording, settings: Settings | None = None) -> None:
        recording.require_complete()
        assert recording.started is not None
        self.recording = recording
        self.started = recording.started
        base = (settings or get_settings()).model_copy(update={"state": "", "bus": ""})
        self.env = MddeParallelEnv(rebuild_config(self.started), settings=base)
        recorded = RecordedSource(recording, self.env.node_ids, self.env.fragment_ids)
        if self.started.config.get("benchmark") == "real":
            self.env._source.close()
            self.env._source = recorded
        elif isinstance(self.env._source, EstimateSource):
            # The estimator's one baseline was measured when the recording environment started (maybe in
            # an earlier episode, maybe by a real benchmark): estimate from exactly what was recorded.
            self.env._source.measurer = recorded
        self.agents = list(self.env.possible_agents)

    def reset(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.env.reset(seed=self.started.seed)

    def actions_of(self, rec: StepRecord) -> dict[str, int]:
        return {self.agents[i]: a.action_index for i, a in sorted(rec.actions.items())}

    def steps(self) -> Iterator[ReplayedStep]:
        """Step the environment with each recorded step's actions, in step order."""
        for t in range(1, self.recording.last_step + 1):
            rec = self.recording.steps[t]
            actions = self.actions_of(rec)
            obs, rewards, terms, truncs, infos = self.env.step(actions)
            yield ReplayedStep(rec, actions, obs, rewards, terms, truncs, infos, self.env.allocation)

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> EpisodeRebuild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

