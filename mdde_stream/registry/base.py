"""The allocation-state contract both backends implement (in-process memory, Redis).

State per registry: node ids, fragment ids, each fragment's record range, the allocation matrix
(node × fragment bits), a snapshot of it (the reset point), the shuffle queue of accepted data moves,
the *physical* matrix (what the data nodes hold: the allocation as of the last shuffle), and the
verdicts of applied event ids (so a redelivered action is applied at most once).

Invariant kept by every backend: physical matrix + replay of the queue == allocation matrix. Reset
restores allocation to the snapshot and drops the queue; the ``Registry`` then brings the data nodes
from the physical matrix back to the snapshot, touching only the cells that differ.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from mdde_stream.errors import MddeError
from mdde_stream.events import ActionKind
from mdde_stream.registry.codes import Move, Verdict


class StoreError(MddeError, RuntimeError):
    """The state backend is unreachable, uninitialised or inconsistent."""


class AllocationStore(abc.ABC):
    """Allocation state with atomic action application; see the module docstring for the model."""

    @abc.abstractmethod
    def setup(
        self,
        node_ids: list[str],
        fragment_ids: list[str],
        allocation: dict[str, list[str]],
        fragment_records: dict[str, tuple[int, int]],
    ) -> None:
        """Wipe and initialise; the physical matrix and the snapshot both start as ``allocation``."""

    @abc.abstractmethod
    def wipe(self) -> int:
        """Delete this state entirely (allocation, queue, remembered verdicts); returns how many parts existed."""

    @abc.abstractmethod
    def is_initialised(self) -> bool:
        """True when a previous ``setup`` left state behind (a restarted service attaches to it)."""

    @abc.abstractmethod
    def raise_fence(self, episode: int, step: int) -> tuple[int, int]:
        """Fence off every action at or before (``episode``, ``step``): the stage moved on from them
        (it gave up waiting, or reset). The fence only rises; returns it."""

    @abc.abstractmethod
    def fence(self) -> tuple[int, int] | None:
        """The highest (episode, step) fenced off, or None."""

    @abc.abstractmethod
    def node_ids(self) -> list[str]: ...

    @abc.abstractmethod
    def fragment_ids(self) -> list[str]: ...

    @abc.abstractmethod
    def fragment_records(self) -> dict[str, tuple[int, int]]:
        """Fragment -> record index range ``[start, end)``."""

    @abc.abstractmethod
    def apply(
        self, event_id: str, kind: ActionKind, fragment: str | None, source: str | None, target: str | None
    ) -> Verdict:
        """Validate and apply one action atomically; a repeated ``event_id`` returns its first verdict."""

    def apply_many(
        self, actions: Sequence[tuple[str, ActionKind, str | None, str | None, str | None]]
    ) -> list[Verdict]:
        """Apply ``(event_id, kind, fragment, source, target)`` tuples one by one, in order."""
        return [self.apply(*a) for a in actions]

    def last_matrix(self) -> np.ndarray | None:
        """The allocation as the last ``apply_many`` left it, if the backend returned it for free."""
        return None

    @abc.abstractmethod
    def verdict_of(self, event_id: str) -> Verdict | None:
        """The recorded verdict of an applied event id, if it is still remembered."""

    @abc.abstractmethod
    def matrix(self) -> np.ndarray:
        """Bool (W, F) allocation in ``node_ids`` / ``fragment_ids`` order. Treat as read-only."""

    @abc.abstractmethod
    def snapshot_matrix(self) -> np.ndarray: ...

    @abc.abstractmethod
    def physical_matrix(self) -> np.ndarray:
        """What the data nodes hold: the allocation as of the last completed move."""

    @abc.abstractmethod
    def snapshot(self) -> None:
        """Remember the current allocation as the reset point."""

    @abc.abstractmethod
    def reset(self) -> int:
        """Restore the allocation to the snapshot and drop queued moves; returns cells changed."""

    @abc.abstractmethod
    def pending_moves(self) -> list[Move]:
        """The shuffle queue, oldest first, without removing anything."""

    @abc.abstractmethod
    def complete_moves(self, moves: list[Move]) -> int:
        """Remove executed moves from the head of the queue and apply them to the physical matrix.

        Moves must be a prefix of ``pending_moves()``; ones already completed are ignored, so a
        shuffle that crashed after executing but before completing can simply run again.
        """

    @abc.abstractmethod
    def set_physical(self, matrix: np.ndarray) -> None:
        """Record what the data nodes hold after a reset brought them back to the snapshot."""

    # Derived queries; backends override where they can answer faster.

    def drain_moves(self) -> list[Move]:
        """Take the whole shuffle queue (marking it done): for callers that move data themselves."""
        moves = self.pending_moves()
        self.complete_moves(moves)
        return moves

    def holds(self, node: str, fragment: str) -> bool:
        w = self._node_pos(node)
        f = self._fragment_pos(fragment)
        return bool(self.matrix()[w, f])

    def allocation_map(self) -> dict[str, list[str]]:
        """Node -> fragments it holds, in fragment order."""
        m = self.matrix()
        frags = self.fragment_ids()
        return {node: [frags[f] for f in np.flatnonzero(m[w])] for w, node in enumerate(self.node_ids())}

    def replicas(self, fragment: str) -> list[str]:
        f = self._fragment_pos(fragment)
        nodes = self.node_ids()
        return [nodes[w] for w in np.flatnonzero(self.matrix()[:, f])]

    def close(self) -> None:
        """Release connections; the state itself stays."""

    def _node_pos(self, node: str) -> int:
        try:
            return self.node_ids().index(node)
        except ValueError:
            raise KeyError(f"unknown node {node!r}") from None

    def _fragment_pos(self, fragment: str) -> int:
        try:
            return self.fragment_ids().index(fragment)
        except ValueError:
            raise KeyError(f"unknown fragment {fragment!r}") from None


def allocation_to_matrix(
    node_ids: list[str], fragment_ids: list[str], allocation: dict[str, list[str]]
) -> np.ndarray:
    """Dense bool matrix from a node -> fragments map, rejecting ids that are not in the layout."""
    if not node_ids or not fragment_ids:
        raise ValueError("a layout needs at least one node and one fragment")
    if any(not isinstance(x, str) or not x for x in [*node_ids, *fragment_ids]):
        raise ValueError("node and fragment ids must be non-empty strings")
    if len(set(node_ids)) != len(node_ids) or len(set(fragment_ids)) != len(fragment_ids):
        raise ValueError("node and fragment ids must be unique")
    n_pos = {n: i for i, n in enumerate(node_ids)}
    f_pos = {f: i for i, f in enumerate(fragment_ids)}
    m = np.zeros((len(node_ids), len(fragment_ids)), dtype=bool)
    for node, frags in allocation.items():
        if node not in n_pos:
            raise ValueError(f"allocation names unknown node {node!r}")
        for frag in frags:
            if frag not in f_pos:
                raise ValueError(f"allocation names unknown fragment {frag!r}")
            m[n_pos[node], f_pos[frag]] = True
    missing = [fragment_ids[f] for f in np.flatnonzero(~m.any(axis=0))]
    if missing:
        raise ValueError(f"fragments without a replica in the initial allocation: {missing[:5]}")
    return m
