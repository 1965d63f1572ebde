"""The bus contract: the small interface both backends (embedded SQLite log, Kafka) implement.

Semantics follow Kafka's, because that is what production runs on: topics split into partitions,
a record's key picks its partition (so one key's records stay in order), offsets count per
partition, consumer groups share partitions and remember a committed offset per partition, and
delivery is at-least-once: whatever was polled but not committed is delivered again to whichever
group member owns the partition next.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from mdde_stream.errors import MddeError

OffsetReset = Literal["earliest", "latest"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class Record(NamedTuple):
    """One message as a consumer sees it (a tuple: consumers create many of these)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


class BusError(MddeError, RuntimeError):
    """A bus operation failed (broker unreachable, unknown topic, closed client)."""


class UnknownTopicError(BusError):
    pass


def partition_for_key(key: bytes | None, partitions: int, fallback: int = 0) -> int:
    """Deterministic key -> partition (CRC32, as librdkafka's default partitioner does for keys)."""
    if key is None:
        return fallback % partitions
    return zlib.crc32(key) % partitions


def as_bytes(value: bytes | str | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode()


class Producer(abc.ABC):
    """Buffers records and sends them in batches; ``flush`` waits for everything buffered."""

    @abc.abstractmethod
    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | str | None = None,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,
    ) -> None: ...

    @abc.abstractmethod
    def flush(self, timeout: float = 30.0) -> None:
        """Block until every buffered record is durably stored; raise ``BusError`` if not."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Consumer(abc.ABC):
    """A member of one consumer group; offsets are committed explicitly, never automatically."""

    group_id: str

    @abc.abstractmethod
    def subscribe(self, topics: Iterable[str]) -> None:
        """Join the group for these topics; partitions are shared with the other members."""

    @abc.abstractmethod
    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read these partitions directly, outside group management (replay, inspection)."""

    @abc.abstractmethod
    def assignment(self) -> list[TopicPartition]: ...

    @abc.abstractmethod
    def poll(self, timeout: float = 1.0, max_records: int = 500) -> list[Record]:
        """Next records of the assigned partitions (possibly none after ``timeout`` seconds)."""

    def commit(self, records: Iterable[Record] | None = None, asynchronous: bool = False) -> None:
        """Commit past the given records (or everything polled so far).

        Synchronous by default. ``asynchronous=True`` returns at once (a broker round trip saved per
        batch) for callers whose processing is idempotent, so a commit lost in a crash only means a
        redelivery that changes nothing.
        """
        if records is None:
            offsets = self.positions()
        else:
            offsets = {}
            for r in records:
                offsets[r.tp] = max(offsets.get(r.tp, 0), r.offset + 1)
        if offsets:
            self._commit_offsets(offsets, asynchronous)

    def commit_below(self, floor: Mapping[TopicPartition, int], asynchronous: bool = False) -> None:
        """Commit everything polled, but on a partition never at or past ``floor[tp]``: the record there
        (and what follows it) still has work pending and must come back after a crash."""
        offsets = {tp: min(pos, floor[tp]) if tp in floor else pos for tp, pos in self.positions().items()}
        if offsets:
            self._commit_offsets(offsets, asynchronous)

    @abc.abstractmethod
    def positions(self) -> dict[TopicPartition, int]:
        """The next offset this consumer returns on each partition it has read (what a commit stores)."""

    @abc.abstractmethod
    def _commit_offsets(self, offsets: Mapping[TopicPartition, int], asynchronous: bool) -> None:
        """Store ``offsets`` (next offset to read per partition) as the group's committed offsets."""

    @abc.abstractmethod
    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]: ...

    @abc.abstractmethod
    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Move the read position of an assigned partition; the next poll starts there."""

    @abc.abstractmethod
    def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[TopicPartition, int]:
        """Per partition, the first offset whose timestamp is ≥ ``timestamp_ms`` (end offset if none)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group; uncommitted records go to the next owner of the partition."""

    def seek_to_time(self, topic: str, timestamp_ms: int) -> None:
        for tp, offset in self.offsets_for_time(topic, timestamp_ms).items():
            if tp in self.assignment():
                self.seek(tp, offset)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(abc.ABC):
    """Factory for producers/consumers plus topic administration."""

    url: str

    @abc.abstractmethod
    def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        """Create topics that do not exist yet; existing ones are left as they are."""

    @abc.abstractmethod
    def list_topics(self) -> dict[str, int]:
        """Topic name -> partition count."""

    @abc.abstractmethod
    def group_members(self, group_id: str) -> int:
        """Live members of ``group_id`` that take part in its assignment (0 while it rebalances):
        what a command waits on before it sends work to a group of services."""

    @abc.abstractmethod
    def watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """(low, high): first stored offset and the offset the next record will get."""

    @abc.abstractmethod
    def delete_topics(self, names: Iterable[str]) -> None: ...

    @abc.abstractmethod
    def producer(self) -> Producer: ...

    @abc.abstractmethod
    def consumer(self, group_id: str, offset_reset: OffsetReset = "earliest") -> Consumer: ...

    def close(self) -> None:
        """Release shared resources (connections); producers/consumers are closed by their owners."""

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
