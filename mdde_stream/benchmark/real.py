"""The real benchmark as a stream job: plan a request into tasks, execute tasks, combine access logs.

Three pure-ish pieces, each used by one service (``mdde_stream/services/``):

1. :func:`plan_tasks` (the aggregator service, on ``mdde.benchmark.requests``): a request becomes
   ``tasks`` slices of the run's operation sequence, each carrying everything a worker needs (the
   allocation, node URLs, node rates, fragment record ranges), keyed ``request:task`` and spread
   over the partitions of ``mdde.benchmark.tasks`` so every worker of the group gets a share.
2. :class:`TaskExecutor` (each benchmark worker): runs one task as C closed-loop clients on one
   pipelined connection per node (:mod:`mdde_stream.benchmark.pipeline`). The keys are the slice
   ``[offset, offset + count)`` of the whole run's seeded key sequence, so the union of all tasks is
   exactly the run a simulated benchmark with the same seed would serve. Each read goes to the
   replica with the fewest reads in flight in this worker process (the shared
   :class:`~mdde_stream.benchmark.locator.ReplicaLocator`), fetches the whole record (``HGETALL``,
   paced by the node's capacity model, see :mod:`mdde_stream.benchmark.capacity`) and is counted per
   node x fragment. (Earlier this was a blocking redis-py client per thread: ~16 % of
   ``redis-benchmark``; the loop's figures are in ``bench/RESULTS.md``.)
3. :class:`Aggregator` (the aggregator service, on ``mdde.benchmark.access-logs``): collects one
   access log per task and, when all ``task_count`` are in, combines them (:func:`combine`) into one
   :class:`BenchmarkResult`. A redelivered task (its worker died after emitting, or before
   committing) produces a second log for the same ``(request_id, task_index)``; only the first is
   counted, so totals are exact. Throughput = total reads / (last task end - first task start).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from mdde_stream.benchmark.capacity import (
    CATCH_UP_S,
    PACED_BATCH_LUA,
    CapacityError,
    clock_key,
    parse_rates,
    service_time_us,
)
from mdde_stream.benchmark.errors import BenchmarkError
from mdde_stream.benchmark.locator import NoReplicaError, ReplicaLocator
from mdde_stream.benchmark.pipeline import NodeConnection, NodeIOError, NodePlan, bulk, closed_loop, encode_command
from mdde_stream.config import Settings
from mdde_stream.datanodes.generator import record_key
from mdde_stream.estimator import natural_key
from mdde_stream.events import AccessLog, BenchmarkRequested, BenchmarkResult, BenchmarkTask
from mdde_stream.registry.fragmenter import fragment_layout, layout_of
from mdde_stream.workloads import PRESETS, WorkloadSpec, generate_keys

logger = logging.getLogger(__name__)


class PlanError(BenchmarkError, ValueError):
    """A benchmark request that cannot be turned into tasks (names the missing or bad field)."""


class TaskError(BenchmarkError, RuntimeError):
    """A task that could not be executed (unreachable node, missing replica, bad layout)."""


# -- planning -------------------------------------------------------------------------------------


def resolve_workload(name: str, record_count: int, operation_count: int, clients: int) -> WorkloadSpec:
    """A thesis preset (``uniform``, ``latest-large``, ...) or a distribution name, sized for the run."""
    base = PRESETS.get(name)
    if base is None:
        try:
            base = WorkloadSpec(distribution=name)
        except ValueError:
            raise PlanError(f"workload {name!r} is neither a preset {sorted(PRESETS)} nor a distribution") from None
    return base.model_copy(
        update={"record_count": record_count, "operation_count": operation_count, "clients": clients}
    )


def default_fragment_records(record_count: int, fragment_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """The fragmenter's contiguous equal ranges for ``f0..f{F-1}`` (what ``open_registry`` lays out)."""
    expected = [f"f{i}" for i in range(len(fragment_ids))]
    if sorted(fragment_ids, key=natural_key) != expected:
        raise PlanError(
            "fragment_records is empty and the allocation's fragments are not f0..f{F-1}: "
            "send the record ranges with the request"
        )
    return fragment_layout(record_count, 1, len(fragment_ids), grouping="contiguous").ranges


