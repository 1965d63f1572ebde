"""Send a recorded episode's telemetry to Elasticsearch again, without duplicates.

The documents come from the telemetry package's builder (:func:`documents_for`), the same one the
live indexer uses, so their ids are derived from the event ids: indexing them a second time
overwrites the same documents, and the counts stay what they were. This path does not consume the
indexer's topics (the replay selection already read the events), so no consumer group is joined.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from mdde_stream.config import Settings, get_settings, redact_url
from mdde_stream.replay.exceptions import ReplayError
from mdde_stream.replay.selection import RecordedEvent

logger = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    events: int
    documents: int
    index_prefix: str

    def __str__(self) -> str:
        return f"re-indexed {self.events} events as {self.documents} documents into {self.index_prefix}-*"


def reindex(
    events: Iterable[RecordedEvent],
    es_url: str | None = None,
    settings: Settings | None = None,
    index_prefix: str | None = None,
    refresh: bool = True,
) -> ReindexReport:
    """Index the telemetry of ``events`` (steps, action results, benchmark and estimator results, metrics)."""
    try:
        from elasticsearch import helpers

        from mdde_stream.telemetry.documents import INDEXED_EVENTS, EpisodeBaselines, documents_for
        from mdde_stream.telemetry.es_client import ES_ERRORS, connect
        from mdde_stream.telemetry.templates import ensure_templates, index_prefix_for
    except ImportError as exc:
        raise ReplayError(f"--reindex needs the telemetry extra (pip install 'mdde-stream[telemetry]'): {exc}") from None
    settings = settings or get_settings()
    url = es_url if es_url is not None else settings.elasticsearch
    prefix = index_prefix or index_prefix_for(settings)
    # Step order within each episode, so the "change vs first measurement" metric has its baseline.
    chosen = sorted((r.event for r in events if isinstance(r.event, INDEXED_EVENTS)),
                    key=lambda e: (e.run_id, e.episode, e.step, e.ts))
    if not chosen:
        raise ReplayError("the selection holds no telemetry events (steps, action results, benchmark results)")
    baselines = EpisodeBaselines()
    actions = [
        {"_op_type": "index", "_index": doc.index_name(prefix), "_id": doc.id, "_source": doc.source}
        for event in chosen
        for doc in documents_for(event, baselines)
    ]
    try:
        es = connect(url, settings=settings)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    try:
        ensure_templates(es, prefix)
        stored, result = helpers.bulk(es, actions, chunk_size=2000, raise_on_error=False, max_retries=3)
        errors = result if isinstance(result, list) else []
        if errors:
            raise ReplayError(f"Elasticsearch at {redact_url(url)} rejected {len(errors)} of {len(actions)} documents; "
                              f"first: {errors[0]}")
        if refresh:
            es.indices.refresh(index=f"{prefix}-*")
    except ES_ERRORS as exc:
        raise ReplayError(f"re-indexing into Elasticsearch at {redact_url(url)} failed: {exc}") from exc
    finally:
        es.close()
    report = ReindexReport(len(chosen), int(stored), prefix)
    logger.info("%s", report)
    return report
