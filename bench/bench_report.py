"""Run-report cost against the indexer's own work on the same events.

The report evaluates every dashboard panel per episode and over the whole run and inlines Vega's
runtime; its reference is ``documents_by_kind`` over the same events (what the indexer computes
before a bulk request), so the ratio says how much a report costs beyond turning events into
documents. Events come from the telemetry sample generator at the thesis's scale (4 agents,
20 fragments, 1,001 steps, a benchmark every 25 steps).

    python bench/bench_report.py --episodes 5 --steps 1001
"""

from __future__ import annotations

import argparse
import time

from mdde_stream.telemetry.documents import documents_by_kind
from mdde_stream.telemetry.report import render_report
from mdde_stream.telemetry.sample import sample_run


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1001)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    events = sample_run("bench", episodes=args.episodes, steps=args.steps, agents=4, fragments=20,
                        benchmark_every=25, seed=0)
    render_report("bench", events[:50])  # warm: Altair's schema, vl-convert's bundle
    reference = best_of(args.repeat, lambda: documents_by_kind(events))
    report = best_of(args.repeat, lambda: render_report("bench", events))
    size = len(render_report("bench", events).encode())
    print(f"{len(events):,} events ({args.episodes} episodes × {args.steps} steps): documents {reference:.3f} s, "
          f"report {report:.3f} s = {report / reference:.1f}× the documents; report {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
