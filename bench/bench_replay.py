"""Replay time of a recorded 1,001-step episode, against the time the original run took to record it.

For each bus: record one random-valid episode of ``--steps`` steps (estimator benchmark) on a fresh
topic prefix, then time a full ``--verify`` replay: read the episode's events back (plain offset
reads), group them, rebuild it through the environment and compare every verdict, allocation and
reward. Goal: ≤ 1 s on the embedded bus.

    python bench/bench_replay.py [--steps 1001] [--repeat 3] [--kafka kafka://127.0.0.1:9092] [--skip-kafka]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from mdde_stream.bus import open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.replay import Selection, group_episodes, read_selection
from mdde_stream.replay.testing import record_episodes
from mdde_stream.replay.verify import verify_episode

GOAL_EMBEDDED_S = 1.0


def measure(url: str, steps: int, repeat: int) -> dict[str, float]:
    """Recording time, best-of-``repeat`` replay time and its parts, in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        settings = Settings(data_dir=Path(tmp), bus=url, state="", topic_prefix=prefix)
        bus = open_bus(settings=settings)
        ensure_topics(bus, settings)
        try:
            started = time.perf_counter()
            run_id = record_episodes(settings, episodes=1, steps=steps, seed=1).run_id
            record_s = time.perf_counter() - started
            best: dict[str, float] = {}
            for _ in range(repeat):
                t0 = time.perf_counter()
                selected = read_selection(bus, Selection(run_id=run_id, episode=0), settings)
                [episode] = group_episodes(selected)
                t1 = time.perf_counter()
                report = verify_episode(episode, settings)
                t2 = time.perf_counter()
                if not report.ok or report.steps != steps:
                    raise SystemExit(f"replay did not verify: {report}")
                if not best or t2 - t0 < best["replay_s"]:
                    best = {"replay_s": t2 - t0, "read_s": t1 - t0, "verify_s": t2 - t1,
                            "events": float(len(selected.events))}
            return {"record_s": record_s, **best}
        finally:
            if url.startswith("kafka://"):
                bus.delete_topics([t for t in bus.list_topics() if t.startswith(prefix)])
            bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1001)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kafka", default="kafka://127.0.0.1:9092")
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args()

    backends = [("embedded", "")] + ([] if args.skip_kafka else [("kafka", args.kafka)])
    print(f"replay (--verify) of a {args.steps}-step episode, 4 agents x 20 fragments, estimator benchmark")
    print(f"{'bus':10} {'events':>7} {'recorded in':>12} {'replayed in':>12} {'read':>8} {'verify':>8} "
          f"{'replay/record':>14}  goal")
    for name, url in backends:
        m = measure(url, args.steps, args.repeat)
        ratio = m["replay_s"] / m["record_s"]
        goal = (f"<= {GOAL_EMBEDDED_S:.1f} s: {'met' if m['replay_s'] <= GOAL_EMBEDDED_S else 'MISSED'}"
                if name == "embedded" else "(reported)")
        print(f"{name:10} {m['events']:7,.0f} {m['record_s']:11.3f}s {m['replay_s']:11.3f}s {m['read_s']:7.3f}s "
              f"{m['verify_s']:7.3f}s {ratio:13.2f}x  {goal}")


if __name__ == "__main__":
    main()
