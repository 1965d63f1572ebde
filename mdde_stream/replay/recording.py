"""Selected events grouped into episodes, with an account of what each episode's recording lacks.

An episode is rebuildable when it has its ``EpisodeStarted`` (configuration, seed, initial layout),
and for every step 1..T every agent's ``ActionSubmitted``, the registry's ``ActionResult`` for each
of them, and the ``StepCompleted`` summary, the last one flagged terminated or truncated. Whatever
is missing is listed in words (which event, which step, which agent, and why it may be gone), so a
user can tell an expired retention from a deleted topic from a recording that was cut off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mdde_stream.events import (
    ActionResult,
    ActionSubmitted,
    BenchmarkResult,
    EpisodeStarted,
    EstimatorResult,
    Event,
    StepCompleted,
)
from mdde_stream.replay.exceptions import IncompleteRecordingError
from mdde_stream.replay.selection import REQUIRED_TOPICS, RecordedEvent, SelectedEvents

logger = logging.getLogger(__name__)


@dataclass
class StepRecord:
    """Everything recorded for one step of one episode."""

    step: int
    actions: dict[int, ActionSubmitted] = field(default_factory=dict)  # by agent index
    results: dict[str, ActionResult] = field(default_factory=dict)  # by action event id
    summary: StepCompleted | None = None
    measurement: BenchmarkResult | EstimatorResult | None = None

    def result_for(self, action: ActionSubmitted) -> ActionResult | None:
        return self.results.get(action.event_id)


@dataclass
class EpisodeRecording:
    """One episode of one run as found on the bus."""

    run_id: str
    episode: int
    started: EpisodeStarted | None = None
    steps: dict[int, StepRecord] = field(default_factory=dict)
    events: list[RecordedEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"run {self.run_id} episode {self.episode}"

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def last_step(self) -> int:
        return max(self.steps, default=0)

    def step(self, t: int) -> StepRecord:
        rec = self.steps.get(t)
        if rec is None:
            rec = self.steps[t] = StepRecord(t)
        return rec

    def require_complete(self) -> None:
        if self.problems:
            raise IncompleteRecordingError(f"the recording of {self.name}", self.problems)


def group_episodes(selected: SelectedEvents) -> list[EpisodeRecording]:
    """Episodes in (run, episode) order, each with its completeness checked; duplicates dropped."""
    episodes: dict[tuple[str, int], EpisodeRecording] = {}
    seen: set[str] = set()
    for rec in selected.events:
        event = rec.event
        if event.event_id in seen:  # at-least-once delivery: a redelivered event counts once
            continue
        seen.add(event.event_id)
        key = (event.run_id, event.episode)
        ep = episodes.get(key)
        if ep is None:
            ep = episodes[key] = EpisodeRecording(event.run_id, event.episode)
        ep.events.append(rec)
        _place(ep, event)
    out = [episodes[k] for k in sorted(episodes)]
    for ep in out:
        ep.problems = _problems(ep, selected)
        if ep.problems:
            logger.info("%s: %d problems in the recording", ep.name, len(ep.problems))
    return out


def _place(ep: EpisodeRecording, event: Event) -> None:
    if isinstance(event, EpisodeStarted):
        ep.started = event
    elif isinstance(event, ActionSubmitted):
        ep.step(event.step).actions[event.agent_index] = event
    elif isinstance(event, ActionResult):
        ep.step(event.step).results[event.action_event_id] = event
    elif isinstance(event, StepCompleted):
        ep.step(event.step).summary = event
    elif isinstance(event, (BenchmarkResult, EstimatorResult)) and event.step > 0:
        ep.step(event.step).measurement = event


def _problems(ep: EpisodeRecording, selected: SelectedEvents) -> list[str]:
    """What the episode's recording lacks, in the order a reader would want to fix it."""
    problems: list[str] = []
    for short in selected.missing_topics:
        if short in REQUIRED_TOPICS:
            problems.append(f"topic {short!r} does not exist on the bus (deleted?): its events are missing")
    if ep.started is None:
        problems.append(
            f"no EpisodeStarted event for {ep.name} on 'episodes'{selected.retention_note('episodes')}"
        )
    agents = len(ep.started.agents) if ep.started is not None and ep.started.agents else None
    if not ep.steps:
        problems.append(f"no step of {ep.name} was recorded{selected.retention_note('steps')}")
        return problems
    last = ep.last_step
    missing_steps = [t for t in range(1, last + 1) if t not in ep.steps]
    if missing_steps:
        problems.append(f"steps {_ranges(missing_steps)} of {ep.name} have no events at all"
                        f"{selected.retention_note('steps')}")
    for t in sorted(ep.steps):
        rec = ep.steps[t]
        expected = agents or next((a.step_size for a in rec.actions.values()), None)
        if rec.summary is None:
            problems.append(f"step {t}: StepCompleted missing{selected.retention_note('steps')}")
        if not rec.actions:
            problems.append(f"step {t}: no ActionSubmitted{selected.retention_note('actions')}")
        elif expected is not None and len(rec.actions) < expected:
            absent = sorted(set(range(expected)) - set(rec.actions))
            problems.append(f"step {t}: ActionSubmitted missing for agent index(es) {absent}")
        absent_results = [a.agent for _, a in sorted(rec.actions.items()) if a.event_id not in rec.results]
        if absent_results:
            problems.append(f"step {t}: ActionResult missing for agent(s) {', '.join(absent_results)}"
                            f"{selected.retention_note('action-results')}")
    final = ep.steps[last].summary
    if final is not None and not (final.terminated or final.truncated):
        max_steps = ep.started.config.get("max_steps") if ep.started is not None else None
        of = f" of {max_steps}" if max_steps else ""
        problems.append(f"episode cut off: the last recorded step is {last}{of} and it neither terminates nor "
                        "truncates the episode")
    return problems


def _ranges(values: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    out: list[str] = []
    start = prev = values[0]
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)
