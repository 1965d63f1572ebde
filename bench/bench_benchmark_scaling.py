"""The real benchmark's horizontal scaling, its node-capacity model, and raw Redis as reference.

Measures, on the local stack (Kafka + four Redis data nodes), with the same seeded uniform run:

1. reads/s with 1, 2 and 4 benchmark workers, paced (node capacity ``--rate`` reads/s per node) and
   unpaced (raw Redis speed), with a check that every worker count gives identical read totals;
2. all reads on one node vs spread over four (paced): the throughput the allocation decides;
3. ``redis-benchmark`` HGETALL of the same records at the same concurrency (one node, and four nodes
   in parallel), plus its plain GET, as the ceiling of what Redis itself serves on this host.

    python bench/bench_benchmark_scaling.py [--operations 20000] [--clients 50] [--rate 2000]
        [--workers 1,2,4] [--kafka kafka://127.0.0.1:9092] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from mdde_stream.benchmark.capacity import clock_key
from mdde_stream.benchmark.client import LocalServices, RealBenchmark, wait_for_group
from mdde_stream.bus import open_bus
from mdde_stream.bus.topics import ensure_topics
from mdde_stream.config import Settings
from mdde_stream.datanodes import DataNodes, RecordSpec
from mdde_stream.registry import fragment_layout
from mdde_stream.workloads import WorkloadSpec

RECORDS = 10_000


def redis_benchmark(port: int, clients: int, requests: int, *command: str, rand: int | None = None) -> float:
    """requests/s reported by ``redis-benchmark`` (Debian's redis-tools)."""
    args = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests), "-q"]
    if rand is not None:
        args += ["-r", str(rand)]
    out = subprocess.run([*args, *command], capture_output=True, text=True, check=True, timeout=300).stdout
    rates = re.findall(r"([\d.]+) requests per second", out)
    if not rates:
        raise RuntimeError(f"unexpected redis-benchmark output: {out[-300:]!r}")
    return float(rates[-1])


def parallel_redis_benchmark(ports: list[int], clients: int, requests: int, *command: str, rand: int) -> float:
    """Summed requests/s of one ``redis-benchmark`` per node, run at the same time."""
    procs = [
        subprocess.Popen(["redis-benchmark", "-p", str(p), "-c", str(clients), "-n", str(requests), "-q",
                          "-r", str(rand), *command], stdout=subprocess.PIPE, text=True)
        for p in ports
    ]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        total += float(re.findall(r"([\d.]+) requests per second", out)[-1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=2_000.0, help="paced node capacity, reads/s per node")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--kafka", default="kafka://127.0.0.1:9092")
    parser.add_argument("--data-nodes", default=",".join(f"redis://127.0.0.1:{6380 + i}/0" for i in range(4)))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    urls = args.data_nodes.split(",")[:4]
    tag = uuid.uuid4().hex[:8]
    # Keys are "<prefix>00<10 digits>", which is what redis-benchmark's 12-digit __rand_int__ yields.
    prefix = f"bench-{tag}:00"
    tmp = Path(tempfile.mkdtemp())
    settings = Settings(bus=args.kafka, topic_prefix=f"bench-{tag}", data_nodes=",".join(urls), session_timeout_s=6,
                        data_dir=tmp)
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    _, ranges, layout = fragment_layout(RECORDS, 4, 20, "contiguous")  # slots = keys: requests carry no record layout
    node_urls = dict(zip(layout, urls))
    nodes = DataNodes(node_urls, RecordSpec(record_count=RECORDS, key_prefix=prefix))
    nodes.load(ranges, {n: list(ranges) for n in layout})  # every node holds everything
    spec = WorkloadSpec(record_count=RECORDS, operation_count=args.operations, clients=args.clients)
    report: dict[str, Any] = {"operations": args.operations, "clients": args.clients, "rate": args.rate,
                              "scaling": {}, "allocation": {}, "redis_benchmark": {}}
    services = LocalServices(settings, 0, worker_group=f"bench-w-{tag}", aggregator_group=f"bench-a-{tag}",
                             log_dir=tmp / "logs").start()
    one = {"n0": list(ranges), "n1": [], "n2": [], "n3": []}
    try:
        benches = {
            label: RealBenchmark(bus, settings, list(layout), list(ranges), spec, data_nodes=node_urls,
                                 node_rates={n: rate for n in layout}, fragment_records=ranges, key_prefix=prefix,
                                 timeout_s=600)
            for label, rate in (("paced", args.rate), ("unpaced", 0.0))
        }
        totals: dict[str, list[np.ndarray]] = {"paced": [], "unpaced": []}
        for count in counts:
            while len(services.workers) < count:
                services.add_worker()
            wait_for_group(bus, services.worker_group, count)
            for label, bench in benches.items():
                bench.run(layout, seed=1, run_id="warmup")  # connections, scripts, imports
                outcome = bench.run(layout, seed=1, run_id=f"scale-{count}")
                totals[label].append(outcome.fragment_reads)
                report["scaling"].setdefault(label, {})[count] = outcome.throughput
                print(f"{label:8s} {count} worker(s): {outcome.throughput:9,.0f} reads/s "
                      f"({outcome.total_reads} reads in {outcome.duration_s:.2f}s)")
        for label, runs in totals.items():
            same = all(np.array_equal(runs[0], r) for r in runs)
            report.setdefault("identical_totals", {})[label] = same
            print(f"{label}: identical per-fragment read totals for {counts} workers: {same}")
        paced = benches["paced"]
        for name, allocation in (("one node", one), ("spread over 4", layout)):
            outcome = paced.run(allocation, seed=2, run_id=name)
            report["allocation"][name] = outcome.throughput
            print(f"paced, {max(counts)} workers, {name:14s}: {outcome.throughput:9,.0f} reads/s "
                  f"(node reads {outcome.node_reads.tolist()})")
        for bench in benches.values():
            bench.close()
    finally:
        services.stop()
    ports = [urlparse(u).port or 6379 for u in urls]
    template = f"bench-{tag}:__rand_int__"
    rb = report["redis_benchmark"]
    rb["hgetall_one_node"] = redis_benchmark(ports[0], args.clients, args.operations, "HGETALL", template,
                                             rand=RECORDS)
    rb["hgetall_four_nodes"] = parallel_redis_benchmark(ports, max(1, args.clients // 4), args.operations // 4,
                                                        "HGETALL", template, rand=RECORDS)
    rb["get_one_node"] = redis_benchmark(ports[0], args.clients, args.operations, "-t", "get")
    for name, value in rb.items():
        print(f"redis-benchmark {name:20s}: {value:9,.0f} requests/s (c={args.clients} in total)")
    for node, client in nodes.clients.items():
        nodes.delete_range(node, 0, RECORDS)
        client.delete(clock_key(prefix))
    nodes.close()
    bus.delete_topics([t for t in bus.list_topics() if t.startswith(settings.topic_prefix + ".")])
    bus.close()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
