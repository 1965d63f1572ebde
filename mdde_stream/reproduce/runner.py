"""Run what the thesis ran: the §5.2 edge cases and the Table 5.12-5.14 random-valid episodes.

The edge cases go through :func:`mdde_stream.edge_cases_report.run_edge_cases` (the same code as
``mdde-stream edge-cases``, benchmark and estimate at every step, real or simulated); the
random-valid episodes through the environment with Table 5.5's settings and the estimator
benchmark. The fragmenter's layout options (the thesis's ``numbering``, ``hashed`` grouping) are passed
only where the called function accepts them, and the run records what was applied.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mdde_stream.config import Settings
from mdde_stream.reproduce.compare import Episode
from mdde_stream.reproduce.thesis import TABLE_5_5

if TYPE_CHECKING:
    from rich.progress import Progress

logger = logging.getLogger(__name__)

BENCHMARKS = ("simulated", "real")
FRAGMENT_NUMBERING = "thesis"
"""Which node's fragments carry which indices: the thesis's Table 5.3 shows its run had the index
blocks f0-4, f5-9, f10-14, f15-19 on w0, w2, w3, w1; greedy agents copy in index order, so this
decides at which step the hot fragments move."""
FRAGMENT_GROUPING = "hashed"
"""Each node's records grouped into its fragments in a seeded pseudo-random order (thesis §3.2.1)."""
DELETE_MASKS = ("replicas", "mdde")
"""Delete legality: the thesis's rule (another node holds the fragment), and the original code's."""


@dataclass
class ReproduceConfig:
    """Everything a ``reproduce`` run depends on; stored as ``config.json`` beside the results."""

    benchmark: str = "simulated"
    runs: int = 3
    episodes: int = 100
    steps: int = 1001
    out: str = "reproduce"
    seed: int = 0
    operations: int = 100_000
    records: int = 10_000
    clients: int = 50
    workers: int = 2
    key_prefix: str = "reproduce:"
    timeout_s: float = 300.0
    why: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError naming the first bad option."""
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"--benchmark must be one of {', '.join(BENCHMARKS)}, got {self.benchmark!r}")
        for name, value, low in (("--runs", self.runs, 1), ("--episodes", self.episodes, 1),
                                 ("--steps", self.steps, 1), ("--operations", self.operations, 1),
                                 ("--records", self.records, 20), ("--clients", self.clients, 1),
                                 ("--workers", self.workers, 0)):
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if self.timeout_s <= 0:
            raise ValueError(f"--timeout must be positive, got {self.timeout_s}")

    def env_options(self) -> dict[str, Any]:
        """The random-valid environment: Table 5.5, our episode length, no events, in-memory state."""
        return {**TABLE_5_5, "max_steps": self.steps, "seed": self.seed, "publish_events": False, "state": ""}


def accepted_options(func: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that ``func`` takes as keyword arguments."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


def run_settings(cfg: ReproduceConfig, settings: Settings) -> Settings:
    """Simulated runs never touch servers: no bus, in-memory state, no data nodes."""
    if cfg.benchmark == "simulated":
        return settings.model_copy(update={"bus": "", "state": "", "data_nodes": ""})
    return settings


def run_edge(cfg: ReproduceConfig, settings: Settings, out: Path,
             on_run: Callable[[str], None] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both edge cases, ``cfg.runs`` runs each; (the edge-cases document, layout options applied)."""
    from mdde_stream.edge_cases_report import run_edge_cases

    layout = accepted_options(run_edge_cases, {"numbering": FRAGMENT_NUMBERING, "grouping": FRAGMENT_GROUPING,
                                               "fragment_numbering": FRAGMENT_NUMBERING})
    handler = _RunCounter(on_run) if on_run else None
    edge_logger = logging.getLogger("mdde_stream.edge_cases")
    if handler:
        edge_logger.addHandler(handler)
    try:
        doc = run_edge_cases(cfg.benchmark, cfg.runs, out, settings=run_settings(cfg, settings),
                             operations=cfg.operations, records=cfg.records, clients=cfg.clients, seed=cfg.seed,
                             workers=cfg.workers, key_prefix=cfg.key_prefix, timeout_s=cfg.timeout_s, **layout)
    finally:
        if handler:
            edge_logger.removeHandler(handler)
    applied = doc.get("fragment_numbering", layout.get("numbering", layout.get("fragment_numbering")))
    return doc, {"numbering": applied, "grouping": doc.get("fragment_grouping", layout.get("grouping"))}


