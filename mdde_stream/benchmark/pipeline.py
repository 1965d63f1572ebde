"""The benchmark's closed loop on pipelined connections: C clients, one socket per data node.

YCSB's model is kept exactly: ``clients`` clients each keep one read in flight; a client whose read
finished takes the next key of the run (in order) and sends it to the replica with the fewest reads
in flight (:class:`~mdde_stream.benchmark.locator.ReplicaLocator`). What changed is how the reads
travel. A thread per client spent its time in the GIL and in redis-py's per-call machinery; here one
loop owns one non-blocking socket per node, writes every read that became ready in one pass as one
pipelined burst per node, and parses the replies with hiredis (in C). A client is a slot in a count,
not an object: the hot path touches lists of ints and pre-encoded command bytes only.

Two ways a read is served, chosen per node by its service time:

* **unpaced** (service time 0): a plain ``HGETALL``; the read finishes when its reply arrives.
* **paced** (the node-capacity model, :mod:`mdde_stream.benchmark.capacity`): the reads sent to a
  node in one burst are booked in one Lua call *on the node itself*, as consecutive service slots of
  its FIFO server, and the call returns the records with the time until the first slot ends. Each
  read stays in flight until its own slot has passed, then its client moves on. Booking on the node
  keeps the capacity shared by every worker; booking per burst keeps the Lua cost per burst.

Timers use ``select`` (microsecond timeouts) rather than epoll (millisecond ones): a node's queue
is about a millisecond deep, so waking a whole millisecond late could leave it idle and understate
its capacity; waking up to :data:`TIMER_SLACK_S` late cannot.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis

from mdde_stream.benchmark.locator import ReplicaLocator
from mdde_stream.config import redact_url

logger = logging.getLogger(__name__)

MAX_BATCH = 64
"""Most reads booked in one Lua call (bounds how long the node runs one script)."""

RECV_BYTES = 1 << 20

BURST_DIVISOR = 2
BURST_WAIT_S = 0.001
"""Free clients wait to take their next keys until half of them are free or the first has
waited :data:`BURST_WAIT_S`: the reads then leave as a few large bursts rather than many small ones
(each burst is a system call here and a Lua call on a paced node). Their arrivals are still the
moments they became free, so a paced node's model does not see the wait; on an unpaced node it is
real client think time of at most :data:`BURST_WAIT_S`."""

TIMER_SLACK_S = 0.0005
"""How late the loop may wake for a finished slot, so that one wake-up frees several clients.

A node's queue holds ``clients / nodes`` reads (over a millisecond of work at the default rate),
so a client released 0.3 ms late still re-books before its node runs idle: the node's throughput
is unchanged and the loop does a burst of work per wake-up instead of one read."""


class NodeIOError(ConnectionError):
    """A data node connection failed or answered with an error (transient: the task may be retried)."""


def encode_command(*parts: bytes) -> bytes:
    """One RESP command from its arguments."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def bulk(value: bytes) -> bytes:
    """One RESP bulk string (an argument inside a command)."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


class NodeConnection:
    """A plain socket to one Redis data node plus its hiredis reply parser.

    Set-up commands (AUTH, SELECT, SCRIPT LOAD) run synchronously through :meth:`call`; during a
    task the loop writes pre-encoded bytes with :meth:`send` and parses with :meth:`replies`.
    """

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", ""):
            raise NodeIOError(f"data node URL {redact_url(url)!r}: only redis:// is supported by the benchmark workers")
        self.url = url
        self.name = redact_url(url)  # what messages show: never a password
        self.timeout_s = timeout_s
        try:
            self.sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379),
                                                 timeout=min(5.0, timeout_s))
        except OSError as exc:
            raise NodeIOError(f"cannot connect to data node {self.name}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout_s)
        self.reader = hiredis.Reader()
        if parsed.password:
            user = unquote(parsed.username) if parsed.username else None
            auth = [b"AUTH", unquote(parsed.password).encode()]
            if user:
                auth.insert(1, user.encode())
            self.call(*auth)
        db = (parsed.path or "/").strip("/")
        if db and db != "0":
            self.call(b"SELECT", db.encode())

    def fileno(self) -> int:
        return self.sock.fileno()

    def call(self, *parts: bytes) -> Any:
        """Send one command and wait for its reply (set-up only, never on the hot path)."""
        self.send(encode_command(*parts))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise NodeIOError(f"data node {self.name}: {reply}")
                return reply
            self.receive()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise NodeIOError(f"data node {self.name}: send failed: {exc}") from exc

    def receive(self) -> None:
        """Read what the socket holds (blocks only until the first byte) and feed the parser."""
        try:
            data = self.sock.recv(RECV_BYTES)
        except OSError as exc:
            raise NodeIOError(f"data node {self.name}: receive failed: {exc}") from exc
        if not data:
            raise NodeIOError(f"data node {self.name} closed the connection")
        self.reader.feed(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@dataclass
class NodePlan:
    """What the loop needs per node: its connection and, when paced, the booking call's fixed parts."""

    conn: NodeConnection
    service_us: int = 0
    script_sha: bytes = b""
    clock_key: bytes = b""
    catch_up_us: int = 0
    # filled by the loop
    out: list[int] = field(default_factory=list)

    @property
    def booking_args(self) -> bytes:
        """ARGV[1..2] of the booking call: service time and catch-up window, in microseconds."""
        return bulk(b"%d" % self.service_us) + bulk(b"%d" % self.catch_up_us)


