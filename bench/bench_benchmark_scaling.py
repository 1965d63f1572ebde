"""The real benchmark end to end: its time, its workers' efficiency, its answer to allocation, scaling.

Measures in one run, on the local stack (Kafka + four Redis data nodes), the thesis workload (10,000
records of 10 x 100 characters, uniform, ``--operations`` reads, ``--clients`` clients per task):

1. **end to end** — request published -> result received, with ``--e2e-workers`` workers and the
   default node capacity, at the even spread (each fragment on one node, the env's initial layout),
   ``--runs`` times: median time vs MDDE's published 19.8 s, throughput vs the capacity model's
   prediction, coefficient of variation; then all reads on one node, the same way;
2. **efficiency** — unpaced reads/s of the same workers vs ``redis-benchmark`` HGETALL on the same
   records at the same total concurrency (one ``redis-benchmark`` per node, side by side);
3. **scaling** — 1, 2, 4 workers, paced and unpaced, with identical per-fragment totals; and the
   same with workers pinned (``taskset``) to one core vs to different cores;
4. **large records** — the thesis's 100 fields of 1,800-3,000 characters (``--large-records`` records,
   one replica each), unpaced and paced, reads/s and MB/s.

    python bench/bench_benchmark_scaling.py [--operations 100000] [--clients 50] [--runs 10]
        [--workers 1,2,4] [--e2e-workers 2] [--large-records 1000] [--large-operations 10000]
        [--kafka kafka://127.0.0.1:9092] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from mdde_stream.benchmark.capacity import DEFAULT_NODE_RATE, capacity_bound, clock_key
from mdde_stream.benchmark.client import LocalServices, RealBenchmark, wait_for_group
from mdde_stream.bus import open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.datanodes import DataNodes, RecordSpec
from mdde_stream.registry import fragment_layout
from mdde_stream.workloads import WorkloadSpec

RECORDS = 10_000
MDDE_SECONDS = 19.8  # thesis §5.2.3: one real benchmark of this workload in MDDE


def parallel_redis_benchmark(ports: list[int], clients: int, requests: int, *command: str, rand: int) -> float:
    """Summed requests/s of one ``redis-benchmark`` per node, run at the same time (Debian's redis-tools)."""
    procs = [
        subprocess.Popen(["redis-benchmark", "-p", str(p), "-c", str(clients), "-n", str(requests), "-q",
                          "-r", str(rand), *command], stdout=subprocess.PIPE, text=True)
        for p in ports
    ]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        rates = re.findall(r"([\d.]+) requests per second", out)
        if not rates:
            raise RuntimeError(f"unexpected redis-benchmark output: {out[-300:]!r}")
        total += float(rates[-1])
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes so far (Linux ``/proc``), which host load does not inflate."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


class Rig:
    """Workers + aggregator on fresh topics, and benchmark clients for one dataset."""

    def __init__(self, settings: Settings, bus: Any, tmp: Path, tag: str) -> None:
        self.settings, self.bus = settings, bus
        self.services = LocalServices(settings, 0, worker_group=f"bench-w-{tag}", aggregator_group=f"bench-a-{tag}",
                                      log_dir=tmp / "logs").start()

    def workers(self, count: int, cpus: list[str | None] | None = None) -> None:
        """Exactly ``count`` workers, restarted when pinning is asked for."""
        if cpus is not None or len(self.services.workers) > count:
            self.services.stop_workers()
        while len(self.services.workers) < count:
            pin = cpus[len(self.services.workers)] if cpus else None
            self.services.add_worker(pin)
        wait_for_group(self.bus, self.services.worker_group, count)

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.services.workers]

    def close(self) -> None:
        self.services.stop()


def bench_client(bus: Any, settings: Settings, layout: dict[str, list[str]], ranges: dict[str, tuple[int, int]],
                 urls: dict[str, str], prefix: str, spec: WorkloadSpec, rate: float) -> RealBenchmark:
    return RealBenchmark(bus, settings, list(layout), list(ranges), spec,
                         node_rates={n: rate for n in layout}, fragment_records=ranges, key_prefix=prefix,
                         timeout_s=900)


def timed(bench: RealBenchmark, allocation: dict[str, list[str]], seed: int, run_id: str) -> tuple[float, Any]:
    t0 = time.perf_counter()
    outcome = bench.run(allocation, seed=seed, run_id=run_id)
    return time.perf_counter() - t0, outcome


