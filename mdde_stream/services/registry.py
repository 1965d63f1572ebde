"""The registry service: consumes ``mdde.actions``, applies each step, produces ``mdde.action-results``.

Commit sequence per poll (at-least-once; the store's per-event verdicts make it effectively once):

1. poll a batch; invalid events go to the dead-letter topic (``EventConsumer``);
2. group actions by (run, episode, step) until ``step_size`` of them are there (or the step times out);
3. apply every complete step, its actions in ascending agent order (``Registry.apply_actions``);
4. produce the ``ActionResult``s and flush the producer;
5. commit offsets, never past an action whose step is still incomplete.

A crash anywhere in 3–5 redelivers the uncommitted actions; the ones already applied get their
recorded verdict back and change nothing. The service attaches to existing state on restart.

With data nodes configured (``MDDE_DATA_NODES``) the service owns the data too: it loads the records
when it sets up the state (or finds the nodes out of step with it), and answers each
``ShuffleRequested`` on ``mdde.registry.shuffle-requests`` — sent by a remote stage before a real
benchmark — by moving the data to the allocation (:meth:`Registry.sync_data`) and producing a
``ShuffleCompleted``. A redelivered request just finds nothing left to move.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import logging
import sys
import time
from dataclasses import dataclass, field

from mdde_stream.bus.app import Delivery, EventConsumer, EventProducer
from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import ActionSubmitted, ShuffleCompleted, ShuffleRequested
from mdde_stream.registry import SERVICE_REGISTRY_PREFIX, Registry, open_data_nodes, open_registry
from mdde_stream.services.runtime import LoopService, serve

logger = logging.getLogger(__name__)

GROUP_ID = "mdde-registry"
StepKey = tuple[str, int, int]


@dataclass
class PendingStep:
    """Actions of one step collected so far (by event id, so a resent action counts once)."""

    size: int
    first_seen: float
    actions: dict[str, Delivery[ActionSubmitted]] = field(default_factory=dict)

    def complete(self) -> bool:
        return len(self.actions) >= self.size


class RegistryService(LoopService):
    """One consumer-group member applying steps; several members split the partitions (runs)."""

    def __init__(
        self,
        registry: Registry,
        bus: Bus,
        settings: Settings,
        group_id: str = GROUP_ID,
        step_timeout_s: float = 30.0,
        poll_timeout_s: float = 0.2,
        max_records: int = 500,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.settings = settings
        self.step_timeout_s = step_timeout_s
        self.poll_timeout_s = poll_timeout_s
        self.max_records = max_records
        topics = [settings.topic(ActionSubmitted.TOPIC), settings.topic(ShuffleRequested.TOPIC)]
        self.consumer: EventConsumer[ActionSubmitted | ShuffleRequested] = EventConsumer(
            bus, group_id, topics, (ActionSubmitted, ShuffleRequested), settings=settings
        )
        self.producer = EventProducer(bus, settings)
        self.pending: dict[StepKey, PendingStep] = {}
        self.steps_applied = 0
        self.actions_applied = 0
        self.shuffles = 0

    def started(self) -> str:
        return f"registry service consuming {self.settings.topic('actions')} as {self.consumer.group_id}"

    def stopped(self) -> str:
        return (f"registry service stopped after {self.steps_applied} steps ({self.actions_applied} actions), "
                f"{self.shuffles} shuffles")

    def _closables(self) -> list[Callable[[], None]]:
        return [self.producer.close, self.consumer.close]

    def process_once(self) -> int:
        """One poll → apply → produce → flush → commit cycle; returns the number of steps applied."""
        dead_before = self.consumer.dead_lettered
        batch = self.consumer.poll(self.poll_timeout_s, self.max_records)
        now = time.monotonic()
        shuffles: list[Delivery[ShuffleRequested]] = []
        for d in batch:
            a = d.event
            if isinstance(a, ShuffleRequested):
                shuffles.append(d)  # type: ignore[arg-type]
                continue
            step = self.pending.setdefault((a.run_id, a.episode, a.step), PendingStep(a.step_size, now))
            step.actions.setdefault(a.event_id, d)
        ready = [
            key for key, s in self.pending.items() if s.complete() or now - s.first_seen > self.step_timeout_s
        ]
        if not ready and not shuffles and self.consumer.dead_lettered == dead_before:
            return 0
        for key in ready:
            step = self.pending.pop(key)
            if not step.complete():
                logger.warning(
                    "step %s/%d/%d timed out with %d of %d actions; applying what arrived",
                    *key, len(step.actions), step.size,
                )
            actions = [d.event for d in step.actions.values()]
            self.producer.send_all(self.registry.apply_actions(actions))
            self.steps_applied += 1
            self.actions_applied += len(actions)
        for d in shuffles:  # after the steps: a stage asks only once its step was answered
            self.producer.send(self._shuffle(d.event))
        self.producer.flush()
        self._commit()
        return len(ready)

    def _shuffle(self, request: ShuffleRequested) -> ShuffleCompleted:
        moves, error = 0, None
        try:
            moves = self.registry.sync_data()
            self.shuffles += 1
        except Exception as exc:  # noqa: BLE001 - the stage gets the reason; the service keeps running
            error = f"{type(exc).__name__}: {exc}"
            logger.error("shuffle for run %s step %d failed: %s", request.run_id, request.step, error)
        return ShuffleCompleted(run_id=request.run_id, episode=request.episode, step=request.step,
                                request_event_id=request.event_id, moves=moves, error=error)

    def rewound(self) -> None:
        self.pending.clear()  # their actions come again; verdicts already given are remembered by id

    def _commit(self) -> None:
        """Commit what is fully processed, but never past the first action of an incomplete step.

        Asynchronous: verdicts are deduplicated by action id, so a lost commit only redelivers."""
        pending = (d.record for step in self.pending.values() for d in step.actions.values())
        self.consumer.commit_below(pending, asynchronous=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mdde-stream service registry", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=4, help="data nodes W (used when setting up new state)")
    p.add_argument("--fragments", type=int, default=20, help="fragments F (used when setting up new state)")
    p.add_argument("--records", type=int, default=10_000, help="records (used when setting up new state)")
    p.add_argument("--prefix", default=SERVICE_REGISTRY_PREFIX, help="Redis key prefix of the registry state")
    p.add_argument("--group", default=GROUP_ID, help="consumer group")
    p.add_argument("--fresh", action="store_true", help="wipe and set up the state instead of attaching to it")
    p.add_argument("--max-records", type=int, default=500, help="actions per poll (per produce/commit cycle)")
    p.add_argument("--step-timeout", type=float, default=30.0, help="apply an incomplete step after this long (s)")
    p.add_argument("--record-shape", choices=("default", "large"), default="default",
                   help="record preset loaded on the data nodes (thesis Appendix C)")
    p.add_argument("--grouping", choices=("hashed", "contiguous"), default="hashed",
                   help="how each node's records are grouped into its fragments (fragmenter)")
    p.add_argument("--numbering", choices=("node", "thesis"), default="node",
                   help="which node's fragments carry which indices (fragmenter; 'thesis': blocks on w0, w2, w3, w1)")
    p.add_argument("--no-data", action="store_true",
                   help="ignore MDDE_DATA_NODES: keep the allocation only (estimate / simulated benchmarks)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    data_nodes = None if args.no_data else open_data_nodes(
        settings, args.nodes, args.fragments, args.records, args.record_shape
    )
    registry = open_registry(
        settings, args.nodes, args.fragments, args.records, data_nodes=data_nodes, prefix=args.prefix,
        reuse=not args.fresh, grouping=args.grouping, numbering=args.numbering,
    )
    try:
        return serve(
            lambda bus, s: RegistryService(
                registry, bus, s, group_id=args.group, step_timeout_s=args.step_timeout,
                max_records=args.max_records,
            ),
            settings,
        )
    finally:
        registry.close()


if __name__ == "__main__":
    sys.exit(main())
