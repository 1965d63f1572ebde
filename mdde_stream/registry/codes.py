"""Verdicts, stable error codes and the pure validation rule shared by every backend.

The rule lives here once, in plain Python over indices, so the in-memory store, the action mask
and the tests all judge an action the same way. The Redis backend's Lua script mirrors it line by
line (see ``redis_store.py``); the contract suite checks the two agree on every code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from mdde_stream.events import ActionKind


class Code(IntEnum):
    """Rejection codes; MDDE's numbering where it has one."""

    # Ours, outside MDDE's numbering (EErrorCode: 0, 2100-2101, 2201-2202, 2300-2301, 2350, 2500-2501,
    # 2540, 2601-2606, 3100, 4100-4101, 9999), next to its action codes.
    MALFORMED = 2610  # action missing fields for its kind
    UNKNOWN_RUN = 2611  # the registry service has no state for the action's run (no stage set it up)
    FENCED = 2612  # the stage moved on from this step (gave up waiting, or reset) before it was applied
    UNKNOWN_ID = 2101  # unknown node or fragment id
    DUPLICATE_REPLICA = 2601  # copy to a node that already holds the fragment
    COPY_TO_SELF = 2602  # source == target
    LAST_REPLICA = 2604  # delete would remove the last replica
    NOT_ON_NODE = 2606  # fragment not on the source (copy) / target (delete) node


@dataclass(frozen=True)
class Verdict:
    """Result of applying (or checking) one action."""

    accepted: bool
    code: Code | None = None
    message: str = ""


@dataclass(frozen=True)
class Move:
    """One queued data move: what ``shuffle`` must do on the data nodes, in ``seq`` order."""

    kind: ActionKind
    fragment: str
    source: str | None
    target: str
    seq: int


ACCEPTED = Verdict(True)

# Message templates; the Lua script formats the same strings so both backends report identically.
MESSAGES: dict[Code, str] = {
    Code.MALFORMED: "{kind} needs {fields}",
    Code.UNKNOWN_RUN: "no registry state for run '{run_id}': a remote stage sets it up before its first step",
    Code.FENCED: "step {step} of episode {episode} arrived after the stage moved on (fence at {fence}): not applied",
    Code.UNKNOWN_ID: "unknown {what} '{name}'",
    Code.DUPLICATE_REPLICA: "node '{target}' already holds fragment '{fragment}'",
    Code.COPY_TO_SELF: "cannot copy fragment '{fragment}' from node '{target}' to itself",
    Code.LAST_REPLICA: "node '{target}' holds the last replica of fragment '{fragment}'",
    Code.NOT_ON_NODE: "fragment '{fragment}' is not on node '{node}'",
}


def reject(code: Code, **fields: object) -> Verdict:
    return Verdict(False, code, MESSAGES[code].format(**fields))


def validate(
    kind: ActionKind,
    fragment: str | None,
    source: str | None,
    target: str | None,
    node_index: dict[str, int],
    fragment_index: dict[str, int],
    holds: Callable[[int, int], bool],
    replica_count: Callable[[int], int],
) -> Verdict:
    """Judge one action against a state given as ``holds(w, f)`` and ``replica_count(f)``.

    Checks run in a fixed order so that an action breaking several rules always gets the same code on
    every backend: MDDE's registry order (``WriteCommandHandler``). A copy checks malformed, unknown ids,
    self copy, not on the source, duplicate; a delete checks malformed, unknown fragment, **last
    replica**, unknown node, not on the node — so deleting a fragment the node does not hold whose only
    replica is elsewhere is 2604, as in MDDE.
    """
    if not isinstance(kind, ActionKind):
        kind = ActionKind(kind)  # a plain "copy" string from JSON; raises ValueError if unknown
    if kind is ActionKind.SKIP:
        return ACCEPTED
    if kind is ActionKind.COPY:
        if fragment is None or source is None or target is None:
            return reject(Code.MALFORMED, kind="copy", fields="fragment, source and target")
        f = fragment_index.get(fragment)
        if f is None:
            return reject(Code.UNKNOWN_ID, what="fragment", name=fragment)
        s = node_index.get(source)
        if s is None:
            return reject(Code.UNKNOWN_ID, what="node", name=source)
        t = node_index.get(target)
        if t is None:
            return reject(Code.UNKNOWN_ID, what="node", name=target)
        if s == t:
            return reject(Code.COPY_TO_SELF, fragment=fragment, target=target)
        if not holds(s, f):
            return reject(Code.NOT_ON_NODE, fragment=fragment, node=source)
        if holds(t, f):
            return reject(Code.DUPLICATE_REPLICA, fragment=fragment, target=target)
        return ACCEPTED
    if kind is ActionKind.DELETE:
        if fragment is None or target is None:
            return reject(Code.MALFORMED, kind="delete", fields="fragment and target")
        f = fragment_index.get(fragment)
        if f is None:
            return reject(Code.UNKNOWN_ID, what="fragment", name=fragment)
        if replica_count(f) <= 1:
            return reject(Code.LAST_REPLICA, fragment=fragment, target=target)
        t = node_index.get(target)
        if t is None:
            return reject(Code.UNKNOWN_ID, what="node", name=target)
        if not holds(t, f):
            return reject(Code.NOT_ON_NODE, fragment=fragment, node=target)
        return ACCEPTED
    raise ValueError(f"unknown action kind {kind!r}")
