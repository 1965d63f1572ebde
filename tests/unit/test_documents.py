"""Events -> Elasticsearch documents: flattened per agent/node/fragment, idempotent ids, dated indices."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mdde_stream.events import AccessLog, ActionKind, ActionResult, BenchmarkResult, StepCompleted, Telemetry
from mdde_stream.telemetry.documents import KINDS, EpisodeBaselines, documents_by_kind, documents_for
from mdde_stream.telemetry.sample import sample_run
from mdde_stream.telemetry.templates import COMMON, FIELDS, field_type, index_template, mapping

TS = datetime(2024, 3, 5, 23, 59, 59, 500000, tzinfo=UTC)


def _step(**kw: object) -> StepCompleted:
    base = dict(run_id="r", episode=1, step=3, ts=TS, rewards={"a0": 1.0, "a1": -1.0}, actions={"a0": 4, "a1": 0},
                node_reads={"n0": 30, "n1": 10}, storage={"n0": 3, "n1": 2}, replicas={"f0": 2, "f1": 1},
                throughput=200.0, benchmark=True)
    base.update(kw)
    return StepCompleted(**base)


def test_step_fans_out_per_agent_node_and_fragment() -> None:
    event = _step()
    docs = documents_for(event, EpisodeBaselines())
    by_kind = {k: [d for d in docs if d.kind == k] for k in KINDS}
    assert len(by_kind["steps"]) == 1 and len(by_kind["agents"]) == 2
    assert len(by_kind["nodes"]) == 2 and len(by_kind["fragments"]) == 2
    summary = by_kind["steps"][0]
    assert summary.id == event.event_id
    assert summary.source["reward_total"] == 0.0 and summary.source["throughput"] == 200.0
    n0 = next(d.source for d in by_kind["nodes"] if d.source["node"] == "n0")
    assert n0["reads"] == 30 and n0["read_share"] == pytest.approx(0.75) and n0["storage"] == 3
    assert {d.id for d in docs} == {d.id for d in documents_for(event)}, "ids must not depend on state"
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.id.startswith(event.event_id) for d in docs)


def test_an_access_log_is_one_worker_document_with_its_rate() -> None:
    log = AccessLog(run_id="r", episode=1, step=5, ts=TS, request_id="q", task_index=2, task_count=8,
                    worker_id="worker-1", reads={"n0": {"f0": 300}, "n1": {"f1": 100}}, operations=400,
                    started_at=TS, finished_at=TS, duration_s=0.5, missing=3)
    (doc,) = documents_for(log)
    assert doc.kind == "workers" and doc.id == log.event_id
    assert doc.source["worker_id"] == "worker-1" and doc.source["step"] == 5
    assert doc.source["reads_per_s"] == pytest.approx(800.0) and doc.source["missing"] == 3
    assert set(doc.source) <= set(COMMON) | set(FIELDS["workers"]), "every field is in the template"


def test_the_sample_run_has_one_worker_line_per_worker() -> None:
    docs = documents_by_kind(sample_run("r", episodes=1, steps=6, benchmark_every=2, seed=4))["workers"]
    benchmark_steps = {d["step"] for d in docs}
    assert benchmark_steps == {0, 2, 4}
    assert all(d["reads_per_s"] > 0 for d in docs) and len({d["worker_id"] for d in docs}) >= 1


def test_index_is_dated_by_event_time_in_utc() -> None:
    doc = documents_for(_step())[0]
    assert doc.source["@timestamp"] == "2024-03-05T23:59:59.500Z"
    assert doc.index_name("mdde") == "mdde-steps-2024.03.05"


def test_throughput_change_is_relative_to_the_episodes_first_measurement() -> None:
    baselines = EpisodeBaselines()
    first = documents_for(_step(step=0, throughput=100.0), baselines)[0].source
    later = documents_for(_step(step=4, throughput=150.0), baselines)[0].source
    other_episode = documents_for(_step(episode=2, step=1, throughput=50.0), baselines)[0].source
    assert first["throughput_change"] == 0.0
    assert later["throughput_change"] == pytest.approx(0.5) and later["throughput_first"] == 100.0
    assert other_episode["throughput_change"] == 0.0


def test_baseline_lookup_covers_an_episode_seen_mid_way() -> None:
    calls = []

    def lookup(run_id: str, episode: int, step: int) -> float | None:
        calls.append((run_id, episode, step))
        return 80.0

    doc = documents_for(_step(step=5, throughput=120.0), EpisodeBaselines(lookup=lookup))[0].source
    assert calls == [("r", 1, 5)] and doc["throughput_change"] == pytest.approx(0.5)


@pytest.mark.parametrize(("kind", "accepted", "outcome"), [
    (ActionKind.SKIP, True, "skip"), (ActionKind.COPY, True, "valid"), (ActionKind.DELETE, False, "invalid"),
])
def test_action_outcomes(kind: ActionKind, accepted: bool, outcome: str) -> None:
    event = ActionResult(run_id="r", action_event_id="x", agent="a0", agent_index=0, kind=kind, accepted=accepted)
    (doc,) = documents_for(event)
    assert doc.kind == "actions" and doc.source["outcome"] == outcome
    assert doc.source["valid"] + doc.source["invalid"] + doc.source["skip"] == 1


def test_benchmark_reads_matrix_becomes_node_fragment_cells() -> None:
    event = BenchmarkResult(run_id="r", request_id="q", source="real", throughput=10.0,
                            reads={"n0": {"f0": 3, "f1": 1}, "n1": {"f0": 0, "f1": 4}},
                            node_reads={"n0": 4, "n1": 4}, operations=8, duration_s=2.0, workers=2)
    docs = documents_for(event)
    summary = next(d for d in docs if d.kind == "benchmarks").source
    assert summary["reads_per_s"] == 4.0 and summary["reads_per_s_per_worker"] == 2.0
    cells = {(d.source["node"], d.source["fragment"]): d.source["reads"] for d in docs if d.kind == "reads"}
    assert cells == {("n0", "f0"): 3, ("n0", "f1"): 1, ("n1", "f0"): 0, ("n1", "f1"): 4}


def test_telemetry_one_document_per_metric() -> None:
    event = Telemetry(run_id="r", source="learner", metrics={"losses/critic": 0.5, "charts/return": 3.0},
                      tags={"agent": "a0"})
    docs = documents_for(event)
    assert sorted(d.source["metric"] for d in docs) == ["charts/return", "losses/critic"]
    assert all(d.source["tags"] == {"agent": "a0"} for d in docs)


def test_every_document_field_is_declared_in_its_template() -> None:
    """Strict mappings reject undeclared fields, so the builder and the templates must agree."""
    docs = documents_by_kind(sample_run("r", episodes=2, steps=4))
    for kind, sources in docs.items():
        assert sources, f"sample run produced no {kind} documents"
        declared = set(COMMON) | set(FIELDS[kind])
        for source in sources:
            assert set(source) <= declared, f"{kind}: undeclared {set(source) - declared}"
    assert field_type("nodes", "node") == "keyword" and field_type("steps", "nope") is None
    assert mapping("steps")["dynamic"] == "strict"
    assert index_template("p", "reads")["index_patterns"] == ["p-reads-*"]
