"""Read one run's telemetry events back from the bus (embedded or Kafka), from offset 0.

The report must work without Elasticsearch, so it reads the topics directly: a throw-away
consumer is assigned every partition of the telemetry topics (outside any group), reads up to the
high watermarks taken at the start, and keeps the events of the wanted run.
"""

from __future__ import annotations

import logging
import time
import uuid

from mdde_stream.bus.base import Bus, TopicPartition
from mdde_stream.config import Settings
from mdde_stream.events import Event, EventDecodeError, decode_event
from mdde_stream.telemetry.documents import INDEXED_EVENTS

logger = logging.getLogger(__name__)


def read_run_events(bus: Bus, settings: Settings, run_id: str, stall_timeout_s: float = 10.0) -> list[Event]:
    """Every telemetry event of ``run_id``, ordered by (episode, step, event time)."""
    existing = bus.list_topics()
    ends: dict[TopicPartition, int] = {}
    for cls in INDEXED_EVENTS:
        topic = settings.topic(cls.TOPIC)
        for p in range(existing.get(topic, 0)):
            tp = TopicPartition(topic, p)
            low, high = bus.watermarks(tp)
            if high > low:
                ends[tp] = high
    events: list[Event] = []
    if not ends:
        return events
    consumer = bus.consumer(f"mdde-report-{uuid.uuid4().hex[:12]}", offset_reset="earliest")
    try:
        consumer.assign(sorted(ends))
        positions: dict[TopicPartition, int] = {}
        last_progress = time.monotonic()
        while any(positions.get(tp, 0) < end for tp, end in ends.items()):
            records = consumer.poll(0.5, 5000)
            if not records:
                if time.monotonic() - last_progress > stall_timeout_s:
                    missing = {f"{tp.topic}[{tp.partition}]": (positions.get(tp, 0), end)
                               for tp, end in ends.items() if positions.get(tp, 0) < end}
                    logger.warning("stopped reading run %s: no progress on %s", run_id, missing)
                    break
                continue
            last_progress = time.monotonic()
            for record in records:
                positions[record.tp] = max(positions.get(record.tp, 0), record.offset + 1)
                if record.offset >= ends.get(record.tp, 0):
                    continue
                try:
                    event = decode_event(record.value, INDEXED_EVENTS)
                except EventDecodeError:
                    continue  # the indexer dead-letters these; a report just leaves them out
                if event.run_id == run_id:
                    events.append(event)
    finally:
        consumer.close()
    events.sort(key=lambda e: (e.episode, e.step, e.ts))
    logger.info("read %d events of run %s from %s", len(events), run_id, bus.url)
    return events
