"""In-process allocation state: the embedded backend, and the reference the Redis one must match.

Hot path is ``apply`` (the stage runs thousands of env steps per second), so the state is kept in
plain Python lists for the checks and a numpy matrix that is updated in place, never rebuilt.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import numpy as np

from mdde_stream.events import ActionKind
from mdde_stream.registry.base import AllocationStore, StoreError, allocation_to_matrix
from mdde_stream.registry.codes import Move, Verdict, validate

logger = logging.getLogger(__name__)

_COPY = ActionKind.COPY
_DELETE = ActionKind.DELETE


class MemoryStore(AllocationStore):
    """Allocation state in this process; gone when the process ends.

    ``dedupe_capacity`` bounds the remembered event ids (oldest forgotten first), the in-memory
    counterpart of the Redis backend's verdict TTL.
    """

    def __init__(self, dedupe_capacity: int = 250_000) -> None:
        self.dedupe_capacity = dedupe_capacity
        self._nodes: list[str] = []
        self._frags: list[str] = []
        self._records: dict[str, tuple[int, int]] = {}
        self._nidx: dict[str, int] = {}
        self._fidx: dict[str, int] = {}
        self._rows: list[list[bool]] = []
        self._rc: list[int] = []
        self._m = np.zeros((0, 0), dtype=bool)
        self._snap = self._m.copy()
        self._phys = self._m.copy()
        self._seen: dict[str, Verdict] = {}
        self._queue: deque[tuple[ActionKind, str, str | None, str, int]] = deque()
        self._seq = 0
        self._ready = False
        self._fence: tuple[int, int] | None = None
        # apply() is check-then-write; the lock keeps concurrent callers from both passing the check
        self._lock = threading.Lock()

    def setup(
        self,
        node_ids: list[str],
        fragment_ids: list[str],
        allocation: dict[str, list[str]],
        fragment_records: dict[str, tuple[int, int]],
    ) -> None:
        m = allocation_to_matrix(node_ids, fragment_ids, allocation)
        self._nodes = list(node_ids)
        self._frags = list(fragment_ids)
        self._records = {f: (int(a), int(b)) for f, (a, b) in fragment_records.items()}
        self._nidx = {n: i for i, n in enumerate(node_ids)}
        self._fidx = {f: i for i, f in enumerate(fragment_ids)}
        self._load(m)
        self._snap = m.copy()
        self._phys = m.copy()
        self._seen.clear()
        self._queue.clear()
        self._seq = 0
        self._ready = True

    def wipe(self) -> int:
        existed = 1 if self._ready else 0
        self.__init__(self.dedupe_capacity)  # type: ignore[misc]
        return existed

    def _load(self, m: np.ndarray) -> None:
        self._m = m.copy()
        self._rows = [[bool(x) for x in row] for row in m]
        self._rc = [int(c) for c in m.sum(axis=0)]

    def is_initialised(self) -> bool:
        return self._ready

    def raise_fence(self, episode: int, step: int) -> tuple[int, int]:
        self._fence = max(self._fence or (-1, -1), (episode, step))
        return self._fence

    def fence(self) -> tuple[int, int] | None:
        return self._fence

    def _require(self) -> None:
        if not self._ready:
            raise StoreError("allocation store is not set up: call setup() (or open_registry) first")

    def node_ids(self) -> list[str]:
        return list(self._nodes)

    def fragment_ids(self) -> list[str]:
        return list(self._frags)

    def fragment_records(self) -> dict[str, tuple[int, int]]:
        return dict(self._records)

    def _holds_at(self, w: int, f: int) -> bool:
        return self._rows[w][f]

    def apply(
        self, event_id: str, kind: ActionKind, fragment: str | None, source: str | None, target: str | None
    ) -> Verdict:
        with self._lock:
            return self._apply(event_id, kind, fragment, source, target)

    def _apply(
        self, event_id: str, kind: ActionKind, fragment: str | None, source: str | None, target: str | None
    ) -> Verdict:
        seen = self._seen.get(event_id)
        if seen is not None:
            return seen
        if not self._ready:
            self._require()
        verdict = validate(kind, fragment, source, target, self._nidx, self._fidx, self._holds_at, self._rc.__getitem__)
        if verdict.accepted and kind is not ActionKind.SKIP:
            f = self._fidx[fragment]  # type: ignore[index]
            t = self._nidx[target]  # type: ignore[index]
            if kind is _COPY:
                self._rows[t][f] = True
                self._rc[f] += 1
                self._m[t, f] = True
            else:
                self._rows[t][f] = False
                self._rc[f] -= 1
                self._m[t, f] = False
            self._seq += 1
            self._queue.append((kind, fragment, source if kind is _COPY else None, target, self._seq))  # type: ignore[arg-type]
        seen_map = self._seen
        seen_map[event_id] = verdict
        if len(seen_map) > self.dedupe_capacity:
            del seen_map[next(iter(seen_map))]
        return verdict

    def verdict_of(self, event_id: str) -> Verdict | None:
        return self._seen.get(event_id)

    def holds(self, node: str, fragment: str) -> bool:
        self._require()
        return self._rows[self._node_pos(node)][self._fragment_pos(fragment)]

    def replicas(self, fragment: str) -> list[str]:
        f = self._fragment_pos(fragment)
        return [n for w, n in enumerate(self._nodes) if self._rows[w][f]]

    def _node_pos(self, node: str) -> int:
        try:
            return self._nidx[node]
        except KeyError:
            raise KeyError(f"unknown node {node!r}") from None

    def _fragment_pos(self, fragment: str) -> int:
        try:
            return self._fidx[fragment]
        except KeyError:
            raise KeyError(f"unknown fragment {fragment!r}") from None

    def matrix(self) -> np.ndarray:
        self._require()
        view = self._m.view()
        view.flags.writeable = False
        return view

    def snapshot_matrix(self) -> np.ndarray:
        return self._snap.copy()

    def physical_matrix(self) -> np.ndarray:
        return self._phys.copy()

    def snapshot(self) -> None:
        self._require()
        self._snap = self._m.copy()

    def reset(self) -> int:
        self._require()
        changed = int(np.count_nonzero(self._m != self._snap))
        if changed:
            self._load(self._snap)
        self._queue.clear()
        return changed

    def pending_moves(self) -> list[Move]:
        return [Move(k, f, s, t, q) for k, f, s, t, q in self._queue]

    def complete_moves(self, moves: list[Move]) -> int:
        done = 0
        for move in moves:
            if not self._queue or self._queue[0][4] > move.seq:
                continue  # completed by an earlier run
            if self._queue[0][4] != move.seq:
                raise StoreError(f"move seq {move.seq} is not at the head of the shuffle queue")
            self._queue.popleft()
            self._phys[self._nidx[move.target], self._fidx[move.fragment]] = move.kind is _COPY
            done += 1
        return done

    def set_physical(self, matrix: np.ndarray) -> None:
        if matrix.shape != self._m.shape:
            raise StoreError(f"physical matrix shape {matrix.shape} != allocation shape {self._m.shape}")
        self._phys = matrix.astype(bool, copy=True)
