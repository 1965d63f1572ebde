"""A benchmark worker: consumes ``mdde.benchmark.tasks``, reads from the data nodes, emits access logs.

Start any number of these in one consumer group (``mdde-benchmark-workers``): the task topic's
partitions are shared between them, so more workers execute more tasks in parallel.

Sequence per task (at-least-once; the aggregator's dedupe by (request, task) makes totals exact):

1. poll one task (invalid events go to the dead-letter topic);
2. execute it as C closed-loop clients on pipelined connections (:class:`~mdde_stream.benchmark.real.TaskExecutor`);
3. produce its ``AccessLog`` and flush the producer;
4. commit the task's offset.

A worker killed anywhere before 4 leaves the task uncommitted; after the group rebalances another
worker executes it again from the start. A task that cannot run (bad layout, unreachable node after
``--retries`` attempts) is dead-lettered with the reason instead of blocking its partition.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from mdde_stream.benchmark.real import TaskError, TaskExecutor
from mdde_stream.bus.app import Delivery
from mdde_stream.bus.base import Bus, BusError
from mdde_stream.config import Settings
from mdde_stream.events import AccessLog, BenchmarkTask
from mdde_stream.services import WORKER_GROUP
from mdde_stream.services.runtime import LoopService

logger = logging.getLogger(__name__)


class BenchmarkWorker(LoopService):
    """One member of the worker group: poll a task, execute, emit, commit."""

    def __init__(
        self,
        bus: Bus,
        settings: Settings,
        group_id: str = WORKER_GROUP,
        worker_id: str | None = None,
        clients: int | None = None,
        retries: int = 2,
        poll_timeout_s: float = 0.2,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.retries = retries
        self.poll_timeout_s = poll_timeout_s
        self.connect(bus, settings, group_id, [settings.topic(BenchmarkTask.TOPIC)], (BenchmarkTask,))
        self.executor = TaskExecutor(self.worker_id, clients, node_urls=settings.data_node_urls)
        self.tasks_done = 0

    def started(self) -> str:
        return (f"benchmark worker {self.worker_id} consuming {self.settings.topic(BenchmarkTask.TOPIC)} "
                f"as {self.consumer.group_id}")

    def stopped(self) -> str:
        return f"benchmark worker {self.worker_id} stopped after {self.tasks_done} tasks"

    def _closables(self) -> list[Callable[[], None]]:
        return [self.executor.close, *super()._closables()]

    def process_once(self) -> int:
        """Poll and execute at most one task; returns how many were executed (0 or 1)."""
        batch = self.poll_batch(self.poll_timeout_s, max_records=1)
        if batch is None:
            return 0
        if not batch:  # only dead letters: their offsets move on
            self._commit(None)
            return 0
        delivery = batch[0]
        task = delivery.event
        logger.info("task %s:%d started (%d reads, %s[%d]@%d)", task.request_id, task.task_index,
                    task.operation_count, delivery.record.topic, delivery.record.partition, delivery.record.offset)
        log = self._execute(delivery)
        if log is not None:
            self.producer.send(log)
            self.producer.flush()
            self.tasks_done += 1
        self._commit(delivery)
        return 1 if log is not None else 0

    def _execute(self, delivery: Delivery[BenchmarkTask]) -> AccessLog | None:
        """The task's access log, or None after dead-lettering a task that cannot run."""
        task = delivery.event
        for attempt in range(self.retries + 1):
            try:
                return self.executor.run(task)
            except Exception as exc:  # noqa: BLE001 - one bad task must not stop the worker
                # Read failures (a cause from redis) may be transient; layout errors are not.
                transient = isinstance(exc, TaskError) and exc.__cause__ is not None
                if transient and attempt < self.retries:
                    logger.warning("task %s:%d attempt %d failed (%s); retrying", task.request_id,
                                   task.task_index, attempt + 1, exc)
                    time.sleep(0.5 * (attempt + 1))
                    continue
                logger.error("task %s:%d failed: %s", task.request_id, task.task_index, exc)
                self.consumer.dead_letter(delivery.record, f"{type(exc).__name__}: {exc}", "task-failed")
                self.producer.flush()  # the letter must be stored before the offset moves on
                return None
        return None

    def _commit(self, delivery: Delivery[BenchmarkTask] | None) -> None:
        try:
            self.consumer.commit(None if delivery is None else [delivery])
        except BusError as exc:
            # Typically a rebalance took the partition meanwhile: the new owner re-runs the task
            # and the aggregator drops the second log.
            logger.warning("commit failed (%s); the task may be executed again elsewhere", exc)
