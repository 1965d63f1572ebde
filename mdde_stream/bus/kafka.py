"""The Kafka backend, on confluent-kafka (librdkafka).

Producer: idempotent (``enable.idempotence``: no duplicates or reordering on broker retries), batched
by librdkafka's linger/batch settings, never flushed per message; delivery errors are collected
from callbacks and raised at ``flush``. Consumer: auto-commit off, so offsets move only when the
caller commits after processing (at-least-once); ``close`` leaves the group so its partitions move
to the other members at once instead of after a session timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_STORED, ConsumerGroupState, KafkaError, KafkaException
from confluent_kafka import Consumer as _RawConsumer
from confluent_kafka import Producer as _RawProducer
from confluent_kafka import TopicPartition as _RawTP
from confluent_kafka.admin import AdminClient, NewTopic

from mdde_stream.bus.base import (
    Bus,
    BusError,
    Consumer,
    OffsetReset,
    Producer,
    Record,
    TopicPartition,
    TopicSpec,
    UnknownTopicError,
)
from mdde_stream.config import Settings, get_settings

logger = logging.getLogger(__name__)

# Errors a client sees while its metadata lags behind a just-created topic.
_METADATA_LAG = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._UNKNOWN_TOPIC,
}


def brokers_listed(bootstrap: str, timeout_s: float = 3.0) -> int:
    """How many brokers a metadata request at ``bootstrap`` lists; 0 while none answers (a readiness probe)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": int(timeout_s * 700)})
    try:
        return len(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return 0


class KafkaBus(Bus):
    def __init__(self, bootstrap: str, settings: Settings | None = None, **overrides: Any) -> None:
        if not bootstrap:
            raise BusError("kafka bus needs bootstrap servers, e.g. kafka://127.0.0.1:9092")
        self.settings = settings or get_settings()
        self.bootstrap = bootstrap
        self.url = f"kafka://{bootstrap}"
        # Security properties (SASL/SSL from Settings) go to every client this bus makes.
        self._security = self.settings.kafka_client_config()
        self._overrides = overrides
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, **self._security})
        self._probe: _RawConsumer | None = None
        self._probe_lock = threading.Lock()

    # -- administration -----------------------------------------------------------------------
    def group_members(self, group_id: str) -> int:
        try:
            desc = self._admin.describe_consumer_groups([group_id])[group_id].result(timeout=10)
        except KafkaException:
            return 0  # the group does not exist (yet)
        if desc.state != ConsumerGroupState.STABLE:
            return 0
        return sum(1 for m in desc.members if m.assignment and m.assignment.topic_partitions)

    def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        existing = self.list_topics()
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return
        futures = self._admin.create_topics(
            [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1) for s in wanted],
            operation_timeout=30,
            request_timeout=30,
        )
        for name, fut in futures.items():
            try:
                fut.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BusError(f"could not create topic {name!r}: {exc}") from exc
        self._wait_for_topics([s.name for s in wanted])

    def _wait_for_topics(self, names: list[str], timeout: float = 30.0) -> None:
        """Topic creation is asynchronous on the broker: wait until metadata lists every partition leader."""
        deadline = time.monotonic() + timeout
        while True:
            md = self._admin.list_topics(timeout=10)
            ready = all(
                n in md.topics
                and md.topics[n].error is None
                and md.topics[n].partitions
                and all(p.leader >= 0 for p in md.topics[n].partitions.values())
                for n in names
            )
            if ready:
                return
            if time.monotonic() > deadline:
                raise BusError(f"topics {names} not ready after {timeout:.0f}s")
            time.sleep(0.1)

    def list_topics(self) -> dict[str, int]:
        try:
            md = self._admin.list_topics(timeout=10)
        except KafkaException as exc:
            raise BusError(f"kafka at {self.bootstrap} unreachable: {exc}") from exc
        return {name: len(t.partitions) for name, t in md.topics.items() if not name.startswith("__")}

    def delete_topics(self, names: Iterable[str]) -> None:
        names = list(names)
        if not names:
            return
        for name, fut in self._admin.delete_topics(names, operation_timeout=30).items():
            try:
                fut.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise BusError(f"could not delete topic {name!r}: {exc}") from exc

    def watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        with self._probe_lock:
            if self._probe is None:
                self._probe = _RawConsumer({"bootstrap.servers": self.bootstrap, "group.id": "mdde-watermarks",
                                            **self._security})
            deadline = time.monotonic() + 15
            while True:
                try:
                    low, high = self._probe.get_watermark_offsets(_RawTP(tp.topic, tp.partition), timeout=10)
                    return int(low), int(high)
                except KafkaException as exc:
                    # A fresh topic's leader may not be known to this client yet: retry retriable errors.
                    if not exc.args[0].retriable() and exc.args[0].code() not in _METADATA_LAG:
                        raise UnknownTopicError(f"no watermarks for {tp.topic}[{tp.partition}]: {exc}") from exc
                    if time.monotonic() > deadline:
                        raise UnknownTopicError(f"no watermarks for {tp.topic}[{tp.partition}]: {exc}") from exc
                    time.sleep(0.1)

    def producer(self, **config: Any) -> KafkaProducer:
        base = {"enable.idempotence": self.settings.kafka_idempotence, **self._security}
        return KafkaProducer(self.bootstrap, {**base, **self._overrides.get("producer", {}), **config})

    def consumer(self, group_id: str, offset_reset: OffsetReset = "earliest", **config: Any) -> KafkaConsumer:
        return KafkaConsumer(
            self.bootstrap,
            group_id,
            offset_reset,
            self.settings.session_timeout_s,
            {**self._security, **self._overrides.get("consumer", {}), **config},
        )

    def close(self) -> None:
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None


