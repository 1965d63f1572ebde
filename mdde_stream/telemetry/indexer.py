"""The indexer: a consumer that bulk-indexes telemetry events into Elasticsearch.

Per batch, in this order:

1. poll events (invalid ones are dead-lettered by ``EventConsumer``);
2. turn them into documents (ids derived from the event, so a redelivery overwrites, never adds);
3. bulk-index with ``helpers.streaming_bulk``; items Elasticsearch could not take *now* (connection
   lost, timeouts, 429/5xx) are retried with exponential back-off, for as long as it takes, without
   polling further, so the consumer keeps its place on the bus;
4. items Elasticsearch *rejected* (mapping errors, 4xx) send their source record to the dead-letter
   topic with the reason; the dead letters are flushed;
5. only then commit the batch's offsets.

A crash anywhere before 5 redelivers the batch, and the idempotent ids make that harmless, so after
Elasticsearch recovers every event is indexed exactly once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch, helpers

from mdde_stream.bus.app import Delivery, EventConsumer
from mdde_stream.bus.base import Bus, BusError, Record
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import Event
from mdde_stream.telemetry.documents import INDEXED_EVENTS, Doc, EpisodeBaselines, documents_for
from mdde_stream.telemetry.errors import TelemetryError
from mdde_stream.telemetry.es_client import ES_ERRORS, RETRYABLE_STATUS, connect, transient
from mdde_stream.telemetry.templates import apply_retention, ensure_day_indices, ensure_templates, index_prefix_for

logger = logging.getLogger(__name__)

__all__ = ["Indexer", "IndexerStats", "IndexerStopped", "connect", "indexed_topics", "transient"]


class IndexerStopped(TelemetryError, RuntimeError):
    """Raised inside a retry loop when the indexer was asked to stop before Elasticsearch recovered."""


@dataclass
class IndexerStats:
    batches: int = 0
    events: int = 0
    documents: int = 0
    retries: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    commit_failures: int = 0


def indexed_topics(settings: Settings) -> list[str]:
    return [settings.topic(cls.TOPIC) for cls in INDEXED_EVENTS]


class Indexer:
    """One member of the indexer consumer group; run several to share the partitions."""

    def __init__(
        self,
        bus: Bus,
        es: Elasticsearch,
        settings: Settings | None = None,
        index_prefix: str | None = None,
        group_id: str | None = None,
        max_records: int = 5000,
        poll_timeout_s: float = 0.2,
        chunk_size: int = 2000,
        retention_days: int | None = None,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.settings = settings or get_settings()
        self.es = es
        self.prefix = index_prefix or index_prefix_for(self.settings)
        self.group_id = group_id or f"{self.prefix}-indexer"
        self.max_records = max_records
        self.poll_timeout_s = poll_timeout_s
        self.chunk_size = chunk_size
        self.retention_days = retention_days
        self.max_backoff_s = max_backoff_s
        self.stats = IndexerStats()
        self._stop = threading.Event()
        self._last_upkeep = 0.0
        self._baselines = EpisodeBaselines(lookup=self._lookup_baseline)
        self._dlq = bus.producer()
        self.consumer: EventConsumer[Event] = EventConsumer(
            bus, self.group_id, indexed_topics(self.settings), INDEXED_EVENTS,
            settings=self.settings, dead_letters=self._dlq,
        )
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Install the index templates (waiting for Elasticsearch if needed), then apply retention."""
        self._retry("install index templates", lambda: ensure_templates(self.es, self.prefix))
        self.upkeep(force=True)
        self._started = True

    def stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None) -> IndexerStats:
        """Index until ``stop`` (or ``self.stop()``) is set; returns the counters."""
        if stop is not None:
            self._stop = stop
        if not self._started:
            self.start()
        logger.info("indexer %s consuming %s into %s-*", self.group_id, indexed_topics(self.settings), self.prefix)
        try:
            while not self._stop.is_set():
                self.run_once()
                self.upkeep()
        except IndexerStopped:
            logger.info("indexer stopped while waiting for Elasticsearch; the batch stays uncommitted")
        return self.stats

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self._dlq.close()

    def __enter__(self) -> Indexer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one batch --------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Poll one batch, index it, commit it; returns the number of documents indexed."""
        dead_before = self.consumer.dead_lettered
        deliveries = self.consumer.poll(self.poll_timeout_s, self.max_records)
        if not deliveries:
            if self.consumer.dead_lettered != dead_before:
                self._commit()  # a batch of only invalid records still has to move on
            return 0
        t0 = time.perf_counter()
        docs = self._retry("build documents", lambda: self._documents(deliveries))
        indexed = self._index(docs)
        self._commit()
        self.stats.batches += 1
        self.stats.events += len(deliveries)
        self.stats.documents += indexed
        logger.info(
            "indexed batch: %d events -> %d docs (%d rejected) in %.3f s",
            len(deliveries), indexed, len(docs) - indexed, time.perf_counter() - t0,
        )
        return indexed

    def _documents(self, deliveries: list[Delivery[Event]]) -> list[tuple[dict[str, Any], Record]]:
        actions = []
        for delivery in deliveries:
            for doc in documents_for(delivery.event, self._baselines):
                actions.append((self._action(doc), delivery.record))
        return actions

    def _action(self, doc: Doc) -> dict[str, Any]:
        return {"_op_type": "index", "_index": doc.index_name(self.prefix), "_id": doc.id, "_source": doc.source}

    def _index(self, docs: list[tuple[dict[str, Any], Record]]) -> int:
        """Index every document, retrying what Elasticsearch could not take; returns how many it stored."""
        pending = {(a["_index"], a["_id"]): (a, r) for a, r in docs}
        stored = 0
        rejected: dict[tuple[str, int, int], tuple[Record, str]] = {}
        attempt = 0
        while pending:
            try:
                for ok, item in helpers.streaming_bulk(
                    self.es, [a for a, _ in pending.values()], chunk_size=self.chunk_size,
                    raise_on_error=False, raise_on_exception=True, max_retries=0,
                ):
                    info = next(iter(item.values()))
                    key = (info["_index"], info["_id"])
                    if ok:
                        pending.pop(key, None)
                        stored += 1
                    elif int(info.get("status", 0) or 0) not in RETRYABLE_STATUS:
                        _, record = pending.pop(key)
                        rejected.setdefault(
                            (record.topic, record.partition, record.offset),
                            (record, f"elasticsearch rejected {info['_id']} in {info['_index']}: "
                                     f"{_reason(info.get('error'))}"),
                        )
            except ES_ERRORS as exc:
                if not transient(exc):
                    raise
                logger.warning("bulk request failed (%d documents pending): %s", len(pending), exc)
            if pending:
                attempt += 1
                self.stats.retries += 1
                self._sleep(attempt, f"{len(pending)} documents not acknowledged")
        for record, reason in rejected.values():
            self.consumer.dead_letter(record, reason, "elasticsearch-rejected")
        if rejected:
            self._dlq.flush()
            self.stats.rejected += len(rejected)
            self.stats.dead_lettered += len(rejected)
        return stored

    def _commit(self) -> None:
        try:
            self.consumer.commit()
        except BusError as exc:
            # Typically a rebalance took the partitions away: their new owner re-reads the batch,
            # and the idempotent ids keep that from duplicating anything.
            self.stats.commit_failures += 1
            logger.warning("commit failed (the batch will be redelivered and overwritten): %s", exc)

    # -- helpers ----------------------------------------------------------------------------------
    def _retry(self, what: str, fn: Any) -> Any:
        attempt = 0
        while True:
            try:
                return fn()
            except ES_ERRORS as exc:
                if not transient(exc):
                    raise
                attempt += 1
                self.stats.retries += 1
                logger.warning("%s: elasticsearch unavailable (%s)", what, exc)
                self._sleep(attempt, what)

    def _sleep(self, attempt: int, what: str) -> None:
        delay = min(self.max_backoff_s, 0.1 * 2 ** min(attempt, 10)) * random.uniform(0.8, 1.2)
        logger.info("retry %d of %s in %.2f s", attempt, what, delay)
        if self._stop.wait(delay):
            raise IndexerStopped(what)

    def _lookup_baseline(self, run_id: str, episode: int, step: int) -> float | None:
        """The first measured throughput of an episode this process did not see start."""
        query = {"bool": {"filter": [
            {"term": {"run_id": run_id}}, {"term": {"episode": episode}},
            {"range": {"step": {"lt": step}}}, {"exists": {"field": "throughput"}},
        ]}}
        res = self.es.search(index=f"{self.prefix}-steps-*", query=query, size=1, sort=[{"step": {"order": "asc", "unmapped_type": "integer"}}],
                             source={"includes": ["throughput"]}, ignore_unavailable=True, allow_no_indices=True)
        hits = res["hits"]["hits"]
        return float(hits[0]["_source"]["throughput"]) if hits else None

    def upkeep(self, force: bool = False) -> None:
        """Hourly: apply retention, and create today's and tomorrow's indices before their first live event."""
        if not force and time.monotonic() - self._last_upkeep < 3600:
            return
        self._last_upkeep = time.monotonic()
        if self.retention_days is not None:
            try:
                apply_retention(self.es, self.prefix, self.retention_days)
            except ES_ERRORS as exc:
                logger.warning("retention skipped, elasticsearch unavailable: %s", exc)
        try:
            ensure_day_indices(self.es, self.prefix)
        except ES_ERRORS as exc:
            logger.warning("day indices not created ahead, elasticsearch unavailable: %s", exc)


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text
    return str(error)