class _RunCounter(logging.Handler):
    """Advances a progress bar on each finished edge-case run (``run_case`` logs one line per run)."""

    def __init__(self, on_run: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.on_run = on_run

    def emit(self, record: logging.LogRecord) -> None:
        if " run " in record.getMessage() and isinstance(record.args, tuple) and record.args:
            self.on_run(str(record.args[0]))


def env_layout_options(cfg: ReproduceConfig, delete_mask: str | None) -> dict[str, Any]:
    """Environment options the installed ``EnvConfig`` takes: thesis numbering, real baseline, mask."""
    from mdde_stream.env import EnvConfig

    fields = EnvConfig.model_fields
    wanted: dict[str, Any] = {"fragment_numbering": FRAGMENT_NUMBERING, "fragment_grouping": FRAGMENT_GROUPING}
    if cfg.benchmark == "real":
        wanted["baseline"] = "real"  # §5.3: one YCSB run at initialisation, estimates after it
        # The environment opens its bus only to record events or for benchmark="real"; its real
        # baseline in estimate mode needs the bus as well, so the episodes are recorded on it.
        wanted["publish_events"] = True
    if delete_mask is not None:
        wanted["delete_mask"] = delete_mask
    return {k: v for k, v in wanted.items() if k in fields and (k != "publish_events" or "baseline" in fields)}


def delete_masks() -> tuple[str | None, ...]:
    """The delete masks to compare, or (None,) when the environment has no such option."""
    from mdde_stream.env import EnvConfig

    return DELETE_MASKS if "delete_mask" in EnvConfig.model_fields else (None,)


def run_random_valid(cfg: ReproduceConfig, settings: Settings, delete_mask: str | None = None,
                     on_episode: Callable[[Episode], None] | None = None) -> tuple[list[Episode], dict[str, Any]]:
    """``cfg.episodes`` random-valid episodes under Table 5.5; (episodes, env options applied).

    With ``--benchmark real`` the environment's one baseline comes from the real benchmark, so
    benchmark workers and an aggregator run for the duration (as for the edge cases).
    """
    from mdde_stream.env import parallel_env
    from mdde_stream.policies import make_policy

    options = {**cfg.env_options(), **env_layout_options(cfg, delete_mask)}
    services = _services(cfg, settings) if options.get("baseline") == "real" else None
    policy = make_policy("random-valid", seed=cfg.seed)
    episodes: list[Episode] = []
    applied = {k: v for k, v in options.items() if k != "state"}
    try:
        env = parallel_env(settings=run_settings(cfg, settings), **options)
        try:
            for e in range(cfg.episodes):
                episode = _episode(env, policy, cfg.seed + e, int(options["benchmark_frequency"]))
                episodes.append(episode)
                if on_episode:
                    on_episode(episode)
            applied["estimator_ceiling_pct"] = estimator_ceiling_pct(env)
        finally:
            env.close()
    finally:
        if services is not None:
            services.stop()
    return episodes, applied


def estimator_ceiling_pct(env: Any) -> float:
    """The estimate's change when every node holds every fragment, from the environment's baseline.

    Full replication is the estimator's most even spread of reads, so no allocation an agent can reach
    estimates higher: it bounds what Thr. Δ can show in estimate mode.
    """
    from mdde_stream.estimator import estimate

    base = env.initial
    full = np.ones(np.asarray(base.reads).shape, dtype=bool)
    est = estimate(full, (np.asarray(base.reads), float(base.throughput)), env.config.estimator_j,
                   env.config.estimator_k)
    return (float(est.throughput) / float(base.throughput) - 1.0) * 100.0


def _services(cfg: ReproduceConfig, settings: Settings) -> Any:
    """Benchmark workers and an aggregator for a real baseline (none started with ``--workers 0``)."""
    from mdde_stream.benchmark.client import LocalServices, wait_for_group
    from mdde_stream.bus import open_bus

    services = LocalServices(settings, cfg.workers)
    if cfg.workers:
        services.start()
        with open_bus(settings=settings) as bus:
            wait_for_group(bus, services.worker_group, cfg.workers)
            wait_for_group(bus, services.aggregator_group, 1)
    return services


def _episode(env: Any, policy: Any, seed: int, frequency: int) -> Episode:
    """One episode: the baseline at reset, every measurement, the best (baseline included) and the last."""
    policy.reset(seed)
    observations, _ = env.reset(seed=seed)
    initial = env.initial if env.initial is not None else env.latest
    baseline = float(initial.throughput)
    curve = [baseline]
    best, best_reads = baseline, [int(v) for v in initial.node_reads]
    while env.agents:
        observations, *_ = env.step(policy.act(observations))
        if env.step_count % frequency == 0:
            tau = float(env.latest.throughput)
            curve.append(tau)
            if tau > best:
                best, best_reads = tau, [int(v) for v in env.latest.node_reads]
    return Episode(seed=seed, baseline=baseline, last=float(env.latest.throughput), best=best,
                   last_node_reads=[int(v) for v in env.latest.node_reads], best_node_reads=best_reads,
                   baseline_source=str(initial.source), curve=curve)


def estimator_timing(doc: dict[str, Any], repeats: int = 50) -> dict[str, float]:
    """Mean µs per estimator call over every allocation the edge cases visited (their own baselines)."""
    from mdde_stream.benchmark.outcome import BenchmarkOutcome
    from mdde_stream.estimator import estimate

    calls: list[tuple[np.ndarray, BenchmarkOutcome]] = []
    for summary in doc["cases"].values():
        nodes, frags = summary["nodes"], summary["fragments"]
        first_run = summary["runs"][0]["steps"]
        baseline = BenchmarkOutcome.from_mapping(first_run[0]["benchmark"], nodes, frags)
        for step in summary["steps"]:
            alloc = np.array([[f in step["allocation"].get(n, []) for f in frags] for n in nodes])
            calls.append((alloc, baseline))
    started = time.perf_counter()
    for _ in range(repeats):
        for alloc, baseline in calls:
            estimate(alloc, baseline)
    per_call = (time.perf_counter() - started) / (repeats * len(calls))
    return {"estimate_s": per_call, "calls_timed": repeats * len(calls)}


def benchmark_timing(doc: dict[str, Any]) -> dict[str, float]:
    """Wall time per benchmark step (what §5.2.3's 19.8 s measures: request to result, data moves
    included) and the benchmark's own duration (simulated: the model's time, not compute time)."""
    durations = [step["benchmark"]["duration_s"] for s in doc["cases"].values()
                 for run in s["runs"] for step in run["steps"]]
    return {"benchmark_duration_s": float(np.mean(durations)) if durations else float("nan"),
            "wall_per_benchmark_s": float(doc["elapsed_s"]) / max(1, len(durations)),
            "benchmarks": len(durations)}


def config_document(cfg: ReproduceConfig, settings: Settings) -> dict[str, Any]:
    """The effective configuration: options, connections used, thesis settings and layout asked for."""
    effective = run_settings(cfg, settings)
    return {
        "options": asdict(cfg),
        "connections": {"bus": effective.bus or "embedded", "state": "memory (each run keeps its allocation in process)",
                        "data_nodes": effective.data_node_urls, "topic_prefix": effective.topic_prefix,
                        "benchmark_node_rates": effective.benchmark_node_rates},
        "edge_cases": {"nodes": 4, "fragments": 20, "records": cfg.records, "reads": cfg.operations,
                       "clients": cfg.clients, "starving": "uniform workload, 16 steps",
                       "greedy": "latest workload, 15 steps", "estimator": {"j": 0.0, "k": 0.7},
                       "fragment_numbering_requested": FRAGMENT_NUMBERING},
        "random_valid": {**cfg.env_options(), "policy": "random-valid", "episodes": cfg.episodes,
                         "thesis_episodes": 1000},
    }


def run_reproduce(cfg: ReproduceConfig, settings: Settings, progress: Progress | None = None) -> dict[str, Any]:
    """Run everything, write the files, return the results document."""
    from mdde_stream.edge_cases_report import throughput_svg
    from mdde_stream.reproduce.report import write_all
    from mdde_stream.reproduce.results import edge_case_results, random_valid_results, targets, variant_summary

    out = Path(cfg.out)
    config = config_document(cfg, settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")  # kept even if a run fails
    masks = delete_masks()
    edge_task = progress.add_task("edge cases (runs)", total=2 * cfg.runs) if progress else None
    rv_task = progress.add_task("random-valid (episodes)", total=cfg.episodes * len(masks)) if progress else None

    def on_run(_case: str) -> None:
        if progress is not None and edge_task is not None:
            progress.advance(edge_task)

    edge_doc, layout = run_edge(cfg, settings, out / "edge-cases", on_run)
    numbering = layout["numbering"] == "thesis"
    config["edge_cases"]["fragment_numbering_applied"] = layout["numbering"] or "node order (no option)"
    config["edge_cases"]["fragment_grouping_applied"] = layout["grouping"] or "contiguous (no option)"
    edge = edge_case_results(edge_doc, numbering, cfg.why)
    for case, summary in edge_doc["cases"].items():
        edge[case]["fragment_numbering"] = layout["numbering"] or edge[case]["fragment_numbering"]
        edge[case]["svg"] = throughput_svg(summary, cfg.benchmark)
    timing = {**benchmark_timing(edge_doc), **estimator_timing(edge_doc)}
    # The edge cases are the long part on a real benchmark: keep them even if the episodes fail.
    write_all({"config": config, "targets": targets(edge, None, cfg.why, numbering), "edge_cases": edge,
               "timing": timing, "random_valid": None}, out)

    def on_episode(_episode: Any) -> None:
        if progress is not None and rv_task is not None:
            progress.advance(rv_task)

    runs = {mask: run_random_valid(cfg, settings, mask, on_episode) for mask in masks}
    episodes, env_options = runs[masks[0]]
    rv = random_valid_results(episodes, env_options)
    if len(runs) > 1:
        rv["delete_mask_variants"] = {str(m): variant_summary(eps, opts) for m, (eps, opts) in runs.items()}
    config["random_valid"].update({k: v for k, v in env_options.items() if k not in config["random_valid"]})
    config["random_valid"]["baseline_source"] = rv["baseline_source"]
    doc = {"config": config, "targets": targets(edge, rv, cfg.why, numbering), "edge_cases": edge,
           "timing": timing, "random_valid": rv}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    write_all(doc, out)
    return doc
