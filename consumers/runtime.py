"""What every long-running consumer shares: logging, settings, the bus, topics, signals, shutdown.

A service is any object with ``run()`` (loop until stopped) and ``stop(*signal_args)``; ``serve``
builds it on the configured bus, stops it cleanly on SIGTERM/SIGINT and always closes the bus.
"""

from __future__ import annotations

import logging
import signal
from typing import Callable, Protocol

from mdde_stream.bus import Bus, open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings, get_settings


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self, *_: object) -> None: ...


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