class KafkaProducer(Producer):
    def __init__(self, bootstrap: str, config: dict[str, Any]) -> None:
        conf = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "partitioner": "consistent_random",
            # Reports only for failed records: one Python callback per error, not per message.
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
            **config,
        }
        self._p = _RawProducer(conf)
        self._unpolled = 0
        self._errors: list[str] = []
        self._closed = False

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | str | None = None,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,
    ) -> None:
        if self._closed:
            raise BusError("producer is closed")
        if isinstance(key, str):
            key = key.encode()
        while True:
            try:
                if partition is None and not headers:
                    self._p.produce(topic, value, key)
                else:
                    self._p.produce(
                        topic, value, key, partition=-1 if partition is None else partition,
                        headers=list(headers.items()) if headers else None,
                    )
                break
            except BufferError:
                self._p.poll(0.05)  # local queue full: let librdkafka drain it
            except KafkaException as exc:
                raise BusError(f"produce to {topic!r} failed: {exc}") from exc
        self._unpolled += 1
        if self._unpolled >= 1000:
            # Serve (error-only) delivery reports now and then instead of once per message.
            self._unpolled = 0
            self._p.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        remaining = self._p.flush(timeout)
        if remaining:
            raise BusError(f"{remaining} records not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise BusError(f"{len(errors)} records failed delivery: {errors[0]}")

    def close(self) -> None:
        if not self._closed:
            try:
                self.flush()
            finally:
                self._closed = True


class KafkaConsumer(Consumer):
    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        offset_reset: OffsetReset,
        session_timeout_s: float,
        config: dict[str, Any],
    ) -> None:
        self.group_id = group_id
        session_ms = max(6000, int(session_timeout_s * 1000))
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": offset_reset,
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": min(1000, session_ms // 3),
            "partition.assignment.strategy": "roundrobin",
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 50,
            **config,
        }
        self._c = _RawConsumer(conf)
        self._assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._pending_seeks: dict[TopicPartition, int] = {}
        self._manual = False
        self._closed = False

    def _on_assign(self, consumer: _RawConsumer, partitions: list[_RawTP]) -> None:
        self._assigned = {TopicPartition(p.topic, p.partition) for p in partitions}
        if self._pending_seeks:
            for p in partitions:
                off = self._pending_seeks.pop(TopicPartition(p.topic, p.partition), None)
                if off is not None:
                    p.offset = off
            consumer.assign(partitions)

    def _on_revoke(self, consumer: _RawConsumer, partitions: list[_RawTP]) -> None:
        for p in partitions:
            tp = TopicPartition(p.topic, p.partition)
            self._assigned.discard(tp)
            self._positions.pop(tp, None)

    def subscribe(self, topics: Iterable[str]) -> None:
        self._manual = False
        self._c.subscribe(list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
                          on_lost=self._on_revoke)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        parts = list(partitions)
        self._manual = True
        self._assigned = set(parts)
        self._positions = {}
        self._c.assign([_RawTP(tp.topic, tp.partition, OFFSET_STORED) for tp in parts])

    def assignment(self) -> list[TopicPartition]:
        return sorted(self._assigned)

    def poll(self, timeout: float = 1.0, max_records: int = 500) -> list[Record]:
        if self._closed:
            raise BusError("consumer is closed")
        self._retry_seeks()
        try:
            # consume(n, timeout) waits until n messages or the timeout: wait for the first one only,
            # then take whatever else is already fetched without waiting.
            first = self._c.poll(timeout)
            msgs = [] if first is None else [first]
            if first is not None and max_records > 1:
                msgs.extend(self._c.consume(num_messages=max_records - 1, timeout=0))
        except KafkaException as exc:
            raise BusError(f"consume failed: {exc}") from exc
        out: list[Record] = []
        append = out.append
        ends: dict[tuple[str, int], int] = {}
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise BusError(f"fatal consumer error: {err.str()}")
                logger.warning("consumer %s: %s", self.group_id, err.str())
                continue
            topic, partition, offset = str(m.topic()), int(m.partition() or 0), int(m.offset() or 0)
            headers = m.headers()
            append(Record(topic, partition, offset, m.key(), m.value() or b"", m.timestamp()[1],  # type: ignore[arg-type]
                          tuple(headers) if headers else ()))  # type: ignore[arg-type]
            ends[(topic, partition)] = offset + 1
        for (topic, partition), end in ends.items():
            self._positions[TopicPartition(topic, partition)] = end
        return out

    def _retry_seeks(self) -> None:
        for tp, off in list(self._pending_seeks.items()):
            if tp not in self._assigned:
                continue
            try:
                self._c.seek(_RawTP(tp.topic, tp.partition, off))
            except KafkaException:
                continue
            del self._pending_seeks[tp]

    def positions(self) -> dict[TopicPartition, int]:
        return dict(self._positions)

    def _commit_offsets(self, offsets: Mapping[TopicPartition, int], asynchronous: bool) -> None:
        try:
            self._c.commit(  # type: ignore[call-overload]
                offsets=[_RawTP(tp.topic, tp.partition, off) for tp, off in offsets.items()],
                asynchronous=asynchronous,
            )
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._NO_OFFSET:
                return
            raise BusError(f"commit failed: {exc}") from exc

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        parts = list(partitions)
        res = self._c.committed([_RawTP(tp.topic, tp.partition) for tp in parts], timeout=10)
        return {
            TopicPartition(p.topic, p.partition): (p.offset if p.offset >= 0 else None) for p in res
        }

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._assigned:
            raise BusError(f"cannot seek {tp.topic}[{tp.partition}]: not assigned to this consumer")
        raw = _RawTP(tp.topic, tp.partition, max(0, offset))
        try:
            self._c.seek(raw)
        except KafkaException:
            # Not fetching yet (just assigned): restart the partition at the offset instead.
            if self._manual:
                self._c.incremental_unassign([_RawTP(tp.topic, tp.partition)])
                self._c.incremental_assign([raw])
            else:
                self._pending_seeks[tp] = max(0, offset)
        self._positions.pop(tp, None)

    def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[TopicPartition, int]:
        md = self._c.list_topics(topic, timeout=10)
        if topic not in md.topics or md.topics[topic].error is not None:
            raise UnknownTopicError(f"unknown topic {topic!r}")
        query = [_RawTP(topic, p, timestamp_ms) for p in sorted(md.topics[topic].partitions)]
        out: dict[TopicPartition, int] = {}
        for res in self._c.offsets_for_times(query, timeout=10):
            tp = TopicPartition(res.topic, res.partition)
            if res.offset < 0:
                _, high = self._c.get_watermark_offsets(_RawTP(res.topic, res.partition), timeout=10)
                out[tp] = int(high)
            else:
                out[tp] = int(res.offset)
        return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._c.close()


__all__ = ["KafkaBus", "KafkaProducer", "KafkaConsumer", "OFFSET_BEGINNING", "OFFSET_END"]
