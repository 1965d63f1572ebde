"""What every long-running consumer shares: logging, settings, the bus, topics, signals, shutdown.

A service is any object with ``run()`` (loop until stopped) and ``stop(*signal_args)``; ``serve``
builds it on the configured bus, stops it cleanly on SIGTERM/SIGINT and always closes the bus.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable, Protocol

from mdde_stream.bus import Bus, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings, get_settings

logger = logging.getLogger(__name__)


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self, *_: object) -> None: ...


class LoopService:
    """``process_once`` until stopped, then close: flush what was produced, then leave the group.

    Subclasses set ``self.consumer`` / ``self.producer`` and list in ``_closables`` what else must be
    closed after the producer was flushed (executors, a shared raw producer, ...), in order.
    """

    name = "service"

    def __init__(self) -> None:
        self.stop_event = threading.Event()

    def process_once(self) -> int:
        raise NotImplementedError

    def started(self) -> str:
        return f"{self.name} started"

    def stopped(self) -> str:
        return f"{self.name} stopped"

    def _closables(self) -> list[Callable[[], None]]:
        return []

    def run(self) -> None:
        logger.info("%s", self.started())
        try:
            while not self.stop_event.is_set():
                self.process_once()
        finally:
            self.close()
        logger.info("%s", self.stopped())

    def stop(self, *_: object) -> None:
        self.stop_event.set()

    def close(self) -> None:
        try:
            self.producer.flush()  # type: ignore[attr-defined]
        finally:
            errors: list[BaseException] = []
            for close in self._closables():
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - close the rest, then report the first
                    errors.append(exc)
            if errors:
                raise errors[0]


def serve(build: Callable[[Bus, Settings], Service], settings: Settings | None = None) -> int:
    """Run the service ``build(bus, settings)`` until a signal stops it; returns the exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings or get_settings()
    bus = open_bus(settings=settings)
    try:
        ensure_topics(bus, settings)
        service = build(bus, settings)
        signal.signal(signal.SIGTERM, service.stop)
        signal.signal(signal.SIGINT, service.stop)
        service.run()
    finally:
        bus.close()
    return 0
