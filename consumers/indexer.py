"""The indexer service: ``python -m consumers.indexer`` or ``mdde-stream service indexer``.

Run several in one consumer group (same ``--group``) to share the telemetry topics' partitions.
SIGTERM/SIGINT finish the current batch's retries (without committing unacknowledged work) and leave
the group, so the partitions move to the other members at once.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from mdde_stream.config import get_settings

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="mdde-stream service indexer", description=__doc__.splitlines()[0])
    parser.add_argument("--elasticsearch", default=settings.elasticsearch or "",
                        help="Elasticsearch URL (default: MDDE_ELASTICSEARCH)")
    parser.add_argument("--bus", default=None, help="bus URL (default: MDDE_BUS)")
    parser.add_argument("--index-prefix", default=None, help="index name prefix (default: from MDDE_TOPIC_PREFIX)")
    parser.add_argument("--group", default=None, help="consumer group (default: <prefix>-indexer)")
    parser.add_argument("--retention-days", type=int, default=None,
                        help="delete dated indices older than this many days (default: keep everything)")
    parser.add_argument("--max-records", type=int, default=5000, help="events per batch")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        from mdde_stream.telemetry.indexer import Indexer, connect
    except ImportError as exc:
        print(f"the indexer needs the telemetry extra (pip install 'mdde-stream[telemetry]'): {exc}", file=sys.stderr)
        return 2
    from mdde_stream.bus import open_bus

    settings = get_settings()
    if not args.elasticsearch:
        print("no Elasticsearch URL: pass --elasticsearch or set MDDE_ELASTICSEARCH", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        es = connect(args.elasticsearch, settings=settings)
    except ValueError as exc:  # a bad credential / CA setting: one line naming it
        print(f"indexer: {exc}", file=sys.stderr)
        return 2
    with open_bus(args.bus, settings=settings) as bus:
        indexer = Indexer(bus, es, settings, index_prefix=args.index_prefix,
                          group_id=args.group, max_records=args.max_records, retention_days=args.retention_days)
        try:
            stats = indexer.run(stop)
        finally:
            indexer.close()
    logger.info("indexer finished: %s", stats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
