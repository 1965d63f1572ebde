"""The indexer service: ``mdde-stream service indexer`` (or ``python -m consumers.indexer``).

Run several in one consumer group (same ``--group``) to share the telemetry topics' partitions. The
work — documents, bulk requests, retries while Elasticsearch is down, commits only after it
acknowledged — is :class:`~mdde_stream.telemetry.indexer.Indexer`'s; this module runs it on the
services' runtime (signals, bus, error boundary). SIGTERM/SIGINT finish the current batch's retries
(without committing unacknowledged work) and leave the group, so the partitions move to the other
members at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from mdde_stream.config import get_settings
from mdde_stream.services.runtime import LoopService, ServiceArgumentParser, positive_int, serve
from mdde_stream.telemetry.indexer import IndexerStopped

if TYPE_CHECKING:
    from mdde_stream.telemetry.indexer import Indexer

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = get_settings()
    parser = ServiceArgumentParser(prog="mdde-stream service indexer", description=__doc__.splitlines()[0])
    parser.add_argument("--elasticsearch", default=settings.elasticsearch or "",
                        help="Elasticsearch URL (default: MDDE_ELASTICSEARCH)")
    parser.add_argument("--bus", default=None, help="bus URL (default: MDDE_BUS)")
    parser.add_argument("--index-prefix", default=None, help="index name prefix (default: from MDDE_TOPIC_PREFIX)")
    parser.add_argument("--group", default=None, help="consumer group (default: <prefix>-indexer)")
    parser.add_argument("--retention-days", type=positive_int, default=None,
                        help="delete dated indices older than this many days (default: keep everything)")
    parser.add_argument("--max-records", type=positive_int, default=5000, help="events per batch")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)


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
        self.indexer._maybe_retention()
        self.indexer._maybe_day_indices()
        return indexed

    def stop(self, *_: object) -> None:
        super().stop()
        self.indexer.stop()  # also ends a wait for Elasticsearch

    def close(self) -> None:
        self.indexer.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        from mdde_stream.telemetry.indexer import Indexer, connect
    except ImportError as exc:
        print(f"the indexer needs the telemetry extra (pip install 'mdde-stream[telemetry]'): {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    if args.bus is not None:
        settings = settings.model_copy(update={"bus": args.bus})
    if not args.elasticsearch:
        print("no Elasticsearch URL: pass --elasticsearch or set MDDE_ELASTICSEARCH", file=sys.stderr)
        return 2
    try:
        es = connect(args.elasticsearch, settings=settings)
    except ValueError as exc:  # a bad URL, credential or CA setting: one line naming it
        print(f"indexer: {exc}", file=sys.stderr)
        return 2
    return serve(lambda bus, s: IndexerService(Indexer(
        bus, es, s, index_prefix=args.index_prefix, group_id=args.group, max_records=args.max_records,
        retention_days=args.retention_days)), settings)


if __name__ == "__main__":
    raise SystemExit(main())
