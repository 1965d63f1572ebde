"""Node capacity for the real benchmark: each data node is a single FIFO server of a set speed.

Why a model at all: on a 2-core machine four Redis servers and the benchmark workers share the same
two cores, so raw Redis speed barely depends on how reads are spread over nodes (the thesis needed
records of several kilobytes to see any effect). To make throughput answer to the allocation, each
data node gets a **service rate** ``r`` (reads per second, default 14,000, per node configurable, so
heterogeneous nodes are possible) and behaves as one FIFO server with service time ``1 / r``, on top
of the real read.

How it is enforced — on the node itself, so it holds across every worker process and client:
the reads a worker sends to a node in one burst (:mod:`mdde_stream.benchmark.pipeline`) are one
``EVALSHA`` of :data:`PACED_BATCH_LUA` there, followed in the same pipeline by the reads' real
``HGETALL``s. Atomically (Redis runs a script alone) the script reads the node's clock ``TIME`` and
the time the node becomes free (a key next to the records), books each read of the burst in order as
the service slot ``[max(arrival, free), max(arrival, free) + 1/r)``, stores the new "free" time and
returns every slot's end. Each read — and its in-flight count, which the replica locator sees — is
held by its client until its record arrived and its own slot has passed. One small Lua call per
burst, and records never pass through Lua (converting a record to a Lua table and back doubled
the node's cost per read).

A read's *arrival* is when its client became free: the end of the slot of that client's previous
read (or "now" for a client's first read). Booking from there rather than from the moment the burst
reached the node makes the node a faithful FIFO server of the closed loop even when the worker
process is scheduled late on a busy host: a client released a few milliseconds late does not leave
its node idle in the model, because its next read is booked as if it had been sent on time. The
window is bounded (:data:`CATCH_UP_S`, arrivals are clamped to ``[now - window, now]``), so over a
run of ``D`` seconds a node never serves more than ``(D + window) * r`` reads, and a worker that
falls behind for longer shows up as lower throughput. With the node clocks of one host (the local
stack) arrivals compare exactly; across hosts the clamp bounds what clock skew can do.
This is the simulated benchmark's node model (a FIFO single server with deterministic service time)
with real records and real concurrency, so the two can be compared step by step. Consequences:

* all reads on one node: throughput <= r; spread evenly over W equal nodes: <= W * r;
* more benchmark workers raise throughput only until the nodes' capacity is reached;
* a node rate of ``0`` means "unpaced": a plain ``HGETALL`` at whatever speed Redis and the host give.

The clock key is per key prefix (one dataset), so concurrent benchmarks of the same dataset share
the nodes' capacity, as they would share real servers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mdde_stream.benchmark.errors import BenchmarkError

logger = logging.getLogger(__name__)

DEFAULT_NODE_RATE = 14_000.0
"""Reads per second one data node serves unless configured otherwise (``MDDE_BENCHMARK_NODE_RATES``).

Chosen so that the thesis workload (100,000 reads) spread evenly over four nodes is bounded at
56,000 reads/s (1.8 s; measured 1.86 s end to end on a quiet host), below what two workers drive
unpaced on two cores (~125,000 reads/s), while all reads on one node take 7.1 s: the allocation,
not the host, decides the figure (``bench/RESULTS.md``)."""

CATCH_UP_S = 0.025
"""How far in the past a read may be booked: the arrival a client reports is clamped to
``[now - CATCH_UP_S, now]`` on the node's clock (see the module docstring)."""

PACED_BATCH_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local s = tonumber(ARGV[1])
local floor = now - tonumber(ARGV[2])
local out = {now}
for i = 3, #ARGV do
  local a = tonumber(ARGV[i])
  if a == 0 or a > now then a = now elseif a < floor then a = floor end
  if free > a then a = free end
  free = a + s
  out[i - 1] = free
end
redis.call('SET', KEYS[1], string.format('%.0f', free), 'PX', 60000)
return out
"""
"""KEYS[1] the node's clock key; ARGV[1] service time and ARGV[2] the catch-up window in
microseconds, ARGV[3..n+2] each read's arrival (node µs, 0 = now). Returns ``{now, end of slot 1,
..., end of slot n}`` in node microseconds. The reads themselves are plain ``HGETALL``s pipelined
right behind the call, so records never pass through Lua. Epoch microseconds (~1.8e15) are exact in
Lua's doubles and come back as integers; ``%.0f`` keeps the stored value from turning into
``1.8e+15``."""


class CapacityError(BenchmarkError, ValueError):
    """A node-rate specification that cannot be parsed or names unknown nodes."""


def clock_key(key_prefix: str) -> str:
    """The key on each data node that holds the time (µs) it becomes free for this dataset."""
    return f"mdde:pace:{key_prefix}"


def service_time_us(rate: float) -> int:
    """Service time of one read in microseconds for ``rate`` reads/s (0 -> unpaced)."""
    if rate < 0:
        raise CapacityError(f"a node rate must be >= 0 reads/s, got {rate}")
    return 0 if rate == 0 else max(1, round(1_000_000 / rate))


def parse_rates(spec: str, node_ids: Sequence[str]) -> dict[str, float]:
    """Per-node reads/s from ``"2000"``, ``"2000,n3=500"`` or ``"n0=1000,n1=3000"``.

    A bare number sets every node; ``node=rate`` entries override it. Nodes left without a rate get
    :data:`DEFAULT_NODE_RATE`. Unknown node ids and negative or non-numeric rates are errors.
    """
    default = DEFAULT_NODE_RATE
    overrides: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        node, sep, value = part.partition("=")
        try:
            rate = float(value if sep else node)
        except ValueError:
            raise CapacityError(f"node rate {part!r} is not a number (use 2000 or n0=2000)") from None
        if rate < 0 or rate != rate or rate == float("inf"):
            raise CapacityError(f"node rate {part!r} must be a finite number >= 0")
        if sep:
            node = node.strip()
            if node not in node_ids:
                raise CapacityError(f"node rate {part!r} names unknown node {node!r} (nodes: {list(node_ids)})")
            overrides[node] = rate
        else:
            default = rate
    return {node: overrides.get(node, default) for node in node_ids}


def capacity_bound(rates: dict[str, float], node_reads: dict[str, int]) -> float:
    """Upper bound on throughput for a read split ``node_reads``: the busiest node's time decides.

    Used to sanity-check measurements: with service time ``1/r_w`` node ``w`` needs
    ``reads_w / r_w`` seconds, so no run can beat ``total / max_w(reads_w / r_w)``. Unpaced nodes
    (rate 0) impose no bound; returns ``inf`` when none does.
    """
    total = sum(node_reads.values())
    busiest = max((reads / rates[n] for n, reads in node_reads.items() if rates.get(n, 0) > 0), default=0.0)
    return float("inf") if busiest == 0 else total / busiest
