"""The starving and greedy edge cases (thesis §5.2) run end to end, and their report folder.

Output folder: ``edge_cases.json`` (everything, per run and step), ``tables.md`` (reads per node per
step for the benchmark and the estimator, like the thesis's Tables 5.1-5.4, plus the summary),
``throughput-<case>.svg`` (benchmark vs estimate per step, mean with min-max band over runs, like
Fig. 5.2/5.4) and ``heatmap-<case>.svg`` (reads per fragment per node at the start and the end,
benchmark and estimate, one colour scale). The SVGs are Vega-Lite charts rendered by vl-convert (the
``plots`` extra), in the colours of the run report.

The real benchmark needs a bus and four data nodes; it loads its own dataset under ``key_prefix``
(deleted afterwards), keeps the allocation in memory, moves data with ``Registry.shuffle()`` before
each benchmark and, unless ``workers`` is 0, starts that many benchmark workers plus an aggregator
for the duration of the run. ``mdde-stream edge-cases`` (:mod:`mdde_stream.cli.edge_cases`) and
``mdde-stream reproduce`` run it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from mdde_stream.config import Settings, get_settings
from mdde_stream.edge_cases import (
    CASE_WORKLOADS,
    FRAGMENT_COUNT,
    NODE_COUNT,
    RealBench,
    run_case,
    simulated_bench,
    summarize,
    workload_for,
)
from mdde_stream.plots import altair, colour_scale, configure, natural_key, to_svg

logger = logging.getLogger(__name__)


def run_edge_cases(benchmark: str, runs: int, out: Path, *, settings: Settings | None = None,
                   operations: int = 100_000, records: int = 10_000, clients: int = 50, seed: int = 0,
                   cases: tuple[str, ...] = ("starving", "greedy"), workers: int = 2,
                   key_prefix: str = "edge:", timeout_s: float = 300.0, service_cv: float = 0.0,
                   tasks: int = 8, grouping: str = "hashed", numbering: str = "thesis") -> dict[str, Any]:
    """Run the cases, write the report folder, return the JSON document.

    ``numbering`` defaults to the thesis's (fragment blocks on w0, w2, w3, w1, see ``fragmenter.py``):
    the greedy agents copy in index order, so Tables 5.3/5.4 only line up with it.
    """
    from mdde_stream.benchmark.capacity import parse_rates
    from mdde_stream.registry import fragment_layout, open_registry

    settings = settings or get_settings()
    unknown = [c for c in cases if c not in CASE_WORKLOADS]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}: choose from {sorted(CASE_WORKLOADS)}")
    if runs < 1:
        raise ValueError(f"--runs must be at least 1, got {runs}")
    layout = fragment_layout(records, NODE_COUNT, FRAGMENT_COUNT, grouping, numbering)  # type: ignore[arg-type]
    record_fragment, ranges = layout.record_fragment, layout.ranges
    node_ids, fragment_ids = list(layout.allocation), list(ranges)
    options = {"grouping": grouping, "numbering": numbering}
    rates = parse_rates(settings.benchmark_node_rates, node_ids)
    memory = settings.model_copy(update={"state": ""})
    started = time.time()
    summaries: dict[str, Any] = {}
    if benchmark == "simulated":
        if any(r <= 0 for r in rates.values()):
            raise ValueError(f"the simulated benchmark needs positive node rates, got {rates}")
        registry = open_registry(memory, NODE_COUNT, FRAGMENT_COUNT, records, **options)  # type: ignore[arg-type]
        for case in cases:
            bench = simulated_bench(case, operations, records, record_fragment, list(rates.values()),
                                    clients, service_cv)
            summaries[case] = summarize(case, run_case(case, registry, bench, runs, seed), node_ids, fragment_ids)
        registry.close()
    elif benchmark == "real":
        summaries = _run_real(settings, memory, cases, runs, seed, operations, records, clients, workers,
                              key_prefix, timeout_s, tasks, node_ids, fragment_ids, ranges, rates, options)
    else:
        raise ValueError(f"--benchmark must be real or simulated, got {benchmark!r}")
    doc = {
        "benchmark": benchmark,
        "runs": runs,
        "seed": seed,
        "operations": operations,
        "records": records,
        "clients": clients,
        "fragment_grouping": grouping,
        "fragment_numbering": numbering,
        "node_rates": rates,
        "elapsed_s": time.time() - started,
        "cases": summaries,
    }
    write_report(doc, out)
    return doc


def _run_real(settings: Settings, memory: Settings, cases: tuple[str, ...], runs: int, seed: int,
              operations: int, records: int, clients: int, workers: int, key_prefix: str, timeout_s: float,
              tasks: int, node_ids: list[str], fragment_ids: list[str], ranges: dict[str, tuple[int, int]],
              rates: dict[str, float], options: dict[str, Any]) -> dict[str, Any]:
    from mdde_stream.benchmark.capacity import clock_key
    from mdde_stream.benchmark.client import LocalServices, RealBenchmark, wait_for_group
    from mdde_stream.bus import open_bus
    from mdde_stream.bus.topics import ensure_topics
    from mdde_stream.datanodes import DataNodes, RecordSpec
    from mdde_stream.registry import open_registry
    from mdde_stream.registry.fragmenter import record_layout

    urls = settings.data_node_urls
    if len(urls) < NODE_COUNT:
        raise ValueError(f"--benchmark real needs {NODE_COUNT} MDDE_DATA_NODES URLs (got {len(urls)}); the bus may be "
                         "Kafka or the embedded one")
    node_urls = dict(zip(node_ids, urls))
    bus = open_bus(settings=settings)
    ensure_topics(bus, settings)
    nodes = DataNodes(node_urls, RecordSpec(record_count=records, key_prefix=key_prefix))
    registry = open_registry(memory, NODE_COUNT, FRAGMENT_COUNT, records, data_nodes=nodes, **options)
    wire_layout = record_layout(NODE_COUNT, options["grouping"], options["numbering"], 0)
    services = LocalServices(settings, workers)  # joins the standard groups of these topics
    benches: dict[str, RealBenchmark] = {}
    summaries: dict[str, Any] = {}
    try:
        if workers:
            services.start()
            wait_for_group(bus, services.worker_group, workers)
            wait_for_group(bus, services.aggregator_group, 1)
        for case in cases:
            workload = CASE_WORKLOADS[case]
            benches[workload] = RealBenchmark(
                bus, settings, node_ids, fragment_ids, workload_for(case, operations, records, clients),
                workload=workload, node_rates=rates, fragment_records=ranges,
                key_prefix=key_prefix, record_layout=wire_layout, tasks=tasks, timeout_s=timeout_s,
            )
            bench = RealBench(benches.__getitem__)
            bench.workload = workload
            summaries[case] = summarize(case, run_case(case, registry, bench, runs, seed), node_ids, fragment_ids)
    finally:
        services.stop()
        for b in benches.values():
            b.close()
        for node, client in nodes.clients.items():
            nodes.delete_range(node, 0, records)
            client.delete(clock_key(key_prefix))
        registry.close()
        bus.close()
    return summaries


# -- report -----------------------------------------------------------------------------------------


def write_report(doc: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "edge_cases.json", out / "tables.md"]
    paths[0].write_text(json.dumps(doc, indent=1) + "\n")
    paths[1].write_text(markdown(doc))
    for case, summary in doc["cases"].items():
        plot = out / f"throughput-{case}.svg"
        plot.write_text(throughput_svg(summary, doc["benchmark"]))
        heat = out / f"heatmap-{case}.svg"
        heat.write_text(heatmap_svg(summary))
        paths += [plot, heat]
    return paths


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Edge cases ({doc['benchmark']} benchmark, {doc['runs']} runs, {doc['operations']:,} reads, "
             f"{doc['records']:,} records)", "", "| case | steps | τ start | τ end | final shares (benchmark) | "
             "final shares (estimate) | mean relative τ error | mean max share error |", "|---|---|---|---|---|---|---|---|"]
    for case, s in doc["cases"].items():
        lines.append(
            f"| {case} | {s['step_count']} | {s['throughput_start']:.0f} | {s['throughput_end']:.0f} | "
            f"{shares_text(s['final_benchmark_share'])} | {shares_text(s['final_estimate_share'])} | "
            f"{s['mean_relative_error']:.1%} | {s['mean_max_share_error']:.1%} |"
        )
    for case, s in doc["cases"].items():
        for source in ("benchmark", "estimate"):
            lines += ["", f"## {case}: {source} reads per node (mean over runs)", "",
                      "| step | actions | " + " | ".join(s["nodes"]) + " | τ (reads/s) |",
                      "|---|---|" + "---|" * len(s["nodes"]) + "---|"]
            for step in s["steps"]:
                reads = step[f"{source}_node_reads"]
                shares = step[f"{source}_node_share"]
                cells = " | ".join(f"{r:,.0f} ({p:.0%})" for r, p in zip(reads, shares))
                tp = step[f"{source}_throughput"]
                lines.append(f"| {step['step']} | {_actions(step['actions'])} | {cells} | {tp['mean']:,.0f} |")
    return "\n".join(lines) + "\n"


def shares_text(shares: list[float]) -> str:
    """Per-node shares as ``25% / 25% / ...``."""
    return " / ".join(f"{v:.0%}" for v in shares)


def _actions(actions: list[dict[str, Any]]) -> str:
    if not actions:
        return "start"
    return ", ".join(
        f"{a['target']}+{a['fragment']}" if a["kind"] == "copy" else f"{a['target']}−{a['fragment']}" for a in actions
    )


def throughput_svg(summary: dict[str, Any], benchmark: str) -> str:
    """Throughput per step: benchmark and estimate, mean line and min-max band over runs (Fig. 5.2/5.4)."""
    alt = altair()
    rows = [{"step": i, "source": label, "mean": s[key]["mean"], "min": s[key]["min"], "max": s[key]["max"]}
            for i, s in enumerate(summary["steps"])
            for key, label in (("benchmark_throughput", "benchmark"), ("estimate_throughput", "estimate"))]
    colour = alt.Color("source:N", scale=colour_scale(["benchmark", "estimate"]),
                       legend=alt.Legend(title="mean, min–max over runs", orient="bottom", symbolOpacity=1))
    x = alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1), scale=alt.Scale(nice=False))
    base = alt.Chart(alt.Data(values=rows))
    band = base.mark_area(opacity=0.18).encode(x=x, y="min:Q", y2="max:Q", color=colour)
    line = base.mark_line(point=True, strokeWidth=2).encode(
        x=x, y=alt.Y("mean:Q", title="throughput τ (reads/s)", scale=alt.Scale(zero=True)), color=colour,
        tooltip=["step:Q", "source:N", alt.Tooltip("mean:Q", format=",.0f"), alt.Tooltip("min:Q", format=",.0f"),
                 alt.Tooltip("max:Q", format=",.0f")])
    chart = alt.layer(band, line).properties(
        width=560, height=280,
        title=f"{summary['case']} ({summary['workload']}): throughput per step, {benchmark} benchmark vs estimate")
    return to_svg(configure(chart))


def heatmap_svg(summary: dict[str, Any]) -> str:
    """Reads per fragment (columns) per node (rows): benchmark and estimate, start and end, one colour scale."""
    alt = altair()
    nodes, fragments = summary["nodes"], summary["fragments"]
    panels = [("benchmark_start", "benchmark, start"), ("benchmark_end", "benchmark, end"),
              ("estimate_start", "estimate, start"), ("estimate_end", "estimate, end")]
    rows = [{"panel": title, "node": nodes[w], "fragment": fragments[f], "reads": value}
            for key, title in panels for w, row in enumerate(summary["heatmaps"][key]) for f, value in enumerate(row)]
    chart = alt.Chart(alt.Data(values=rows)).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("fragment:O", title="fragment", sort=sorted(fragments, key=natural_key), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("node:O", title="node", sort=sorted(nodes, key=natural_key)),
        color=alt.Color("reads:Q", title="reads (mean over runs)", scale=alt.Scale(scheme="greens", zero=True),
                        legend=alt.Legend(orient="right", gradientLength=160)),
        tooltip=["node:N", "fragment:N", alt.Tooltip("reads:Q", format=",.0f")],
    ).properties(width=22 * len(fragments), height=22 * len(nodes)).facet(
        facet=alt.Facet("panel:N", title=None, sort=[t for _, t in panels]), columns=2,
    ).properties(title=f"{summary['case']}: reads per fragment per node")
    return to_svg(configure(chart))
