"""The thesis's default scenario (§3.2.4): one agent per data node, full observation, Eq 3.8/3.9 rewards.

Action space of every agent, ``Discrete(|W|·|F| + |F| + 1)`` (Tables 3.1/3.2), or ``|W|·|F| + |F|``
with ``allow_skip=False`` (no dead slot, as MDDE's agents built it); ``o`` below is 1 with skip, else 0:

* ``0`` — skip ("do nothing"), only when allowed.
* ``o .. o + |F| − 1`` — delete fragment ``a − o`` from the agent's own node.
* ``o + |F| + w·|F| + f`` — copy fragment ``f`` from node ``w`` to the agent's own node. The slots with
  ``w`` = self exist (the layout is the same for every agent) and are always invalid (code 2602).

Without skip an agent with no legal action at all (it holds every fragment, each the last replica)
has an all-zero mask: whatever it picks is invalid (−1), as in MDDE.

Observation: ``{"observation": Box(W, F, 3), "action_mask": Box(n,) int8}`` — channel 0 the allocation
bit, channel 1 the popularity κ(w, f) = reads(f on w) / Σ reads of the latest benchmark (or estimate),
channel 2 a 1 on the agent's own row. The mask follows the thesis's rules (§4.2.1: no removal of a
unique replica, no copy from a node without the fragment):

* delete f: the agent holds f and f has at least two replicas (``delete_mask="replicas"``, default).
  MDDE's code (``single_node_default_agent.py``) tested the *popularity* channel of the other nodes
  where it meant the allocation channel, so a delete was legal only when another node's replica of f
  was read in the latest measurement; ``delete_mask="mdde"`` reproduces that for comparisons with the
  thesis's tables (fewer deletes between benchmarks, so random agents replicate more).
* copy f from w: w holds f and the agent does not (which also rules out w = self).

Rewards — our reading of the thesis, matching the arithmetic of MDDE's reference scenario:

* Eq 3.8, steps without a benchmark: ``P_w = +1`` for an accepted copy/delete, ``V`` for a legal skip,
  ``−1`` for a rejected action (masked choice, illegal skip, or lost conflict — unless
  ``conflicts_count_as_valid``, which treats a rejected action that was unmasked at step start as +1).
* Eq 3.9, on a benchmark step (every ``S``-th step of the episode: steps S, 2S, …)::

      r_w = τ · (N_w / Σ_v N_v) · (1/|H|) Σ_{s ∈ H} max(P_w^s, 0)  +  ϱ · τ · (|F| − |F_w|) / |F|

  τ the measured (or estimated) throughput, N_w the reads node w served, H the steps since the previous
  benchmark *including this one* (|H| = S, fewer only if the episode was reset in between), P_w^s the
  Eq 3.8 value agent w earned at step s (so a skip contributes V, an invalid action 0), |F_w| the
  fragments w holds after the step, ϱ the storage importance. With Σ N = 0 the first term is 0.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from gymnasium import spaces

from mdde_stream.env.scenario import DecodedAction, Measurement, Scenario, StepFacts
from mdde_stream.events import ActionKind

logger = logging.getLogger(__name__)

KIND_SKIP, KIND_DELETE, KIND_COPY = 0, 1, 2


class DefaultScenario(Scenario):
    """§3.2.4 of the thesis, with every hyperparameter configurable."""

    def __init__(
        self,
        node_ids: list[str],
        fragment_ids: list[str],
        *,
        benchmark_frequency: int = 5,
        do_nothing_worth: float = 0.0,
        storage_importance: float = 0.0,
        allow_skip: bool = True,
        conflicts_count_as_valid: bool = False,
        delete_mask: str = "replicas",
    ) -> None:
        if len(node_ids) < 2:
            raise ValueError(f"the default scenario needs at least 2 nodes, got {len(node_ids)}")
        if not fragment_ids:
            raise ValueError("the default scenario needs at least 1 fragment")
        if benchmark_frequency < 1:
            raise ValueError(f"benchmark_frequency (S) must be >= 1, got {benchmark_frequency}")
        if storage_importance < 0:
            raise ValueError(f"storage_importance (ϱ) must be >= 0, got {storage_importance}")
        self.node_ids = list(node_ids)
        self.fragment_ids = list(fragment_ids)
        self.benchmark_frequency = benchmark_frequency
        self.do_nothing_worth = float(do_nothing_worth)
        self.storage_importance = float(storage_importance)
        self.allow_skip = allow_skip
        self.conflicts_count_as_valid = conflicts_count_as_valid
        if delete_mask not in ("replicas", "mdde"):
            raise ValueError(f"delete_mask must be 'replicas' or 'mdde', got {delete_mask!r}")
        self.delete_mask = delete_mask

        w, f = len(node_ids), len(fragment_ids)
        self.offset = o = 1 if allow_skip else 0
        self.n_actions = w * f + f + o
        # Decode tables, shared by all agents (the target of deletes/copies is always the agent itself).
        self.kind_of = np.empty(self.n_actions, dtype=np.int8)
        self.fragment_of = np.full(self.n_actions, -1, dtype=np.int64)
        self.source_of = np.full(self.n_actions, -1, dtype=np.int64)
        if allow_skip:
            self.kind_of[0] = KIND_SKIP
        self.kind_of[o : o + f] = KIND_DELETE
        self.fragment_of[o : o + f] = np.arange(f)
        self.kind_of[o + f :] = KIND_COPY
        self.fragment_of[o + f :] = np.tile(np.arange(f), w)
        self.source_of[o + f :] = np.repeat(np.arange(w), f)
        self._decoded = [[self._decode_uncached(a, n) for n in range(self.n_actions)] for a in range(w)]

        self._action_space: spaces.Discrete = spaces.Discrete(self.n_actions)
        self._observation_space = spaces.Dict(
            {
                "observation": spaces.Box(0.0, 1.0, shape=(w, f, 3), dtype=np.float32),
                "action_mask": spaces.Box(0, 1, shape=(self.n_actions,), dtype=np.int8),
            }
        )
        # Global state for centralised critics: the allocation and popularity channels of every node.
        self._state_space = spaces.Box(0.0, 1.0, shape=(w, f, 2), dtype=np.float32)
        self._window: list[np.ndarray] = []
        # Channels 0/1 of the observation, shared by all agents and updated in place (each agent gets a copy).
        self._base = np.zeros((w, f, 3), dtype=np.float32)
        self._kappa_of: Measurement | None = None

    # -- spaces ---------------------------------------------------------------------------------
    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    def observation_space(self, agent: str) -> spaces.Dict:
        return self._observation_space

    # -- actions --------------------------------------------------------------------------------
    def action_index(self, kind: ActionKind, fragment: int | None = None, source: int | None = None) -> int:
        """Inverse of :meth:`decode` (for scripted policies and tests)."""
        f, o = len(self.fragment_ids), self.offset
        if kind is ActionKind.SKIP:
            if not self.allow_skip:
                raise ValueError("this scenario has no skip action (allow_skip=False)")
            return 0
        if fragment is None or not 0 <= fragment < f:
            raise ValueError(f"fragment index {fragment!r} out of range [0, {f})")
        if kind is ActionKind.DELETE:
            return o + fragment
        if source is None or not 0 <= source < len(self.node_ids):
            raise ValueError(f"source node index {source!r} out of range [0, {len(self.node_ids)})")
        return o + f + source * f + fragment

    def decode(self, agent_index: int, action: int) -> DecodedAction:
        return self._decoded[agent_index][action]

    def _decode_uncached(self, agent_index: int, action: int) -> DecodedAction:
        kind = int(self.kind_of[action])
        if kind == KIND_SKIP:
            return DecodedAction(ActionKind.SKIP)
        if kind == KIND_DELETE:
            return DecodedAction(ActionKind.DELETE, int(self.fragment_of[action]), None, agent_index)
        return DecodedAction(ActionKind.COPY, int(self.fragment_of[action]), int(self.source_of[action]), agent_index)

    def masks(self, allocation: np.ndarray, latest: Measurement | None = None) -> np.ndarray:
        alloc = np.asarray(allocation, dtype=bool)
        w, f = alloc.shape
        o = self.offset
        out = np.empty((w, self.n_actions), dtype=np.int8)
        if self.delete_mask == "replicas":
            out[:, o : o + f] = alloc & (alloc.sum(axis=0) >= 2)
        else:  # MDDE: some *other* node's replica of f was read in the latest measurement
            read = (latest.reads > 0) if latest is not None else np.zeros_like(alloc)
            others_read = read.sum(axis=0)[None, :] - read
            out[:, o : o + f] = alloc & (others_read > 0)
        # copy f from v to a: v holds f, a does not (v = a is then impossible by construction).
        out[:, o + f :] = (alloc[None, :, :] & ~alloc[:, None, :]).reshape(w, w * f)
        if self.allow_skip:
            out[:, 0] = 1
        return out

    # -- observations ---------------------------------------------------------------------------
    def observe(self, allocation: np.ndarray, latest: Measurement | None, masks: np.ndarray) -> dict[str, Any]:
        base = self._base
        base[:, :, 0] = allocation
        if latest is not self._kappa_of:  # κ changes only when a new measurement arrives
            base[:, :, 1] = 0.0 if latest is None else latest.popularity()
            self._kappa_of = latest
        result: dict[str, Any] = {}
        for a, agent in enumerate(self.node_ids):
            obs = base.copy()
            obs[a, :, 2] = 1.0
            result[agent] = {"observation": obs, "action_mask": masks[a].copy()}
        return result

    @property
    def state_space(self) -> spaces.Box:
        return self._state_space

    def state(self, allocation: np.ndarray, latest: Measurement | None) -> np.ndarray:
        """Channels 0 and 1 of the observation (allocation bit, popularity κ): what every agent sees,
        without the per-agent ownership channel."""
        out = np.zeros(self._state_space.shape, dtype=np.float32)
        out[:, :, 0] = allocation
        if latest is not None:
            out[:, :, 1] = latest.popularity()
        return out

    # -- rewards --------------------------------------------------------------------------------
    def is_benchmark_step(self, step: int) -> bool:
        return step % self.benchmark_frequency == 0

    def correctness(self, facts: StepFacts) -> np.ndarray:
        """Eq 3.8 per agent: +1 accepted, V legal skip, −1 otherwise."""
        valid = facts.accepted | (facts.legal if self.conflicts_count_as_valid else False)
        return np.where(
            facts.skipped,
            np.where(facts.legal, self.do_nothing_worth, -1.0),
            np.where(valid, 1.0, -1.0),
        )

    def rewards(self, facts: StepFacts) -> np.ndarray:
        p = self.correctness(facts)
        if facts.benchmark is None:
            self._window.append(p)
            return p
        self._window.append(p)
        history = np.maximum(np.stack(self._window), 0.0).mean(axis=0)
        self._window.clear()
        tau = facts.benchmark.throughput
        node_reads = facts.benchmark.node_reads.astype(np.float64)
        total = node_reads.sum()
        share = node_reads / total if total > 0 else np.zeros_like(node_reads)
        f = facts.allocation.shape[1]
        held = facts.allocation.sum(axis=1)
        return tau * share * history + self.storage_importance * tau * (f - held) / f

    def reset(self) -> None:
        self._window.clear()
