"""Planner, task key slicing, access-log combination and dedupe, capacity parsing, estimator answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mdde_stream.benchmark.capacity import (
    DEFAULT_NODE_RATE,
    CapacityError,
    capacity_bound,
    parse_rates,
    service_time_us,
)
from mdde_stream.benchmark.real import (
    Aggregator,
    PlanError,
    TaskLayout,
    combine,
    plan_tasks,
    task_keys,
)
from mdde_stream.config import Settings
from mdde_stream.events import AccessLog, BenchmarkRequested, EstimateRequested
from mdde_stream.registry import fragment_layout
from mdde_stream.registry.fragmenter import record_layout
from mdde_stream.services.estimator import answer
from mdde_stream.workloads import Distribution, WorkloadSpec, generate_keys

URLS = [f"redis://127.0.0.1:{6380 + i}/0" for i in range(4)]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _settings(**kw: object) -> Settings:
    return Settings(data_nodes=",".join(URLS), **kw)


def _request(**kw: object) -> BenchmarkRequested:
    _, ranges, alloc = fragment_layout(1_000, 4, 20)
    base = dict(run_id="r", workload="uniform", record_count=1_000, operation_count=1_003, tasks=8,
                allocation=alloc)
    return BenchmarkRequested(**{**base, **kw})


def test_plan_splits_the_run_into_contiguous_slices_with_defaults_from_settings() -> None:
    tasks = plan_tasks(_request(), _settings(benchmark_node_rates="1500,n2=300"))
    assert [t.task_index for t in tasks] == list(range(8))
    assert {t.task_count for t in tasks} == {8}
    assert sum(t.operation_count for t in tasks) == 1_003
    for a, b in zip(tasks, tasks[1:]):
        assert b.operation_offset == a.operation_offset + a.operation_count
    assert {t.operation_total for t in tasks} == {1_003}
    assert len({t.key for t in tasks}) == 8
    t = tasks[0]
    assert "redis://" not in t.model_dump_json()  # tasks name nodes; each worker holds its own URLs
    assert t.node_rates == {"n0": 1500.0, "n1": 1500.0, "n2": 300.0, "n3": 1500.0}
    assert t.fragment_records["f0"] == (0, 50) and t.fragment_records["f19"] == (950, 1_000)


def test_plan_keeps_the_request_overrides_and_never_makes_empty_tasks() -> None:
    request = _request(operation_count=3, tasks=8, node_rates={"n0": 0.0, "n1": 10.0, "n2": 10.0, "n3": 10.0},
                       key_prefix="x:")
    tasks = plan_tasks(request, Settings(data_nodes=""))
    assert [t.operation_count for t in tasks] == [1, 1, 1]
    assert tasks[0].node_rates["n0"] == 0.0 and tasks[0].key_prefix == "x:"
    partial = plan_tasks(_request(node_rates={"n1": 5.0}), _settings(benchmark_node_rates="700"))
    assert partial[0].node_rates == {"n0": 700.0, "n1": 5.0, "n2": 700.0, "n3": 700.0}


@pytest.mark.parametrize(
    ("change", "settings", "message"),
    [
        ({"allocation": {}}, _settings(), "allocation is empty"),
        ({"workload": "bogus"}, _settings(), "neither a preset"),
        ({"allocation": {"n0": ["a", "b"]}}, _settings(), "send the record ranges"),
        ({"fragment_records": {"f0": (0, 5_000)}}, _settings(), "outside 0..1000"),
        ({}, _settings(benchmark_node_rates="n7=5"), "MDDE_BENCHMARK_NODE_RATES: .* unknown node"),
        ({"node_rates": {"n0": -1.0}}, _settings(), "must be >= 0"),
    ],
)
def test_plan_rejects_requests_it_cannot_run(change: dict, settings: Settings, message: str) -> None:
    with pytest.raises(PlanError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan_tasks(_request(**change), settings)


@pytest.mark.parametrize("distribution", [d.value for d in Distribution])
def test_task_slices_together_are_exactly_the_whole_seeded_run(distribution: str) -> None:
    request = _request(workload=distribution, operation_count=5_000, seed=11)
    keys = np.concatenate([task_keys(t) for t in plan_tasks(request, _settings())])
    whole = generate_keys(WorkloadSpec(distribution=distribution, record_count=1_000, operation_count=5_000), 11)
    assert np.array_equal(keys, whole)


def test_tasks_read_the_slots_the_fragmenter_laid_the_keys_into() -> None:
    """With a record layout the workers read slot ``record_slot[key]``: reads per fragment then match
    the layout's key -> fragment map, which the simulated benchmark and the estimator use."""
    wire = record_layout(4, "hashed", "thesis", 3)
    layout = fragment_layout(1_000, 4, 20, "hashed", "thesis", 3)
    request = _request(workload="latest", operation_count=4_000, seed=5, record_layout=wire,
                       allocation=layout.allocation, fragment_records=layout.ranges)
    tasks = plan_tasks(request, _settings())
    assert all(t.record_layout == wire for t in tasks)
    slots = np.concatenate([task_keys(t) for t in tasks])
    keys = generate_keys(WorkloadSpec(distribution="latest", record_count=1_000, operation_count=4_000), 5)
    assert np.array_equal(slots, layout.record_slot[keys])
    assert np.array_equal(TaskLayout(tasks[0]).record_fragment[slots], layout.record_fragment[keys])


def test_task_layout_maps_records_to_fragments_in_natural_order() -> None:
    task = plan_tasks(_request(), _settings())[0]
    layout = TaskLayout(task)
    assert layout.fragment_ids[:3] == ["f0", "f1", "f2"] and layout.fragment_ids[-1] == "f19"
    assert layout.record_fragment[0] == 0 and layout.record_fragment[999] == 19 and layout.record_fragment[50] == 1
    assert layout.allocation.sum() == 20 and layout.allocation[1, 5]


