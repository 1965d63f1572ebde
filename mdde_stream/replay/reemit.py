"""Re-emit recorded events to a new run id, paced at a multiple of the recorded speed.

Dashboards and the run report are driven by the live topics; re-emitting a recording under a new
run id (with new event ids, so the idempotent indexer treats them as new documents) replays a past
run on them without a learner or a registry. Identifiers that link events (an action result's
``action_event_id``, a benchmark's ``request_id``) are mapped consistently to new ones, and event
times are shifted to "now" while keeping their spacing divided by ``speed``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mdde_stream.bus.base import Bus
from mdde_stream.events import Event, new_event_id
from mdde_stream.replay.exceptions import ReplayError
from mdde_stream.replay.selection import RecordedEvent

logger = logging.getLogger(__name__)

#: Flush the producer at least this often while pacing, so consumers see events as they are "recorded".
_FLUSH_EVERY_S = 0.05


@dataclass
class ReemitReport:
    run_ids: dict[str, str]
    events: int
    recorded_span_s: float
    elapsed_s: float
    speed: float

    def __str__(self) -> str:
        runs = ", ".join(f"{old} -> {new}" for old, new in self.run_ids.items())
        return (f"re-emitted {self.events} events ({runs}) at {self.speed:g}x: recorded span "
                f"{self.recorded_span_s:.3f} s, took {self.elapsed_s:.3f} s")


def reemit(
    bus: Bus,
    events: Sequence[RecordedEvent],
    new_run_id: str | None = None,
    speed: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ReemitReport:
    """Produce ``events`` again in recorded-time order under new run ids; ``speed=inf`` means unpaced."""
    if not speed > 0:
        raise ValueError(f"speed must be > 0 (e.g. 1 for recorded speed, 10 for ten times faster), got {speed}")
    if not events:
        raise ReplayError("nothing to re-emit: no event selected")
    ordered = sorted(events, key=lambda r: (r.event.ts, r.record.timestamp_ms))
    runs = sorted({r.event.run_id for r in ordered})
    if new_run_id is not None and len(runs) > 1:
        raise ReplayError(f"the selection spans {len(runs)} runs ({', '.join(runs)}); a single new run id cannot "
                          "replace them all: select one run, or let each get a generated id")
    run_ids = {old: new_run_id or f"{old}-replay-{new_event_id()[:6]}" for old in runs}
    ids: dict[str, str] = {}  # old event / request id -> new one

    def renamed(old: str) -> str:
        new = ids.get(old)
        if new is None:
            new = ids[old] = new_event_id()
        return new

    t0 = ordered[0].event.ts
    span = (ordered[-1].event.ts - t0).total_seconds()
    start_wall = datetime.now(UTC)
    start = time.monotonic()
    last_flush = start
    with bus.producer() as producer:
        for rec in ordered:
            offset_s = (rec.event.ts - t0).total_seconds() / speed if math.isfinite(speed) else 0.0
            wait = start + offset_s - time.monotonic()
            if wait > 0:
                producer.flush()
                last_flush = time.monotonic()
                sleep(wait)
            event = _renamed(rec.event, run_ids, renamed, start_wall + timedelta(seconds=offset_s))
            producer.produce(rec.record.topic, event.to_bytes(), key=event.key)
            if time.monotonic() - last_flush > _FLUSH_EVERY_S:
                producer.flush()
                last_flush = time.monotonic()
        producer.flush()
    report = ReemitReport(run_ids, len(ordered), span, time.monotonic() - start, speed)
    logger.info("%s", report)
    return report


def _renamed(event: Event, run_ids: dict[str, str], renamed: Callable[[str], str], ts: datetime) -> Event:
    update: dict[str, object] = {"run_id": run_ids[event.run_id], "event_id": renamed(event.event_id), "ts": ts}
    for link in ("action_event_id", "request_id"):
        old = getattr(event, link, None)
        if isinstance(old, str):
            update[link] = renamed(old)
    return event.model_copy(update=update)