def predicted(rate: float, node_ids: list[str], outcome: Any) -> float:
    return capacity_bound({n: rate for n in node_ids}, dict(zip(node_ids, outcome.node_reads.tolist())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=DEFAULT_NODE_RATE, help="node capacity, reads/s per node")
    parser.add_argument("--runs", type=int, default=10, help="end-to-end repetitions (median, CV)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--e2e-workers", type=int, default=2)
    parser.add_argument("--large-records", type=int, default=1_000, help="0 skips the large-record runs")
    parser.add_argument("--large-operations", type=int, default=10_000)
    parser.add_argument("--kafka", default="kafka://127.0.0.1:9092")
    parser.add_argument("--data-nodes", default=",".join(f"redis://127.0.0.1:{6380 + i}/0" for i in range(4)))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    urls = args.data_nodes.split(",")[:4]
    tag = uuid.uuid4().hex[:8]
    # Keys are "<prefix>00<10 digits>", which is what redis-benchmark's 12-digit __rand_int__ yields.
    prefix = f"bench-{tag}:00"
    large_prefix = f"bench-{tag}-large:"
    tmp = Path(tempfile.mkdtemp())
    settings = Settings(bus=args.kafka, topic_prefix=f"bench-{tag}", data_nodes=",".join(urls), session_timeout_s=6,
                        data_dir=tmp)
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    _, ranges, layout = fragment_layout(RECORDS, 4, 20, "contiguous")  # slots = keys: requests carry no record layout
    node_ids = list(layout)
    node_urls = dict(zip(node_ids, urls))
    nodes = DataNodes(node_urls, RecordSpec(record_count=RECORDS, key_prefix=prefix))
    nodes.load(ranges, {n: list(ranges) for n in node_ids})  # every node holds everything
    spec = WorkloadSpec(record_count=RECORDS, operation_count=args.operations, clients=args.clients)
    one = {"n0": list(ranges), "n1": [], "n2": [], "n3": []}
    report: dict[str, Any] = {"operations": args.operations, "clients": args.clients, "rate": args.rate,
                              "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    print(f"{args.operations:,} reads, {args.clients} clients per task, node capacity {args.rate:,.0f} reads/s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rig = Rig(settings, bus, tmp, tag)
    large_nodes = None
    try:
        paced = bench_client(bus, settings, layout, ranges, node_urls, prefix, spec, args.rate)
        unpaced = bench_client(bus, settings, layout, ranges, node_urls, prefix, spec, 0.0)

        # 1. end to end, at the default capacity
        rig.workers(args.e2e_workers)
        paced.run(layout, seed=1, run_id="warm-up")
        unpaced.run(layout, seed=1, run_id="warm-up")
        for name, allocation, runs in (("spread", layout, args.runs), ("one node", one, max(3, args.runs // 3))):
            walls, rates, preds = [], [], []
            for r in range(runs):
                wall, outcome = timed(paced, allocation, seed=100 + r, run_id=f"e2e-{name.replace(' ', '-')}-{r}")
                walls.append(wall)
                rates.append(outcome.throughput)
                preds.append(predicted(args.rate, node_ids, outcome))
            entry = {
                "wall_median_s": statistics.median(walls), "wall_max_s": max(walls),
                "throughput_mean": statistics.fmean(rates), "predicted_mean": statistics.fmean(preds),
                "cv": statistics.pstdev(rates) / statistics.fmean(rates),
                "vs_prediction": statistics.fmean(rates) / statistics.fmean(preds),
                "vs_mdde": MDDE_SECONDS / statistics.median(walls), "runs": runs,
            }
            report.setdefault("end_to_end", {})[name] = entry
            print(f"end to end, {name:8s}, {args.e2e_workers} workers: median {entry['wall_median_s']:.2f} s "
                  f"(max {entry['wall_max_s']:.2f} s; MDDE 19.8 s -> {entry['vs_mdde']:.1f}x faster), "
                  f"{entry['throughput_mean']:,.0f} reads/s = {entry['vs_prediction']:.3f}x the model's "
                  f"{entry['predicted_mean']:,.0f}, CV {100 * entry['cv']:.1f} % over {runs} runs")
        e2e = report["end_to_end"]
        report["one_vs_spread"] = e2e["spread"]["throughput_mean"] / e2e["one node"]["throughput_mean"]
        print(f"spread over four / all on one node: {report['one_vs_spread']:.2f}x")

        # 2. efficiency: unpaced workers vs redis-benchmark at the same total concurrency
        concurrency = args.e2e_workers * args.clients
        walls, rates = [], []
        for r in range(3):
            wall, outcome = timed(unpaced, layout, seed=200 + r, run_id=f"unpaced-{r}")
            walls.append(wall)
            rates.append(outcome.throughput)
        ports = [urlparse(u).port or 6379 for u in urls]
        reference = parallel_redis_benchmark(ports, max(1, concurrency // 4), args.operations // 4, "HGETALL",
                                             f"{prefix}__rand_int__", rand=RECORDS)
        report["efficiency"] = {"workers_unpaced": statistics.median(rates), "redis_benchmark": reference,
                                "ratio": statistics.median(rates) / reference, "concurrency": concurrency,
                                "unpaced_wall_median_s": statistics.median(walls)}
        print(f"unpaced, {args.e2e_workers} workers: {statistics.median(rates):,.0f} reads/s; redis-benchmark "
              f"HGETALL at c={concurrency} over four nodes: {reference:,.0f} req/s -> "
              f"{report['efficiency']['ratio']:.2f}x")

        # 3. scaling with workers
        totals: dict[str, list[np.ndarray]] = {"paced": [], "unpaced": []}
        for count in counts:
            rig.workers(count)
            for label, bench in (("paced", paced), ("unpaced", unpaced)):
                cpu0 = cpu_seconds(rig.pids())
                outcome = bench.run(layout, seed=1, run_id=f"scale-{label}-{count}")
                cpu = cpu_seconds(rig.pids()) - cpu0
                totals[label].append(outcome.fragment_reads)
                report.setdefault("scaling", {}).setdefault(label, {})[count] = outcome.throughput
                report.setdefault("worker_cpu_us_per_read", {}).setdefault(label, {})[count] = 1e6 * cpu / outcome.total_reads
                print(f"{label:8s} {count} worker(s): {outcome.throughput:9,.0f} reads/s "
                      f"({outcome.total_reads} reads in {outcome.duration_s:.2f}s; workers' CPU "
                      f"{1e6 * cpu / outcome.total_reads:.1f} us per read)")
        for label, runs in totals.items():
            same = all(np.array_equal(runs[0], r) for r in runs)
            report.setdefault("identical_totals", {})[label] = same
            print(f"{label}: identical per-fragment read totals for {counts} workers: {same}")
        cores = os.cpu_count() or 1
        if cores >= 2:
            for name, pins in (("1 worker on core 0", ["0"]), ("2 workers on core 0", ["0", "0"]),
                               ("2 workers on cores 0, 1", ["0", "1"])):
                rig.workers(len(pins), pins)
                outcome = unpaced.run(layout, seed=1, run_id=f"pinned-{len(pins)}")
                totals["unpaced"].append(outcome.fragment_reads)
                report.setdefault("pinned", {})[name] = outcome.throughput
                print(f"unpaced, {name:24s}: {outcome.throughput:9,.0f} reads/s")
            report["identical_totals"]["pinned"] = all(np.array_equal(totals["unpaced"][0], r) for r in totals["unpaced"])

        # 4. large records (one replica per fragment: a quarter of the data per node)
        if args.large_records:
            rig.workers(args.e2e_workers)
            large = RecordSpec.preset("large", record_count=args.large_records, key_prefix=large_prefix)
            _, lranges, llayout = fragment_layout(args.large_records, 4, 20, "contiguous")
            large_nodes = DataNodes(node_urls, large, batch_size=50)
            t0 = time.perf_counter()
            large_nodes.load(lranges, llayout)
            load_s = time.perf_counter() - t0
            lspec = WorkloadSpec(record_count=args.large_records, operation_count=args.large_operations,
                                 clients=args.clients)
            mean_bytes = large.field_count * (large.field_length_min + large.field_length_max) / 2
            for label, rate in (("unpaced", 0.0), ("paced", args.rate)):
                bench = bench_client(bus, settings, llayout, lranges, node_urls, large_prefix, lspec, rate)
                wall, outcome = timed(bench, llayout, seed=3, run_id=f"large-{label}")
                bench.close()
                entry = {"throughput": outcome.throughput, "mb_per_s": outcome.throughput * mean_bytes / 1e6,
                         "wall_s": wall, "predicted": predicted(rate, node_ids, outcome) if rate else None}
                report.setdefault("large", {})[label] = entry
                print(f"large records ({args.large_records:,} x ~{mean_bytes / 1000:.0f} kB, loaded in {load_s:.1f} s), "
                      f"{label}: {outcome.throughput:,.0f} reads/s = {entry['mb_per_s']:,.0f} MB/s, "
                      f"{args.large_operations:,} reads end to end in {wall:.2f} s")
        paced.close()
        unpaced.close()
    finally:
        rig.close()
        for node, client in nodes.clients.items():
            nodes.delete_range(node, 0, RECORDS)
            client.delete(clock_key(prefix), clock_key(large_prefix))
        nodes.close()
        if large_nodes is not None:
            for node in large_nodes.clients:
                large_nodes.delete_range(node, 0, args.large_records)
            large_nodes.close()
        bus.delete_topics([t for t in bus.list_topics() if t.startswith(settings.topic_prefix + ".")])
        bus.close()
    report["load_after"] = os.getloadavg()[0]
    print(f"load average after: {report['load_after']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
