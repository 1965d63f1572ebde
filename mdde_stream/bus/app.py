"""Typed layer over the raw bus: events in, events out, bad input to the dead-letter topic.

A service reads as: ``EventConsumer`` (topics + accepted event types) -> processing -> ``EventProducer``.
A message that fails validation never stops a consumer: it is forwarded to ``mdde.dead-letter`` with
the reason (whole, or its first 64 KiB with its size and hash when it is larger), and its offset is committed with the good ones, so nothing else
is lost or redelivered forever.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mdde_stream.bus.base import (
    Bus,
    BusError,
    Consumer,
    OffsetReset,
    Producer,
    Record,
    TopicPartition,
    UnknownTopicError,
)
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import (
    MAX_DEAD_LETTER_PAYLOAD,
    MAX_REASON_CHARS,
    RUN_ID_PATTERN,
    DeadLetter,
    Event,
    EventDecodeError,
    decode_event,
)

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


class EventProducer:
    """Sends events to their topic, keyed so one run's events keep their order."""

    def __init__(self, bus: Bus, settings: Settings | None = None, producer: Producer | None = None) -> None:
        self.settings = settings or get_settings()
        self._producer = producer or bus.producer()
        self._owns_producer = producer is None

    @property
    def raw(self) -> Producer:
        return self._producer

    def topic_for(self, event: Event) -> str:
        return self.settings.topic(type(event).TOPIC)

    def send(self, event: Event, topic: str | None = None, partition: int | None = None) -> None:
        """Send ``event`` to its topic (or ``topic``), keyed by its run; ``partition`` overrides the key."""
        self._producer.produce(topic or self.topic_for(event), event.to_bytes(), key=event.key, partition=partition)

    def send_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.send(event)

    def flush(self, timeout: float = 30.0) -> None:
        self._producer.flush(timeout)

    def close(self) -> None:
        if self._owns_producer:
            self._producer.close()

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """A validated event together with the record it came from (for commits and ids)."""

    record: Record
    event: E


