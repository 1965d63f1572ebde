"""Data nodes: independent Redis servers holding the generated records as hashes.

Only data generation, the shuffle (queued moves, run before a real benchmark) and reset touch them.
Every bulk operation is pipelined in batches: a round trip per ``batch_size`` records, not per record.
Copies and deletes are idempotent, so a shuffle or reset interrupted half-way can simply run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
import redis

from mdde_stream.config import Settings, redact_url
from mdde_stream.datanodes.generator import RecordSpec, generate_records
from mdde_stream.errors import MddeError
from mdde_stream.events import ActionKind
from mdde_stream.registry.codes import Move

logger = logging.getLogger(__name__)


class DataNodeError(MddeError, RuntimeError):
    """A data node is unreachable or does not hold what the allocation says it must."""


class DataNodes:
    """Node id -> Redis client, plus the record layout (``spec``) shared by every node."""

    def __init__(self, urls: dict[str, str], spec: RecordSpec | None = None, batch_size: int = 500) -> None:
        if len(urls) < 1:
            raise DataNodeError("no data node URLs given")
        self.urls = dict(urls)
        self.spec = spec or RecordSpec()
        self.batch_size = batch_size
        self.clients: dict[str, redis.Redis] = {}
        for node, url in self.urls.items():
            client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
            try:
                client.ping()
            except redis.RedisError as exc:
                raise DataNodeError(f"cannot reach data node {node} at {redact_url(url)}: {exc}") from exc
            self.clients[node] = client

    @classmethod
    def from_settings(cls, settings: Settings, node_ids: list[str], spec: RecordSpec | None = None) -> DataNodes:
        urls = settings.data_node_urls
        if len(urls) < len(node_ids):
            raise DataNodeError(f"{len(node_ids)} nodes need {len(node_ids)} MDDE_DATA_NODES URLs, got {len(urls)}")
        return cls(dict(zip(node_ids, urls)), spec)

    def _client(self, node: str) -> redis.Redis:
        try:
            return self.clients[node]
        except KeyError:
            raise DataNodeError(f"no data node {node!r} (known: {sorted(self.clients)})") from None

    def _batches(self, start: int, end: int) -> Iterable[list[str]]:
        for a in range(start, end, self.batch_size):
            yield [self.spec.key(i) for i in range(a, min(end, a + self.batch_size))]

    # -- generation -----------------------------------------------------------------------

    def load(self, ranges: dict[str, tuple[int, int]], allocation: dict[str, list[str]]) -> int:
        """Wipe the record range on every node, then write each node's fragments; verified per record."""
        t0 = time.perf_counter()
        for node in self.clients:
            self.delete_range(node, 0, self.spec.record_count)
        written = 0
        fc = self.spec.field_count
        for node, frags in allocation.items():
            client = self._client(node)
            for frag in frags:
                start, end = ranges[frag]
                pipe = client.pipeline(transaction=False)
                pending: list[int] = []
                for index, fields in generate_records(self.spec, start, end):
                    pipe.hset(self.spec.key(index), mapping=fields)  # type: ignore[arg-type]  # bytes values
                    pending.append(index)
                    if len(pending) >= self.batch_size:
                        written += self._check_inserts(node, pending, pipe.execute(), fc)
                        pending = []
                if pending:
                    written += self._check_inserts(node, pending, pipe.execute(), fc)
        logger.info("loaded %d records on %d nodes in %.2fs", written, len(allocation), time.perf_counter() - t0)
        return written

    def _check_inserts(self, node: str, indices: list[int], replies: list[int], fields: int) -> int:
        for index, added in zip(indices, replies):
            if added != fields:
                raise DataNodeError(
                    f"insert of {self.spec.key(index)} on {node} stored {added} of {fields} fields"
                )
        return len(indices)

    # -- moves ----------------------------------------------------------------------------

    def copy_range(self, source: str, target: str, start: int, end: int) -> int:
        """Copy records [start, end) from ``source`` to ``target``; records already there are fine."""
        src, dst = self._client(source), self._client(target)
        copied = 0
        for keys in self._batches(start, end):
            read = src.pipeline(transaction=False)
            for k in keys:
                read.hgetall(k)
            values = read.execute()
            missing = [k for k, v in zip(keys, values) if not v]
            if missing and dst.exists(*missing) != len(missing):
                raise DataNodeError(
                    f"copy {source}->{target}: {len(missing)} records (first {missing[0]}) are on neither node"
                )
            write = dst.pipeline(transaction=False)
            for k, v in zip(keys, values):
                if v:
                    write.hset(k, mapping=v)
            write.execute()
            copied += len(keys) - len(missing)
        return copied

    def delete_range(self, node: str, start: int, end: int) -> int:
        """Delete records [start, end) on ``node``; already-deleted ones are fine."""
        client = self._client(node)
        pipe = client.pipeline(transaction=False)
        for keys in self._batches(start, end):
            pipe.unlink(*keys)
        return int(sum(pipe.execute()))

    def execute(self, move: Move, record_range: tuple[int, int]) -> int:
        start, end = record_range
        if move.kind is ActionKind.COPY:
            if move.source is None:
                raise DataNodeError(f"copy move {move.seq} has no source node")
            return self.copy_range(move.source, move.target, start, end)
        if move.kind is ActionKind.DELETE:
            return self.delete_range(move.target, start, end)
        raise DataNodeError(f"move {move.seq} has kind {move.kind!r}, which moves no data")

    # -- inspection -----------------------------------------------------------------------

    def present_counts(self, node_ids: list[str], ranges: dict[str, tuple[int, int]], fragment_ids: list[str]) -> np.ndarray:
        """(W, F) count of each fragment's records present on each node (multi-key EXISTS, pipelined)."""
        counts = np.zeros((len(node_ids), len(fragment_ids)), dtype=np.int64)
        for w, node in enumerate(node_ids):
            pipe = self._client(node).pipeline(transaction=False)
            slots: list[int] = []
            for f, frag in enumerate(fragment_ids):
                for keys in self._batches(*ranges[frag]):
                    pipe.exists(*keys)
                    slots.append(f)
            for f, n in zip(slots, pipe.execute()):
                counts[w, f] += n
        return counts

    def mismatches(self, matrix: np.ndarray, node_ids: list[str], ranges: dict[str, tuple[int, int]], fragment_ids: list[str]) -> list[str]:
        """Cells where a node does not hold exactly the records the allocation says (empty = match)."""
        counts = self.present_counts(node_ids, ranges, fragment_ids)
        sizes = np.array([ranges[f][1] - ranges[f][0] for f in fragment_ids])
        expected = np.where(matrix, sizes[None, :], 0)
        bad = np.argwhere(counts != expected)
        return [
            f"{node_ids[w]}/{fragment_ids[f]}: {counts[w, f]} of {sizes[f]} records, allocation says "
            f"{'held' if matrix[w, f] else 'absent'}"
            for w, f in bad
        ]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