@dataclass
class LoopResult:
    """Reads per (node, fragment) as a flat list ``w * F + f``, and reads that found no record."""

    counts: list[int]
    missing: int
    bursts: int


def closed_loop(
    locator: ReplicaLocator,
    nodes: Sequence[NodePlan],
    records: Sequence[int],
    frags: Sequence[int],
    hgetall_cmds: Sequence[bytes],
    clients: int,
    fragment_count: int,
    deadline_s: float = 600.0,
) -> LoopResult:
    """Serve ``records`` (read ``i`` is record ``records[i]`` of fragment ``frags[i]``) with ``clients``
    closed-loop clients; returns the per-cell counts. Raises :class:`NodeIOError` on any I/O failure
    or when nothing happened for ``deadline_s`` (a node that stopped answering).

    ``hgetall_cmds[r]`` is record ``r``'s whole ``HGETALL`` command, built once per dataset, so no
    read formats a string.
    """
    n = len(records)
    W = len(nodes)
    F = fragment_count
    counts = [0] * (W * F)
    missing = 0
    bursts = 0
    acquire = locator.acquire
    release = locator.release
    # Per node, in send order: unpaced -> one fragment index per read awaiting its reply;
    # paced -> (fragments, send time) per booking call awaiting its reply.
    awaiting: list[deque] = [deque() for _ in range(W)]
    # Paced reads whose records arrived and whose slots are still running: per node a FIFO of
    # [local - node clock offset (s), slot ends (node µs), fragments, position].
    serving: list[deque] = [deque() for _ in range(W)]
    pending_frags: list[list[int]] = [[] for _ in range(W)]
    pending_arrivals: list[list[int]] = [[] for _ in range(W)]
    paced = [node.service_us > 0 for node in nodes]
    by_fd = {node.conn.fileno(): w for w, node in enumerate(nodes)}
    socks = [node.conn.sock for node in nodes]
    # Paced: the burst whose booking arrived and whose records are still arriving, and how many.
    booked: list[list | None] = [None] * W
    left = [0] * W
    sha_arg = [bulk(node.script_sha) for node in nodes]
    booking_args = [node.booking_args for node in nodes]
    # Node time (µs) at which each freed client became free, consumed in order by issue(); 0 = now.
    arrivals: list[int] = []

    nxt = 0
    done = 0

    def issue(count: int) -> None:
        """``count`` clients are free: each takes the next key and picks its replica."""
        nonlocal nxt
        stop = min(n, nxt + count)
        arrived = arrivals + [0] * (stop - nxt - len(arrivals))
        arrivals.clear()
        for j, i in enumerate(range(nxt, stop)):
            f = frags[i]
            w = acquire(f)
            nodes[w].out.append(records[i])
            pending_frags[w].append(f)
            pending_arrivals[w].append(arrived[j])
        nxt = stop

    def flush() -> None:
        nonlocal bursts
        for w, node in enumerate(nodes):
            out = node.out
            if not out:
                continue
            fr = pending_frags[w]
            if paced[w]:
                arr = pending_arrivals[w]
                parts = []
                chunks = []
                for a in range(0, len(out), MAX_BATCH):
                    chunk = out[a : a + MAX_BATCH]
                    parts.append(b"*%d\r\n$7\r\nEVALSHA\r\n%s$1\r\n1\r\n" % (len(chunk) + 6, sha_arg[w]))
                    parts.append(node.clock_key)
                    parts.append(booking_args[w])
                    parts.extend([bulk(b"%d" % t) for t in arr[a : a + MAX_BATCH]])
                    parts.extend([hgetall_cmds[r] for r in chunk])
                    chunks.append(fr[a : a + MAX_BATCH])
                node.conn.send(b"".join(parts))
                now = time.perf_counter()
                awaiting[w].extend([(chunk, now) for chunk in chunks])
            else:
                node.conn.send(b"".join([hgetall_cmds[r] for r in out]))
                awaiting[w].extend(fr)
            pending_arrivals[w].clear()
            bursts += 1
            out.clear()
            fr.clear()

    def finish_slots(now: float) -> int:
        """Complete every paced read whose slot has ended by ``now``; returns how many."""
        nonlocal done
        freed = 0
        for w in range(W):
            queue = serving[w]
            while queue:
                entry = queue[0]
                offset, ends, fl, pos = entry
                node_now = (now - offset) * 1e6
                stop = pos
                size = len(fl)
                while stop < size and ends[stop] <= node_now:
                    counts[w * F + fl[stop]] += 1
                    release(w)
                    stop += 1
                if stop > pos:
                    arrivals.extend(ends[pos:stop])
                    freed += stop - pos
                if stop < size:
                    entry[3] = stop
                    break
                queue.popleft()
        done += freed
        return freed

    def next_end() -> float | None:
        """Local time at which the earliest running slot ends (None: nothing is being served)."""
        first = None
        for w in range(W):
            if serving[w]:
                offset, ends, _, pos = serving[w][0]
                end = offset + ends[pos] / 1e6
                first = end if first is None or end < first else first
        return first

    issue(min(clients, n))
    flush()
    min_burst = max(1, min(clients, n) // BURST_DIVISOR)
    ready = 0  # clients that are free and have not taken their next key yet
    ready_since = 0.0
    limit = time.monotonic() + deadline_s
    while done < n:
        end = next_end()
        now = time.perf_counter()
        timeout = 1.0 if end is None else min(1.0, max(0.0, end + TIMER_SLACK_S - now))
        if ready:
            timeout = min(timeout, max(0.0, ready_since + BURST_WAIT_S - now))
        readable = select.select(socks, (), (), timeout)[0]
        freed = 0
        for sock in readable:
            w = by_fd[sock.fileno()]
            conn = nodes[w].conn
            conn.receive()
            reader = conn.reader
            reply = reader.gets()
            if paced[w]:
                # A burst's replies: its booking, then one HGETALL per read.
                while reply is not False:
                    if isinstance(reply, hiredis.ReplyError):
                        raise NodeIOError(f"data node {conn.name}: {reply}")
                    entry = booked[w]
                    if entry is None:
                        fl, sent = awaiting[w].popleft()
                        # Node time -> local time, anchored at the send: the node's "now" came
                        # after it, so a read is released at most one network delay early.
                        entry = booked[w] = [sent - reply[0] / 1e6, reply[1:], fl, 0]
                        left[w] = len(fl)
                    else:
                        if not reply:
                            missing += 1
                        left[w] -= 1
                    if not left[w]:  # every record of the burst is here: its slots may end
                        serving[w].append(entry)
                        booked[w] = None
                    reply = reader.gets()
            else:
                got = 0
                aw = awaiting[w]
                while reply is not False:
                    if isinstance(reply, hiredis.ReplyError):
                        raise NodeIOError(f"data node {conn.name}: {reply}")
                    f = aw.popleft()
                    counts[w * F + f] += 1
                    release(w)
                    if not reply:
                        missing += 1
                    got += 1
                    reply = reader.gets()
                done += got
                freed += got
                arrivals.extend([0] * got)
        now = time.perf_counter()
        freed += finish_slots(now)
        if freed:
            if not ready:
                ready_since = now
            ready += freed
        if ready and (ready >= min_burst or nxt - done == 0 or now - ready_since >= BURST_WAIT_S):
            issue(ready)
            flush()
            ready = 0
        if readable or freed or not (any(awaiting) or any(b is not None for b in booked)):
            limit = time.monotonic() + deadline_s  # progress, or only waiting for slots to end
        elif time.monotonic() > limit:
            raise NodeIOError(f"no reply and no finished read for {deadline_s:.0f} s ({done} of {n} reads done)")
    return LoopResult(counts, missing, bursts)
