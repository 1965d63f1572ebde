"""Select recorded events from the bus: by run (and episode), by offsets, or by time range.

Replay must never disturb the services that consume the same topics live, so it reads with plain
``assign()`` offset reads under a consumer group of its own (a fresh uuid) and never commits: no
live group's committed offsets move, and no rebalance is triggered in any live group.

The read is bounded: the high watermark of every partition is taken when the read starts, so a
replay of a topic that keeps growing still ends. Records of other runs are dropped by key (the run
id is every event's key) before they are decoded, so selecting one run from a busy topic stays cheap.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mdde_stream.bus.base import Bus, BusError, Record, TopicPartition, UnknownTopicError
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import (
    AccessLog,
    ActionResult,
    ActionSubmitted,
    BenchmarkResult,
    EpisodeStarted,
    EstimatorResult,
    Event,
    EventDecodeError,
    StepCompleted,
    Telemetry,
    decode_event,
)
from mdde_stream.replay.exceptions import CorruptEventError, NothingSelectedError, ReplayError

logger = logging.getLogger(__name__)

#: Topics (short names) a replay reads by default: everything keyed by run id that describes an episode.
REPLAY_TOPICS: tuple[str, ...] = tuple(
    cls.TOPIC
    for cls in (
        EpisodeStarted,
        ActionSubmitted,
        ActionResult,
        StepCompleted,
        BenchmarkResult,
        EstimatorResult,
        AccessLog,
        Telemetry,
    )
)
#: Topics without which an episode cannot be rebuilt.
REQUIRED_TOPICS: tuple[str, ...] = (EpisodeStarted.TOPIC, ActionSubmitted.TOPIC, ActionResult.TOPIC, StepCompleted.TOPIC)


def _ms(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp() * 1000)


@dataclass(frozen=True)
class Selection:
    """What to replay. Every given criterion must hold (they combine with AND).

    ``from_offset``/``to_offset`` bound every selected partition to ``[from_offset, to_offset)``;
    with ``partition`` (and a single topic in ``topics``) they address one partition exactly.
    ``since``/``until`` bound the records' timestamps to ``[since, until)``.
    """

    run_id: str | None = None
    episode: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    topics: tuple[str, ...] = REPLAY_TOPICS
    partition: int | None = None

    def __post_init__(self) -> None:
        if self.episode is not None and self.run_id is None:
            raise ValueError("an episode is selected within a run: give the run id too")
        if self.from_offset is not None and self.from_offset < 0:
            raise ValueError(f"from_offset must be >= 0, got {self.from_offset}")
        if self.from_offset is not None and self.to_offset is not None and self.to_offset <= self.from_offset:
            raise ValueError(f"to_offset ({self.to_offset}) must be > from_offset ({self.from_offset})")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError(f"until ({self.until}) must be after since ({self.since})")
        if self.run_id is None and self.from_offset is None and self.to_offset is None and self.since is None \
                and self.until is None:
            raise ValueError("select something: a run id (and episode), an offset range or a time range")

    def describe(self) -> str:
        parts = []
        if self.run_id is not None:
            parts.append(f"run {self.run_id}")
        if self.episode is not None:
            parts.append(f"episode {self.episode}")
        if self.from_offset is not None or self.to_offset is not None:
            parts.append(f"offsets [{self.from_offset or 0}, {'end' if self.to_offset is None else self.to_offset})")
        if self.partition is not None:
            parts.append(f"partition {self.partition}")
        if self.since is not None or self.until is not None:
            parts.append(f"time [{self.since or 'start'}, {self.until or 'now'})")
        return ", ".join(parts)


@dataclass(frozen=True)
class RecordedEvent:
    """A decoded event with the record it came from (topic, partition, offset, timestamp)."""

    record: Record
    event: Event

    @property
    def where(self) -> str:
        return f"{self.record.topic}[{self.record.partition}]@{self.record.offset}"


@dataclass(frozen=True)
class CorruptEvent:
    topic: str
    partition: int
    offset: int
    reason: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason}"


@dataclass
class SelectedEvents:
    """The outcome of a selection: events in read order, plus what could not be read and why."""

    selection: Selection
    events: list[RecordedEvent] = field(default_factory=list)
    corrupt: list[CorruptEvent] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)
    #: Per partition read: (low watermark, high watermark) at the start of the read.
    watermarks: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    short_names: dict[str, str] = field(default_factory=dict)

    def expired(self, short: str) -> list[tuple[TopicPartition, int]]:
        """Partitions of topic ``short`` whose early records are gone (low watermark > 0)."""
        return [(tp, low) for tp, (low, _) in sorted(self.watermarks.items())
                if self.short_names.get(tp.topic) == short and low > 0]

    def retention_note(self, short: str) -> str:
        gone = self.expired(short)
        if not gone:
            return ""
        where = ", ".join(f"{tp.topic}[{tp.partition}] starts at offset {low}" for tp, low in gone)
        return f" ({where}: earlier records were deleted, e.g. retention expired)"


def read_selection(
    bus: Bus,
    selection: Selection,
    settings: Settings | None = None,
    skip_corrupt: bool = False,
    idle_timeout_s: float = 15.0,
) -> SelectedEvents:
    """Read the selected events (never committing any offset); corrupt ones raise unless skipped.

    Raises :class:`NothingSelectedError` when no event matched and :class:`CorruptEventError` on the
    first corrupt record of the selection when ``skip_corrupt`` is false.
    """
    settings = settings or get_settings()
    out = SelectedEvents(selection)
    existing = bus.list_topics()
    ranges: dict[TopicPartition, tuple[int, int]] = {}
    for short in selection.topics:
        topic = settings.topic(short)
        count = existing.get(topic)
        if count is None:
            out.missing_topics.append(short)
            continue
        out.short_names[topic] = short
        for p in range(count):
            if selection.partition is not None and p != selection.partition:
                continue
            tp = TopicPartition(topic, p)
            try:
                low, high = bus.watermarks(tp)
            except UnknownTopicError:
                out.missing_topics.append(short)
                break
            out.watermarks[tp] = (low, high)
            start = max(low, selection.from_offset or 0)
            end = high if selection.to_offset is None else min(high, selection.to_offset)
            ranges[tp] = (start, end)
    if selection.since is not None or selection.until is not None:
        ranges = _narrow_by_time(bus, ranges, selection)
    _read_ranges(bus, ranges, selection, out, skip_corrupt, idle_timeout_s)
    if not out.events:
        missing = f"; topics missing: {', '.join(settings.topic(s) for s in out.missing_topics)}" if out.missing_topics else ""
        expired = "".join(out.retention_note(s) for s in REQUIRED_TOPICS)
        raise NothingSelectedError(f"no recorded event matches {selection.describe()} on {bus.url}{missing}{expired}")
    return out


def _narrow_by_time(
    bus: Bus, ranges: dict[TopicPartition, tuple[int, int]], selection: Selection
) -> dict[TopicPartition, tuple[int, int]]:
    """Move each range's start to the first record at ``since`` and its end to the first at ``until``."""
    consumer = bus.consumer(f"mdde-replay-{uuid.uuid4().hex}")
    try:
        topics = sorted({tp.topic for tp in ranges})
        starts: dict[TopicPartition, int] = {}
        ends: dict[TopicPartition, int] = {}
        for topic in topics:
            if selection.since is not None:
                starts.update(consumer.offsets_for_time(topic, _ms(selection.since)))
            if selection.until is not None:
                ends.update(consumer.offsets_for_time(topic, _ms(selection.until)))
    finally:
        consumer.close()
    narrowed = {}
    for tp, (start, end) in ranges.items():
        narrowed[tp] = (max(start, starts.get(tp, start)), min(end, ends.get(tp, end)))
    return narrowed


