"""The shared replay memory against a real Redis: exact round trips, bounded ring, policy channel."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from mdde_stream.agents.memory import FIELDS, make_transition
from mdde_stream.agents.memory_redis import (
    PolicyChannel,
    RedisReplay,
    ReplayFormatError,
    decode_transition,
    encode_transition,
)
from tests.conftest import require_redis

pytestmark = pytest.mark.integration

N, D, A = 4, 240, 101  # the default scenario's joint shapes


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(require_redis())
    yield c
    c.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    p = f"test:replay:{uuid.uuid4().hex[:12]}"
    yield p
    # Known key names, no SCAN: the shared database may hold millions of other keys.
    client.delete(*[f"{p}:{n}" for n in ("cursor", "capacity", "policy", "stop", "returns", "actors", "writers")])
    client.delete(*[f"{p}:slot:{i}" for i in range(1000)])


def transition(rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    obs = (rng.random((N, D)) < 0.3).astype(np.float32) * rng.random((N, D)).astype(np.float32)
    return make_transition(obs, rng.integers(0, 2, (N, A)), rng.integers(0, A, N), rng.normal(size=N) * 1e4,
                           np.roll(obs, k, axis=1), rng.integers(0, 2, (N, A)), bool(k % 7 == 0))


def digest(t) -> str:
    h = hashlib.sha256()
    for name in FIELDS:
        h.update(name.encode() + np.ascontiguousarray(t[name]).tobytes() + str(np.shape(t[name])).encode())
    return h.hexdigest()


def assert_same(got, want) -> None:
    assert set(got) == set(FIELDS)
    for name in FIELDS:
        assert got[name].dtype == want[name].dtype, name
        assert got[name].shape == want[name].shape, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("compress", [True, False])
def test_sampled_equals_pushed(client: redis.Redis, prefix: str, compress: bool) -> None:
    rng = np.random.default_rng(0)
    pushed = [transition(rng, k) for k in range(60)]
    replay = RedisReplay(client, prefix, capacity=1000, compress=compress)
    assert replay.push(pushed[:25]) == 25
    assert replay.push(pushed[25:]) == 60
    assert len(replay) == 60
    # Slot order is push order, field by field: obs, action, reward, next obs, done, mask.
    for got, want in zip(replay.get(range(60)), pushed):
        assert_same(got, want)
    # Every sampled row is one pushed transition, intact (fields of one row never mix).
    by_digest = {digest(t): t for t in pushed}
    batch = replay.sample(256, np.random.default_rng(1))
    assert batch["obs"].shape == (256, N, D) and batch["done"].shape == (256,)
    seen = set()
    for i in range(256):
        row = {name: batch[name][i] for name in FIELDS}
        key = digest(row)
        assert key in by_digest
        seen.add(key)
    assert len(seen) > 40  # uniform over 60 slots: 256 draws cover most of them


def test_capacity_holds_and_the_oldest_are_evicted(client: redis.Redis, prefix: str) -> None:
    rng = np.random.default_rng(2)
    pushed = [transition(rng, k) for k in range(37)]
    replay = RedisReplay(client, prefix, capacity=10)
    for start in range(0, 37, 8):
        replay.push(pushed[start : start + 8])
    assert replay.pushed == 37 and len(replay) == 10
    assert client.exists(*[f"{prefix}:slot:{i}" for i in range(40)]) == 10
    kept = {digest(t) for t in pushed[27:]}
    assert {digest(t) for t in replay.get(range(10))} == kept
    batch = replay.sample(100, np.random.default_rng(3))
    assert {digest({n: batch[n][i] for n in FIELDS}) for i in range(100)} <= kept
    with pytest.raises(ValueError, match="capacity 10"):
        RedisReplay(client, prefix, capacity=11)


def test_compression_keeps_records_small(client: redis.Redis, prefix: str) -> None:
    rng = np.random.default_rng(4)
    t = transition(rng, 1)
    raw, packed = encode_transition(t, compress=False), encode_transition(t, compress=True)
    payload = sum(v.nbytes for v in t.values())
    assert len(raw) - payload < 120  # the header is small
    assert len(packed) < len(raw)


def test_corrupt_records_are_refused() -> None:
    good = encode_transition(transition(np.random.default_rng(5), 0), compress=False)
    with pytest.raises(ReplayFormatError, match="magic"):
        decode_transition(b"\x80\x04pickle")
    with pytest.raises(ReplayFormatError):
        decode_transition(good[:-10])
    bad_dtype = bytearray(good)
    bad_dtype[6 + 1 + len("obs")] = 99  # the first field's dtype code
    with pytest.raises(ReplayFormatError, match="dtype"):
        decode_transition(bytes(bad_dtype))


def test_policy_channel_versions(client: redis.Redis, prefix: str) -> None:
    channel = PolicyChannel(client, prefix)
    assert channel.version() == 0 and channel.fetch() is None
    assert channel.publish(b"weights-1") == 1
    assert channel.publish(b"weights-2") == 2
    assert channel.fetch(0) == (2, b"weights-2")
    assert channel.fetch(2) is None


def test_stop_flag_returns_and_clear(client: redis.Redis, prefix: str) -> None:
    replay = RedisReplay(client, prefix, capacity=5)
    replay.push([transition(np.random.default_rng(6), 0)])
    replay.report_returns({"n0": 1.5, "n1": -2.0}, actor_id=3)
    assert replay.drain_returns() == [{"actor": 3, "returns": {"n0": 1.5, "n1": -2.0}}]
    assert replay.drain_returns() == []
    assert not replay.stop_requested()
    replay.request_stop()
    assert replay.stop_requested()
    keys = replay.keys()
    assert f"{prefix}:slot:0" in keys
    assert replay.clear() == 4  # cursor, capacity, stop, one slot (the drained returns list is gone already)
    assert client.exists(*keys) == 0
