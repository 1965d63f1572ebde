"""Where the environment's actions are applied: the registry in-process, or the registry service.

Both stages take one step's :class:`ActionSubmitted` events and return the registry's
:class:`ActionResult` for each, in the same order, and both expose the allocation after the step.

* :class:`InProcessStage` calls :meth:`Registry.apply_actions` directly (fast; the environment records
  the actions and results on the bus itself).
* :class:`RemoteStage` publishes the actions on ``mdde.actions``, flushes, and waits for the registry
  service's answers on ``mdde.action-results`` (filtered by run id and action event id), with a timeout
  that names the missing service. It keeps a local mirror of the allocation, updated from the accepted
  results in agent order — exactly how the service applied them — so masks and observations cost no
  round trip; reset and the initial layout go straight to the shared state store.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Sequence

import numpy as np

from mdde_stream.bus.app import follow_from_end
from mdde_stream.bus.base import Bus, Consumer
from mdde_stream.config import Settings
from mdde_stream.events import (
    ActionKind,
    ActionResult,
    ActionSubmitted,
    EventDecodeError,
    ShuffleCompleted,
    ShuffleRequested,
    decode_event,
)
from mdde_stream.registry import Registry

logger = logging.getLogger(__name__)


class StageTimeout(TimeoutError):
    """The registry service did not answer a step's actions (or a shuffle) in time."""


class StageError(RuntimeError):
    """The registry service answered, with an error."""


SHUFFLE_TIMEOUT_S = 60.0
"""At least this long for a shuffle: moving fragments of large records takes longer than a step."""


class RegistryStage(abc.ABC):
    """Applies one step's actions and answers with the registry's verdicts."""

    #: True when this stage's registry publishes the action results itself (the env must not).
    publishes_actions: bool = False

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.node_ids: list[str] = list(registry.node_ids)
        self.fragment_ids: list[str] = list(registry.fragment_ids)

    @abc.abstractmethod
    def apply(self, actions: Sequence[ActionSubmitted]) -> list[ActionResult]:
        """Results in the order of ``actions`` (which is ascending agent order)."""

    @abc.abstractmethod
    def allocation(self) -> np.ndarray:
        """Bool (W, F) allocation after the last applied step. Treat as read-only."""

    @abc.abstractmethod
    def shuffle(self, run_id: str, episode: int, step: int) -> int:
        """Move the data on the data nodes to the allocation (before a real benchmark); returns the moves."""

    def reset(self) -> np.ndarray:
        """Restore the snapshot (the episode's initial allocation) and return it."""
        changed = self.registry.reset()
        logger.debug("registry reset restored %d cells", changed)
        return self.allocation()

    def close(self) -> None:
        """Release the store's connections; the registry state stays."""
        self.registry.close()


class InProcessStage(RegistryStage):
    """The registry in this process; with ``owns_state`` its keys are removed on close."""

    def __init__(self, registry: Registry, owns_state: bool = False) -> None:
        super().__init__(registry)
        self.owns_state = owns_state

    def apply(self, actions: Sequence[ActionSubmitted]) -> list[ActionResult]:
        return self.registry.apply_actions(actions)

    def allocation(self) -> np.ndarray:
        return self.registry.allocation()

    def shuffle(self, run_id: str, episode: int, step: int) -> int:
        return self.registry.shuffle()

    def close(self) -> None:
        try:
            if self.owns_state:
                self.registry.store.wipe()
        finally:
            super().close()


