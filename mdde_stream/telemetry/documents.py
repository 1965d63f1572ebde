"""Events -> Elasticsearch documents, flattened so Kibana can aggregate them.

Kibana cannot aggregate over the keys of a JSON object (``rewards: {"w0": 1.0}``), so every map in an
event fans out into one small document per key (per agent, per node, per fragment, per node ×
fragment). Each document's ``_id`` is the event id plus a suffix naming the key, and its index is
dated by the *event* time, so replaying a topic rewrites the same documents instead of adding
copies. The same builder feeds the HTML report, which is why both views agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from mdde_stream.events import (
    AccessLog,
    ActionKind,
    ActionResult,
    BenchmarkResult,
    EstimatorResult,
    Event,
    StepCompleted,
    Telemetry,
)

logger = logging.getLogger(__name__)

# Index kinds; the index of a document is ``{prefix}-{kind}-{YYYY.MM.DD}``.
KINDS: tuple[str, ...] = (
    "steps", "agents", "actions", "nodes", "fragments", "benchmarks", "reads", "workers", "telemetry",
)

# The event types the indexer consumes, with their topic short names.
INDEXED_EVENTS: tuple[type[Event], ...] = (
    StepCompleted, ActionResult, AccessLog, BenchmarkResult, EstimatorResult, Telemetry,
)


@dataclass(frozen=True)
class Doc:
    """One document to index: ``kind`` picks the index, ``id`` makes re-indexing idempotent."""

    kind: str
    id: str
    source: dict[str, Any]

    def index_name(self, prefix: str) -> str:
        return f"{prefix}-{self.kind}-{self.source['@timestamp'][:10].replace('-', '.')}"


# Looks up the first measured throughput of (run_id, episode) before ``step``, e.g. from Elasticsearch.
BaselineLookup = Callable[[str, int, int], float | None]


@dataclass
class EpisodeBaselines:
    """Remembers each episode's first measured throughput, for the "change vs first step" metric.

    One run's events share a partition, so the process that indexes a step has seen that episode's
    earlier steps — unless it started mid-episode; ``lookup`` covers that case.
    """

    lookup: BaselineLookup | None = None
    max_entries: int = 10_000
    _first: dict[tuple[str, int], float] = field(default_factory=dict)

    def first(self, run_id: str, episode: int, step: int, throughput: float) -> float:
        key = (run_id, episode)
        if key not in self._first:
            found = self.lookup(run_id, episode, step) if self.lookup is not None else None
            if len(self._first) >= self.max_entries:
                self._first.pop(next(iter(self._first)))
            self._first[key] = throughput if found is None else found
        return self._first[key]


def _common(event: Event) -> dict[str, Any]:
    ts = event.ts.astimezone(UTC) if event.ts.tzinfo else event.ts.replace(tzinfo=UTC)
    return {
        "@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event_id": event.event_id,
        "schema": event.schema_name,
        "run_id": event.run_id,
        "episode": event.episode,
        "step": event.step,
    }


def _share(part: float, total: float) -> float:
    return part / total if total > 0 else 0.0


def step_documents(event: StepCompleted, baselines: EpisodeBaselines | None = None) -> list[Doc]:
    base = _common(event)
    rewards = event.rewards
    summary = {
        **base,
        "accepted": event.accepted,
        "rejected": event.rejected,
        "skipped": event.skipped,
        "conflicts": event.conflicts,
        "benchmark": event.benchmark,
        "agents": len(rewards),
        "reward_total": float(sum(rewards.values())),
        "reward_mean": float(sum(rewards.values()) / len(rewards)) if rewards else 0.0,
        "terminated": event.terminated,
        "truncated": event.truncated,
    }
    if event.benchmark_mode is not None:
        summary["benchmark_mode"] = event.benchmark_mode
    if event.throughput is not None:
        summary["throughput"] = float(event.throughput)
        if baselines is not None:
            first = baselines.first(event.run_id, event.episode, event.step, float(event.throughput))
            summary["throughput_first"] = first
            summary["throughput_change"] = _share(float(event.throughput), first) - 1.0 if first > 0 else 0.0
    docs = [Doc("steps", event.event_id, summary)]
    for agent, reward in rewards.items():
        doc = {**base, "agent": agent, "reward": float(reward)}
        if agent in event.actions:
            doc["action"] = event.actions[agent]
        docs.append(Doc("agents", f"{event.event_id}:agent:{agent}", doc))
    total_reads = sum(event.node_reads.values())
    for node in sorted(set(event.node_reads) | set(event.storage)):
        doc = {**base, "node": node}
        if node in event.node_reads:
            doc["reads"] = event.node_reads[node]
            doc["read_share"] = _share(event.node_reads[node], total_reads)
        if node in event.storage:
            doc["storage"] = event.storage[node]
        docs.append(Doc("nodes", f"{event.event_id}:node:{node}", doc))
    for fragment, replicas in event.replicas.items():
        docs.append(Doc("fragments", f"{event.event_id}:fragment:{fragment}",
                        {**base, "fragment": fragment, "replicas": replicas}))
    return docs


def action_outcome(event: ActionResult) -> str:
    """``skip`` for a skip, else ``valid`` / ``invalid`` by the registry's verdict."""
    if event.kind == ActionKind.SKIP:
        return "skip"
    return "valid" if event.accepted else "invalid"