def _log(task: int, reads: dict[str, dict[str, int]], start_s: float, end_s: float, worker: str = "w0",
         request: str = "q", count: int = 2) -> AccessLog:
    return AccessLog(
        run_id="r", step=3, request_id=request, task_index=task, task_count=count, worker_id=worker, reads=reads,
        operations=sum(sum(r.values()) for r in reads.values()), started_at=T0 + timedelta(seconds=start_s),
        finished_at=T0 + timedelta(seconds=end_s), duration_s=end_s - start_s,
    )


def test_combine_sums_reads_and_measures_wall_time_from_first_start_to_last_end() -> None:
    result = combine([
        _log(1, {"n0": {"f1": 30}, "n1": {}}, 1.0, 3.0, "w1"),
        _log(0, {"n0": {"f0": 10, "f1": 5}, "n1": {"f2": 55}}, 0.5, 2.5, "w0"),
    ])
    assert result.reads == {"n0": {"f0": 10, "f1": 35}, "n1": {"f2": 55}}
    assert result.node_reads == {"n0": 45, "n1": 55}
    assert result.operations == 100 and result.step == 3 and result.source == "real"
    assert result.duration_s == pytest.approx(2.5)
    assert result.throughput == pytest.approx(40.0)
    assert result.workers == 2 and result.event_id == "q-result"


def test_aggregator_counts_a_redelivered_task_once_even_after_completion() -> None:
    agg = Aggregator()
    first = _log(0, {"n0": {"f0": 7}}, 0.0, 1.0, "killed-then-redelivered")
    assert agg.add(first) is None
    assert agg.add(_log(0, {"n1": {"f0": 7}}, 2.0, 3.0, "other")) is None  # duplicate of task 0
    assert agg.pending == {"q": 1}
    result = agg.add(_log(1, {"n1": {"f3": 3}}, 0.5, 1.5))
    assert result is not None and result.operations == 10
    assert result.reads == {"n0": {"f0": 7}, "n1": {"f3": 3}}
    assert agg.add(_log(1, {"n1": {"f3": 3}}, 4.0, 5.0)) is None  # late duplicate after completion
    assert agg.duplicates == 2 and agg.pending == {}


def test_aggregator_rejects_logs_that_disagree_on_the_task_count() -> None:
    agg = Aggregator()
    agg.add(_log(0, {"n0": {"f0": 1}}, 0, 1, count=3))
    with pytest.raises(ValueError, match="says 2 tasks"):
        agg.add(_log(1, {"n0": {"f0": 1}}, 0, 1, count=2))
    with pytest.raises(ValueError, match="task_index 3 >= task_count 3"):
        agg.add(_log(3, {"n0": {"f0": 1}}, 0, 1, count=3))


def test_node_rates_parse_defaults_overrides_and_errors() -> None:
    nodes = ["n0", "n1", "n2"]
    assert parse_rates("", nodes) == {n: DEFAULT_NODE_RATE for n in nodes}
    assert parse_rates("500, n1=2000", nodes) == {"n0": 500.0, "n1": 2000.0, "n2": 500.0}
    assert parse_rates("n2=0", nodes)["n2"] == 0.0
    for bad, message in (("fast", "not a number"), ("n9=3", "unknown node"), ("-1", ">= 0")):
        with pytest.raises(CapacityError, match=message):
            parse_rates(bad, nodes)
    assert service_time_us(2_000) == 500 and service_time_us(0) == 0


def test_capacity_bound_is_decided_by_the_busiest_node() -> None:
    rates = {"n0": 1_000.0, "n1": 1_000.0, "n2": 0.0}
    assert capacity_bound(rates, {"n0": 100, "n1": 0}) == pytest.approx(1_000.0)
    assert capacity_bound(rates, {"n0": 50, "n1": 50}) == pytest.approx(2_000.0)
    assert capacity_bound(rates, {"n2": 10}) == float("inf")


def test_estimator_service_answer_matches_the_library_and_names_bad_input() -> None:
    request = EstimateRequested(
        run_id="r", request_id="e1", allocation={"n0": ["f0", "f1"], "n1": ["f1"]},
        baseline_reads={"n0": {"f0": 60, "f1": 40}, "n1": {}}, baseline_throughput=1_000.0,
    )
    result = answer(request)
    assert result.event_id == "e1-estimate" and result.request_id == "e1"
    # Algorithm 2: n0 (load 60) takes ceil(40 x 0/60) = 0 of f1, the idle n1 all 40.
    assert result.node_reads == {"n0": 60, "n1": 40}
    assert result.reads == {"n0": {"f0": 60}, "n1": {"f1": 40}}
    assert result.throughput > 1_000.0  # more balanced than the baseline
    orphan = request.model_copy(update={"baseline_reads": {"n1": {"f7": 5}}})
    with pytest.raises(ValueError, match="no replica"):
        answer(orphan)


def test_a_worker_reads_only_the_data_nodes_it_is_configured_with() -> None:
    """A task carries no URL (so no password crosses the bus); a worker with fewer configured data nodes
    than the task names refuses it instead of connecting anywhere else."""
    from mdde_stream.benchmark.real import TaskError, TaskExecutor
    from mdde_stream.events import BenchmarkTask

    assert "data_nodes" not in BenchmarkTask.model_fields and "data_nodes" not in BenchmarkRequested.model_fields
    task = plan_tasks(_request(), _settings())[0]
    with pytest.raises(TaskError, match="configured with 2 data nodes"):
        TaskExecutor("w", node_urls=URLS[:2]).run(task)
