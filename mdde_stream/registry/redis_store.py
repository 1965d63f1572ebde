"""Allocation state in Redis: the production backend, shared by the registry service and the stage.

Every mutation is one Lua script (``lua.py``), so validation, the allocation bit, the queued data
move and the event's recorded verdict change together or not at all; a redelivered event id finds
its verdict and changes nothing, also after a crash and restart of the caller. A whole step goes in
one script call (``apply_many``): one round trip per step, actions still judged one by one.

Keys live under ``{prefix}:`` so several registries (and test runs) can share one Redis.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import cast

import numpy as np
import redis

from mdde_stream.config import redact_url
from mdde_stream.events import ActionKind
from mdde_stream.registry import lua
from mdde_stream.registry.base import AllocationStore, StoreError, allocation_to_matrix
from mdde_stream.registry.codes import Code, Move, Verdict

logger = logging.getLogger(__name__)

ActionArgs = tuple[str, ActionKind, str | None, str | None, str | None]


def connect(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """A client for ``url`` that fails fast with a message naming the server."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreError(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
    return client


class RedisStore(AllocationStore):
    """Allocation state in Redis under ``prefix``.

    The verdicts of the last ``dedupe_capacity`` events are remembered (oldest forgotten first, as in
    ``MemoryStore``): far more than can be in flight uncommitted on the bus, and bounded in memory.
    """

    def __init__(
        self,
        url: str | None = None,
        prefix: str = "mdde:registry",
        dedupe_capacity: int = 250_000,
        client: redis.Redis | None = None,
    ) -> None:
        if client is None:
            if not url:
                raise StoreError("RedisStore needs a redis:// URL or a client")
            client = connect(url)
        self.url = url or repr(client)
        self.r = client
        self.prefix = prefix
        self.dedupe_capacity = int(dedupe_capacity)
        self._apply = self.r.register_script(lua.APPLY)
        self._reset = self.r.register_script(lua.RESET)
        self._complete = self.r.register_script(lua.COMPLETE)
        self._nodes: list[str] = []
        self._frags: list[str] = []
        self._records: dict[str, tuple[int, int]] = {}
        self._last_alloc: bytes | None = None
        if self.is_initialised():
            self.load_layout()

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    KEYS = ("meta", "nidx", "fidx", "alloc", "snap", "phys", "seq", "queue", "verdicts", "vorder", "scratch", "fence")

    # -- layout ---------------------------------------------------------------------------

    def setup(
        self,
        node_ids: list[str],
        fragment_ids: list[str],
        allocation: dict[str, list[str]],
        fragment_records: dict[str, tuple[int, int]],
    ) -> None:
        m = allocation_to_matrix(node_ids, fragment_ids, allocation)
        self.wipe()
        bits = _pack(m)
        records = {f: [int(a), int(b)] for f, (a, b) in fragment_records.items()}
        with self.r.pipeline(transaction=True) as p:
            p.hset(self.key("nidx"), mapping={n: i for i, n in enumerate(node_ids)})
            p.hset(self.key("fidx"), mapping={f: i for i, f in enumerate(fragment_ids)})
            for name in ("alloc", "snap", "phys"):
                p.set(self.key(name), bits)
            p.set(self.key("seq"), 0)
            # meta last: its presence is what marks the state as initialised
            p.hset(
                self.key("meta"),
                mapping={
                    "W": len(node_ids),
                    "F": len(fragment_ids),
                    "nodes": json.dumps(node_ids),
                    "fragments": json.dumps(fragment_ids),
                    "records": json.dumps(records),
                },
            )
            p.execute()
        self.load_layout()
        logger.info("registry state at %s/%s: %d nodes, %d fragments", self.url, self.prefix, *m.shape)

    def wipe(self) -> int:
        """Delete every key of this registry (allocation, queue, remembered verdicts): a fixed set, O(1)."""
        removed = int(self.r.unlink(*(self.key(k) for k in self.KEYS)))
        self._nodes, self._frags, self._records = [], [], {}
        return removed

    def is_initialised(self) -> bool:
        return bool(self.r.exists(self.key("meta")))

    # One number, episode · 2^32 + step, raised atomically: the fence only rises, whoever writes it.
    _RAISE_FENCE = "local v = tonumber(ARGV[1]); local c = tonumber(redis.call('GET', KEYS[1]) or '-1'); " \
                   "if v > c then redis.call('SET', KEYS[1], ARGV[1]); return ARGV[1] end; return tostring(c)"

    def raise_fence(self, episode: int, step: int) -> tuple[int, int]:
        raw = int(self.r.eval(self._RAISE_FENCE, 1, self.key("fence"), str((episode << 32) + step)))
        return raw >> 32, raw & 0xFFFFFFFF

    def fence(self) -> tuple[int, int] | None:
        raw = self.r.get(self.key("fence"))
        if raw is None or int(raw) < 0:
            return None
        return int(raw) >> 32, int(raw) & 0xFFFFFFFF

    def load_layout(self) -> None:
        """(Re)read node, fragment and record layout from Redis, e.g. after another process set it up."""
        raw = self.r.hmget(self.key("meta"), ["nodes", "fragments", "records"])
        if raw[0] is None:
            raise StoreError(f"registry state {self.prefix!r} at {redact_url(self.url)} is not set up")
        nodes, frags, records = (cast(bytes, r) for r in raw)
        self._nodes = json.loads(nodes)
        self._frags = json.loads(frags)
        self._records = {f: (int(a), int(b)) for f, (a, b) in json.loads(records).items()}

    def _require(self) -> None:
        if not self._nodes:
            raise StoreError(f"registry state {self.prefix!r} at {redact_url(self.url)} is not set up: call setup() first")

    def node_ids(self) -> list[str]:
        return list(self._nodes)

    def fragment_ids(self) -> list[str]:
        return list(self._frags)

    def fragment_records(self) -> dict[str, tuple[int, int]]:
        return dict(self._records)

    # -- actions --------------------------------------------------------------------------

    def apply(
        self, event_id: str, kind: ActionKind, fragment: str | None, source: str | None, target: str | None
    ) -> Verdict:
        return self.apply_many([(event_id, kind, fragment, source, target)])[0]

    def apply_many(self, actions: Sequence[ActionArgs]) -> list[Verdict]:
        """Apply actions in the given order in one atomic script call (one round trip)."""
        if not actions:
            return []
        self._require()
        keys = [self.key(k) for k in ("alloc", "nidx", "fidx", "queue", "seq", "meta", "verdicts", "vorder")]
        args: list[str | int] = [self.dedupe_capacity]
        for event_id, kind, fragment, source, target in actions:
            kind = ActionKind(kind)
            present = "".join("0" if x is None else "1" for x in (fragment, source, target))
            args += [event_id, kind.value, fragment or "", source or "", target or "", present]
        try:
            raw = self._apply(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StoreError(f"applying actions at {redact_url(self.url)} failed: {exc}") from exc
        self._last_alloc = raw[-1]
        return [_verdict(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw) - 1, 4)]

    def last_matrix(self) -> np.ndarray | None:
        if self._last_alloc is None:
            return None
        return _unpack(self._last_alloc, len(self._nodes), len(self._frags))

    def verdict_of(self, event_id: str) -> Verdict | None:
        raw = self.r.hget(self.key("verdicts"), event_id)
        if raw is None:
            return None
        acc, code, msg = json.loads(raw)
        return _verdict(acc, code, msg)

    # -- queries --------------------------------------------------------------------------

    def _bits(self, name: str) -> np.ndarray:
        self._require()
        raw = self.r.get(self.key(name))
        if raw is None:
            raise StoreError(f"registry state {self.prefix!r} has no {name!r} matrix")
        return _unpack(cast(bytes, raw), len(self._nodes), len(self._frags))

    def matrix(self) -> np.ndarray:
        return self._bits("alloc")

    def snapshot_matrix(self) -> np.ndarray:
        return self._bits("snap")

    def physical_matrix(self) -> np.ndarray:
        return self._bits("phys")

    # -- snapshot, reset, shuffle queue ---------------------------------------------------

    def snapshot(self) -> None:
        self._require()
        self.r.copy(self.key("alloc"), self.key("snap"), replace=True)

    def reset(self) -> int:
        self._require()
        keys = [self.key(k) for k in ("alloc", "snap", "queue", "scratch")]
        return int(self._reset(keys=keys))

    def pending_moves(self) -> list[Move]:
        moves = []
        for raw in self.r.lrange(self.key("queue"), 0, -1):
            seq, kind, fragment, source, target = json.loads(raw)
            moves.append(Move(ActionKind(kind), fragment, source or None, target, int(seq)))
        return moves

    def complete_moves(self, moves: list[Move]) -> int:
        if not moves:
            return 0
        keys = [self.key(k) for k in ("queue", "phys", "meta", "nidx", "fidx")]
        try:
            return int(self._complete(keys=keys, args=[m.seq for m in moves]))
        except redis.ResponseError as exc:
            raise StoreError(str(exc)) from exc

    def set_physical(self, matrix: np.ndarray) -> None:
        self._require()
        if matrix.shape != (len(self._nodes), len(self._frags)):
            raise StoreError(f"physical matrix shape {matrix.shape} does not match the layout")
        self.r.set(self.key("phys"), _pack(matrix.astype(bool)))

    def close(self) -> None:
        self.r.close()


def _verdict(accepted: int, code: int, message: bytes | str) -> Verdict:
    if isinstance(message, bytes):
        message = message.decode()
    return Verdict(bool(accepted), Code(int(code)) if int(code) else None, message)


def _pack(m: np.ndarray) -> bytes:
    return np.packbits(m.reshape(-1).astype(np.uint8)).tobytes()


def _unpack(raw: bytes, w: int, f: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if bits.size < w * f:  # SETBIT never shrinks, but be safe with a hand-edited key
        bits = np.concatenate([bits, np.zeros(w * f - bits.size, dtype=np.uint8)])
    return bits[: w * f].reshape(w, f).astype(bool)
