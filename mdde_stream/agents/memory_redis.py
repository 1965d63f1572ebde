"""The shared ("hive mind") replay memory in Redis, and the channel that carries policy weights back.

Actor processes push transitions, one learner samples them. Layout under a key prefix ``P``:

* ``P:cursor`` — how many transitions were ever pushed (``INCRBY``); transition ``c`` (0-based)
  lives in slot ``c % capacity``, so the memory is a ring: bounded, the oldest evicted first.
* ``P:slot:{i}`` — one encoded transition (see :func:`encode_transition`).
* ``P:capacity`` — fixed by the first writer, so actors and learner cannot disagree about the ring.
* ``P:policy`` — hash ``{version, data}``: the actors' weights as safetensors bytes and a counter.
* ``P:stop`` — set by the learner when actors should finish; ``P:returns`` — episode returns
  the actors report (a list the learner drains for telemetry); ``P:actors`` — the ids of the
  actors that are running; ``P:writers`` — transitions pushed per actor; ``P:next-actor`` — the
  counter that hands actors started without an index (scaled replicas) their own.

A push is one Lua call (claim ``n`` cursor values and write their slots atomically, one round trip);
sampling draws slot indices below ``min(cursor, capacity)`` and reads them with one ``MGET``, so both
cost O(batch), independent of how much is stored. Nothing read from Redis is unpickled: records are
a fixed binary header (names, dtypes from a whitelist, shapes) plus raw numpy bytes.
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
import redis

from mdde_stream.agents.memory import FIELDS, Batch, Transition

logger = logging.getLogger(__name__)

MAGIC = b"MDT1"
FLAG_ZLIB = 1
# dtype code <-> numpy dtype; anything else is refused on both sides.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32), 2: np.dtype(np.float64), 3: np.dtype(np.int8), 4: np.dtype(np.int16),
    5: np.dtype(np.int32), 6: np.dtype(np.int64), 7: np.dtype(np.uint8), 8: np.dtype(np.bool_),
}
_CODES = {dtype: code for code, dtype in DTYPES.items()}
_MAX_NDIM = 8
_MAX_BYTES = 256 * 2**20


class ReplayFormatError(ValueError):
    """Bytes from Redis that are not a transition record of this format."""


def encode_transition(transition: Mapping[str, np.ndarray], compress: bool = True) -> bytes:
    """``MAGIC | flags u8 | n u8 | n × (name_len u8, name, dtype u8, ndim u8, ndim × dim u32) | data``.

    ``data`` is the fields' C-order bytes concatenated in header order, zlib-compressed when the
    flag says so (observations are mostly 0/1 and compress ~10×, which is what makes a large ring fit
    in Redis memory).
    """
    header = bytearray(MAGIC)
    header.append(FLAG_ZLIB if compress else 0)
    header.append(len(transition))
    chunks = []
    for name, value in transition.items():
        array = np.asarray(value, order="C")  # (ascontiguousarray would turn 0-d into 1-d)
        code = _CODES.get(array.dtype)
        if code is None:
            raise ReplayFormatError(f"field {name!r}: dtype {array.dtype} cannot be encoded")
        raw_name = name.encode()
        if not 0 < len(raw_name) < 256 or array.ndim > _MAX_NDIM:
            raise ReplayFormatError(f"field {name!r}: name or rank ({array.ndim}) out of range")
        header.append(len(raw_name))
        header += raw_name
        header += bytes((code, array.ndim))
        header += struct.pack(f"<{array.ndim}I", *array.shape)
        chunks.append(array.tobytes())
    data = b"".join(chunks)
    return bytes(header) + (zlib.compress(data, 1) if compress else data)


def decode_transition(raw: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_transition`; validates every length before touching the data."""
    view = memoryview(raw)
    if len(view) < 6 or bytes(view[:4]) != MAGIC:
        raise ReplayFormatError("not a transition record (bad magic)")
    flags, count = view[4], view[5]
    pos = 6
    specs: list[tuple[str, np.dtype, tuple[int, ...]]] = []
    try:
        for _ in range(count):
            name_len = view[pos]
            name = bytes(view[pos + 1 : pos + 1 + name_len]).decode()
            pos += 1 + name_len
            code, ndim = view[pos], view[pos + 1]
            pos += 2
            if code not in DTYPES or ndim > _MAX_NDIM:
                raise ReplayFormatError(f"field {name!r}: unknown dtype code {code} or rank {ndim}")
            shape = struct.unpack_from(f"<{ndim}I", view, pos)
            pos += 4 * ndim
            specs.append((name, DTYPES[code], shape))
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise ReplayFormatError(f"truncated transition header: {exc}") from None
    expected = sum(dtype.itemsize * int(np.prod(shape)) for _, dtype, shape in specs)
    if expected > _MAX_BYTES:
        raise ReplayFormatError(f"transition claims {expected} bytes of data (limit {_MAX_BYTES})")
    body = bytes(view[pos:])
    if flags & FLAG_ZLIB:
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(body, expected + 1)
        except zlib.error as exc:
            raise ReplayFormatError(f"corrupt compressed transition data: {exc}") from None
    if len(body) != expected:
        raise ReplayFormatError(f"transition data is {len(body)} bytes, header says {expected}")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for name, dtype, shape in specs:
        size = dtype.itemsize * int(np.prod(shape))
        out[name] = np.frombuffer(body, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
        offset += size
    return out


# KEYS[1] cursor, KEYS[2] slot key prefix, KEYS[3] per-writer counts; ARGV[1] capacity, ARGV[2] writer
# id ("" for none), ARGV[3..] records. Returns the new cursor.
_PUSH = """
local cap = tonumber(ARGV[1])
local n = #ARGV - 2
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n
for i = 1, n do
  redis.call('SET', KEYS[2] .. ((first + i - 1) % cap), ARGV[i + 2])
end
if ARGV[2] ~= '' then
  redis.call('HINCRBY', KEYS[3], ARGV[2], n)
end
return last
"""

# KEYS[1] policy hash; ARGV[1] weights. Bumps the version and stores the data in one step.
_PUBLISH = """
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'data', ARGV[1])
return v
"""


class RedisReplay:
    """Bounded ring of transitions in Redis shared by any number of writers and readers."""

    def __init__(self, client: redis.Redis, prefix: str, capacity: int, compress: bool = True) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        if not prefix:
            raise ValueError("a key prefix is required (several memories may share one Redis)")
        self.client = client
        self.prefix = prefix
        self.compress = compress
        self.cursor_key = f"{prefix}:cursor"
        self.slot_prefix = f"{prefix}:slot:"
        self._push = client.register_script(_PUSH)
        client.set(f"{prefix}:capacity", capacity, nx=True)
        stored = int(client.get(f"{prefix}:capacity") or capacity)
        if stored != capacity:
            raise ValueError(f"replay memory {prefix!r} already exists with capacity {stored}, not {capacity}")
        self.capacity = capacity

    @classmethod
    def from_url(cls, url: str, prefix: str, capacity: int, compress: bool = True) -> RedisReplay:
        return cls(redis.Redis.from_url(url), prefix, capacity, compress)

    # -- writing --------------------------------------------------------------------------------
    def push(self, transitions: Sequence[Transition], writer: int | str | None = None) -> int:
        """Append transitions atomically in one round trip; returns the total ever pushed."""
        if not transitions:
            return self.pushed
        records = [encode_transition(t, self.compress) for t in transitions]
        keys = [self.cursor_key, self.slot_prefix, f"{self.prefix}:writers"]
        return int(self._push(keys=keys, args=[self.capacity, "" if writer is None else str(writer), *records]))

    def pushed_by(self) -> dict[str, int]:
        """Transitions pushed per writer id."""
        writers = cast(dict[bytes, bytes], self.client.hgetall(f"{self.prefix}:writers"))
        return {k.decode(): int(v) for k, v in writers.items()}

    # -- reading --------------------------------------------------------------------------------
    @property
    def pushed(self) -> int:
        return int(self.client.get(self.cursor_key) or 0)

    def __len__(self) -> int:
        return min(self.pushed, self.capacity)

    def get(self, slots: Sequence[int]) -> list[dict[str, np.ndarray]]:
        """The transitions in the given slots (one MGET)."""
        raws = self.client.mget([f"{self.slot_prefix}{int(s)}" for s in slots])
        missing = [s for s, r in zip(slots, raws) if r is None]
        if missing:
            raise KeyError(f"replay slots {missing[:5]} of {self.prefix!r} are empty")
        return [decode_transition(cast(bytes, r)) for r in raws]

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        size = len(self)
        if size == 0:
            raise ValueError(f"cannot sample from the empty replay memory {self.prefix!r}")
        slots = rng.integers(0, size, size=batch_size)
        items = self.get(slots.tolist())
        return {name: np.stack([t[name] for t in items]).astype(dtype, copy=False) for name, dtype in FIELDS.items()}

    # -- control keys shared with the actors ----------------------------------------------------
    def claim_actor_id(self) -> int:
        """A fresh actor index for this memory (0, 1, 2, ...), for actors started without one (replicas)."""
        return int(self.client.incr(f"{self.prefix}:next-actor")) - 1

    def clear_stop(self) -> None:
        """Forget a finished run's stop request, so actors of a new run on this prefix keep going."""
        self.client.delete(f"{self.prefix}:stop")

    def register_actor(self, actor_id: int) -> None:
        self.client.sadd(f"{self.prefix}:actors", actor_id)

    def actors(self) -> set[int]:
        return {int(a) for a in self.client.smembers(f"{self.prefix}:actors")}

    def request_stop(self) -> None:
        self.client.set(f"{self.prefix}:stop", 1)

    def stop_requested(self) -> bool:
        return bool(self.client.exists(f"{self.prefix}:stop"))

    def report_returns(self, returns: Mapping[str, float], actor_id: int) -> None:
        self.client.rpush(f"{self.prefix}:returns", json.dumps({"actor": actor_id, "returns": dict(returns)}))

    def drain_returns(self, limit: int = 1000) -> list[dict]:
        """Episode returns reported since the last drain (oldest first)."""
        pipe = self.client.pipeline()
        pipe.lrange(f"{self.prefix}:returns", 0, limit - 1)
        pipe.ltrim(f"{self.prefix}:returns", limit, -1)
        raws, _ = pipe.execute()
        return [json.loads(r) for r in raws]

    def keys(self) -> list[str]:
        """Every key this memory may have written (computed, never SCANned: the database may be huge)."""
        used = min(self.pushed, self.capacity)
        names = ("cursor", "capacity", "policy", "stop", "returns", "actors", "writers", "next-actor")
        return [f"{self.prefix}:{n}" for n in names] + [f"{self.slot_prefix}{i}" for i in range(used)]

    def clear(self) -> int:
        """Delete every key of this memory; returns how many existed."""
        keys = self.keys()
        removed = 0
        for start in range(0, len(keys), 1000):
            removed += int(self.client.unlink(*keys[start : start + 1000]))
        return removed


class PolicyChannel:
    """Policy weights (safetensors bytes) from the learner to the actors, with a version counter."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}:policy"
        self._publish = client.register_script(_PUBLISH)

    def publish(self, data: bytes) -> int:
        """Store new weights; returns their version (1, 2, ...)."""
        return int(self._publish(keys=[self.key], args=[data]))

    def version(self) -> int:
        return int(self.client.hget(self.key, "version") or 0)

    def fetch(self, known: int = 0) -> tuple[int, bytes] | None:
        """``(version, data)`` if a version newer than ``known`` exists, else ``None`` (one cheap HGET)."""
        if self.version() <= known:
            return None
        version, data = self.client.hmget(self.key, ["version", "data"])
        if version is None or data is None:
            return None
        return int(version), bytes(cast(bytes, data))
