"""What every long-running consumer shares: logging, settings, the bus, topics, signals, shutdown,
and the error boundary.

A service is any object with ``run()`` (loop until stopped) and ``stop(*signal_args)``; ``serve``
builds it on the configured bus, stops it cleanly on SIGTERM/SIGINT and always closes the bus.

Errors come in two kinds. A record that cannot be handled (a bug, a value the domain refuses) is
dead-lettered with the reason by :meth:`LoopService.handle_each` and the rest of its batch goes on.
Infrastructure that is unreachable (the bus, Redis, a data node, Elasticsearch) is not the record's
fault: the loop backs off (0.5 s doubling to 30 s) and tries again, keeping its place, so a restarted
Kafka or Redis costs a pause, never a crash or a lost record.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from mdde_stream.bus import Bus, open_bus
from mdde_stream.bus.app import Delivery, EventConsumer, EventProducer
from mdde_stream.bus.base import BusError
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import Event
from mdde_stream.registry.base import StoreError

logger = logging.getLogger(__name__)

MIN_BACKOFF_S, MAX_BACKOFF_S = 0.5, 30.0


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "a server is unreachable", not "this record is bad"."""
    errors: list[type[BaseException]] = [BusError, ConnectionError, TimeoutError, StoreError]
    try:
        import redis

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError]
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    try:
        import elasticsearch

        errors += [elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout]
    except (ImportError, AttributeError):  # the telemetry extra is optional
        pass
    return tuple(errors)


INFRASTRUCTURE_ERRORS = _infrastructure_errors()


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self, *_: object) -> None: ...


class LoopService:
    """``process_once`` until stopped, then close: flush what was produced, then leave the group.

    Subclasses set ``self.consumer`` / ``self.producer`` and list in ``_closables`` what else must be
    closed after the producer was flushed (executors, a shared raw producer, ...), in order.
    """

    name = "service"
    consumer: EventConsumer[Any]
    producer: EventProducer

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.infrastructure_errors = 0
        self.unexpected_errors = 0

    poll_timeout_s = 0.2

    def process_once(self) -> int:
        """One poll -> handle each -> flush -> commit cycle; returns the records polled.

        Results and dead letters share one producer, so one flush stores both before the commit:
        a crash in between brings the records back, never loses them.
        """
        batch = self.poll_batch(self.poll_timeout_s)
        if batch is None:
            return 0
        self.handle_each(batch, self.handle)
        self.producer.flush()
        self.commit()
        return len(batch)

    def handle(self, delivery: Delivery[Any]) -> None:
        """One record of the batch: produce what it yields (not flushed yet)."""
        raise NotImplementedError

    def commit(self) -> None:
        """Commit what was polled, after the flush; a service that holds records back commits below them."""
        self.consumer.commit()

    def started(self) -> str:
        return f"{self.name} started"

    def stopped(self) -> str:
        return f"{self.name} stopped"

    def connect(self, bus: Bus, settings: Settings, group_id: str, topics: list[str],
                accept: tuple[type[Event], ...]) -> None:
        """The service's consumer and producer on one raw producer for its results and its dead letters,
        so one flush stores both before offsets are committed."""
        self._raw = bus.producer()
        self.consumer = EventConsumer(bus, group_id, topics, accept, settings=settings, dead_letters=self._raw)
        self.producer = EventProducer(bus, settings, producer=self._raw)

    def poll_batch(self, poll_timeout_s: float, max_records: int = 500) -> list[Delivery[Any]] | None:
        """The next batch; None when there is nothing to do (no records and no new dead letters)."""
        dead_before = self.consumer.dead_lettered
        batch = self.consumer.poll(poll_timeout_s, max_records)
        if not batch and self.consumer.dead_lettered == dead_before:
            return None
        return batch

    def _closables(self) -> list[Callable[[], None]]:
        """What ``close`` closes after the producer was flushed, in order (the consumer leaves its group)."""
        raw = getattr(self, "_raw", None)
        return [self.consumer.close, *([raw.close] if raw is not None else [])]

    def _consumers(self) -> list[EventConsumer[Any]]:
        """The consumers to rewind after an infrastructure failure."""
        consumer = getattr(self, "consumer", None)
        return [consumer] if isinstance(consumer, EventConsumer) else []

    def rewound(self) -> None:
        """Drop in-memory work of polled records: the rewind delivers them again."""

    def run(self) -> None:
        logger.info("%s", self.started())
        backoff = 0.0
        rewind = False
        try:
            while not self.stop_event.is_set():
                try:
                    if rewind:  # read again what was polled but not committed before the failure
                        for consumer in self._consumers():
                            consumer.rewind()
                        self.rewound()
                        rewind = False
                    self.process_once()
                    backoff = 0.0
                except INFRASTRUCTURE_ERRORS as exc:
                    backoff = min(MAX_BACKOFF_S, max(MIN_BACKOFF_S, backoff * 2))
                    self.infrastructure_errors += 1
                    rewind = True
                    logger.warning("%s: %s: %s; retrying in %.1f s", self.name, type(exc).__name__, exc, backoff)
                    self.stop_event.wait(backoff)
                except Exception:  # noqa: BLE001 - last resort: a service never exits on a bad batch
                    self.unexpected_errors += 1
                    logger.exception("%s: unexpected error; the service keeps serving", self.name)
                    self.stop_event.wait(MIN_BACKOFF_S)
        finally:
            self.close()
        logger.info("%s", self.stopped())

    def handle_each(self, deliveries: Iterable[Delivery[Any]], handle: Callable[[Delivery[Any]], None],
                    consumer: EventConsumer[Any] | None = None) -> int:
        """``handle`` every delivery; one that fails for any reason but the infrastructure goes to the
        dead letters with the reason, and the others of the batch are handled. Returns the failures."""
        consumer = consumer or self.consumer  # type: ignore[attr-defined]
        failed = 0
        for delivery in deliveries:
            try:
                handle(delivery)
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - the boundary: this record, not the service
                failed += 1
                logger.exception("%s could not handle %s", self.name, delivery.record.tp)
                consumer.dead_letter(delivery.record, f"{type(exc).__name__}: {exc}", "processing-error")
        return failed

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
