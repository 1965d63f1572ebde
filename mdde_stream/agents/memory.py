"""Transitions and the in-process replay memory.

A transition is one environment step of *all* agents (MADDPG's critics need the joint view), stored
as a mapping of named numpy arrays with fixed per-field shapes and dtypes. The same mapping is what
the Redis memory encodes, so the learner does not care where its samples come from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

Transition = Mapping[str, np.ndarray]
Batch = dict[str, np.ndarray]

# Field name -> dtype. Shapes: obs/next_obs (N, D), mask/next_mask (N, A), action/reward (N,), done ().
FIELDS: dict[str, np.dtype] = {
    "obs": np.dtype(np.float32),
    "mask": np.dtype(np.int8),
    "action": np.dtype(np.int64),
    "reward": np.dtype(np.float32),
    "next_obs": np.dtype(np.float32),
    "next_mask": np.dtype(np.int8),
    "done": np.dtype(np.float32),
}


def make_transition(
    obs: np.ndarray,
    mask: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    next_obs: np.ndarray,
    next_mask: np.ndarray,
    done: bool | float,
) -> dict[str, np.ndarray]:
    """One joint step, converted to the canonical dtypes (copies, so the caller may reuse buffers)."""
    values = dict(obs=obs, mask=mask, action=action, reward=reward, next_obs=next_obs, next_mask=next_mask,
                  done=np.asarray(done))
    return {name: np.array(values[name], dtype=dtype) for name, dtype in FIELDS.items()}


def stack(transitions: Sequence[Transition]) -> Batch:
    """A list of transitions -> one batch with a leading batch axis per field."""
    if not transitions:
        raise ValueError("cannot stack an empty list of transitions")
    return {name: np.stack([t[name] for t in transitions]).astype(dtype, copy=False) for name, dtype in FIELDS.items()}


class ReplayMemory(Protocol):
    """What the learner needs from a replay memory (in-process or Redis)."""

    def push(self, transitions: Sequence[Transition]) -> int:
        """Store transitions (oldest evicted beyond capacity); returns the total ever pushed."""
        ...

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement from the stored ones."""
        ...

    def __len__(self) -> int: ...


class LocalReplay:
    """A numpy ring buffer: preallocated on the first push, O(1) writes and uniform sampling."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.pushed = 0
        self._data: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return min(self.pushed, self.capacity)

    def _allocate(self, first: Transition) -> dict[str, np.ndarray]:
        data = {name: np.zeros((self.capacity, *np.shape(first[name])), dtype=dtype) for name, dtype in FIELDS.items()}
        size = sum(a.nbytes for a in data.values())
        logger.info("replay memory: %d transitions, %.1f MiB preallocated", self.capacity, size / 2**20)
        return data

    def push(self, transitions: Sequence[Transition]) -> int:
        for t in transitions:
            if self._data is None:
                self._data = self._allocate(t)
            slot = self.pushed % self.capacity
            for name in FIELDS:
                self._data[name][slot] = t[name]
            self.pushed += 1
        return self.pushed

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        if self._data is None or not len(self):
            raise ValueError("cannot sample from an empty replay memory")
        idx = rng.integers(0, len(self), size=batch_size)
        return {name: array[idx] for name, array in self._data.items()}
