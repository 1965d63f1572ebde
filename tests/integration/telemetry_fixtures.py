"""Fixtures shared by the telemetry integration tests: a uuid-prefixed Kafka topic set, a uuid index prefix.

Everything created (topics, indices, templates) is deleted afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from mdde_stream.bus import Bus, open_bus
from mdde_stream.config import Settings
from mdde_stream.events import Event
from mdde_stream.telemetry.documents import documents_for
from mdde_stream.telemetry.es_client import ES_ERRORS, transient
from mdde_stream.telemetry.indexer import Indexer, connect
from mdde_stream.telemetry.templates import delete_indices, delete_templates, index_prefix_for
from tests.conftest import require_elasticsearch, require_kafka


@dataclass
class TelemetryEnv:
    settings: Settings
    bus: Bus
    es: Elasticsearch
    es_url: str

    @property
    def prefix(self) -> str:
        return index_prefix_for(self.settings)

    def count(self, es: Elasticsearch | None = None, query: dict | None = None) -> int:
        es = es or self.es
        for attempt in range(50):
            try:
                es.indices.refresh(index=f"{self.prefix}-*", ignore_unavailable=True, allow_no_indices=True)
                return int(es.count(index=f"{self.prefix}-*", query=query, ignore_unavailable=True,
                                    allow_no_indices=True)["count"])
            except ES_ERRORS as exc:
                # An index the indexer is creating right now has no started shard yet (503), and a
                # node that has just restarted may time out while it recovers its shards.
                if not transient(exc) or attempt == 49:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")


def expected_documents(events: list[Event]) -> int:
    return sum(len(documents_for(e)) for e in events)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def telemetry_env(tmp_path: Path, unique: str, es_url: str | None = None) -> Iterator[TelemetryEnv]:
    kafka = require_kafka()
    url = require_elasticsearch(es_url)
    settings = Settings(data_dir=tmp_path, bus=kafka, topic_prefix=f"t{unique}", elasticsearch=url,
                        session_timeout_s=6.0)
    bus = open_bus(settings=settings)
    es = connect(url)
    env = TelemetryEnv(settings, bus, es, url)
    try:
        yield env
    finally:
        delete_indices(es, env.prefix)
        delete_templates(es, env.prefix)
        bus.delete_topics([t for t in bus.list_topics() if t.startswith(f"{settings.topic_prefix}.")])
        bus.close()


class RunningIndexer:
    """An ``Indexer`` on its own thread (and its own bus connection), stopped on exit."""

    def __init__(self, env: TelemetryEnv, es: Elasticsearch | None = None, **kwargs: object) -> None:
        self.bus = open_bus(settings=env.settings)
        self.indexer = Indexer(self.bus, es or env.es, env.settings, **kwargs)  # type: ignore[arg-type]
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.indexer.run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def __enter__(self) -> Indexer:
        self.thread.start()
        return self.indexer

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        self.indexer.close()
        self.bus.close()
        if self.error is not None:
            raise AssertionError(f"indexer thread failed: {self.error!r}") from self.error