def _read_ranges(
    bus: Bus,
    ranges: dict[TopicPartition, tuple[int, int]],
    selection: Selection,
    out: SelectedEvents,
    skip_corrupt: bool,
    idle_timeout_s: float,
) -> None:
    active = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
    if not active:
        return
    run_key = selection.run_id.encode() if selection.run_id is not None else None
    since_ms = _ms(selection.since) if selection.since is not None else None
    until_ms = _ms(selection.until) if selection.until is not None else None
    consumer = bus.consumer(f"mdde-replay-{uuid.uuid4().hex}", offset_reset="earliest")
    try:
        consumer.assign(list(active))
        for tp, (start, _) in active.items():
            if start > out.watermarks[tp][0]:
                consumer.seek(tp, start)
        pending = set(active)
        last_progress = time.monotonic()
        while pending:
            records = consumer.poll(0.2, max_records=5000)
            if not records:
                if time.monotonic() - last_progress > idle_timeout_s:
                    stalled = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(pending))
                    raise ReplayError(f"reading stalled for {idle_timeout_s:.0f} s before the end of {stalled}")
                continue
            last_progress = time.monotonic()
            for record in records:
                tp = record.tp
                bounds = active.get(tp)
                if bounds is None or tp not in pending:
                    continue
                start, end = bounds
                if record.offset >= end:
                    pending.discard(tp)
                    continue
                if record.offset + 1 >= end:
                    pending.discard(tp)
                if record.offset < start:
                    continue
                if run_key is not None and record.key != run_key:
                    continue
                if since_ms is not None and record.timestamp_ms < since_ms:
                    continue
                if until_ms is not None and record.timestamp_ms >= until_ms:
                    continue
                _accept(record, selection, out, skip_corrupt)
    except BusError as exc:
        raise ReplayError(f"reading {selection.describe()} from {bus.url} failed: {exc}") from exc
    finally:
        consumer.close()


def _accept(record: Record, selection: Selection, out: SelectedEvents, skip_corrupt: bool) -> None:
    try:
        if selection.episode is not None:
            # Cheap pre-filter: other episodes of the run are dropped without model validation.
            try:
                doc = json.loads(record.value)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise EventDecodeError(f"not JSON: {exc}", "invalid-json") from None
            if isinstance(doc, dict) and isinstance(doc.get("episode"), int) and doc["episode"] != selection.episode:
                return
        event = decode_event(record.value)
    except EventDecodeError as exc:
        bad = CorruptEvent(record.topic, record.partition, record.offset, exc.reason)
        if not skip_corrupt:
            raise CorruptEventError(bad.topic, bad.partition, bad.offset, bad.reason) from None
        logger.warning("skipping corrupt event %s", bad)
        out.corrupt.append(bad)
        return
    if selection.episode is not None and event.episode != selection.episode:
        return
    out.events.append(RecordedEvent(record, event))