class EventConsumer(Generic[E]):
    """Consumes and validates events of the accepted types; invalid ones go to the dead letters."""

    def __init__(
        self,
        bus: Bus,
        group_id: str,
        topics: Iterable[str],
        accept: tuple[type[E], ...],
        settings: Settings | None = None,
        offset_reset: OffsetReset = "earliest",
        dead_letters: Producer | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.group_id = group_id
        self.accept = accept
        self.consumer: Consumer = bus.consumer(group_id, offset_reset=offset_reset)
        self.consumer.subscribe(list(topics))
        self._dlq = dead_letters or bus.producer()
        self._owns_dlq = dead_letters is None
        self._unflushed_letters = False
        self.dead_lettered = 0

    def poll(self, timeout: float = 1.0, max_records: int = 500) -> list[Delivery[E]]:
        """Valid events of the next batch; invalid ones are dead-lettered (and flushed) on the way."""
        records = self.consumer.poll(timeout, max_records)
        good: list[Delivery[E]] = []
        bad = 0
        for record in records:
            try:
                event = decode_event(record.value, self.accept)
            except EventDecodeError as exc:
                self.dead_letter(record, exc.reason, exc.error_type)
                bad += 1
                continue
            good.append(Delivery(record, event))  # type: ignore[arg-type]
        if bad:
            self._flush_letters()
        return good

    def _flush_letters(self) -> None:
        """Dead letters are stored before the offsets of their records can be committed."""
        if self._unflushed_letters:
            self._dlq.flush()
            self._unflushed_letters = False

    def dead_letter(self, record: Record, reason: str, error_type: str = "processing-error") -> None:
        """Forward a record to the dead-letter topic with the reason, keeping its raw bytes."""
        value = record.value or b""
        kept = value[:MAX_DEAD_LETTER_PAYLOAD]
        key = record.key[:1024] if record.key is not None else None
        letter = DeadLetter(
            run_id=_run_id_hint(record),
            reason=reason[:MAX_REASON_CHARS],
            error_type=error_type[:200] or "processing-error",
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            consumer=self.group_id,
            payload_b64=base64.b64encode(kept).decode(),
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            payload_size=len(value),
            payload_sha256=hashlib.sha256(value).hexdigest(),
            payload_truncated=len(kept) < len(value),
        )
        self._dlq.produce(self.settings.topic(DeadLetter.TOPIC), letter.to_bytes(), key=letter.key)
        self._unflushed_letters = True
        self.dead_lettered += 1
        logger.warning(
            "dead-lettered %s[%d]@%d (%s): %s", record.topic, record.partition, record.offset, error_type, reason
        )

    def commit(self, deliveries: Iterable[Delivery[E]] | None = None, asynchronous: bool = False) -> None:
        """Commit everything polled so far (or up to the given deliveries)."""
        self._flush_letters()
        if deliveries is None:
            self.consumer.commit(asynchronous=asynchronous)
        else:
            self.consumer.commit([d.record for d in deliveries], asynchronous=asynchronous)

    def rewind(self) -> None:
        """Go back to the committed offsets: everything polled since then is read again (after an
        infrastructure failure, so that no polled-but-unprocessed record is lost)."""
        parts = self.consumer.assignment()
        committed = self.consumer.committed(parts) if parts else {}
        for tp in parts:
            offset = committed.get(tp)
            self.consumer.seek(tp, offset if offset is not None else 0)

    def commit_below(self, pending: Iterable[Record], asynchronous: bool = False) -> None:
        """Commit everything polled (dead letters included) except from the first ``pending`` record of
        each partition on: work that is still open comes back after a crash, nothing else does."""
        self._flush_letters()
        floor: dict[TopicPartition, int] = {}
        for record in pending:
            floor[record.tp] = min(floor.get(record.tp, record.offset), record.offset)
        self.consumer.commit_below(floor, asynchronous=asynchronous)

    def close(self) -> None:
        try:
            if self._owns_dlq:
                self._dlq.close()
        finally:
            self.consumer.close()

    def __enter__(self) -> EventConsumer[E]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplyTimeout(BusError):
    """Not every reply arrived in time; ``answered`` of ``expected`` did."""

    def __init__(self, answered: int, expected: int, topic: str) -> None:
        super().__init__(f"{answered} of {expected} replies on {topic}")
        self.answered, self.expected, self.topic = answered, expected, topic


class ReplyFollower(Generic[E]):
    """Waits for the replies that name given requests, on a reply topic followed from its end.

    The topic is followed from construction on, so it must be built before any request goes out: a
    fast reply then cannot be missed. ``correlate(reply)`` gives the id of the request a reply
    answers; replies to other requests (or other runs, when ``key`` is set) are skipped without
    decoding. The remote stage waits with it for the results of the actions its recorder published.
    """

    def __init__(self, bus: Bus, settings: Settings, reply: type[E], correlate: Callable[[E], str], name: str,
                 key: str | None = None) -> None:
        self.reply = reply
        self.correlate = correlate
        self.key = key.encode() if key is not None else None
        self.topic = settings.topic(reply.TOPIC)
        self._replies = follow_from_end(bus, self.topic, f"{name}-{os.getpid()}-{time.time_ns()}")

    def wait(self, ids: Sequence[str], timeout_s: float) -> list[E]:
        """The replies to ``ids``, in their order; raises :class:`ReplyTimeout` after ``timeout_s``."""
        slot = {request_id: i for i, request_id in enumerate(ids)}
        replies: list[E | None] = [None] * len(ids)
        missing = len(ids)
        deadline = time.monotonic() + timeout_s
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplyTimeout(len(ids) - missing, len(ids), self.topic)
            # Ask for exactly what is missing: a batch consumer returns as soon as that many arrived.
            for record in self._replies.poll(min(remaining, 0.5), max_records=max(missing, 1)):
                if self.key is not None and record.key != self.key:
                    continue
                try:
                    reply = decode_event(record.value, (self.reply,))
                except EventDecodeError as exc:
                    logger.warning("ignoring undecodable record on %s: %s", self.topic, exc.reason)
                    continue
                i = slot.get(self.correlate(reply))  # type: ignore[arg-type]
                if i is not None and replies[i] is None:
                    replies[i] = reply  # type: ignore[assignment]
                    missing -= 1
        return replies  # type: ignore[return-value]

    def close(self) -> None:
        self._replies.close()


class RequestReply(ReplyFollower[E]):
    """Round trips over the bus: a :class:`ReplyFollower` with its own producer for the requests.

    The remote stage's shuffles and the benchmark client use it.
    """

    def __init__(self, bus: Bus, settings: Settings, reply: type[E], correlate: Callable[[E], str], name: str,
                 key: str | None = None) -> None:
        super().__init__(bus, settings, reply, correlate, name, key)
        self.settings = settings
        self._producer = bus.producer()

    def send(self, requests: Sequence[Event], flush_timeout: float = 30.0) -> None:
        for request in requests:
            self._producer.produce(self.settings.topic(type(request).TOPIC), request.to_bytes(), key=request.key)
        self._producer.flush(flush_timeout)

    def call(self, request: Event, request_id: str, timeout_s: float) -> E:
        """Send one request and wait for its reply."""
        self.send([request], flush_timeout=timeout_s)
        return self.wait([request_id], timeout_s)[0]

    def close(self) -> None:
        try:
            self._producer.close()
        finally:
            super().close()


def follow_from_end(bus: Bus, topic: str, group_id: str) -> Consumer:
    """A consumer of every partition of ``topic`` from its current end, outside group management.

    For request/response over the bus: assigned before the request goes out, so a fast answer
    cannot slip past a consumer that is still joining a group.
    """
    partitions = bus.list_topics().get(topic)
    if partitions is None:
        raise UnknownTopicError(f"topic {topic!r} does not exist: create the project topics first")
    consumer = bus.consumer(group_id, offset_reset="latest")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, bus.watermarks(tp)[1])
    return consumer


def _run_id_hint(record: Record) -> str:
    """The run a bad record probably belongs to (its key, when that is a valid run id), so dead
    letters stay near their run; anything else is "unknown"."""
    if record.key:
        try:
            hint = record.key.decode()
        except UnicodeDecodeError:
            return "unknown"
        if _RUN_ID.match(hint):
            return hint
    return "unknown"


_RUN_ID = re.compile(RUN_ID_PATTERN)
