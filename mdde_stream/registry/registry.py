"""The registry as a domain service: one step of actions in, verdicts out; reads, reset, shuffle.

Both the stage (embedded, in-process) and the ``mdde.actions`` consumer (``mdde_stream/services/registry.py``)
use this class, so a step means the same thing on either path: actions judged one by one in
ascending agent order against the state the earlier agents left, each with an ``ActionResult``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mdde_stream.config import Settings, redact_url
from mdde_stream.events import ActionKind, ActionResult, ActionSubmitted, trusted_event, utc_now
from mdde_stream.registry.base import AllocationStore, StoreError
from mdde_stream.registry.codes import Verdict, validate
from mdde_stream.registry.fragmenter import Grouping, fragment_layout, node_ids
from mdde_stream.registry.memory import MemoryStore

if TYPE_CHECKING:
    from mdde_stream.datanodes import DataNodes

logger = logging.getLogger(__name__)

#: Redis key prefix of the registry service's state (the remote stage attaches to it).
SERVICE_REGISTRY_PREFIX = "mdde:registry"


class Registry:
    """Allocation state (``store``) plus, optionally, the data nodes its moves act on."""

    def __init__(self, store: AllocationStore, data_nodes: DataNodes | None = None) -> None:
        self.store = store
        self.data_nodes = data_nodes
        self._live = isinstance(store, MemoryStore)  # its matrix() is already a cheap live view
        self._cache: np.ndarray | None = None
        self.refresh()

    def refresh(self) -> None:
        """Drop cached state; call when another process may have changed a shared (Redis) store."""
        self.node_ids: list[str] = self.store.node_ids()
        self.fragment_ids: list[str] = self.store.fragment_ids()
        self._nidx = {n: i for i, n in enumerate(self.node_ids)}
        self._fidx = {f: i for i, f in enumerate(self.fragment_ids)}
        self._cache = None

    # -- actions --------------------------------------------------------------------------

    def apply_actions(self, actions: Sequence[ActionSubmitted]) -> list[ActionResult]:
        """Apply one step's actions in ascending agent order; one result per action, in that order.

        ``conflict`` marks a rejection of an action that was valid against the allocation at the
        start of the step, i.e. an earlier agent of the same step got there first. After a crash
        and redelivery the verdict is the recorded one; ``conflict`` is recomputed and best effort.
        """
        now = utc_now()
        return [
            # Every value comes from a validated action or from this registry: no re-validation.
            trusted_event(ActionResult, {
                "event_id": f"{a.event_id}-result",  # a redelivered verdict keeps its id: telemetry stays exactly once
                "run_id": a.run_id,
                "episode": a.episode,
                "step": a.step,
                "ts": now,
                "action_event_id": a.event_id,
                "agent": a.agent,
                "agent_index": a.agent_index,
                "action_index": a.action_index,
                "kind": a.kind,
                "accepted": v.accepted,
                "code": int(v.code) if v.code is not None else None,
                "message": v.message,
                "conflict": conflict,
            })
            for a, v, conflict in self.apply_step(actions)
        ]

    def apply_step(self, actions: Sequence[ActionSubmitted]) -> list[tuple[ActionSubmitted, Verdict, bool]]:
        """``apply_actions`` without building result events: (action, verdict, conflict) in agent order.

        For callers on the hot path that do not publish results (building the pydantic events is
        most of a step's cost in memory).
        """
        ordered = sorted(actions, key=lambda a: a.agent_index) if len(actions) > 1 else list(actions)
        start = self.allocation().copy() if len(ordered) > 1 else None
        verdicts = self.store.apply_many([(a.event_id, a.kind, a.fragment, a.source, a.target) for a in ordered])
        out = []
        changed = False
        start_counts: np.ndarray | None = None
        for a, v in zip(ordered, verdicts):
            conflict = False
            if not v.accepted and start is not None and changed:
                if start_counts is None:
                    start_counts = start.sum(axis=0)
                conflict = self._check(a.kind, a.fragment, a.source, a.target, start, start_counts).accepted
            changed = changed or (v.accepted and a.kind is not ActionKind.SKIP)
            out.append((a, v, conflict))
        if changed and not self._live:
            self._cache = self.store.last_matrix()
            if self._cache is not None:
                self._cache.flags.writeable = False
        return out

    def valid_action(
        self, kind: ActionKind, fragment: str | None, source: str | None, target: str | None
    ) -> Verdict:
        """Would this action be accepted now? The same rule ``apply`` uses, without applying it."""
        return self._check(kind, fragment, source, target, self.allocation())

    def _check(
        self,
        kind: ActionKind,
        fragment: str | None,
        source: str | None,
        target: str | None,
        m: np.ndarray,
        counts: np.ndarray | None = None,
    ) -> Verdict:
        if counts is None:
            counts = m.sum(axis=0)
        return validate(
            ActionKind(kind), fragment, source, target, self._nidx, self._fidx,
            lambda w, f: bool(m[w, f]), lambda f: int(counts[f]),
        )

    # -- reads ----------------------------------------------------------------------------

    def allocation(self) -> np.ndarray:
        """Bool (W, F) in ``node_ids`` × ``fragment_ids`` order; read-only, copy before changing."""
        if self._live:
            return self.store.matrix()
        if self._cache is None:
            self._cache = self.store.matrix()
            self._cache.flags.writeable = False
        return self._cache

    def allocation_map(self) -> dict[str, list[str]]:
        m = self.allocation()
        return {n: [self.fragment_ids[f] for f in np.flatnonzero(m[w])] for w, n in enumerate(self.node_ids)}

    def replicas(self, fragment: str) -> list[str]:
        f = self._fidx.get(fragment)
        if f is None:
            raise KeyError(f"unknown fragment {fragment!r}")
        return [self.node_ids[w] for w in np.flatnonzero(self.allocation()[:, f])]

    def fragments_of(self, node: str) -> list[str]:
        w = self._nidx.get(node)
        if w is None:
            raise KeyError(f"unknown node {node!r}")
        return [self.fragment_ids[f] for f in np.flatnonzero(self.allocation()[w])]

    def counts(self) -> dict[str, int]:
        return {
            "nodes": len(self.node_ids),
            "fragments": len(self.fragment_ids),
            "replicas": int(np.count_nonzero(self.allocation())),
        }

    # -- snapshot, reset, shuffle ---------------------------------------------------------

    def snapshot(self) -> None:
        self.store.snapshot()

    def reset(self) -> int:
        """Restore allocation and data nodes to the snapshot; cost follows the cells that changed."""
        changed = self.store.reset()
        self._cache = None
        if self.data_nodes is not None:
            snap = self.store.snapshot_matrix()
            phys = self.store.physical_matrix()
            if not np.array_equal(phys, snap):
                self._move_data(phys, snap, "reset")
            self.store.set_physical(snap)
        # Without data nodes the physical matrix stays as it is: it records what the data nodes hold,
        # which a registry holding them (the service's, see sync_data) brings up to date later.
        return changed

    def _move_data(self, phys: np.ndarray, target: np.ndarray, why: str) -> None:
        """Bring data nodes from ``phys`` to ``target``: copies first (never lose the only copy), then deletes."""
        assert self.data_nodes is not None
        ranges = self.store.fragment_records()
        for w, f in np.argwhere(target & ~phys):
            holders = np.flatnonzero(phys[:, f] & target[:, f])  # stay put through the deletes: safe to rerun
            if holders.size == 0:
                holders = np.flatnonzero(phys[:, f])
            if holders.size == 0:
                raise StoreError(f"fragment {self.fragment_ids[f]} is on no data node; cannot restore it")
            frag = self.fragment_ids[f]
            self.data_nodes.copy_range(self.node_ids[holders[0]], self.node_ids[w], *ranges[frag])
        self.store.set_physical(phys | target)
        for w, f in np.argwhere(phys & ~target):
            self.data_nodes.delete_range(self.node_ids[w], *ranges[self.fragment_ids[f]])
        logger.info(
            "%s: %d copies and %d deletes on the data nodes",
            why, int(np.count_nonzero(target & ~phys)), int(np.count_nonzero(phys & ~target)),
        )

    def sync_data(self) -> int:
        """Make the data nodes hold the current allocation (the registry service, before a real benchmark).

        Normally the shuffle queue leads from what the nodes hold to the allocation and runs in
        order (:meth:`shuffle`). When it does not — a stage attached to the shared state reset it
        without data nodes — the nodes are moved by the difference instead, like a reset, and the
        queue is retired. Returns the number of moves or changed cells. Safe to run again.
        """
        if self.data_nodes is None:
            raise StoreError("this registry has no data nodes to move data on (set MDDE_DATA_NODES)")
        phys, target = self.store.physical_matrix(), self.store.matrix()
        moves = self.store.pending_moves()
        expected = phys.copy()
        for move in moves:
            expected[self._nidx[move.target], self._fidx[move.fragment]] = move.kind is ActionKind.COPY
        if np.array_equal(expected, target):
            return self.shuffle()
        self.store.drain_moves()
        self._move_data(phys, target, "data sync")
        self.store.set_physical(target)
        self._cache = None
        return int(np.count_nonzero(phys != target))

    def shuffle(self) -> int:
        """Run the queued data moves on the data nodes, in order; returns how many were retired.

        Without data nodes the queue is only retired (nothing to move), so it does not grow forever.
        Each move is marked done right after it ran; a crash in between re-runs it, harmlessly.
        """
        moves = self.store.pending_moves()
        if self.data_nodes is None:
            return self.store.complete_moves(moves)
        ranges = self.store.fragment_records()
        for move in moves:
            self.data_nodes.execute(move, ranges[move.fragment])
            self.store.complete_moves([move])
        if moves:
            logger.info("shuffle ran %d moves", len(moves))
        return len(moves)

    def close(self) -> None:
        self.store.close()
        if self.data_nodes is not None:
            self.data_nodes.close()


def open_store(settings: Settings, prefix: str = SERVICE_REGISTRY_PREFIX) -> AllocationStore:
    """MemoryStore for an empty / ``memory`` state URL, RedisStore for ``redis://``."""
    url = settings.state
    if url in ("", "memory"):
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mdde_stream.registry.redis_store import RedisStore

        return RedisStore(url, prefix=prefix)
    raise StoreError(f"unsupported state URL {redact_url(url)!r}: use redis://host:port/db, or leave MDDE_STATE empty")


def open_data_nodes(
    settings: Settings, node_count: int, fragment_count: int, record_count: int, shape: str = "default"
) -> DataNodes | None:
    """The configured data nodes (``MDDE_DATA_NODES``) in node order, or None without any."""
    if not settings.data_node_urls:
        return None
    from mdde_stream.datanodes import DataNodes, RecordSpec

    return DataNodes.from_settings(settings, node_ids(node_count), RecordSpec.preset(shape, record_count=record_count))


def open_registry(
    settings: Settings,
    node_count: int = 4,
    fragment_count: int = 20,
    record_count: int = 10_000,
    data_nodes: DataNodes | None = None,
    *,
    prefix: str = SERVICE_REGISTRY_PREFIX,
    reuse: bool = False,
    grouping: Grouping = "hashed",
    numbering: str | Sequence[int] = "node",
    layout_seed: int = 0,
) -> Registry:
    """A registry with the fragmenter's initial layout, data loaded (if data nodes) and snapshotted.

    ``reuse=True`` attaches to state an earlier process left in a shared store (a restarted
    registry service must not wipe what it already applied); the layout must match.
    ``grouping``, ``numbering`` and ``layout_seed`` choose the fragmenter's layout (``fragmenter.py``).
    """
    store = open_store(settings, prefix)
    if reuse and store.is_initialised():
        if len(store.node_ids()) != node_count or len(store.fragment_ids()) != fragment_count:
            raise StoreError(
                f"existing registry state {prefix!r} has {len(store.node_ids())} nodes × "
                f"{len(store.fragment_ids())} fragments, not {node_count} × {fragment_count}"
            )
        expected = fragment_layout(record_count, node_count, fragment_count, grouping, numbering, layout_seed)
        snapshot = store.snapshot_matrix()
        nodes, frags = store.node_ids(), store.fragment_ids()
        held = {n: [frags[f] for f in np.flatnonzero(snapshot[w])] for w, n in enumerate(nodes)}
        if held != expected.allocation:
            raise StoreError(
                f"existing registry state {prefix!r} was laid out with another fragment numbering "
                f"(initial allocation {held}); start the registry with the same layout options"
            )
        logger.info("attached to existing registry state %r", prefix)
        if data_nodes is not None:
            _ensure_data(store, data_nodes)
        return Registry(store, data_nodes)
    if data_nodes is not None and data_nodes.spec.record_count != record_count:
        raise ValueError(f"data nodes generate {data_nodes.spec.record_count} records, registry expects {record_count}")
    layout = fragment_layout(record_count, node_count, fragment_count, grouping, numbering, layout_seed)
    ranges, allocation = layout.ranges, layout.allocation
    nodes = list(allocation)
    frags = list(ranges)
    store.setup(nodes, frags, allocation, ranges)
    if data_nodes is not None:
        data_nodes.load(ranges, allocation)
    store.snapshot()
    return Registry(store, data_nodes)


def run_prefix(root: str, run_id: str) -> str:
    """Where the registry state of one remote run lives: every run is isolated from the others."""
    return f"{root}:run:{run_id}"


def attach_registry(settings: Settings, prefix: str, record_shape: str = "default") -> Registry | None:
    """The registry of state a stage set up under ``prefix`` (None if there is none), with the data
    nodes of ``MDDE_DATA_NODES`` (loaded with the records if they do not hold what the state says)."""
    store = open_store(settings, prefix)
    if not store.is_initialised():
        store.close()
        return None
    data_nodes = None
    if settings.data_node_urls:
        from mdde_stream.datanodes import DataNodes, RecordSpec

        records = max(end for _, end in store.fragment_records().values())
        data_nodes = DataNodes.from_settings(settings, store.node_ids(), RecordSpec.preset(record_shape, record_count=records))
        _ensure_data(store, data_nodes)
    return Registry(store, data_nodes)


def _ensure_data(store: AllocationStore, data_nodes: DataNodes) -> None:
    """Load the records again when the data nodes do not hold what the attached state says they do
    (the state was set up by a stage without data nodes, or the nodes were flushed)."""
    nodes, frags, ranges = store.node_ids(), store.fragment_ids(), store.fragment_records()
    physical = store.physical_matrix()
    wrong = data_nodes.mismatches(physical, nodes, ranges, frags)
    if wrong:
        logger.warning("data nodes disagree with the registry state (%s%s); loading the records again",
                       "; ".join(wrong[:3]), "; ..." if len(wrong) > 3 else "")
        data_nodes.load(ranges, {n: [frags[f] for f in np.flatnonzero(physical[w])] for w, n in enumerate(nodes)})
