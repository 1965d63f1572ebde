"""The indexer service: ``mdde-stream service indexer`` (or ``python -m consumers.indexer``).

Run several in one consumer group (same ``--group``) to share the telemetry topics' partitions. The
work — documents, bulk requests, retries while Elasticsearch is down, commits only after it
acknowledged — is :class:`~mdde_stream.telemetry.indexer.Indexer`'s; this module runs it on the
services' runtime (signals, bus, error boundary). SIGTERM/SIGINT finish the current batch's retries
(without committing unacknowledged work) and leave the group, so the partitions move to the other
members at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mdde_stream.services.runtime import LoopService
from mdde_stream.telemetry.indexer import IndexerStopped

if TYPE_CHECKING:
    from mdde_stream.telemetry.indexer import Indexer

logger = logging.getLogger(__name__)


class IndexerService(LoopService):
    """The indexer on the runtime: one batch per turn, retention and day indices between batches."""

    name = "indexer"

    def __init__(self, indexer: Indexer) -> None:
        super().__init__()
        self.indexer = indexer
        self.consumer = indexer.consumer

    def started(self) -> str:
        self.indexer.start()
        return f"indexer {self.indexer.group_id} consuming into {self.indexer.prefix}-*"

    def stopped(self) -> str:
        return f"indexer finished: {self.indexer.stats}"

    def process_once(self) -> int:
        try:
            indexed = self.indexer.run_once()
        except IndexerStopped:
            logger.info("indexer stopped while waiting for Elasticsearch; the batch stays uncommitted")
            return 0
        self.indexer.upkeep()
        return indexed

    def stop(self, *_: object) -> None:
        super().stop()
        self.indexer.stop()  # also ends a wait for Elasticsearch

    def close(self) -> None:
        self.indexer.close()
