"""The estimator service: ``mdde.estimator.requests`` -> ``mdde.estimator.results``.

Each :class:`EstimateRequested` carries everything the estimate needs (allocation, baseline reads and
throughput, j, k), so the service is stateless and any number of instances can share the group
``mdde-estimator``. A request the estimator rejects (a fragment without replica, reads of unknown
nodes, ...) goes to the dead-letter topic with the reason; the service keeps running.

Sequence per poll: estimate every request -> produce results (and dead letters) -> flush -> commit.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from mdde_stream.benchmark.locator import NoReplicaError
from mdde_stream.bus.app import Delivery
from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings
from mdde_stream.estimator import estimate_mapping
from mdde_stream.events import EstimateRequested, EstimatorResult
from mdde_stream.services import ESTIMATOR_GROUP
from mdde_stream.services.runtime import LoopService

logger = logging.getLogger(__name__)


def answer(request: EstimateRequested) -> EstimatorResult:
    """The estimate for one request; raises ``ValueError`` (incl. pydantic's) for bad input."""
    out = estimate_mapping({
        "allocation": request.allocation,
        "baseline_reads": request.baseline_reads,
        "baseline_throughput": request.baseline_throughput,
        "j": request.j,
        "k": request.k,
    })
    return EstimatorResult(
        event_id=f"{request.request_id}-estimate", run_id=request.run_id, episode=request.episode,
        step=request.step, request_id=request.request_id, throughput=out["throughput"],
        reads={node: {f: r for f, r in row.items() if r} for node, row in out["reads"].items()},
        node_reads=out["node_reads"], imbalance_baseline=out["imbalance_baseline"],
        imbalance_current=out["imbalance_current"],
    )


class EstimatorService(LoopService):
    def __init__(self, bus: Bus, settings: Settings, group_id: str = ESTIMATOR_GROUP, poll_timeout_s: float = 0.2) -> None:
        super().__init__()
        self.settings = settings
        self.poll_timeout_s = poll_timeout_s
        self.connect(bus, settings, group_id, [settings.topic(EstimateRequested.TOPIC)], (EstimateRequested,))
        self.answered = 0

    def started(self) -> str:
        return f"estimator consuming {self.settings.topic(EstimateRequested.TOPIC)} as {self.consumer.group_id}"

    def stopped(self) -> str:
        return f"estimator stopped after {self.answered} estimates"

    def handle(self, delivery: Delivery[EstimateRequested]) -> None:
        try:
            result = answer(delivery.event)
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
            )
            self.consumer.dead_letter(delivery.record, f"estimate request rejected: {reason}", "invalid-request")
            return
        except (NoReplicaError, ValueError) as exc:
            self.consumer.dead_letter(delivery.record, f"estimate request rejected: {exc}", "invalid-request")
            return
        self.producer.send(result)
        self.answered += 1
