"""The replay producer: re-emits a recorded run (or one episode) to a new run id, paced.

Meant for demonstrations: point the dashboards at the bus, start this, and a past run plays again
at ``--speed`` × its recorded pace, as if it were live. It only reads the recording (plain offset
reads, no committed offsets) and writes new events; nothing recorded is changed.

    python -m producers.replay --run run-1234abcd --episode 0 --speed 5
"""

from __future__ import annotations

import argparse
import logging
import sys

from mdde_stream.bus import open_bus
from mdde_stream.config import get_settings
from mdde_stream.replay.exceptions import ReplayError
from mdde_stream.replay.recording import group_episodes
from mdde_stream.replay.reemit import reemit
from mdde_stream.replay.selection import Selection, read_selection

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="producers.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="recorded run id")
    parser.add_argument("--episode", type=int, default=None, help="one episode of the run (default: all)")
    parser.add_argument("--speed", type=float, default=1.0, help="multiple of the recorded pace (default 1)")
    parser.add_argument("--new-run-id", default=None, help="run id of the re-emitted events (default: generated)")
    parser.add_argument("--bus", default=None, help="bus URL (default: MDDE_BUS)")
    parser.add_argument("--skip-corrupt", action="store_true", help="skip corrupt recorded events")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.speed > 0:
        logger.error("--speed must be > 0, got %s", args.speed)
        return 2
    settings = get_settings()
    try:
        with open_bus(args.bus, settings=settings) as bus:
            selected = read_selection(bus, Selection(run_id=args.run, episode=args.episode), settings,
                                      skip_corrupt=args.skip_corrupt)
            for ep in group_episodes(selected):
                for problem in ep.problems:
                    logger.warning("%s: %s", ep.name, problem)
            report = reemit(bus, selected.events, args.new_run_id, args.speed)
    except ReplayError as exc:
        logger.error("%s", exc)
        return 3
    print(report.run_ids[args.run])
    return 0


if __name__ == "__main__":
    sys.exit(main())
