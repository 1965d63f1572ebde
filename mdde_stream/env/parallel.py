"""The MDDE environment as a PettingZoo ``ParallelEnv``.

One ``step``: decode each agent's action into an :class:`ActionSubmitted` event (``_submissions``),
have the run's recorder (``env/recorder.py``) publish them, have the stage apply them in agent order
(the registry in-process, or the registry service over the bus: ``env/stage_client.py``), benchmark or
estimate when the scenario asks, reward, and record the step. The recorder is the environment's one
producer: with a remote stage it always publishes the actions (they are the service's requests); with
``publish_events`` it also records the verdicts (unless the registry service published them), the
step's summary, each episode's start and the measurements, so an episode can be replayed from its
topics. It is flushed at the end of an episode and on ``close`` (and by a remote stage before each
step's wait: its requests must go out), so in-process recording costs microseconds per step.

Events are built by :func:`trusted_event` from values the environment itself produced (ids from its
own tables, counts it computed): validating them again — or even pydantic's ``model_construct``,
which re-walks every field — would cost more than the rest of the step. A unit test proves such
events serialise to exactly what the validated model accepts.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from contextlib import ExitStack
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from mdde_stream.bus import Bus, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings, get_settings
from mdde_stream.env.benchmarking import BenchmarkRequest, BenchmarkSource, make_source, workload_spec
from mdde_stream.env.config import EnvConfig
from mdde_stream.env.default_scenario import DefaultScenario
from mdde_stream.env.recorder import RunRecorder
from mdde_stream.env.scenario import Measurement, Scenario, StepFacts
from mdde_stream.env.stage_client import InProcessStage, RegistryStage, RemoteStage
from mdde_stream.estimator import imbalance
from mdde_stream.events import (
    ActionKind,
    ActionResult,
    ActionSubmitted,
    BenchmarkResult,
    EpisodeStarted,
    EstimatorResult,
    Event,
    StepCompleted,
    trusted_event,
    utc_now,
)
from mdde_stream.registry import SERVICE_REGISTRY_PREFIX, fragment_layout, open_data_nodes, open_registry, run_prefix
from mdde_stream.registry.fragmenter import record_layout

logger = logging.getLogger(__name__)



class EventIds:
    """Unique event ids at a counter's cost: a random 16-hex-digit prefix per environment + a sequence."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._next = itertools.count().__next__

    def __call__(self) -> str:
        return f"{self._prefix}{self._next():016x}"


