"""The registry service: consumes ``mdde.actions``, applies each step, produces ``mdde.action-results``.

Every run is isolated: a remote stage sets up its run's state under ``<root>:run:<run id>`` (root
``--prefix``, default ``mdde:registry``) and the service applies the run's actions to that state only,
so concurrent runs never see each other's allocation. An action for a run that has no state is
answered with code 2611 and dead-lettered; actions an in-process stage recorded (``in_process``) were
applied by that stage's own registry and are skipped.

Commit sequence per poll (at-least-once; the store's per-event verdicts make it effectively once):

1. poll a batch; invalid events go to the dead-letter topic (``EventConsumer``);
2. group actions by (run, episode, step) until ``step_size`` of them are there (or the step times out);
3. apply every complete step, its actions in ascending agent order (``Registry.apply_actions``);
4. produce the ``ActionResult``s and flush the producer;
5. commit offsets, never past an action whose step is still incomplete.

A crash anywhere in 3–5 redelivers the uncommitted actions; the ones already applied get their
recorded verdict back and change nothing. A step that cannot be applied is dead-lettered; an
unreachable Redis or bus makes the service back off and read the uncommitted actions again.

With data nodes configured (``MDDE_DATA_NODES``) the service owns the data too: it loads a run's
records when it attaches to the run (or finds the nodes out of step with it), and answers each
``ShuffleRequested`` on ``mdde.registry.shuffle-requests`` — sent by a remote stage before a real
benchmark — by moving the data to the run's allocation (:meth:`Registry.sync_data`) and producing a
``ShuffleCompleted``. A redelivered request just finds nothing left to move.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from mdde_stream.bus.app import Delivery
from mdde_stream.bus.base import Bus, Record
from mdde_stream.config import Settings
from mdde_stream.events import ActionResult, ActionSubmitted, ShuffleCompleted, ShuffleRequested, utc_now
from mdde_stream.registry import SERVICE_REGISTRY_PREFIX, Registry, attach_registry, run_prefix
from mdde_stream.registry.codes import Code, Verdict, reject
from mdde_stream.services import REGISTRY_GROUP
from mdde_stream.services.runtime import (
    INFRASTRUCTURE_ERRORS,
    LoopService,
)

logger = logging.getLogger(__name__)

FSYNC_HORIZON_S = 2.0
COMMIT_INTERVAL_S = 0.25
"""Commits at most this often: each one scans the steps still inside the fsync horizon (hundreds at full
speed), which done per step cost more than the step itself. A later commit only means a longer
redelivery after a crash, and verdicts are deduplicated by action id."""
"""Age after which a verdict written to the registry Redis is on disk (``appendfsync everysec``)."""
StepKey = tuple[str, int, int]


@dataclass
class PendingStep:
    """Actions of one step collected so far (by event id, so a resent action counts once)."""

    size: int
    first_seen: float
    actions: dict[str, Delivery[ActionSubmitted]] = field(default_factory=dict)

    def complete(self) -> bool:
        return len(self.actions) >= self.size


class RunRegistries:
    """The registry of each run, attached on first use (state set up by the run's stage) and cached."""

    def __init__(self, settings: Settings, root: str = SERVICE_REGISTRY_PREFIX, record_shape: str = "default",
                 capacity: int = 64) -> None:
        self.settings, self.root, self.record_shape, self.capacity = settings, root, record_shape, capacity
        self._open: OrderedDict[str, Registry] = OrderedDict()

    def get(self, run_id: str) -> Registry | None:
        registry = self._open.get(run_id)
        if registry is not None:
            self._open.move_to_end(run_id)
            return registry
        registry = attach_registry(self.settings, run_prefix(self.root, run_id), self.record_shape)
        if registry is None:
            return None
        self._open[run_id] = registry
        if len(self._open) > self.capacity:
            self._open.popitem(last=False)[1].close()
        return registry

    def register(self, run_id: str, registry: Registry) -> None:
        """Serve ``run_id`` with a registry opened here (an in-memory one, in tests and benchmarks)."""
        self._open[run_id] = registry

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


class RegistryService(LoopService):
    """One consumer-group member applying steps; several members split the partitions (runs)."""

    name = "registry"

    def __init__(
        self,
        registries: RunRegistries,
        bus: Bus,
        settings: Settings,
        group_id: str = REGISTRY_GROUP,
        step_timeout_s: float = 30.0,
        poll_timeout_s: float = 0.2,
        max_records: int = 500,
    ) -> None:
        super().__init__()
        self.registries = registries
        self.settings = settings
        self.step_timeout_s = step_timeout_s
        self.poll_timeout_s = poll_timeout_s
        self.max_records = max_records
        self.connect(bus, settings, group_id,
                     [settings.topic(ActionSubmitted.TOPIC), settings.topic(ShuffleRequested.TOPIC)],
                     (ActionSubmitted, ShuffleRequested))
        self.pending: dict[StepKey, PendingStep] = {}
        self.steps_applied = 0
        self.actions_applied = 0
        self.shuffles = 0
        self.unknown_runs = 0
        self.fenced = 0
        # (applied at, records) of steps younger than the fsync horizon: not committed yet.
        self._recent: deque[tuple[float, list[Record]]] = deque()
        self._durable_pending = False
        self._next_commit = 0.0

    def started(self) -> str:
        return f"registry service consuming {self.settings.topic('actions')} as {self.consumer.group_id}"

    def stopped(self) -> str:
        return (f"registry service stopped after {self.steps_applied} steps ({self.actions_applied} actions), "
                f"{self.shuffles} shuffles")

    def _closables(self) -> list[Callable[[], None]]:
        return [*super()._closables(), self.registries.close]

    def process_once(self) -> int:
        """One poll → apply → produce → flush → commit cycle; returns the number of steps applied."""
        dead_before = self.consumer.dead_lettered
        batch = self.poll_batch(self.poll_timeout_s, self.max_records) or []
        now = time.monotonic()
        shuffles: list[Delivery[ShuffleRequested]] = []
        for d in batch:
            a = d.event
            if isinstance(a, ShuffleRequested):
                shuffles.append(cast(Delivery[ShuffleRequested], d))
                continue
            if a.in_process:  # applied by the stage's own registry; recorded for replay only
                continue
            step = self.pending.setdefault((a.run_id, a.episode, a.step), PendingStep(a.step_size, now))
            step.actions.setdefault(a.event_id, cast(Delivery[ActionSubmitted], d))
        ready = [
            key for key, s in self.pending.items() if s.complete() or now - s.first_seen > self.step_timeout_s
        ]
        if not ready and not shuffles and self.consumer.dead_lettered == dead_before:
            if self._durable_pending:  # idle, but earlier verdicts have become durable (or a commit is owed)
                self._commit()
            return 0
        for key in ready:
            step = self.pending.pop(key)
            if not step.complete():
                logger.warning(
                    "step %s/%d/%d timed out with %d of %d actions; applying what arrived",
                    *key, len(step.actions), step.size,
                )
            actions = [d.event for d in step.actions.values()]
            registry = self.registries.get(key[0])
            if registry is None:
                self._reject(step, reject(Code.UNKNOWN_RUN, run_id=key[0]), dead_letter="unknown-run")
                continue
            fence = registry.store.fence()
            if fence is not None and (key[1], key[2]) <= fence:
                self.fenced += 1
                self._reject(step, reject(Code.FENCED, episode=key[1], step=key[2], fence=fence))
                continue
            try:
                results = registry.apply_actions(actions)
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - the boundary: this step's actions, not the service
                logger.exception("step %s/%d/%d could not be applied", *key)
                for failed in step.actions.values():
                    self.consumer.dead_letter(failed.record, f"{type(exc).__name__}: {exc}", "processing-error")
                continue
            self.producer.send_all(results)
            self._recent.append((time.monotonic(), [d.record for d in step.actions.values()]))
            self.steps_applied += 1
            self.actions_applied += len(actions)
        for request in shuffles:  # after the steps: a stage asks only once its step was answered
            self.producer.send(self._shuffle(request.event))
        self.producer.flush()
        self._commit()
        return len(ready)

    def _reject(self, step: PendingStep, verdict: Verdict, dead_letter: str | None = None) -> None:
        """Answer every action of ``step`` with ``verdict`` (so no stage waits in vain), unapplied; with
        ``dead_letter`` the actions also go to the dead letters under that error type."""
        if dead_letter == "unknown-run":
            self.unknown_runs += 1
        now = utc_now()
        for pending in step.actions.values():
            a = pending.event
            self.producer.send(ActionResult(
                event_id=f"{a.event_id}-result", run_id=a.run_id, episode=a.episode, step=a.step, ts=now,
                action_event_id=a.event_id, agent=a.agent, agent_index=a.agent_index,
                action_index=a.action_index, kind=a.kind, accepted=False, code=int(verdict.code),  # type: ignore[arg-type]
                message=verdict.message,
            ))
            if dead_letter:
                self.consumer.dead_letter(pending.record, verdict.message, dead_letter)

    def _shuffle(self, request: ShuffleRequested) -> ShuffleCompleted:
        moves, error = 0, None
        try:
            registry = self.registries.get(request.run_id)
            if registry is None:
                raise LookupError(reject(Code.UNKNOWN_RUN, run_id=request.run_id).message)
            moves = registry.sync_data()
            self.shuffles += 1
        except Exception as exc:  # noqa: BLE001 - the stage gets the reason; the service keeps running
            error = f"{type(exc).__name__}: {exc}"
            logger.error("shuffle for run %s step %d failed: %s", request.run_id, request.step, error)
        return ShuffleCompleted(run_id=request.run_id, episode=request.episode, step=request.step,
                                request_event_id=request.event_id, moves=moves, error=error)

    def rewound(self) -> None:
        self._recent.clear()
        self.pending.clear()  # their actions come again; verdicts already given are remembered by id

    def _commit(self) -> None:
        """Commit what is fully processed and durable: never past the first action of an incomplete step,
        nor past an action applied within the registry Redis's fsync horizon (a crash of that Redis may
        lose the last second of writes; those actions must come again).

        Asynchronous and at most every ``COMMIT_INTERVAL_S``: verdicts are deduplicated by action id, so a
        lost or later commit only redelivers."""
        now = time.monotonic()
        if now < self._next_commit:
            self._durable_pending = True  # owed: the next idle turn or cycle commits
            return
        self._next_commit = now + COMMIT_INTERVAL_S
        horizon = now - FSYNC_HORIZON_S
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        pending = [d.record for step in self.pending.values() for d in step.actions.values()]
        pending += [record for _, records in self._recent for record in records]
        self.consumer.commit_below(pending, asynchronous=True)
        self._durable_pending = bool(self._recent)
