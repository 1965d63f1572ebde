"""A synthetic but self-consistent run's telemetry events, for tests, benchmarks and demos.

The allocation evolves by the same rules the registry enforces (a copy needs a source replica and a
free target, a delete keeps at least one replica), so replicas, storage and reads stay plausible and
every dashboard panel has data. It is not a simulator of the environment: only the event shapes and
their invariants matter here.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mdde_stream.events import (
    AccessLog,
    ActionKind,
    ActionResult,
    BenchmarkResult,
    EstimatorResult,
    Event,
    StepCompleted,
    Telemetry,
    new_event_id,
)

if TYPE_CHECKING:
    from mdde_stream.bus.base import Bus
    from mdde_stream.config import Settings


def sample_run(
    run_id: str,
    episodes: int = 2,
    steps: int = 6,
    agents: int = 4,
    fragments: int = 8,
    benchmark_every: int = 2,
    seed: int = 0,
    start: datetime | None = None,
) -> list[Event]:
    """Events in production order: per step the action results, then the step summary (and results)."""
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(agents)]
    names = [f"agent{i}" for i in range(agents)]
    frags = [f"f{j}" for j in range(fragments)]
    clock = start or datetime.now(UTC)
    events: list[Event] = []
    for episode in range(episodes):
        alloc = {n: {f for j, f in enumerate(frags) if j % agents == i} for i, n in enumerate(nodes)}
        for step in range(steps):
            clock += timedelta(milliseconds=100)
            common = {"run_id": run_id, "episode": episode, "step": step, "ts": clock}
            rewards, actions = {}, {}
            accepted = rejected = skipped = 0
            for i, (agent, node) in enumerate(zip(names, nodes)):
                kind = rng.choice([ActionKind.SKIP, ActionKind.COPY, ActionKind.COPY, ActionKind.DELETE])
                frag = rng.choice(frags)
                holders = [n for n in nodes if frag in alloc[n]]
                if kind == ActionKind.COPY:
                    ok = frag not in alloc[node] and bool(holders)
                    if ok:
                        alloc[node].add(frag)
                elif kind == ActionKind.DELETE:
                    ok = frag in alloc[node] and len(holders) > 1
                    if ok:
                        alloc[node].discard(frag)
                else:
                    ok = True
                reward = 0.0 if kind == ActionKind.SKIP else (1.0 if ok else -1.0)
                skipped += kind == ActionKind.SKIP
                accepted += ok and kind != ActionKind.SKIP
                rejected += not ok
                rewards[agent], actions[agent] = reward, rng.randrange(1 + fragments * (agents + 1))
                events.append(ActionResult(
                    **common, action_event_id=new_event_id(), agent=agent, agent_index=i,
                    action_index=actions[agent], kind=kind, accepted=ok, code=None if ok else 2,
                    message="" if ok else "constraint violated",
                ))
            bench = step % benchmark_every == 0
            reads = {n: {f: (rng.randint(50, 150) if f in alloc[n] else 0) for f in frags} for n in nodes}
            node_reads = {n: sum(r.values()) for n, r in reads.items()}
            throughput = sum(node_reads.values()) / (1.0 + 0.1 * max(len(a) for a in alloc.values()))
            events.append(StepCompleted(
                **common, rewards=rewards, actions=actions, accepted=accepted, rejected=rejected,
                skipped=skipped, benchmark=bench, benchmark_mode="simulated" if bench else None,
                throughput=throughput if bench else None, node_reads=node_reads if bench else {},
                replicas={f: sum(f in alloc[n] for n in nodes) for f in frags},
                storage={n: len(alloc[n]) for n in nodes}, terminated=step == steps - 1,
            ))
            if bench:
                request_id, workers, tasks = new_event_id(), rng.randint(1, 4), 4
                duration = round(rng.uniform(0.5, 2.0), 3)
                for t in range(tasks):  # each cell's reads dealt over the tasks, remainder to task 0
                    part = {n: {f: c // tasks + (c % tasks if t == 0 else 0) for f, c in r.items()}
                            for n, r in reads.items()}
                    events.append(AccessLog(
                        **common, request_id=request_id, task_index=t, task_count=tasks,
                        worker_id=f"worker-{t % workers}", reads=part,
                        operations=sum(sum(r.values()) for r in part.values()), started_at=clock, finished_at=clock,
                        duration_s=round(duration * rng.uniform(0.2, 0.3), 3),
                    ))
                events.append(BenchmarkResult(
                    **common, request_id=request_id, source="simulated", throughput=throughput,
                    reads=reads, node_reads=node_reads, operations=sum(node_reads.values()),
                    duration_s=duration, workers=workers,
                ))
                events.append(EstimatorResult(
                    **common, request_id=new_event_id(), throughput=throughput * rng.uniform(0.9, 1.1),
                    reads=reads, node_reads=node_reads, imbalance_baseline=0.2, imbalance_current=0.3,
                ))
            events.append(Telemetry(**common, source="learner", metrics={"loss": rng.random(), "epsilon": 0.1},
                                    tags={"agent": names[step % agents]}))
    return events


def publish(events: list[Event], bus: Bus, settings: Settings) -> None:
    """Send events to their topics (creating the project's topics first) and wait until stored."""
    from mdde_stream.bus.app import EventProducer
    from mdde_stream.bus.topics import ensure_topics

    ensure_topics(bus, settings)
    with EventProducer(bus, settings) as producer:
        producer.send_all(events)
        producer.flush()