class MddeParallelEnv(ParallelEnv):
    """Agents copy and delete fragments between data nodes to maximise read throughput."""

    metadata = {"name": "mdde_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(
        self,
        config: EnvConfig | None = None,
        settings: Settings | None = None,
        scenario: Scenario | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.config = cfg = config or EnvConfig()
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode {render_mode!r} is not supported (use 'ansi' or None)")
        self.render_mode = render_mode
        base = settings or get_settings()
        overrides = {k: v for k, v in (("bus", cfg.bus), ("state", cfg.state)) if v is not None}
        self.settings = base.model_copy(update=overrides) if overrides else base
        self.run_id = cfg.run_id

        # Validate the workload before opening anything, so a typo leaves no connection behind.
        self._spec = workload_spec(cfg.workload, cfg.records, cfg.operations, cfg.clients)
        # What is opened here is closed again if a later part fails to open; once all is open, close() owns it.
        with ExitStack() as opened:
            needs_bus = (cfg.publish_events or cfg.stage == "remote" or cfg.benchmark == "real"
                         or (cfg.benchmark == "estimate" and cfg.baseline == "real"))
            self._bus: Bus | None = open_bus(settings=self.settings) if needs_bus else None
            if self._bus is not None:
                opened.callback(self._bus.close)
                ensure_topics(self._bus, self.settings)
            self.recorder = RunRecorder(self._bus, self.settings, self.run_id, telemetry=cfg.publish_events,
                                        requests=cfg.stage == "remote")
            opened.callback(self.recorder.close)

            layout_options: dict[str, Any] = dict(grouping=cfg.fragment_grouping, numbering=cfg.fragment_numbering,
                                                  layout_seed=cfg.fragment_seed)
            if cfg.stage == "remote" and self._bus is not None:
                # This run's own state under the service's root: attached (or set up), never wiped, so runs
                # never see each other's allocation and a live service's state survives.
                root = cfg.registry_prefix or SERVICE_REGISTRY_PREFIX
                registry = open_registry(self.settings, cfg.nodes, cfg.fragments, cfg.records,
                                         prefix=run_prefix(root, self.run_id), reuse=True, **layout_options)
                self._stage: RegistryStage = RemoteStage(registry, self._bus, self.settings, self.run_id,
                                                         self.recorder, cfg.action_timeout_s)
            else:
                # A private prefix unless one is given: a local registry sets up (overwrites) its state.
                prefix = cfg.registry_prefix or f"{SERVICE_REGISTRY_PREFIX}:local:{self.run_id}"
                registry = open_registry(self.settings, cfg.nodes, cfg.fragments, cfg.records,
                                         data_nodes=self._data_nodes(cfg), prefix=prefix, **layout_options)
                self._stage = InProcessStage(registry, owns_state=cfg.registry_prefix is None)
            opened.callback(self._stage.close)
            self.node_ids = self._stage.node_ids
            self.fragment_ids = self._stage.fragment_ids

            self.scenario = scenario or DefaultScenario(
                self.node_ids,
                self.fragment_ids,
                benchmark_frequency=cfg.benchmark_frequency,
                do_nothing_worth=cfg.do_nothing_worth,
                storage_importance=cfg.storage_importance,
                allow_skip=cfg.allow_skip,
                conflicts_count_as_valid=cfg.conflicts_count_as_valid,
                delete_mask=cfg.delete_mask,
            )
            self.possible_agents = self.scenario.agents
            self.agents: list[str] = []
            # Per (agent, action): the string fields of the registry action, so a step never formats ids.
            self._action_fields = [
                [self._fields(a, n) for n in range(self.scenario.action_space(agent).n)]  # type: ignore[attr-defined]
                for a, agent in enumerate(self.possible_agents)
            ]

            layout = fragment_layout(cfg.records, cfg.nodes, cfg.fragments, cfg.fragment_grouping,
                                     cfg.fragment_numbering, cfg.fragment_seed)
            self._source: BenchmarkSource = make_source(
                cfg.benchmark, spec=self._spec, layout=layout,
                wire_layout=record_layout(cfg.nodes, cfg.fragment_grouping, cfg.fragment_numbering, cfg.fragment_seed),
                node_ids=self.node_ids, fragment_ids=self.fragment_ids, service_rates=cfg.service_rates,
                j=cfg.estimator_j, k=cfg.estimator_k, bus=self._bus, settings=self.settings,
                timeout_s=cfg.benchmark_timeout_s, baseline=cfg.baseline,
            )
            opened.callback(self._source.close)
            opened.pop_all()

        self.episode = -1
        self.step_count = 0
        self._seed = cfg.seed
        self._seeds: np.random.Generator | None = None  # episode seeds after a seedless reset
        self._allocation = self._stage.allocation()
        self.latest: Measurement | None = None
        self._masks = self.scenario.masks(self._allocation, None)
        self.initial: Measurement | None = None
        self._closed = False
        self._new_id = EventIds()
        self._rows = np.arange(len(self.possible_agents))
        self._in_process = not self._stage.publishes_results  # the registry service skips such actions
        # Slot 0 is "skip" in the default layout; other scenarios are asked through their decoder.
        self._skip_is_zero = all(
            (self._action_fields[i][0][0] is ActionKind.SKIP)
            and all(f[0] is not ActionKind.SKIP for f in self._action_fields[i][1:])
            for i in range(len(self.possible_agents))
        )

    # -- PettingZoo API -------------------------------------------------------------------------
    def observation_space(self, agent: str):  # type: ignore[override]
        return self.scenario.observation_space(agent)

    def action_space(self, agent: str):  # type: ignore[override]
        return self.scenario.action_space(agent)

    @property
    def state_space(self):  # type: ignore[override]
        return self.scenario.state_space

    def state(self) -> np.ndarray:
        """Global state for centralised critics (the scenario's; default: W×F×2 allocation and popularity)."""
        return self.scenario.state(self._allocation, self.latest)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        if self._closed:
            raise RuntimeError("reset() on a closed environment")
        # Gymnasium's convention: reset(seed=s) seeds the episode's randomness (the benchmark's workload
        # keys use s itself); a later reset() without a seed continues a stream seeded by s.
        if seed is not None:
            if seed < 0:
                raise ValueError(f"seed must be non-negative, got {seed}")
            self._seed = seed
            self._seeds = np.random.default_rng(seed)
        elif self._seeds is None:
            self._seeds = np.random.default_rng(self._seed)  # first reset: EnvConfig.seed
        else:
            self._seed = int(self._seeds.integers(2**31 - 1))
        self.recorder.flush()
        self.episode += 1
        self.step_count = 0
        self.agents = list(self.possible_agents)
        self.scenario.reset()
        self._allocation = self._stage.reset(self.episode)
        if self._source.needs_data():  # a remote stage resets the state only: the service moves the data
            self._stage.shuffle(self.run_id, self.episode, 0)
        self.latest = self.initial = self._source.baseline(self._request())
        self._masks = self.scenario.masks(self._allocation, self.latest)
        observations = self.scenario.observe(self._allocation, self.latest, self._masks)
        infos = {a: self._throughput_info(True) for a in self.agents}
        if self.recorder.telemetry:
            self._record_start()
        return observations, infos

    def step(self, actions: dict[str, int]):  # type: ignore[override]
        if not self.agents:
            raise RuntimeError("step() called with no live agents: call reset() first")
        self.step_count = t = self.step_count + 1
        agents = self.possible_agents
        try:
            chosen = [int(actions[agent]) for agent in agents]
        except KeyError as exc:
            raise KeyError(f"no action for agent {exc.args[0]!r} at step {t}") from None
        n_actions = self._masks.shape[1]
        if min(chosen) < 0 or max(chosen) >= n_actions:
            raise ValueError(f"actions must lie in [0, {n_actions}), got {dict(zip(agents, chosen))}")
        legal_list = self._masks[self._rows, chosen].astype(bool).tolist()
        submitted = self._submissions(chosen, t)
        self.recorder.actions(submitted)
        results = self._stage.apply(submitted)
        accepted_list = [r.accepted for r in results]
        skipped_list = [a == 0 for a in chosen] if self._skip_is_zero else [
            s.kind is ActionKind.SKIP for s in submitted
        ]
        self._allocation = allocation = self._stage.allocation()

        measurement: Measurement | None = None
        if self.scenario.is_benchmark_step(t):
            if self._source.needs_data():  # the data nodes must hold the allocation being measured
                self._stage.shuffle(self.run_id, self.episode, t)
            measurement = self.latest = self._source.measure(self._request())
        accepted, skipped, legal = np.array(accepted_list), np.array(skipped_list), np.array(legal_list)
        rewards_list = self.scenario.rewards(StepFacts(t, accepted, skipped, legal, allocation, measurement)).tolist()
        self._masks = self.scenario.masks(allocation, self.latest)
        observations = self.scenario.observe(allocation, self.latest, self._masks)

        truncated = t >= self.config.max_steps
        rewards = dict(zip(agents, rewards_list))
        # A conflict: legal against the step's starting allocation, rejected because an earlier agent
        # acted first. Computed here from our own mask, so it holds whichever registry answered.
        conflict_list = [leg and not acc for leg, acc in zip(legal_list, accepted_list)]
        measured = self._throughput_info(measurement is not None)
        infos = {
            agent: {"accepted": acc, "legal": leg, "code": r.code, "conflict": con, **measured}
            for agent, acc, leg, r, con in zip(agents, accepted_list, legal_list, results, conflict_list)
        }
        if self.recorder.telemetry:
            self._record(t, results, rewards, chosen, accepted_list, skipped_list, sum(conflict_list),
                         measurement, truncated)
        if truncated:
            self.agents = []
            self.recorder.flush()
        return observations, rewards, dict.fromkeys(agents, False), dict.fromkeys(agents, truncated), infos

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        lines = [f"episode {self.episode} step {self.step_count}"]
        for w, node in enumerate(self.node_ids):
            cells = "".join("#" if b else "." for b in self._allocation[w])
            lines.append(f"{node:>6} {cells}")
        return "\n".join(lines)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with ExitStack() as closing:  # every part is closed even if one fails; last registered, first closed
            if self._bus is not None:
                closing.callback(self._bus.close)
            closing.callback(self.recorder.close)
            closing.callback(self._stage.close)  # a remote stage flushes through the recorder: close it first
            closing.callback(self._source.close)
            self.recorder.flush()

    # -- helpers --------------------------------------------------------------------------------
    @property
    def allocation(self) -> np.ndarray:
        """Bool (W, F): which node holds which fragment now (read-only view)."""
        return self._allocation

    @property
    def action_masks(self) -> np.ndarray:
        """(agents, actions) int8 mask of the current state."""
        return self._masks

    def _data_nodes(self, cfg: EnvConfig):
        """Redis data nodes for a real benchmark with the in-process registry (None otherwise).

        The registry loads the records on them and moves fragments before each real benchmark; with the
        remote stage that is the registry service's job, and estimate/simulated modes need no data.
        """
        real_baseline = cfg.benchmark == "estimate" and cfg.baseline == "real"
        if (cfg.benchmark != "real" and not real_baseline) or cfg.stage != "local":
            return None
        shape = "large" if cfg.workload.endswith("-large") else "default"
        return open_data_nodes(self.settings, cfg.nodes, cfg.fragments, cfg.records, shape)

    def _fields(self, agent_index: int, action: int) -> tuple[ActionKind, str | None, str | None, str | None]:
        d = self.scenario.decode(agent_index, action)
        name = lambda i: None if i is None else self.node_ids[i]  # noqa: E731
        frag = None if d.fragment is None else self.fragment_ids[d.fragment]
        return d.kind, frag, name(d.source), name(d.target)

    def _throughput_info(self, measured: bool) -> dict[str, Any]:
        """τ of the latest measurement, its source (estimate | simulated | real) and whether this step took it."""
        m = self.latest
        return {"throughput": None if m is None else m.throughput,
                "throughput_source": None if m is None else m.source, "throughput_measured": measured}

    def _request(self) -> BenchmarkRequest:
        return BenchmarkRequest(self._allocation, self._seed, self.run_id, self.episode, self.step_count)

    def _submissions(self, chosen: list[int], step: int) -> list[ActionSubmitted]:
        now = utc_now()
        out = []
        n = len(self.possible_agents)
        new_id, run_id, episode, fields = self._new_id, self.run_id, self.episode, self._action_fields
        in_process = self._in_process
        for i, agent in enumerate(self.possible_agents):
            a = chosen[i]
            kind, frag, src, tgt = fields[i][a]
            out.append(trusted_event(ActionSubmitted, {
                "event_id": new_id(), "run_id": run_id,
                "episode": episode, "step": step, "ts": now, "agent": agent, "agent_index": i,
                "action_index": a, "kind": kind, "fragment": frag, "source": src, "target": tgt, "step_size": n,
                "in_process": in_process,
            }))
        return out

    def _record(self, step: int, results: list[ActionResult], rewards: dict[str, float], chosen: list[int],
                accepted: list[bool], skipped: list[bool], conflicts: int, measurement: Measurement | None,
                truncated: bool) -> None:
        """The step's telemetry: the verdicts (unless the registry service published them), the summary and
        the measurement; the actions went out before the stage applied them."""
        if not self._stage.publishes_results:
            self.recorder.results(results)
        n_acc = sum(accepted)
        n_skip = sum(skipped)
        alloc = self._allocation
        summary = trusted_event(StepCompleted, {
            "event_id": self._new_id(), "run_id": self.run_id,
            "episode": self.episode, "step": step, "ts": utc_now(), "rewards": rewards,
            "actions": dict(zip(self.possible_agents, chosen)),
            "accepted": n_acc - sum(a and s for a, s in zip(accepted, skipped)), "rejected": len(results) - n_acc,
            "skipped": n_skip, "conflicts": conflicts, "benchmark": measurement is not None,
            "benchmark_mode": self._source.mode if measurement else None,
            "throughput": measurement.throughput if measurement else None,
            "node_reads": dict(zip(self.node_ids, measurement.node_reads.tolist())) if measurement else {},
            "replicas": dict(zip(self.fragment_ids, alloc.sum(axis=0).tolist())),
            "storage": dict(zip(self.node_ids, alloc.sum(axis=1).tolist())),
            "terminated": False, "truncated": truncated,
        })
        self.recorder.publish(summary)
        if measurement is not None:
            measured = self._measurement_event(measurement, step)
            if measured is not None:
                self.recorder.publish(measured)

    def _record_start(self) -> None:
        """``EpisodeStarted``: what a replay needs to rebuild this episode from its recorded actions."""
        m = self.initial
        if m is None:
            return
        alloc = self._allocation
        event = EpisodeStarted(
            run_id=self.run_id, episode=self.episode, step=0, seed=self._seed,
            # Placement (bus and state URLs, which may hold credentials) stays off the bus: replay sets its own.
            config=self.config.model_dump(mode="json", exclude={"bus", "state"}), agents=list(self.possible_agents),
            node_ids=list(self.node_ids), fragment_ids=list(self.fragment_ids),
            allocation={n: [self.fragment_ids[f] for f in np.flatnonzero(row)] for n, row in zip(self.node_ids, alloc)},
            baseline_throughput=float(m.throughput),
            baseline_reads={n: {f: v for f, v in zip(self.fragment_ids, row) if v}
                            for n, row in zip(self.node_ids, m.reads.tolist())},
        )
        self.recorder.publish(event)

    def _measurement_event(self, m: Measurement, step: int) -> Event | None:
        """The estimate or simulated benchmark as its own event (real results come from the aggregator)."""
        reads: dict[str, dict[str, int]] = {}
        rows, cols = np.nonzero(m.reads)
        for w, f, v in zip(rows.tolist(), cols.tolist(), m.reads[rows, cols].tolist()):
            reads.setdefault(self.node_ids[w], {})[self.fragment_ids[f]] = v
        node_reads = dict(zip(self.node_ids, m.node_reads.tolist()))
        common = {"event_id": self._new_id(), "run_id": self.run_id, "episode": self.episode, "step": step,
                  "ts": utc_now(), "request_id": self._new_id(), "throughput": m.throughput, "reads": reads,
                  "node_reads": node_reads}
        if m.source == "estimate":
            base = imbalance(self.initial.node_reads) if self.initial is not None else 0.0
            return trusted_event(EstimatorResult, {
                **common, "imbalance_baseline": base, "imbalance_current": imbalance(m.node_reads)})
        if m.source == "simulated":
            duration = m.total_reads / m.throughput if m.throughput > 0 else 0.0
            return trusted_event(BenchmarkResult, {
                **common, "source": "simulated", "operations": m.total_reads, "duration_s": duration, "workers": 0})
        return None
