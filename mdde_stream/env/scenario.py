"""The pluggable scenario interface: what the agents see, may do and earn.

The environment (:mod:`mdde_stream.env.parallel`) owns the plumbing — registry, bus, benchmark — and
asks a scenario only pure questions over numpy arrays: how an action index decodes into a registry
action, which indices are legal for an allocation, what each agent observes, when to benchmark and
what a step earns. Keeping scenarios free of I/O is what lets them be table-tested and swapped.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from mdde_stream.events import ActionKind


@dataclass(frozen=True, slots=True)
class DecodedAction:
    """A registry action in index form; ``None`` where the kind has no such field."""

    kind: ActionKind
    fragment: int | None = None
    source: int | None = None
    target: int | None = None


@dataclass(frozen=True, slots=True)
class Measurement:
    """⟨τ, N, R⟩ of the latest benchmark or estimate, in index form (R is (W, F) int64)."""

    throughput: float
    reads: np.ndarray
    source: str

    @property
    def node_reads(self) -> np.ndarray:
        return self.reads.sum(axis=1)

    @property
    def total_reads(self) -> int:
        return int(self.reads.sum())

    def popularity(self) -> np.ndarray:
        """κ = reads(f, w) / total reads (all zeros for an empty run)."""
        total = self.reads.sum()
        if total <= 0:
            return np.zeros(self.reads.shape, dtype=np.float32)
        return (self.reads / float(total)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class StepFacts:
    """Everything a scenario may use to reward one step, all indexed by agent (= node) order.

    ``accepted``/``skipped`` say how each agent's action fared at the registry; ``legal`` whether it
    was unmasked when the agents chose (a rejected legal action lost a conflict); ``benchmark`` is
    the measurement taken on this step, or ``None`` on steps without one.
    """

    step: int
    accepted: np.ndarray
    skipped: np.ndarray
    legal: np.ndarray
    allocation: np.ndarray
    benchmark: Measurement | None


class Scenario(abc.ABC):
    """Action space, observation, mask, reward and benchmark cadence of one experiment design."""

    node_ids: list[str]
    fragment_ids: list[str]

    @property
    def agents(self) -> list[str]:
        """One agent per data node unless a scenario says otherwise."""
        return list(self.node_ids)

    @abc.abstractmethod
    def action_space(self, agent: str) -> spaces.Space[Any]:
        """The same object on every call (PettingZoo requirement)."""

    @abc.abstractmethod
    def observation_space(self, agent: str) -> spaces.Space[Any]:
        """The same object on every call (PettingZoo requirement)."""

    @abc.abstractmethod
    def decode(self, agent_index: int, action: int) -> DecodedAction:
        """Registry action for ``action`` of agent ``agent_index`` (may be invalid: the registry says)."""

    @abc.abstractmethod
    def masks(self, allocation: np.ndarray, latest: Measurement | None = None) -> np.ndarray:
        """(agents, n_actions) int8: 1 where the action is legal against ``allocation`` (and, for scenarios
        whose rules read it, the ``latest`` measurement)."""

    @abc.abstractmethod
    def observe(self, allocation: np.ndarray, latest: Measurement | None, masks: np.ndarray) -> dict[str, Any]:
        """Per-agent observations of the current state (fresh arrays: callers may keep them)."""

    @property
    def state_space(self) -> spaces.Space[Any]:
        """Space of :meth:`state`: the global state a centralised critic sees."""
        raise NotImplementedError(f"{type(self).__name__} defines no global state")

    def state(self, allocation: np.ndarray, latest: Measurement | None) -> np.ndarray:
        """The global state (a fresh array)."""
        raise NotImplementedError(f"{type(self).__name__} defines no global state")

    @abc.abstractmethod
    def is_benchmark_step(self, step: int) -> bool:
        """Whether step ``step`` (1-based within the episode) ends with a benchmark."""

    @abc.abstractmethod
    def rewards(self, facts: StepFacts) -> np.ndarray:
        """(agents,) float64 rewards of one step; may use the scenario's per-episode history."""

    def reset(self) -> None:
        """Forget all per-episode history (called by the environment's ``reset``)."""
