"""The stage side's one publisher: every event the environment puts on the bus goes through here.

A :class:`RunRecorder` owns the environment's one buffered producer, keys every event by the run id
(so a run's events keep their order on a partition) and knows each event class's topic. What it
publishes:

* each step's ``ActionSubmitted`` events, before the stage applies them, whichever stage runs: for a
  remote stage they are the requests the registry service applies (so they go out even without
  telemetry); for an in-process stage they are the record of what its own registry applied (marked
  ``in_process``, which the service skips), published only with telemetry;
* with telemetry (``EnvConfig.publish_events``) also the ``ActionResult`` events a stage's registry
  does not publish itself, ``StepCompleted``, ``EpisodeStarted`` and the measurement events.

Without telemetry and without a remote stage it has no producer and costs nothing. The producer is
flushed at the end of an episode and on ``close``, and by a remote stage before it waits for the
answers to a step — never per step otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings
from mdde_stream.events import ActionResult, ActionSubmitted, Event


class RunRecorder:
    """Publishes one run's events; ``requests`` says a remote stage needs the actions on the bus."""

    def __init__(self, bus: Bus | None, settings: Settings, run_id: str, *, telemetry: bool, requests: bool) -> None:
        self.telemetry = telemetry
        self.publishes_actions = telemetry or requests
        if self.publishes_actions and bus is None:
            raise ValueError("a recorder that publishes needs a bus")
        self._producer = bus.producer() if bus is not None and self.publishes_actions else None
        self._settings = settings
        self._key = run_id.encode()
        self._topics: dict[type[Event], str] = {}
        self._actions_topic = self._topic(ActionSubmitted)
        self._results_topic = self._topic(ActionResult)

    def actions(self, submitted: Sequence[ActionSubmitted]) -> None:
        """One step's actions, in agent order (buffered: a remote stage flushes before it waits)."""
        if self._producer is None:
            return
        produce, topic, key = self._producer.produce, self._actions_topic, self._key
        dump = ActionSubmitted.__pydantic_serializer__.to_json  # the environment built them: no validation
        for event in submitted:
            produce(topic, dump(event, by_alias=True), key=key)

    def results(self, results: Sequence[ActionResult]) -> None:
        """The verdicts of a registry that does not publish them itself (telemetry only)."""
        if not self.telemetry:
            return
        produce, topic, key = self._producer.produce, self._results_topic, self._key  # type: ignore[union-attr]
        dump = ActionResult.__pydantic_serializer__.to_json
        for result in results:
            produce(topic, dump(result, by_alias=True), key=key)

    def publish(self, event: Event) -> None:
        """A step summary, an episode start or a measurement (telemetry only)."""
        if self.telemetry:
            self._producer.produce(self._topic(type(event)), event.to_bytes(), key=self._key)  # type: ignore[union-attr]

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything published so far is stored on the bus."""
        if self._producer is not None:
            self._producer.flush(timeout)

    def close(self) -> None:
        """Flush and release the producer (after the stage that flushes through it is closed)."""
        if self._producer is not None:
            self._producer.close()

    def _topic(self, cls: type[Event]) -> str:
        topic = self._topics.get(cls)
        if topic is None:
            topic = self._topics[cls] = self._settings.topic(cls.TOPIC)
        return topic
