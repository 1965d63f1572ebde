"""Event bus: one contract (``base``), an embedded SQLite backend and a Kafka backend."""

from __future__ import annotations

from mdde_stream.bus.base import (
    Bus,
    BusError,
    Consumer,
    OffsetReset,
    Producer,
    Record,
    TopicPartition,
    TopicSpec,
    UnknownTopicError,
)
from mdde_stream.config import Settings, get_settings, redact_url

__all__ = [
    "Bus",
    "BusError",
    "Consumer",
    "OffsetReset",
    "Producer",
    "Record",
    "TopicPartition",
    "TopicSpec",
    "UnknownTopicError",
    "open_bus",
]


def open_bus(url: str | None = None, settings: Settings | None = None) -> Bus:
    """Open the bus named by ``url`` (default: ``MDDE_BUS``); empty or ``embedded`` -> local log.

    ``kafka://host:port[,host:port]`` selects Kafka; ``sqlite:///path/bus.sqlite`` or ``embedded``
    the embedded log (default file ``{data_dir}/bus.sqlite``).
    """
    settings = settings or get_settings()
    url = settings.bus if url is None else url
    if url.startswith("kafka://"):
        from mdde_stream.bus.kafka import KafkaBus

        return KafkaBus(url[len("kafka://") :], settings=settings)
    if url in ("", "embedded"):
        from mdde_stream.bus.embedded import EmbeddedBus

        return EmbeddedBus(settings.data_dir / "bus.sqlite", settings=settings)
    if url.startswith("sqlite://"):
        from mdde_stream.bus.embedded import EmbeddedBus

        return EmbeddedBus(url[len("sqlite://") :], settings=settings)
    raise BusError(f"unsupported bus URL {redact_url(url)!r}: use kafka://host:port, sqlite:///path or leave MDDE_BUS empty")
