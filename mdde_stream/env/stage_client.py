"""Where the environment's actions are applied: the registry in-process, or the registry service.

The environment builds a step's :class:`ActionSubmitted` events (``_submissions``) and has its
:class:`~mdde_stream.env.recorder.RunRecorder` publish them before either stage applies them. Both
stages then return the registry's :class:`ActionResult` for each, in the same order, and both expose
the allocation after the step.

* :class:`InProcessStage` calls :meth:`Registry.apply_actions` directly (fast; with telemetry the
  recorder also publishes the results, since nobody else does).
* :class:`RemoteStage` flushes the recorder (the actions are its requests) and waits for the registry
  service's answers on ``mdde.action-results`` (filtered by run id and action event id), with a timeout
  that names the missing service; the service publishes those results itself. It keeps a local mirror
  of the allocation, updated from the accepted results in agent order — exactly how the service applied
  them — so masks and observations cost no round trip; reset and the initial layout go straight to the
  shared state store.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence

import numpy as np

from mdde_stream.bus.app import ReplyFollower, ReplyTimeout, RequestReply
from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings
from mdde_stream.env.recorder import RunRecorder
from mdde_stream.errors import MddeError
from mdde_stream.events import (
    ActionKind,
    ActionResult,
    ActionSubmitted,
    ShuffleCompleted,
    ShuffleRequested,
)
from mdde_stream.registry import Registry

logger = logging.getLogger(__name__)


class StageTimeout(MddeError, TimeoutError):
    """The registry service did not answer a step's actions (or a shuffle) in time."""


class StageError(MddeError, RuntimeError):
    """The registry service answered, with an error."""


SHUFFLE_TIMEOUT_S = 60.0
"""At least this long for a shuffle: moving fragments of large records takes longer than a step."""


class RegistryStage(abc.ABC):
    """Applies one step's actions and answers with the registry's verdicts."""

    #: True when this stage's registry publishes the action results itself (the recorder must not).
    publishes_results: bool = False

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.node_ids: list[str] = list(registry.node_ids)
        self.fragment_ids: list[str] = list(registry.fragment_ids)

    @abc.abstractmethod
    def apply(self, actions: Sequence[ActionSubmitted]) -> list[ActionResult]:
        """Results in the order of ``actions`` (ascending agent order; the recorder has published them)."""

    @abc.abstractmethod
    def allocation(self) -> np.ndarray:
        """Bool (W, F) allocation after the last applied step. Treat as read-only."""

    @abc.abstractmethod
    def shuffle(self, run_id: str, episode: int, step: int) -> int:
        """Move the data on the data nodes to the allocation (before a real benchmark); returns the moves."""

    def reset(self, episode: int = 0) -> np.ndarray:
        """Restore the snapshot (the initial allocation of ``episode``) and return it."""
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
    """Talks to the registry service (``mdde_stream/services/registry.py``) over the bus."""

    publishes_results = True

    def __init__(self, registry: Registry, bus: Bus, settings: Settings, run_id: str, recorder: RunRecorder,
                 timeout_s: float = 10.0) -> None:
        if not recorder.publishes_actions:
            raise ValueError("a remote stage needs a recorder that publishes the actions")
        super().__init__(registry)
        self.settings = settings
        self.timeout_s = timeout_s
        self.run_id = run_id
        self._bus = bus
        self._recorder = recorder
        # Followed from now on, before the recorder publishes any action: no answer can be missed.
        self._results: ReplyFollower[ActionResult] = ReplyFollower(
            bus, settings, ActionResult, lambda r: r.action_event_id, f"stage-{run_id}", key=run_id)
        self._shuffles: RequestReply[ShuffleCompleted] | None = None  # followed from the first shuffle on
        self._mirror = registry.store.matrix().copy()
        self._f_pos = {f: i for i, f in enumerate(self.fragment_ids)}
        self._n_pos = {n: i for i, n in enumerate(self.node_ids)}

    def apply(self, actions: Sequence[ActionSubmitted]) -> list[ActionResult]:
        """Send the actions the recorder published (a flush) and wait for the service's verdicts."""
        self._recorder.flush(self.timeout_s)
        try:
            done = self._results.wait([a.event_id for a in actions], self.timeout_s)
        except ReplyTimeout as exc:
            first = actions[0]
            # Fence the step off: if the service gets to it later, it must not apply it behind our back.
            self.registry.store.raise_fence(first.episode, first.step)
            raise StageTimeout(
                f"registry service answered {exc.answered} of {exc.expected} actions of run "
                f"{first.run_id} episode {first.episode} step {first.step} within {self.timeout_s:.1f} s "
                f"on {exc.topic}; is the registry service running?"
            ) from None
        for action, result in zip(actions, done):
            if result.accepted and action.kind is not ActionKind.SKIP:
                f = self._f_pos[action.fragment]  # type: ignore[index]
                self._mirror[self._n_pos[action.target], f] = action.kind is ActionKind.COPY  # type: ignore[index]
        return done

    def allocation(self) -> np.ndarray:
        return self._mirror

    def reset(self, episode: int = 0) -> np.ndarray:
        # Whatever of earlier episodes is still on its way must not be applied to the new one.
        if episode > 0:
            self.registry.store.raise_fence(episode - 1, 2**32 - 1)
        self.registry.reset()
        self._mirror = self.registry.store.matrix().copy()
        return self._mirror

    def shuffle(self, run_id: str, episode: int, step: int) -> int:
        """Ask the registry service to move the data, and wait for its answer."""
        if self._shuffles is None:
            self._shuffles = RequestReply(self._bus, self.settings, ShuffleCompleted, lambda r: r.request_event_id,
                                          f"stage-shuffle-{run_id}", key=run_id)
        request = ShuffleRequested(run_id=run_id, episode=episode, step=step)
        timeout = max(self.timeout_s, SHUFFLE_TIMEOUT_S)
        try:
            answer = self._shuffles.call(request, request.event_id, timeout)
        except ReplyTimeout as exc:
            raise StageTimeout(f"no answer on {exc.topic} to the shuffle before step {step}'s benchmark within "
                               f"{timeout:.0f} s; is the registry service running?") from None
        if answer.error:
            raise StageError(f"the registry service could not move the data for step {step}: {answer.error}")
        return answer.moves

    def close(self) -> None:
        try:
            self._results.close()
            if self._shuffles is not None:
                self._shuffles.close()
        finally:
            super().close()