def action_documents(event: ActionResult) -> list[Doc]:
    outcome = action_outcome(event)
    doc = {
        **_common(event),
        "action_event_id": event.action_event_id,
        "agent": event.agent,
        "agent_index": event.agent_index,
        "action_index": event.action_index,
        "kind": event.kind.value,
        "accepted": event.accepted,
        "conflict": event.conflict,
        "outcome": outcome,
        "valid": int(outcome == "valid"),
        "invalid": int(outcome == "invalid"),
        "skip": int(outcome == "skip"),
        "message": event.message,
    }
    if event.code is not None:
        doc["code"] = event.code
    return [Doc("actions", event.event_id, doc)]


def _reads_documents(event: BenchmarkResult | EstimatorResult, source: str) -> list[Doc]:
    base = {**_common(event), "request_id": event.request_id, "source": source}
    total = sum(n for per_node in event.reads.values() for n in per_node.values())
    docs = []
    # ``reads`` is fragment -> node -> count in the benchmark's ⟨τ, N, R⟩; a node-first map works too.
    for outer, inner in event.reads.items():
        for key, count in inner.items():
            fragment, node = (outer, key) if outer not in event.node_reads else (key, outer)
            docs.append(Doc("reads", f"{event.event_id}:reads:{node}:{fragment}",
                            {**base, "node": node, "fragment": fragment, "reads": count,
                             "read_share": _share(count, total)}))
    return docs


def benchmark_documents(event: BenchmarkResult) -> list[Doc]:
    reads_per_s = _share(event.operations, event.duration_s)
    summary = {
        **_common(event),
        "request_id": event.request_id,
        "source": event.source,
        "throughput": float(event.throughput),
        "operations": event.operations,
        "total_reads": sum(event.node_reads.values()),
        "duration_s": float(event.duration_s),
        "workers": event.workers,
        "reads_per_s": reads_per_s,
        "reads_per_s_per_worker": reads_per_s / event.workers if event.workers else reads_per_s,
    }
    return [Doc("benchmarks", event.event_id, summary), *_reads_documents(event, event.source)]


def access_log_documents(event: AccessLog) -> list[Doc]:
    """One document per benchmark task: which worker ran it and how fast (the per-worker view)."""
    return [Doc("workers", event.event_id, {
        **_common(event),
        "request_id": event.request_id,
        "worker_id": event.worker_id,
        "task_index": event.task_index,
        "task_count": event.task_count,
        "operations": event.operations,
        "duration_s": float(event.duration_s),
        "reads_per_s": _share(event.operations, event.duration_s),
        "missing": event.missing,
    })]


def estimator_documents(event: EstimatorResult) -> list[Doc]:
    summary = {
        **_common(event),
        "request_id": event.request_id,
        "source": "estimate",
        "throughput": float(event.throughput),
        "total_reads": sum(event.node_reads.values()),
        "imbalance_baseline": float(event.imbalance_baseline),
        "imbalance_current": float(event.imbalance_current),
    }
    return [Doc("benchmarks", event.event_id, summary), *_reads_documents(event, "estimate")]


def telemetry_documents(event: Telemetry) -> list[Doc]:
    base = {**_common(event), "source": event.source, "tags": dict(event.tags)}
    return [
        Doc("telemetry", f"{event.event_id}:metric:{name}", {**base, "metric": name, "value": float(value)})
        for name, value in event.metrics.items()
    ]


def documents_for(event: Event, baselines: EpisodeBaselines | None = None) -> list[Doc]:
    """All documents one event becomes; an event type the telemetry does not index gives none."""
    if isinstance(event, StepCompleted):
        return step_documents(event, baselines)
    if isinstance(event, ActionResult):
        return action_documents(event)
    if isinstance(event, AccessLog):
        return access_log_documents(event)
    if isinstance(event, BenchmarkResult):
        return benchmark_documents(event)
    if isinstance(event, EstimatorResult):
        return estimator_documents(event)
    if isinstance(event, Telemetry):
        return telemetry_documents(event)
    return []


def documents_by_kind(events: Iterable[Event]) -> dict[str, list[dict[str, Any]]]:
    """Every event's documents grouped by kind, in event order (what the report aggregates)."""
    baselines = EpisodeBaselines()
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for event in events:
        for doc in documents_for(event, baselines):
            out[doc.kind].append(doc.source)
    return out
