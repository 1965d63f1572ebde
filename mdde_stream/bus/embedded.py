"""The embedded bus: Kafka's semantics on one SQLite file, so nothing needs a server.

Why SQLite: it gives durable, multi-process, transactional storage with no daemon, so a recorded
run can be replayed after the process that wrote it has exited, and several local processes
(a registry service, a stage, workers) can share one bus.

Layout: ``batches`` holds records the way Kafka's log does, as record batches: one row per
partition per producer write, covering offsets ``base..last`` with the records framed in one blob
(a row per record would cost SQLite several microseconds each); ``heads`` the next offset of each
partition; ``commits`` a consumer group's committed offsets; ``members`` the live members of each
group with a heartbeat. Group assignment is computed by every member from the same sorted member
list (round-robin over partitions), and ``groups.generation`` changes whenever membership does, so
members notice rebalances with one cheap read. Like Kafka, a partition briefly owned by two
members during a rebalance can deliver a record twice; never zero times.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from zlib import crc32

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
    topic TEXT NOT NULL, partition INTEGER NOT NULL,
    low INTEGER NOT NULL DEFAULT 0, next INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, base INTEGER NOT NULL, last INTEGER NOT NULL,
    ts_max INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS batches_by_last ON batches (topic, partition, last);
CREATE TABLE IF NOT EXISTS commits (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    group_id TEXT NOT NULL, member_id TEXT NOT NULL, topics TEXT NOT NULL, heartbeat REAL NOT NULL,
    PRIMARY KEY (group_id, member_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (group_id TEXT PRIMARY KEY, generation INTEGER NOT NULL);
"""


# Per record in a batch: timestamp ms, key length (-1: no key), value length, headers length (-1: none).
_FRAME = struct.Struct("<qiii")


def _encode(records: list[tuple[str, int, bytes | None, bytes, str | None, int]]) -> bytes:
    parts: list[bytes] = []
    pack = _FRAME.pack
    for _topic, _partition, key, value, headers, ts in records:
        hb = headers.encode() if headers is not None else b""
        parts.append(pack(ts, -1 if key is None else len(key), len(value), -1 if headers is None else len(hb)))
        if key:
            parts.append(key)
        parts.append(value)
        if hb:
            parts.append(hb)
    return b"".join(parts)