class RemoteStage(RegistryStage):
    """Talks to the registry service (``consumers/registry.py``) over the bus."""

    publishes_actions = True

    def __init__(self, registry: Registry, bus: Bus, settings: Settings, run_id: str, timeout_s: float = 10.0) -> None:
        super().__init__(registry)
        self.settings = settings
        self.timeout_s = timeout_s
        self._run_key = run_id.encode()
        self._actions_topic = settings.topic(ActionSubmitted.TOPIC)
        self._producer = bus.producer()
        self._consumer = follow_from_end(bus, settings.topic(ActionResult.TOPIC), f"stage-{run_id}-{time.time_ns()}")
        self._bus = bus
        self._shuffle_results: Consumer | None = None  # followed from the first shuffle on
        self._mirror = registry.store.matrix().copy()
        self._f_pos = {f: i for i, f in enumerate(self.fragment_ids)}
        self._n_pos = {n: i for i, n in enumerate(self.node_ids)}

    def apply(self, actions: Sequence[ActionSubmitted]) -> list[ActionResult]:
        for action in actions:
            self._producer.produce(self._actions_topic, action.to_bytes(), key=self._run_key)
        self._producer.flush(self.timeout_s)
        slot = {a.event_id: i for i, a in enumerate(actions)}
        results: list[ActionResult | None] = [None] * len(actions)
        missing = len(actions)
        deadline = time.monotonic() + self.timeout_s
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                first = actions[0]
                raise StageTimeout(
                    f"registry service answered {len(actions) - missing} of {len(actions)} actions of run "
                    f"{first.run_id} episode {first.episode} step {first.step} within {self.timeout_s:.1f} s "
                    f"on {self.settings.topic(ActionResult.TOPIC)}; is the registry service running?"
                )
            # Ask for exactly what is missing: a batch consumer returns as soon as that many arrived.
            for record in self._consumer.poll(min(remaining, 0.5), max_records=missing):
                if record.key != self._run_key:
                    continue
                try:
                    result = decode_event(record.value, (ActionResult,))
                except EventDecodeError as exc:
                    logger.warning("ignoring undecodable action result: %s", exc.reason)
                    continue
                i = slot.get(result.action_event_id)  # type: ignore[attr-defined]
                if i is not None and results[i] is None:
                    results[i] = result  # type: ignore[assignment]
                    missing -= 1
        done: list[ActionResult] = results  # type: ignore[assignment]
        for action, result in zip(actions, done):
            if result.accepted and action.kind is not ActionKind.SKIP:
                f = self._f_pos[action.fragment]  # type: ignore[index]
                self._mirror[self._n_pos[action.target], f] = action.kind is ActionKind.COPY  # type: ignore[index]
        return done

    def allocation(self) -> np.ndarray:
        return self._mirror

    def reset(self) -> np.ndarray:
        self.registry.reset()
        self._mirror = self.registry.store.matrix().copy()
        return self._mirror

    def shuffle(self, run_id: str, episode: int, step: int) -> int:
        """Ask the registry service to move the data, and wait for its answer."""
        results_topic = self.settings.topic(ShuffleCompleted.TOPIC)
        if self._shuffle_results is None:
            self._shuffle_results = follow_from_end(self._bus, results_topic, f"stage-shuffle-{run_id}-{time.time_ns()}")
        request = ShuffleRequested(run_id=run_id, episode=episode, step=step)
        self._producer.produce(self.settings.topic(request.TOPIC), request.to_bytes(), key=self._run_key)
        self._producer.flush(self.timeout_s)
        deadline = time.monotonic() + max(self.timeout_s, SHUFFLE_TIMEOUT_S)
        while (remaining := deadline - time.monotonic()) > 0:
            for record in self._shuffle_results.poll(min(remaining, 0.5), max_records=50):
                try:
                    answer = decode_event(record.value, (ShuffleCompleted,))
                except EventDecodeError as exc:
                    logger.warning("ignoring undecodable shuffle result: %s", exc.reason)
                    continue
                if answer.request_event_id != request.event_id:  # type: ignore[attr-defined]
                    continue
                if answer.error:  # type: ignore[attr-defined]
                    raise StageError(f"the registry service could not move the data for step {step}: "
                                     f"{answer.error}")  # type: ignore[attr-defined]
                return answer.moves  # type: ignore[attr-defined]
        raise StageTimeout(f"no answer on {results_topic} to the shuffle before step {step}'s benchmark within "
                           f"{max(self.timeout_s, SHUFFLE_TIMEOUT_S):.0f} s; is the registry service running?")

    def close(self) -> None:
        try:
            self._producer.close()
            self._consumer.close()
            if self._shuffle_results is not None:
                self._shuffle_results.close()
        finally:
            super().close()
