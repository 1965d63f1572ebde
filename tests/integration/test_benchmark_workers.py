"""The real benchmark on the local stack: Kafka, four Redis data nodes, worker and aggregator processes.

Every test uses its own topic prefix, consumer groups and record key prefix; it deletes only the
keys it wrote. Node rates are 1,000 reads/s so one node vs four is visible within seconds.
"""

from __future__ import annotations

import base64
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest

from mdde_stream.benchmark.capacity import clock_key
from mdde_stream.benchmark.client import LocalServices, RealBenchmark, wait_for_group
from mdde_stream.bus import Bus, TopicPartition, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.datanodes import DataNodes, RecordSpec
from mdde_stream.events import AccessLog, BenchmarkRequested, BenchmarkResult, DeadLetter, decode_event
from mdde_stream.registry import fragment_layout
from mdde_stream.workloads import WorkloadSpec, generate_keys
from tests.conftest import data_node_urls, require_kafka, require_redis

pytestmark = pytest.mark.integration

RECORDS = 2_000
RATE = 1_000.0


@dataclass
class Stack:
    """The shared dataset plus this test's own topics (a fresh prefix per test: no history to replay)."""

    settings: Settings
    bus: Bus
    prefix: str
    ranges: dict[str, tuple[int, int]]
    layout: dict[str, list[str]]
    urls: dict[str, str]
    record_fragment: np.ndarray
    logs: Path

    def benchmark(self, operations: int, seed: int = 0, tasks: int = 8) -> RealBenchmark:
        spec = WorkloadSpec(record_count=RECORDS, operation_count=operations, clients=50)
        return RealBenchmark(self.bus, self.settings, list(self.layout), list(self.ranges), spec,
                             fragment_records=self.ranges, key_prefix=self.prefix,
                             tasks=tasks, timeout_s=90)

    def services(self, workers: int, name: str) -> LocalServices:
        tag = uuid.uuid4().hex[:8]
        return LocalServices(self.settings, workers, worker_group=f"w-{name}-{tag}",
                             aggregator_group=f"a-{name}-{tag}", log_dir=self.logs / f"{name}-{tag}")

    def fragment_totals(self, operations: int, seed: int) -> np.ndarray:
        keys = generate_keys(WorkloadSpec(record_count=RECORDS, operation_count=operations), seed)
        return np.bincount(self.record_fragment[keys], minlength=20)


@dataclass
class Dataset:
    urls: list[str]
    prefix: str
    tmp: Path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    require_kafka()
    urls = data_node_urls()[:4]
    for url in urls:
        require_redis(url)
    prefix = f"test-bench-{uuid.uuid4().hex[:10]}:"
    _, ranges, layout = fragment_layout(RECORDS, 4, 20, "contiguous")  # slots = keys: requests carry no record layout
    nodes = DataNodes(dict(zip(layout, urls)), RecordSpec(record_count=RECORDS, key_prefix=prefix))
    # Every node holds every record, so any allocation map can be benchmarked without a shuffle.
    nodes.load(ranges, {node: list(ranges) for node in layout})
    try:
        yield Dataset(urls, prefix, tmp_path_factory.mktemp("bench"))
    finally:
        for node, client in nodes.clients.items():
            nodes.delete_range(node, 0, RECORDS)
            client.delete(clock_key(prefix))
        nodes.close()


@pytest.fixture
def stack(dataset: Dataset) -> Iterator[Stack]:
    tag = uuid.uuid4().hex[:10]
    settings = Settings(bus=require_kafka(), topic_prefix=f"test-bench-{tag}", data_nodes=",".join(dataset.urls),
                        session_timeout_s=6, benchmark_task_partitions=8, benchmark_node_rates=str(RATE),
                        data_dir=dataset.tmp)
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    record_fragment, ranges, layout = fragment_layout(RECORDS, 4, 20, "contiguous")  # slots = keys: requests carry no record layout
    try:
        yield Stack(settings, bus, dataset.prefix, ranges, layout, dict(zip(layout, dataset.urls)), record_fragment,
                    dataset.tmp / tag)
    finally:
        bus.delete_topics([t for t in bus.list_topics() if t.startswith(settings.topic_prefix + ".")])
        bus.close()


def _fragment_totals(result: BenchmarkResult) -> np.ndarray:
    totals = np.zeros(20, dtype=np.int64)
    for row in result.reads.values():
        for fragment, value in row.items():
            totals[int(fragment[1:])] += value
    return totals


def test_one_two_and_four_workers_give_identical_totals(stack: Stack) -> None:
    # Two replicas per fragment, so the least-in-flight locator has real choices to make.
    allocation = {n: sorted(set(fr) | set(stack.layout[f"n{(i + 1) % 4}"]), key=lambda f: int(f[1:]))
                  for i, (n, fr) in enumerate(stack.layout.items())}
    ops, seed = 4_000, 5
    expected = stack.fragment_totals(ops, seed)
    with stack.services(1, "scale") as services, stack.benchmark(ops, seed) as bench:
        group = services.worker_group
        throughput = {}
        for count in (1, 2, 4):
            while len(services.workers) < count:
                services.add_worker()
            wait_for_group(stack.bus, group, count)
            outcome = bench.run(allocation, seed=seed, run_id=f"scale-{count}")
            result = bench.last_result
            assert result is not None
            assert result.operations == ops and outcome.total_reads == ops and result.missing == 0
            assert result.workers == count
            assert np.array_equal(_fragment_totals(result), expected)
            assert outcome.throughput <= 4 * RATE * 1.05  # never beyond the nodes' capacity
            throughput[count] = outcome.throughput
        # Every replica pair shared its fragment's reads: both holders served some.
        assert (outcome.reads > 0).sum() == 40
    assert min(throughput.values()) > 0.3 * 4 * RATE