def _decode(
    payload: bytes, topic: str, partition: int, base: int, start: int, limit: int | None
) -> list[Record]:
    """Records of one batch from offset ``start`` on, at most ``limit`` of them."""
    out: list[Record] = []
    unpack = _FRAME.unpack_from
    size = _FRAME.size
    pos, offset, end = 0, base, len(payload)
    while pos < end:
        ts, klen, vlen, hlen = unpack(payload, pos)
        pos += size
        kend = pos + max(klen, 0)
        vend = kend + vlen
        hend = vend + max(hlen, 0)
        if offset >= start:
            headers: tuple[tuple[str, bytes], ...] = ()
            if hlen >= 0:
                headers = tuple((k, v.encode("latin-1")) for k, v in json.loads(payload[vend:hend]).items())
            out.append(Record(topic, partition, offset, payload[pos:kend] if klen >= 0 else None,
                              payload[kend:vend], ts, headers))
            if limit is not None and len(out) >= limit:
                break
        pos = hend
        offset += 1
    return out


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class _Tx:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` under a thread lock (one writer at a time per connection)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self.conn, self.lock = conn, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


class _Handle:
    """A connection of its own for each producer/consumer, so processes and threads don't share one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = _connect(path)
        self.lock = threading.Lock()
        self._partitions: dict[str, int] = {}

    def tx(self) -> _Tx:
        return _Tx(self.conn, self.lock)

    def partitions(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            with self.lock:
                row = self.conn.execute("SELECT partitions FROM topics WHERE name=?", (topic,)).fetchone()
            if row is None:
                raise UnknownTopicError(f"unknown topic {topic!r} (create it first: the bus never auto-creates)")
            count = self._partitions[topic] = int(row[0])
        return count

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class EmbeddedBus(Bus):
    def __init__(self, path: str | Path, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite://{self.path}"
        self._admin = _Handle(self.path)
        with self._admin.lock:
            self._admin.conn.executescript(_SCHEMA)

    def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        with self._admin.tx() as conn:
            for spec in specs:
                if spec.partitions < 1:
                    raise BusError(f"topic {spec.name!r} needs at least one partition")
                row = conn.execute("SELECT partitions FROM topics WHERE name=?", (spec.name,)).fetchone()
                if row is not None:
                    continue
                conn.execute("INSERT INTO topics VALUES (?, ?)", (spec.name, spec.partitions))
                conn.executemany(
                    "INSERT INTO heads (topic, partition) VALUES (?, ?)",
                    [(spec.name, p) for p in range(spec.partitions)],
                )

    def list_topics(self) -> dict[str, int]:
        with self._admin.lock:
            return dict(self._admin.conn.execute("SELECT name, partitions FROM topics").fetchall())

    def group_members(self, group_id: str) -> int:
        horizon = time.time() - self.settings.session_timeout_s
        with self._admin.lock:
            row = self._admin.conn.execute(
                "SELECT COUNT(*) FROM members WHERE group_id=? AND heartbeat>=?", (group_id, horizon)
            ).fetchone()
        return int(row[0])

    def watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        with self._admin.lock:
            row = self._admin.conn.execute(
                "SELECT low, next FROM heads WHERE topic=? AND partition=?", (tp.topic, tp.partition)
            ).fetchone()
        if row is None:
            raise UnknownTopicError(f"unknown partition {tp.topic}[{tp.partition}]")
        return int(row[0]), int(row[1])

    def delete_topics(self, names: Iterable[str]) -> None:
        with self._admin.tx() as conn:
            for name in names:
                for table, column in (("topics", "name"), ("heads", "topic"), ("batches", "topic"), ("commits", "topic")):
                    conn.execute(f"DELETE FROM {table} WHERE {column}=?", (name,))

    def delete_records_before(self, tp: TopicPartition, offset: int) -> None:
        """Drop a partition's records below ``offset`` (what retention does on a broker)."""
        with self._admin.tx() as conn:
            conn.execute(
                "DELETE FROM batches WHERE topic=? AND partition=? AND last<?", (tp.topic, tp.partition, offset)
            )
            conn.execute(
                "UPDATE heads SET low=MAX(low, MIN(?, next)) WHERE topic=? AND partition=?",
                (offset, tp.topic, tp.partition),
            )

    def producer(self, batch_size: int = 2000, linger_ms: float = 50.0) -> EmbeddedProducer:
        return EmbeddedProducer(self.path, batch_size=batch_size, linger_ms=linger_ms)

    def consumer(self, group_id: str, offset_reset: OffsetReset = "earliest") -> EmbeddedConsumer:
        return EmbeddedConsumer(self.path, group_id, offset_reset, self.settings.session_timeout_s)

    def close(self) -> None:
        self._admin.close()


class EmbeddedProducer(Producer):
    """Buffers records and writes each batch in one transaction (never a commit per message)."""

    def __init__(self, path: Path, batch_size: int, linger_ms: float) -> None:
        self._h = _Handle(path)
        self._batch_size = batch_size
        self._linger_s = linger_ms / 1000.0
        self._buffer: list[tuple[str, int, bytes | None, bytes, str | None, int]] = []
        self._oldest = 0.0
        self._round_robin = 0
        self._counts: dict[str, int] = {}
        self._closed = False

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
        count = self._counts.get(topic) or self._h.partitions(topic)
        self._counts[topic] = count
        if key.__class__ is str:
            key = key.encode()  # type: ignore[union-attr]
        if partition is None:
            if key is None:
                self._round_robin += 1
                partition = self._round_robin % count
            else:
                partition = crc32(key) % count  # type: ignore[arg-type]
        elif not 0 <= partition < count:
            raise BusError(f"topic {topic!r} has no partition {partition}")
        hdrs = json.dumps({k: v.decode("latin-1") for k, v in headers.items()}) if headers else None
        now = time.time()
        buffer = self._buffer
        if not buffer:
            self._oldest = now
        buffer.append((topic, partition, key, value, hdrs, int(now * 1000)))  # type: ignore[arg-type]
        if len(buffer) >= self._batch_size or now - self._oldest >= self._linger_s:
            self._write()

    def _write(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        by_partition: dict[tuple[str, int], list[tuple]] = {}
        for rec in batch:
            by_partition.setdefault((rec[0], rec[1]), []).append(rec)
        try:
            with self._h.tx() as conn:
                for (topic, partition), recs in by_partition.items():
                    row = conn.execute(
                        "SELECT next FROM heads WHERE topic=? AND partition=?", (topic, partition)
                    ).fetchone()
                    if row is None:
                        raise UnknownTopicError(f"topic {topic!r} was deleted while producing")
                    start = int(row[0])
                    conn.execute(
                        "INSERT INTO batches (topic, partition, base, last, ts_max, payload) VALUES (?,?,?,?,?,?)",
                        (topic, partition, start, start + len(recs) - 1, max(r[5] for r in recs), _encode(recs)),
                    )
                    conn.execute(
                        "UPDATE heads SET next=? WHERE topic=? AND partition=?", (start + len(recs), topic, partition)
                    )
        except sqlite3.Error as exc:
            self._buffer = batch + self._buffer
            raise BusError(f"embedded bus write failed: {exc}") from exc

    def flush(self, timeout: float = 30.0) -> None:
        self._write()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._write()
        finally:
            self._closed = True
            self._h.close()


class EmbeddedConsumer(Consumer):
    _REFRESH_S = 0.25

    def __init__(self, path: Path, group_id: str, offset_reset: OffsetReset, session_timeout_s: float) -> None:
        self._h = _Handle(path)
        self.group_id = group_id
        self.member_id = uuid.uuid4().hex
        self._offset_reset = offset_reset
        self._session_timeout = session_timeout_s
        self._topics: list[str] = []
        self._manual = False
        self._positions: dict[TopicPartition, int] = {}
        self._generation = -1
        self._last_refresh = 0.0
        self._closed = False

    # -- membership ---------------------------------------------------------------------------
    def subscribe(self, topics: Iterable[str]) -> None:
        self._topics = list(dict.fromkeys(topics))
        for topic in self._topics:
            self._h.partitions(topic)
        self._manual = False
        now = time.time()
        with self._h.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?)",
                (self.group_id, self.member_id, json.dumps(self._topics), now),
            )
            self._bump_generation(conn)
        self._refresh(force=True)

    def _bump_generation(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO groups VALUES (?, 1) ON CONFLICT(group_id) DO UPDATE SET generation=generation+1",
            (self.group_id,),
        )

    def _refresh(self, force: bool = False) -> None:
        """Heartbeat, expire dead members, and recompute this member's share when membership changed."""
        if self._manual or not self._topics:
            return
        now = time.time()
        if not force and now - self._last_refresh < self._REFRESH_S:
            return
        self._last_refresh = now
        with self._h.tx() as conn:
            conn.execute(
                "UPDATE members SET heartbeat=? WHERE group_id=? AND member_id=?", (now, self.group_id, self.member_id)
            )
            expired = conn.execute(
                "DELETE FROM members WHERE group_id=? AND heartbeat<?", (self.group_id, now - self._session_timeout)
            ).rowcount
            if expired:
                self._bump_generation(conn)
            row = conn.execute("SELECT generation FROM groups WHERE group_id=?", (self.group_id,)).fetchone()
            generation = int(row[0]) if row else 0
            if generation == self._generation and not force:
                return
            members = conn.execute(
                "SELECT member_id, topics FROM members WHERE group_id=? ORDER BY member_id", (self.group_id,)
            ).fetchall()
            topics_rows = dict(conn.execute("SELECT name, partitions FROM topics").fetchall())
        self._generation = generation
        mine: list[TopicPartition] = []
        all_topics = sorted({t for _, ts in members for t in json.loads(ts)})
        for topic in all_topics:
            subscribers = [m for m, ts in members if topic in json.loads(ts)]
            for p in range(int(topics_rows.get(topic, 0))):
                if subscribers[p % len(subscribers)] == self.member_id:
                    mine.append(TopicPartition(topic, p))
        self._set_assignment(mine)

    def _set_assignment(self, partitions: list[TopicPartition]) -> None:
        kept = {tp: off for tp, off in self._positions.items() if tp in partitions}
        new = [tp for tp in partitions if tp not in kept]
        if new:
            starts = self._start_offsets(new)
            kept.update(starts)
        self._positions = kept

    def _start_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        committed = self.committed(partitions)
        with self._h.lock:
            for tp in partitions:
                low, nxt = self._h.conn.execute(
                    "SELECT low, next FROM heads WHERE topic=? AND partition=?", (tp.topic, tp.partition)
                ).fetchone() or (0, 0)
                c = committed.get(tp)
                if c is not None:
                    out[tp] = max(c, low)
                else:
                    out[tp] = low if self._offset_reset == "earliest" else nxt
        return out

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        parts = list(partitions)
        for tp in parts:
            if not 0 <= tp.partition < self._h.partitions(tp.topic):
                raise UnknownTopicError(f"unknown partition {tp.topic}[{tp.partition}]")
        self._leave()
        self._manual = True
        self._positions = {}
        self._set_assignment(parts)

    def assignment(self) -> list[TopicPartition]:
        self._refresh()
        return sorted(self._positions)

    # -- reading ------------------------------------------------------------------------------
    def poll(self, timeout: float = 1.0, max_records: int = 500) -> list[Record]:
        if self._closed:
            raise BusError("consumer is closed")
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            self._refresh()
            records = self._read(max_records)
            if records or time.monotonic() >= deadline:
                return records
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.05)

    def _read(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        with self._h.lock:
            for tp, position in list(self._positions.items()):
                want = max_records - len(out)
                if want <= 0:
                    break
                rows = self._h.conn.execute(
                    "SELECT base, payload FROM batches WHERE topic=? AND partition=? AND last>=? ORDER BY last LIMIT 16",
                    (tp.topic, tp.partition, position),
                ).fetchall()
                for base, payload in rows:
                    got = _decode(payload, tp.topic, tp.partition, base, position, want)
                    out.extend(got)
                    want -= len(got)
                    if got:
                        position = got[-1].offset + 1
                    if want <= 0:
                        break
                self._positions[tp] = position
        return out

    # -- offsets ------------------------------------------------------------------------------
    def positions(self) -> dict[TopicPartition, int]:
        return dict(self._positions)

    def _commit_offsets(self, offsets: Mapping[TopicPartition, int], asynchronous: bool) -> None:
        # A local transaction is cheap: always synchronous.
        with self._h.tx() as conn:
            conn.executemany(
                "INSERT INTO commits VALUES (?, ?, ?, ?) ON CONFLICT(group_id, topic, partition) "
                "DO UPDATE SET offset=excluded.offset",
                [(self.group_id, tp.topic, tp.partition, off) for tp, off in offsets.items()],
            )

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        out: dict[TopicPartition, int | None] = {}
        with self._h.lock:
            for tp in partitions:
                row = self._h.conn.execute(
                    "SELECT offset FROM commits WHERE group_id=? AND topic=? AND partition=?",
                    (self.group_id, tp.topic, tp.partition),
                ).fetchone()
                out[tp] = int(row[0]) if row else None
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise BusError(f"cannot seek {tp.topic}[{tp.partition}]: not assigned to this consumer")
        self._positions[tp] = max(0, offset)

    def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        count = self._h.partitions(topic)
        with self._h.lock:
            for p in range(count):
                found: int | None = None
                for base, payload in self._h.conn.execute(
                    "SELECT base, payload FROM batches WHERE topic=? AND partition=? AND ts_max>=? ORDER BY last",
                    (topic, p, timestamp_ms),
                ):
                    found = next((r.offset for r in _decode(payload, topic, p, base, 0, None)
                                  if r.timestamp_ms >= timestamp_ms), None)
                    if found is not None:
                        break
                if found is None:
                    found = int(self._h.conn.execute(
                        "SELECT next FROM heads WHERE topic=? AND partition=?", (topic, p)
                    ).fetchone()[0])
                out[TopicPartition(topic, p)] = found
        return out

    def _leave(self) -> None:
        if self._manual or not self._topics:
            return
        with self._h.tx() as conn:
            conn.execute("DELETE FROM members WHERE group_id=? AND member_id=?", (self.group_id, self.member_id))
            self._bump_generation(conn)
        self._topics = []

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._leave()
        finally:
            self._closed = True
            self._positions = {}
            self._h.close()
