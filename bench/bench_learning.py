"""Learning throughput: environment steps per second with 1, 2, 4 actor processes feeding one learner.

Each run starts N actor processes on the default scenario (4 agents × 20 fragments, estimator) and
one MADDPG learner (thesis network sizes, batch 100, one update per 25 environment steps) on a fresh
Redis replay memory, waits until every actor is up, and times how long the actors take to push
``--steps`` transitions while the learner updates and publishes weights. The 1-actor rate is the
reference ratio.

    python bench/bench_learning.py --actors 1,2,4 --steps 6000
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid

from rich.console import Console
from rich.table import Table


def main() -> None:
    from mdde_stream.agents.distributed import train_distributed
    from mdde_stream.agents.maddpg import MaddpgConfig
    from mdde_stream.config import get_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", default="1,2,4", help="Comma-separated actor counts.")
    parser.add_argument("--steps", type=int, default=6000, help="Environment steps per run.")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--redis", default=get_settings().state or os.environ.get("MDDE_STATE") or
                        "redis://127.0.0.1:6379/0")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--fragments", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    env = dict(nodes=args.nodes, fragments=args.fragments, workload="latest", storage_importance=0.5,
               do_nothing_worth=1.0, max_steps=100)
    rows = []
    for n in [int(x) for x in args.actors.split(",")]:
        config = MaddpgConfig(total_steps=args.steps, learning_starts=args.learning_starts, seed=0)
        result = train_distributed(config, env, args.redis, actors=n, capacity=50_000,
                                   prefix=f"bench:learning:{uuid.uuid4().hex[:8]}", timeout_s=1800)
        s = result.stats
        rows.append((n, s.env_steps, s.sampling_seconds, s.env_steps / s.sampling_seconds, s.updates))

    console = Console()
    table = Table("actors", "env steps", "seconds", "env steps/s", "vs 1 actor", "learner updates",
                  title=f"MADDPG hive mind, {args.nodes}×{args.fragments}, {os.cpu_count()} CPUs")
    base = rows[0][3]
    for n, steps, seconds, rate, updates in rows:
        table.add_row(str(n), str(steps), f"{seconds:.1f}", f"{rate:.0f}", f"{rate / base:.2f}×", str(updates))
    console.print(table)


if __name__ == "__main__":
    main()
