"""The benchmark workers' closed loop against the real Redis data nodes, without the bus.

Checks what the loop promises: every read counted once in its (node, fragment) cell, reads that
find no record counted as missing, a paced node never beyond its rate (also when two workers share
it), and a data-node error surfacing as an exception the worker can retry.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from mdde_stream.benchmark.capacity import CATCH_UP_S, PACED_BATCH_LUA, clock_key
from mdde_stream.benchmark.locator import ReplicaLocator
from mdde_stream.benchmark.pipeline import (
    NodeConnection,
    NodeIOError,
    NodePlan,
    bulk,
    closed_loop,
    encode_command,
)
from mdde_stream.datanodes import DataNodes, RecordSpec
from mdde_stream.datanodes.generator import record_key
from mdde_stream.registry import fragment_layout
from tests.conftest import data_node_urls, require_redis

pytestmark = pytest.mark.integration

RECORDS = 400


@pytest.fixture(scope="module")
def dataset() -> Iterator[tuple[list[str], str]]:
    urls = data_node_urls()[:4]
    for url in urls:
        require_redis(url)
    prefix = f"test-pipe-{uuid.uuid4().hex[:10]}:"
    _, ranges, layout = fragment_layout(RECORDS, 4, 20, "contiguous")  # slots = keys: tasks here carry no record layout
    nodes = DataNodes(dict(zip(layout, urls)), RecordSpec(record_count=RECORDS, key_prefix=prefix))
    nodes.load(ranges, {node: list(ranges) for node in layout})  # every node holds every record
    try:
        yield urls, prefix
    finally:
        for node, client in nodes.clients.items():
            nodes.delete_range(node, 0, RECORDS)
            client.delete(clock_key(prefix), f"{prefix}wrongtype")
        nodes.close()


def _encoded(prefix: str, count: int) -> list[bytes]:
    return [encode_command(b"HGETALL", record_key(i, prefix).encode()) for i in range(count)]


def _plans(urls: list[str], prefix: str, rate: float) -> list[NodePlan]:
    plans = []
    for url in urls:
        conn = NodeConnection(url)
        sha = bytes(conn.call(b"SCRIPT", b"LOAD", PACED_BATCH_LUA.encode())) if rate else b""
        plans.append(NodePlan(conn, round(1e6 / rate) if rate else 0, sha, bulk(clock_key(prefix).encode()),
                              round(CATCH_UP_S * 1e6)))
    return plans


def _run(urls: list[str], prefix: str, allocation: np.ndarray, records: np.ndarray, rate: float,
         clients: int = 20, record_count: int = RECORDS):
    record_fragment, _, _ = fragment_layout(RECORDS, 4, 20, "contiguous")  # slots = keys: tasks here carry no record layout
    frags = record_fragment[np.minimum(records, RECORDS - 1)]
    cmds = _encoded(prefix, record_count)
    plans = _plans(urls, prefix, rate)
    try:
        t0 = time.perf_counter()
        result = closed_loop(ReplicaLocator(allocation), plans, records.tolist(), frags.tolist(), cmds,
                             clients, 20)
        return result, time.perf_counter() - t0
    finally:
        for plan in plans:
            plan.conn.close()


@pytest.mark.parametrize("rate", [0.0, 4_000.0])
def test_every_read_is_counted_once_in_its_cell(dataset: tuple[list[str], str], rate: float) -> None:
    urls, prefix = dataset
    rng = np.random.default_rng(1)
    records = rng.integers(0, RECORDS, 3_000)
    record_fragment, _, _ = fragment_layout(RECORDS, 4, 20, "contiguous")  # slots = keys: tasks here carry no record layout
    allocation = np.zeros((4, 20), dtype=bool)
    allocation[0, :10] = allocation[1, 5:15] = allocation[2, 10:] = allocation[3, ::2] = True
    result, _ = _run(urls, prefix, allocation, records, rate)
    counts = np.array(result.counts).reshape(4, 20)
    assert result.missing == 0
    assert counts.sum() == records.size
    assert np.array_equal(counts.sum(axis=0), np.bincount(record_fragment[records], minlength=20))
    assert not counts[~allocation].any(), "a read went to a node that does not hold its fragment"
    assert (counts[allocation] > 0).all(), "least-in-flight spread the reads over every replica"


def test_reads_of_absent_records_are_counted_as_missing(dataset: tuple[list[str], str]) -> None:
    urls, prefix = dataset
    # Records RECORDS.. were never written; they are read through keys of their own.
    records = np.array([0, 1, RECORDS, RECORDS + 1, RECORDS + 2, 2])
    allocation = np.ones((4, 20), dtype=bool)
    for rate in (0.0, 4_000.0):
        result, _ = _run(urls, prefix, allocation, records, rate, clients=3, record_count=RECORDS + 3)
        assert sum(result.counts) == 6 and result.missing == 3


def test_a_paced_node_serves_at_its_rate_and_four_serve_four_times_as_many(dataset: tuple[list[str], str]) -> None:
    urls, prefix = dataset
    rate, reads = 1_000.0, 1_500
    records = np.random.default_rng(2).integers(0, RECORDS, reads)
    one = np.zeros((4, 20), dtype=bool)
    one[0] = True
    spread = np.zeros((4, 20), dtype=bool)
    for f in range(20):
        spread[f // 5, f] = True
    single, single_s = _run(urls, prefix, one, records, rate)
    assert sum(single.counts[:20]) == reads
    # A FIFO server of 1,000 reads/s needs 1.5 s; the catch-up window may only shorten it by itself.
    assert single_s >= reads / rate - CATCH_UP_S
    assert reads / single_s > 0.8 * rate
    _, spread_s = _run(urls, prefix, spread, records, rate)
    assert single_s / spread_s > 2.0, (single_s, spread_s)  # 4x in the model; loose for a loaded host


def test_two_workers_share_one_node_s_capacity(dataset: tuple[list[str], str]) -> None:
    urls, prefix = dataset
    rate, reads = 1_000.0, 600
    one = np.zeros((4, 20), dtype=bool)
    one[0] = True
    results: list[float] = []

    def worker(seed: int) -> None:
        records = np.random.default_rng(seed).integers(0, RECORDS, reads)
        results.append(_run(urls, prefix, one, records, rate)[1])

    threads = [threading.Thread(target=worker, args=(s,)) for s in (3, 4)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    assert len(results) == 2
    # Both booked slots on the same node clock: 1,200 reads at 1,000/s take at least ~1.2 s together.
    assert wall >= 2 * reads / rate - 2 * CATCH_UP_S, wall


def test_a_node_error_raises_node_io_error(dataset: tuple[list[str], str]) -> None:
    urls, prefix = dataset
    client = redis.Redis.from_url(urls[0])
    client.set(f"{prefix}wrongtype", "not a hash")  # HGETALL on it is a WRONGTYPE error
    names = [f"{prefix}wrongtype".encode()]
    plans = _plans(urls[:1], prefix, 0.0)
    try:
        with pytest.raises(NodeIOError, match="WRONGTYPE"):
            closed_loop(ReplicaLocator(np.ones((1, 1), dtype=bool)), plans, [0], [0],
                        [encode_command(b"HGETALL", names[0])], 1, 1)
    finally:
        plans[0].conn.close()
        client.close()
    with pytest.raises(NodeIOError, match="cannot connect"):
        NodeConnection("redis://127.0.0.1:1/0")


def test_booking_follows_arrivals_but_never_earlier_than_the_catch_up_window(dataset: tuple[list[str], str]) -> None:
    urls, prefix = dataset
    conn = NodeConnection(urls[0])
    clock = f"{prefix}clock-test".encode()
    try:
        sha = conn.call(b"SCRIPT", b"LOAD", PACED_BATCH_LUA.encode())
        window, service = 25_000, 1_000
        # Arrival 0 = now; 1 = the distant past, clamped to now - window; the third arrives late.
        reply = conn.call(b"EVALSHA", sha, b"1", clock, b"%d" % service, b"%d" % window, b"0", b"1", b"0")
        now, ends = reply[0], reply[1:]
        assert ends[0] == now + service  # an idle node serves at once
        assert ends[1] == ends[0] + service  # FIFO: queued behind the first, whatever its arrival
        assert ends[2] == ends[1] + service
        time.sleep(0.01)  # the three slots have passed: the node is idle again
        later = conn.call(b"EVALSHA", sha, b"1", clock, b"%d" % service, b"%d" % window, b"%d" % (ends[2] + 50_000))
        assert later[1] == later[0] + service  # an arrival in the future counts as now
        past = conn.call(b"EVALSHA", sha, b"1", clock, b"%d" % service, b"%d" % window, b"1")
        # Node free again by now, arrival clamped: booked no earlier than now - window.
        assert past[1] >= max(later[1], past[0] - window) + service
    finally:
        conn.call(b"DEL", clock)
        conn.close()


def test_a_node_that_stops_answering_is_an_error_after_the_deadline() -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    conn = NodeConnection(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
    command = encode_command(b"HGETALL", b"k")
    try:
        t0 = time.perf_counter()
        with pytest.raises(NodeIOError, match="no reply"):
            closed_loop(ReplicaLocator(np.ones((1, 1), dtype=bool)), [NodePlan(conn)], [0], [0], [command], 1, 1,
                        deadline_s=0.5)
        assert 0.5 <= time.perf_counter() - t0 < 5
    finally:
        conn.close()
        silent.close()
