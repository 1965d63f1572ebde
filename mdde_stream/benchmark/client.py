"""What a stage (or the edge-case evaluation) calls to run the real benchmark over the bus.

:class:`RealBenchmark` publishes one :class:`BenchmarkRequested` (with node URLs, node rates, the
fragment record ranges and the dataset's key prefix, so the planner needs nothing else) and waits
for the aggregator's :class:`BenchmarkResult` with the same request id. It listens from the current
end of every partition of the results topic, assigned before the request goes out, so a fast answer
cannot be missed. :class:`LocalServices` starts benchmark workers and an aggregator as child
processes, for the bench script, the edge-case command and tests.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from mdde_stream.benchmark.errors import BenchmarkError
from mdde_stream.benchmark.outcome import BenchmarkOutcome
from mdde_stream.bus.app import ReplyTimeout, RequestReply
from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings
from mdde_stream.events import BenchmarkRequested, BenchmarkResult, RecordLayout
from mdde_stream.workloads import WorkloadSpec

logger = logging.getLogger(__name__)


class BenchmarkTimeout(BenchmarkError, TimeoutError):
    """No result arrived in time: the workers or the aggregator are not running (or a task failed)."""


class RealBenchmark:
    """Runs benchmarks of allocations on the real data nodes through the benchmark services."""

    def __init__(
        self,
        bus: Bus,
        settings: Settings,
        node_ids: Sequence[str],
        fragment_ids: Sequence[str],
        spec: WorkloadSpec,
        *,
        workload: str | None = None,
        node_rates: Mapping[str, float] | None = None,
        fragment_records: Mapping[str, tuple[int, int]] | None = None,
        key_prefix: str = "user",
        record_layout: RecordLayout | None = None,
        tasks: int = 8,
        timeout_s: float = 120.0,
    ) -> None:
        self.bus, self.settings = bus, settings
        self.node_ids, self.fragment_ids = list(node_ids), list(fragment_ids)
        self.spec = spec
        self.workload = workload or spec.distribution.value
        self.node_rates = dict(node_rates or {})
        self.fragment_records = dict(fragment_records or {})
        self.key_prefix = key_prefix
        self.record_layout = record_layout
        self.tasks = tasks
        self.timeout_s = timeout_s
        self.last_result: BenchmarkResult | None = None
        self._round_trip: RequestReply[BenchmarkResult] = RequestReply(
            bus, settings, BenchmarkResult, lambda r: r.request_id, "mdde-benchmark-client")

    def request(self, allocation: Mapping[str, Sequence[str]], seed: int = 0, run_id: str = "benchmark",
                episode: int = 0, step: int = 0) -> BenchmarkRequested:
        """Publish the request for ``allocation`` (node -> fragments, in node order) and return it."""
        event = BenchmarkRequested(
            run_id=run_id, episode=episode, step=step, workload=self.workload,
            record_count=self.spec.record_count, operation_count=self.spec.operation_count,
            clients=self.spec.clients, seed=seed, tasks=self.tasks,
            allocation={node: list(allocation.get(node, [])) for node in self.node_ids},
            node_rates=self.node_rates,
            fragment_records=self.fragment_records, key_prefix=self.key_prefix, record_layout=self.record_layout,
        )
        self._round_trip.send([event])
        return event

    def wait(self, request: BenchmarkRequested) -> BenchmarkResult:
        """The result for ``request``; raises :class:`BenchmarkTimeout` naming what to check."""
        try:
            return self._round_trip.wait([request.request_id], self.timeout_s)[0]
        except ReplyTimeout:
            pass
        raise BenchmarkTimeout(  # outside the except: the reply timeout is not the cause to show
            f"no {self.settings.topic(BenchmarkResult.TOPIC)} result for request {request.request_id} "
            f"(run {request.run_id}, step {request.step}) within {self.timeout_s:.0f} s: are the benchmark "
            f"workers and the aggregator running, and is {self.settings.topic('dead-letter')} empty?"
        )

    def run(self, allocation: Mapping[str, Sequence[str]], seed: int = 0, run_id: str = "benchmark",
            episode: int = 0, step: int = 0) -> BenchmarkOutcome:
        """Benchmark ``allocation`` and return ⟨τ, N, R⟩ in ``node_ids`` × ``fragment_ids`` order."""
        result = self.wait(self.request(allocation, seed, run_id, episode, step))
        self.last_result = result
        if result.missing:
            logger.warning("benchmark %s: %d reads found no record (were the data moves shuffled?)",
                           result.request_id, result.missing)
        return BenchmarkOutcome.from_mapping(result.model_dump(), self.node_ids, self.fragment_ids)

    def close(self) -> None:
        self._round_trip.close()

    def __enter__(self) -> RealBenchmark:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that gives a child process the same bus, topics and data nodes as ``settings``."""
    env = {**os.environ, **settings.to_env()}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class LocalServices:
    """Benchmark workers and one aggregator as child processes (``mdde-stream worker benchmark`` and ``service benchmark-aggregator``).

    Groups default to ``{topic_prefix}-benchmark-workers`` / ``-aggregator`` (the standard
    ``mdde-benchmark-*`` names for the default prefix), so children join whatever services already
    run on the same topics and share their committed offsets instead of replaying the topics.
    """

    def __init__(self, settings: Settings, workers: int = 1, *, worker_group: str | None = None,
                 aggregator_group: str | None = None, clients: int | None = None,
                 log_dir: Path | None = None) -> None:
        self.settings = settings
        self.env = settings_env(settings)
        self.worker_group = worker_group or f"{settings.topic_prefix}-benchmark-workers"
        self.aggregator_group = aggregator_group or f"{settings.topic_prefix}-benchmark-aggregator"
        self.clients = clients
        self.log_dir = log_dir
        self.workers: list[subprocess.Popen[bytes]] = []
        self.aggregator: subprocess.Popen[bytes] | None = None
        self._initial = workers

    def _spawn(self, command: list[str], name: str, cpus: str | None = None) -> subprocess.Popen[bytes]:
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        pin = ["taskset", "-c", cpus] if cpus else []
        return subprocess.Popen([*pin, sys.executable, "-m", "mdde_stream", *command], env=self.env, stdout=out,
                                stderr=subprocess.STDOUT)

    def add_worker(self, cpus: str | None = None) -> subprocess.Popen[bytes]:
        """Start one more worker; ``cpus`` (a ``taskset`` list such as ``"1"``) pins it to those cores."""
        args = ["--group", self.worker_group]
        if self.clients:
            args += ["--clients", str(self.clients)]
        index = len(self.workers)
        proc = self._spawn(["worker", "benchmark", *args, "--worker-id", f"worker-{index}"], f"worker-{index}", cpus)
        self.workers.append(proc)
        return proc

    def start(self) -> LocalServices:
        self.aggregator = self._spawn(["service", "benchmark-aggregator", "--group", self.aggregator_group], "aggregator")
        for _ in range(self._initial):
            self.add_worker()
        return self

    def stop_workers(self, timeout_s: float = 15.0) -> None:
        """Stop every worker (they leave the group) and forget them; the aggregator keeps running."""
        _terminate(self.workers, timeout_s)
        self.workers = []

    def stop(self, timeout_s: float = 15.0) -> None:
        _terminate([p for p in [*self.workers, self.aggregator] if p is not None], timeout_s)

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM each child (a clean stop leaves its group), then kill what did not exit in time."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_group(bus: Bus, group_id: str, members: int, timeout_s: float = 60.0) -> None:
    """Block until ``group_id`` has at least ``members`` live members taking part in its assignment."""
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        seen = bus.group_members(group_id)
        if seen >= members:
            return
        time.sleep(0.3)
    raise TimeoutError(f"consumer group {group_id!r} did not reach {members} live members in {timeout_s}s "
                       f"({seen} so far)")