def test_one_node_is_clearly_slower_than_four(stack: Stack) -> None:
    ops = 3_000
    one = {"n0": list(stack.ranges), "n1": [], "n2": [], "n3": []}
    with stack.services(2, "capacity") as services, stack.benchmark(ops, seed=2) as bench:
        wait_for_group(stack.bus, services.worker_group, 2)
        bench.run(stack.layout, seed=1, run_id="warm-up")  # connections and scripts on both workers
        single = bench.run(one, seed=2, run_id="one-node")
        spread = bench.run(stack.layout, seed=2, run_id="spread")
    assert single.node_reads.tolist() == [ops, 0, 0, 0]
    assert single.throughput <= RATE * 1.05
    assert single.throughput >= RATE * 0.6
    assert spread.throughput > 2 * single.throughput, (spread.throughput, single.throughput)


def test_a_worker_killed_mid_task_is_replaced_and_totals_stay_exact(stack: Stack) -> None:
    ops, seed = 6_000, 9
    one = {"n0": list(stack.ranges), "n1": [], "n2": [], "n3": []}
    with stack.services(2, "kill") as services, stack.benchmark(ops, seed) as bench:
        wait_for_group(stack.bus, services.worker_group, 2)
        victim_log = services.log_dir / "worker-0.log"  # type: ignore[operator]
        request = bench.request(one, seed=seed, run_id="kill")
        deadline = time.monotonic() + 30
        started: list[str] = []
        while not started and time.monotonic() < deadline:
            text = victim_log.read_text() if victim_log.exists() else ""
            started = [line.split("task ", 1)[1].split(" ", 1)[0] for line in text.splitlines()
                       if f"task {request.request_id}:" in line and "started" in line]
            time.sleep(0.05)
        assert started, "worker-0 never started a task"
        os.kill(services.workers[0].pid, signal.SIGKILL)
        result = bench.wait(request)
        services.workers[0].wait(10)
    assert services.workers[0].returncode == -signal.SIGKILL
    assert result.operations == ops and result.missing == 0
    assert np.array_equal(_fragment_totals(result), stack.fragment_totals(ops, seed))
    assert result.workers == 1  # the victim emitted nothing; the survivor ran everything
    survivor = (services.log_dir / "worker-1.log").read_text()  # type: ignore[operator]
    assert f"task {started[0]} started" in survivor  # the killed task was redelivered and re-run


def test_aggregator_drops_duplicate_logs_and_dead_letters_bad_requests(stack: Stack) -> None:
    settings = stack.settings
    with stack.services(0, "agg") as services, stack.benchmark(10) as bench:
        wait_for_group(stack.bus, services.aggregator_group, 1)
        now = time.time()
        from datetime import datetime

        def log(task: int, node: str, reads: int, worker: str) -> AccessLog:
            t = datetime.fromtimestamp(now, UTC)
            return AccessLog(run_id="dup", request_id="dup-1", task_index=task, task_count=2, worker_id=worker,
                             reads={node: {"f0": reads}}, operations=reads, started_at=t, finished_at=t,
                             duration_s=0.0)

        producer = stack.bus.producer()
        topic = settings.topic(AccessLog.TOPIC)
        for event in (log(0, "n0", 7, "a"), log(0, "n1", 7, "b"), log(1, "n2", 3, "a")):
            producer.produce(topic, event.to_bytes(), key=event.key)
        bad = BenchmarkRequested(run_id="dup", workload="bogus", allocation={"n0": ["f0"]})
        producer.produce(settings.topic(bad.TOPIC), bad.to_bytes(), key=bad.key)
        producer.flush()
        result = bench.wait(BenchmarkRequested(run_id="dup", request_id="dup-1"))
        producer.close()
        reason = _wait_for_letter(stack.bus, settings.topic(DeadLetter.TOPIC), bad.to_bytes())
    assert result.operations == 10 and result.node_reads == {"n0": 7, "n2": 3}
    assert "bogus" in reason and "neither a preset" in reason


def _wait_for_letter(bus: Bus, topic: str, payload: bytes, timeout_s: float = 20.0) -> str:
    """The reason of the dead letter that carries ``payload``."""
    # A new group with offset reset "earliest": reads each partition from its start.
    consumer = bus.consumer(f"inspect-{uuid.uuid4().hex[:8]}", offset_reset="earliest")
    partitions = bus.list_topics()[topic]
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for record in consumer.poll(0.5):
                letter = decode_event(record.value, (DeadLetter,))
                if base64.b64decode(letter.payload_b64) == payload:  # type: ignore[attr-defined]
                    return letter.reason  # type: ignore[attr-defined]
    finally:
        consumer.close()
    raise AssertionError(f"no dead letter for the payload on {topic} within {timeout_s}s")
