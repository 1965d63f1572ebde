"""Learner metrics as ``Telemetry`` events on ``mdde.telemetry`` (indexed into Elasticsearch/Kibana).

Metric names carry CleanRL-style prefixes (``losses/critic``, ``charts/return``) so dashboards can
group them. Events are buffered by the bus producer and flushed every ``flush_every`` events and on
close, never per event: a learner step must not wait for the broker.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from mdde_stream.bus import Bus, open_bus
from mdde_stream.bus.app import EventProducer
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import Telemetry

logger = logging.getLogger(__name__)


class TelemetrySink:
    """Publishes one ``Telemetry`` event per call; keeps the last value of each metric for reports."""

    def __init__(self, run_id: str, source: str = "maddpg", tags: dict[str, str] | None = None,
                 bus: Bus | None = None, settings: Settings | None = None, flush_every: int = 50) -> None:
        self.settings = settings or get_settings()
        self._bus = bus or open_bus(settings=self.settings)
        self._owns_bus = bus is None
        ensure_topics(self._bus, self.settings)
        self._producer = EventProducer(self._bus, self.settings)
        self.run_id = run_id
        self.source = source
        self.tags = dict(tags or {})
        self.flush_every = flush_every
        self.sent = 0
        self.latest: dict[str, float] = {}

    def __call__(self, step: int, episode: int, metrics: dict[str, float]) -> None:
        # JSON has no NaN/inf; a non-finite loss is reported by name instead of breaking the event.
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        for name in sorted(set(metrics) - set(finite)):
            logger.warning("metric %s is not finite at step %d: %s", name, step, metrics[name])
        self.latest.update(finite)
        self._producer.send(Telemetry(run_id=self.run_id, episode=episode, step=step, source=self.source,
                                      metrics=finite, tags=self.tags))
        self.sent += 1
        if self.sent % self.flush_every == 0:
            self._producer.flush()

    def close(self) -> None:
        try:
            self._producer.flush()
            self._producer.close()
        finally:
            if self._owns_bus:
                self._bus.close()

    def __enter__(self) -> TelemetrySink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Sink = Callable[[int, int, dict[str, float]], None]  # (env step, episode, metrics), like maddpg.Emit


def fan_out(*sinks: Sink | None) -> Sink:
    """One emit callback feeding every given sink (the bus, TensorBoard, the progress bar) in order."""
    chosen = [s for s in sinks if s is not None]

    def emit(step: int, episode: int, metrics: dict[str, float]) -> None:
        for sink in chosen:
            sink(step, episode, metrics)

    return emit