def plan_tasks(request: BenchmarkRequested, settings: Settings) -> list[BenchmarkTask]:
    """Split ``request`` into tasks; node rates default to ``settings``. Tasks name nodes, never URLs:
    each worker reads the data nodes it is configured with (``MDDE_DATA_NODES``), in node order."""
    nodes = list(request.allocation)
    if not nodes:
        raise PlanError(f"benchmark request {request.request_id}: allocation is empty")
    fragments = sorted({f for held in request.allocation.values() for f in held}, key=natural_key)
    resolve_workload(request.workload, request.record_count, request.operation_count, request.clients)

    try:
        rates = {**parse_rates(settings.benchmark_node_rates, nodes), **request.node_rates}
    except CapacityError as exc:
        raise PlanError(f"MDDE_BENCHMARK_NODE_RATES: {exc}") from None
    bad_rates = {n: r for n, r in rates.items() if not r >= 0}
    if bad_rates:
        raise PlanError(f"benchmark request {request.request_id}: node_rates must be >= 0, got {bad_rates}")

    ranges = dict(request.fragment_records) or default_fragment_records(request.record_count, fragments)
    for fragment, (start, end) in ranges.items():
        if not 0 <= start <= end <= request.record_count:
            raise PlanError(f"fragment_records.{fragment}: [{start}, {end}) outside 0..{request.record_count}")
    unknown = [f for f in fragments if f not in ranges]
    if unknown:
        raise PlanError(f"benchmark request {request.request_id}: fragment_records has no range for {unknown}")

    total = request.operation_count
    count = max(1, min(request.tasks, total))
    bounds = [i * total // count for i in range(count + 1)]
    common = dict(
        run_id=request.run_id, episode=request.episode, step=request.step, request_id=request.request_id,
        task_count=count, workload=request.workload, record_count=request.record_count,
        operation_total=total, clients=request.clients, seed=request.seed, allocation=request.allocation,
        node_rates={n: float(rates.get(n, 0.0)) for n in nodes},
        fragment_records=ranges, key_prefix=request.key_prefix, record_layout=request.record_layout,
    )
    return [
        BenchmarkTask(
            task_index=i, operation_offset=bounds[i], operation_count=bounds[i + 1] - bounds[i], **common
        )
        for i in range(count)
    ]


# -- execution ------------------------------------------------------------------------------------


class TaskLayout:
    """Index view of a task: node and fragment order, record -> fragment, allocation matrix."""

    def __init__(self, task: BenchmarkTask) -> None:
        self.node_ids = list(task.allocation)
        fragments = set(task.fragment_records) | {f for held in task.allocation.values() for f in held}
        self.fragment_ids = sorted(fragments, key=natural_key)
        f_index = {f: i for i, f in enumerate(self.fragment_ids)}
        self.allocation = np.zeros((len(self.node_ids), len(self.fragment_ids)), dtype=np.bool_)
        for w, node in enumerate(self.node_ids):
            self.allocation[w, [f_index[f] for f in task.allocation[node]]] = True
        ranges = task.fragment_records or default_fragment_records(task.record_count, self.fragment_ids)
        self.record_fragment = np.full(task.record_count, -1, dtype=np.int64)
        for fragment, (start, end) in ranges.items():
            self.record_fragment[start:end] = f_index[fragment]


def _run_total(task: BenchmarkTask) -> int:
    """The operations of the task's whole run; raises :class:`TaskError` when its slice lies outside them."""
    total = task.operation_total or task.operation_offset + task.operation_count
    if task.operation_offset + task.operation_count > total:
        raise TaskError(
            f"task {task.request_id}:{task.task_index} slice [{task.operation_offset}, "
            f"{task.operation_offset + task.operation_count}) exceeds the run's {total} operations"
        )
    return total


def task_keys(task: BenchmarkTask) -> np.ndarray:
    """This task's record indices: its slice of the whole run's seeded key sequence."""
    total = _run_total(task)
    try:
        spec = resolve_workload(task.workload, task.record_count, total, task.clients)
    except PlanError as exc:
        raise TaskError(str(exc)) from None
    keys = generate_keys(spec, task.seed)[task.operation_offset : task.operation_offset + task.operation_count]
    if task.record_layout is None:
        return keys
    # The workload chooses keys; the data nodes hold records by slot (the fragmenter's order).
    fragment_count = len(set(task.fragment_records) | {f for held in task.allocation.values() for f in held})
    return layout_of(task.record_layout, task.record_count, fragment_count).record_slot[keys]


class TaskExecutor:
    """Executes benchmark tasks against the data nodes with ``clients`` closed-loop clients per task.

    Kept across tasks: one pipelined connection per node URL, the loaded booking script's sha, the
    encoded keys of the last dataset and the key sequences of the last runs, so a task after the
    first costs its reads and little else. One task runs at a time, so the locator's in-flight
    counts are this worker's.
    """

    KEY_RUNS = 4

    def __init__(self, worker_id: str, clients: int | None = None, socket_timeout_s: float = 10.0,
                 node_urls: Sequence[str] = ()) -> None:
        if clients is not None and clients < 1:
            raise ValueError(f"clients must be at least 1, got {clients}")
        self.worker_id = worker_id
        # The only servers this worker connects to: a task names nodes, their URLs (and any password
        # in them) stay in this process's settings.
        self.node_urls = list(node_urls)
        self.clients = clients
        self.socket_timeout_s = socket_timeout_s
        self._conns: dict[str, NodeConnection] = {}
        self._shas: dict[str, bytes] = {}
        self._encoded: tuple[tuple[str, int], list[bytes]] | None = None
        self._runs: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def _connection(self, url: str, paced: bool) -> tuple[NodeConnection, bytes]:
        conn = self._conns.get(url)
        if conn is None:
            conn = self._conns[url] = NodeConnection(url, self.socket_timeout_s)
        sha = self._shas.get(url, b"")
        if paced and not sha:
            sha = self._shas[url] = bytes(conn.call(b"SCRIPT", b"LOAD", PACED_BATCH_LUA.encode()))
        return conn, sha

    def _hgetall_commands(self, key_prefix: str, record_count: int) -> list[bytes]:
        """Every record's whole ``HGETALL`` command, encoded once per dataset."""
        if self._encoded is None or self._encoded[0] != (key_prefix, record_count):
            self._encoded = ((key_prefix, record_count),
                             [encode_command(b"HGETALL", record_key(i, key_prefix).encode())
                              for i in range(record_count)])
        return self._encoded[1]

    def _keys(self, task: BenchmarkTask) -> np.ndarray:
        """The task's slice of its run's key sequence; the whole sequence is cached per run."""
        total = _run_total(task)
        layout = task.record_layout
        run = (task.workload, task.record_count, total, task.clients, task.seed, len(task.fragment_records),
               None if layout is None else (layout.nodes, layout.grouping, tuple(layout.numbering), layout.seed))
        keys = self._runs.get(run)
        if keys is None:
            keys = self._runs[run] = task_keys(task.model_copy(update={"operation_offset": 0,
                                                                        "operation_count": total}))
            while len(self._runs) > self.KEY_RUNS:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(run)
        return keys[task.operation_offset : task.operation_offset + task.operation_count]

    def run(self, task: BenchmarkTask) -> AccessLog:
        """Execute ``task`` and return its access log; raises :class:`TaskError` if it cannot run."""
        layout = TaskLayout(task)
        keys = self._keys(task)
        if keys.size and (keys.max() >= layout.record_fragment.size or layout.record_fragment[keys].min() < 0):
            raise TaskError(f"task {task.request_id}:{task.task_index} reads records outside every fragment")
        frags = layout.record_fragment[keys]
        if frags.size:
            unheld = np.flatnonzero((np.bincount(frags, minlength=layout.allocation.shape[1]) > 0)
                                    & ~layout.allocation.any(axis=0))
            if unheld.size:
                raise TaskError(str(NoReplicaError(int(unheld[0]), f"fragment {layout.fragment_ids[unheld[0]]}")))
        if len(self.node_urls) < len(layout.node_ids):
            raise TaskError(f"task {task.request_id}:{task.task_index} names {len(layout.node_ids)} nodes; this worker "
                            f"is configured with {len(self.node_urls)} data nodes (MDDE_DATA_NODES)")
        urls = dict(zip(layout.node_ids, self.node_urls))
        hgetall_cmds = self._hgetall_commands(task.key_prefix, task.record_count)
        clock = bulk(clock_key(task.key_prefix).encode())
        clients = self.clients or task.clients
        keys_list, frags_list = keys.tolist(), frags.tolist()

        try:
            plans = []  # connecting and loading the script happen before the clock starts
            for n in layout.node_ids:
                service = service_time_us(task.node_rates.get(n, 0.0))
                conn, sha = self._connection(urls[n], service > 0)
                plans.append(NodePlan(conn, service, sha, clock, round(CATCH_UP_S * 1e6)))
            started = datetime.now(UTC)
            t0 = time.perf_counter()
            loop = closed_loop(ReplicaLocator(layout.allocation), plans, keys_list, frags_list,
                               hgetall_cmds, clients, len(layout.fragment_ids),
                               deadline_s=max(30.0, 3 * self.socket_timeout_s))
        except NodeIOError as exc:
            self.close()  # half-read replies make a connection useless; the retry reconnects
            raise TaskError(f"task {task.request_id}:{task.task_index}: {exc}") from exc
        duration = time.perf_counter() - t0
        finished = datetime.now(UTC)

        counts, missing = loop.counts, loop.missing
        f_count = len(layout.fragment_ids)
        reads = {
            node: {layout.fragment_ids[f]: counts[w * f_count + f] for f in range(f_count) if counts[w * f_count + f]}
            for w, node in enumerate(layout.node_ids)
        }
        if missing:
            logger.warning("task %s:%d: %d reads found no record (data not shuffled?)",
                           task.request_id, task.task_index, missing)
        logger.info("task %s:%d: %d reads in %.3fs (%.0f reads/s, %d bursts) by %s", task.request_id,
                    task.task_index, len(keys), duration, len(keys) / duration if duration > 0 else 0.0,
                    loop.bursts, self.worker_id)
        return AccessLog(
            run_id=task.run_id, episode=task.episode, step=task.step, request_id=task.request_id,
            task_index=task.task_index, task_count=task.task_count, worker_id=self.worker_id, reads=reads,
            operations=int(keys.size), started_at=started, finished_at=finished, duration_s=duration,
            missing=missing,
        )

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self._shas.clear()


# -- aggregation ----------------------------------------------------------------------------------


def combine(logs: Sequence[AccessLog]) -> BenchmarkResult:
    """One result from the access logs of all tasks of a request (one log per task index)."""
    if not logs:
        raise ValueError("combine needs at least one access log")
    first = logs[0]
    indices = sorted(log.task_index for log in logs)
    if indices != list(range(first.task_count)) or any(log.request_id != first.request_id for log in logs):
        raise ValueError(
            f"request {first.request_id}: expected one log per task 0..{first.task_count - 1}, got {indices}"
        )
    reads: dict[str, dict[str, int]] = {}
    for log in sorted(logs, key=lambda entry: entry.task_index):
        for node, row in log.reads.items():
            target = reads.setdefault(node, {})
            for fragment, value in row.items():
                target[fragment] = target.get(fragment, 0) + value
    reads = {node: dict(sorted(row.items(), key=lambda item: natural_key(item[0]))) for node, row in reads.items()}
    node_reads = {node: sum(row.values()) for node, row in reads.items()}
    total = sum(node_reads.values())
    start = min(log.started_at for log in logs)
    end = max(log.finished_at for log in logs)
    duration = max(0.0, (end - start).total_seconds())
    return BenchmarkResult(
        event_id=f"{first.request_id}-result", run_id=first.run_id, episode=first.episode, step=first.step,
        request_id=first.request_id, source="real", throughput=total / duration if duration > 0 else 0.0,
        reads=reads, node_reads=node_reads, operations=sum(log.operations for log in logs), duration_s=duration,
        workers=len({log.worker_id for log in logs}), missing=sum(log.missing for log in logs),
    )


class Aggregator:
    """Collects access logs per request; emits a result once every task has reported, exactly once.

    ``completed_memory`` bounds how many finished request ids are remembered to drop late
    duplicates (a task redelivered after its request already completed).
    """

    def __init__(self, completed_memory: int = 10_000) -> None:
        self._pending: dict[str, dict[int, AccessLog]] = {}
        self._completed: OrderedDict[str, None] = OrderedDict()
        self._memory = completed_memory
        self.duplicates = 0

    def add(self, log: AccessLog) -> BenchmarkResult | None:
        """Record ``log``; returns the request's result when this was its last missing task."""
        if log.request_id in self._completed:
            self.duplicates += 1
            logger.info("dropping late duplicate log %s:%d (request already complete)", log.request_id, log.task_index)
            return None
        tasks = self._pending.setdefault(log.request_id, {})
        if log.task_index in tasks:
            self.duplicates += 1
            logger.info("dropping duplicate log %s:%d from %s (first from %s)", log.request_id, log.task_index,
                        log.worker_id, tasks[log.task_index].worker_id)
            return None
        if tasks and next(iter(tasks.values())).task_count != log.task_count:
            raise ValueError(f"request {log.request_id}: log {log.task_index} says {log.task_count} tasks, "
                             f"earlier logs say {next(iter(tasks.values())).task_count}")
        if log.task_index >= log.task_count:
            raise ValueError(f"request {log.request_id}: task_index {log.task_index} >= task_count {log.task_count}")
        tasks[log.task_index] = log
        if len(tasks) < log.task_count:
            return None
        del self._pending[log.request_id]
        self._completed[log.request_id] = None
        while len(self._completed) > self._memory:
            self._completed.popitem(last=False)
        return combine(list(tasks.values()))

    def is_pending(self, request_id: str) -> bool:
        return request_id in self._pending

    @property
    def pending(self) -> dict[str, int]:
        """Request id -> tasks reported so far, for requests still waiting."""
        return {request: len(tasks) for request, tasks in self._pending.items()}
