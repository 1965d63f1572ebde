"""Built-in policies for the default scenario: baselines and the thesis's scripted edge cases (§5.2).

A policy maps the observations of the live agents to one action each. The scripted ones read only the
observation (allocation channel and own-row channel), so they work on any environment that uses the
default scenario's layout: slot 0 skip, ``1 + f`` delete f, ``|F| + 1 + w·|F| + f`` copy f from w.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Observations = dict[str, dict[str, np.ndarray]]


def _skip_offset(mask: np.ndarray, w: int, f: int) -> int:
    """1 when slot 0 is the skip action, 0 when the scenario has none (``allow_skip=False``)."""
    return int(mask.size - (w * f + f))


def _layout(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, int, int, int]:
    """(allocation bool (W, F), own node index, W, F) from one agent's observation."""
    grid = obs["observation"]
    alloc = grid[:, :, 0] > 0.5
    own = int(np.flatnonzero(grid[:, 0, 2] > 0.5)[0])
    return alloc, own, alloc.shape[0], alloc.shape[1]


class Policy(abc.ABC):
    """Chooses the next action of every live agent."""

    name: str = ""

    def reset(self, seed: int | None = None) -> None:
        """Start of an episode (policies with randomness reseed here)."""

    @abc.abstractmethod
    def act(self, observations: Observations) -> dict[str, int]: ...


class DoNothing(Policy):
    """Always skip: the reference for "no redistribution"."""

    name = "do-nothing"

    def act(self, observations: Observations) -> dict[str, int]:
        return dict.fromkeys(observations, 0)


class RandomValid(Policy):
    """Uniformly among the unmasked actions (skip included when allowed)."""

    name = "random-valid"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, observations: Observations) -> dict[str, int]:
        out = {}
        for agent, obs in observations.items():
            legal = np.flatnonzero(obs["action_mask"])
            out[agent] = int(legal[self.rng.integers(legal.size)]) if legal.size else 0
        return out


class Starving(Policy):
    """The thesis's "starving" case: the target node (default: the last) collects every fragment,
    one per step (lowest index first, copied from the lowest-index holder); every other agent deletes
    its lowest-index fragment that the target already holds. Ends with all reads on the target."""

    name = "starving"

    def __init__(self, target: int = -1) -> None:
        self.target = target

    def act(self, observations: Observations) -> dict[str, int]:
        out = {}
        for agent, obs in observations.items():
            alloc, own, w, f = _layout(obs)
            target = self.target % w
            mask = obs["action_mask"]
            o = _skip_offset(mask, w, f)
            action = 0
            if own == target:
                for frag in np.flatnonzero(~alloc[own]):
                    source = int(np.flatnonzero(alloc[:, frag])[0])
                    candidate = o + f + source * f + int(frag)
                    if mask[candidate]:
                        action = candidate
                        break
            else:
                for frag in np.flatnonzero(alloc[own] & alloc[target]):
                    if mask[o + frag]:
                        action = o + int(frag)
                        break
            out[agent] = action
        return out


class Greedy(Policy):
    """The thesis's "greedy" case: every agent copies its lowest-index missing fragment each step
    (from the lowest-index holder) until every node holds everything; then it skips."""

    name = "greedy"

    def act(self, observations: Observations) -> dict[str, int]:
        out = {}
        for agent, obs in observations.items():
            alloc, own, w, f = _layout(obs)
            action = 0
            missing = np.flatnonzero(~alloc[own])
            if missing.size:
                frag = int(missing[0])
                source = int(np.flatnonzero(alloc[:, frag])[0])
                action = _skip_offset(obs["action_mask"], w, f) + f + source * f + frag
            out[agent] = action
        return out


POLICIES: dict[str, Callable[..., Policy]] = {
    RandomValid.name: RandomValid,
    DoNothing.name: DoNothing,
    Starving.name: Starving,
    Greedy.name: Greedy,
}


def make_policy(name: str, seed: int | None = None, **kwargs: Any) -> Policy:
    """A built-in policy by name; ``seed`` only matters for the random ones."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}") from None
    if factory is RandomValid:
        return RandomValid(seed, **kwargs)
    return factory(**kwargs)
