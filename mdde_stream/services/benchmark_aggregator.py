"""The benchmark aggregator: plans requests into tasks and combines access logs into results.

Consumes two topics in group ``mdde-benchmark-aggregator``:

* ``mdde.benchmark.requests`` -> :func:`~mdde_stream.benchmark.real.plan_tasks` -> tasks on
  ``mdde.benchmark.tasks`` (explicit partition ``(hash(request) + task) % P``, keyed
  ``request:task``, so a run's tasks land on distinct partitions and every worker gets a share);
  a request that cannot be planned is dead-lettered with the reason.
* ``mdde.benchmark.access-logs`` -> :class:`~mdde_stream.benchmark.real.Aggregator`: once every
  task of a request has reported, one ``BenchmarkResult`` on ``mdde.benchmark.results``.

Commit sequence per poll: produce tasks/results -> flush -> commit, and never past the first
access log of a request that is still incomplete, so a restarted aggregator re-reads exactly the
logs it still needs. (Access logs are keyed by run id: one run's logs share a partition and one
aggregator instance, so several aggregators can split the runs.)
"""

from __future__ import annotations

import logging
import zlib

from mdde_stream.benchmark.real import Aggregator, PlanError, plan_tasks
from mdde_stream.bus.app import Delivery
from mdde_stream.bus.base import Bus, BusError, Record
from mdde_stream.config import Settings
from mdde_stream.events import AccessLog, BenchmarkRequested, BenchmarkTask, Event
from mdde_stream.services import AGGREGATOR_GROUP
from mdde_stream.services.runtime import LoopService

logger = logging.getLogger(__name__)


class AggregatorService(LoopService):
    """Planner + aggregator in one consumer-group member."""

    def __init__(
        self, bus: Bus, settings: Settings, group_id: str = AGGREGATOR_GROUP, poll_timeout_s: float = 0.2
    ) -> None:
        super().__init__()
        self.bus = bus
        self.settings = settings
        self.poll_timeout_s = poll_timeout_s
        self.connect(bus, settings, group_id, [settings.topic(BenchmarkRequested.TOPIC), settings.topic(AccessLog.TOPIC)],
                     (BenchmarkRequested, AccessLog))
        self.aggregator = Aggregator()
        self.task_topic = settings.topic(BenchmarkTask.TOPIC)
        self._task_partitions: int | None = None
        # Records of access logs whose request is still incomplete: the commit floor.
        self._held: dict[str, list[Record]] = {}
        self.results = 0
        self.planned = 0

    def started(self) -> str:
        return f"benchmark aggregator consuming requests and access logs as {self.consumer.group_id}"

    def stopped(self) -> str:
        return f"benchmark aggregator stopped: {self.planned} requests planned, {self.results} results"

    def commit(self) -> None:
        # Never commit from the first log of a still-incomplete request on: a crash must bring it back.
        self.consumer.commit_below(record for records in self._held.values() for record in records)

    def handle(self, delivery: Delivery[Event]) -> None:
        if isinstance(delivery.event, BenchmarkRequested):
            self._plan(delivery)
        else:
            self._aggregate(delivery)  # type: ignore[arg-type]

    def rewound(self) -> None:
        # Their logs come again; the aggregator keeps what it counted (by task), so nothing counts twice.
        self._held.clear()

    def _plan(self, delivery: Delivery[Event]) -> None:
        request = delivery.event
        assert isinstance(request, BenchmarkRequested)
        try:
            tasks = plan_tasks(request, self.settings)
        except (PlanError, ValueError) as exc:
            self.consumer.dead_letter(delivery.record, str(exc), "plan-failed")
            return
        partitions = self._partitions()
        base = zlib.crc32(request.request_id.encode())
        for task in tasks:  # spread over the partitions, so that every worker gets a share
            self.producer.send(task, topic=self.task_topic, partition=(base + task.task_index) % partitions)
        self.planned += 1
        logger.info("request %s (run %s step %d): %d reads as %d tasks", request.request_id, request.run_id,
                    request.step, request.operation_count, len(tasks))

    def _partitions(self) -> int:
        if self._task_partitions is None:
            count = self.bus.list_topics().get(self.task_topic)
            if not count:
                raise BusError(f"topic {self.task_topic!r} does not exist: create the project topics first")
            self._task_partitions = count
        return self._task_partitions

    def _aggregate(self, delivery: Delivery[AccessLog]) -> None:
        log = delivery.event
        try:
            result = self.aggregator.add(log)
        except ValueError as exc:
            self.consumer.dead_letter(delivery.record, str(exc), "inconsistent-log")
            return
        if result is None:
            if self.aggregator.is_pending(log.request_id):
                self._held.setdefault(log.request_id, []).append(delivery.record)
            return
        self._held.pop(log.request_id, None)
        self.producer.send(result)
        self.results += 1
        logger.info("request %s complete: %d reads in %.3fs = %.0f reads/s by %d workers (missing %d)",
                    result.request_id, result.operations, result.duration_s, result.throughput,
                    result.workers, result.missing)
