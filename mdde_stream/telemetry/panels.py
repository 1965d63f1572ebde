"""The panels both views show: one declaration feeds the Kibana dashboards and the HTML report.

Kibana and the run report must tell the same story, so neither hand-writes its charts: every panel
is declared here once (index kind, metric, x axis, series split) and ``dashboards.py`` turns it into a
saved visualization while ``report.py`` evaluates it over the same flattened documents in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ChartKind = Literal["line", "area_percent", "bar", "heatmap"]
MetricAgg = Literal["avg", "sum", "max", "min", "count"]


@dataclass(frozen=True)
class Axis:
    """A bucket aggregation: ``histogram`` over an integer field or ``terms`` over a keyword."""

    agg: Literal["histogram", "terms"]
    field: str
    label: str
    interval: int = 1
    size: int = 50


@dataclass(frozen=True)
class Panel:
    id: str
    dashboard: str
    title: str
    kind: str  # index kind, e.g. "steps" -> data view ``mdde-steps-*``
    chart: ChartKind
    metric: MetricAgg
    field: str | None  # None for count
    x: Axis
    group: Axis | None = None  # one line / heatmap row per value
    split: Axis | None = None  # one small chart per value (Kibana "split chart" rows)
    description: str = ""
    unit: str = ""  # of the metric, on the report's value axis; "%" for shares (fractions shown as %)

    @property
    def metric_label(self) -> str:
        return "count" if self.metric == "count" else f"{self.metric}({self.field})"


STEP = Axis("histogram", "step", "step")
EPISODE = Axis("histogram", "episode", "episode")
BY_AGENT = Axis("terms", "agent", "agent", size=64)
BY_NODE = Axis("terms", "node", "node", size=64)
BY_RUN = Axis("terms", "run_id", "run", size=20)
BY_SOURCE = Axis("terms", "source", "source", size=5)
BY_WORKER = Axis("terms", "worker_id", "worker", size=64)

DASHBOARDS: dict[str, str] = {
    "training": "Training",
    "distribution": "Distribution",
    "benchmark": "Benchmark",
}

PANELS: tuple[Panel, ...] = (
    # -- Training -----------------------------------------------------------------------------------
    Panel("reward-per-agent", "training", "Reward per agent over steps", "agents", "line", "avg", "reward",
          STEP, group=BY_AGENT, description="Eq 3.8/3.9 reward each agent earned at each step.", unit="reward"),
    Panel("action-outcomes", "training", "Valid / invalid / skip action rates", "actions", "area_percent",
          "count", None, STEP, group=Axis("terms", "outcome", "outcome", size=3), split=BY_AGENT,
          description="Share of each agent's actions the registry accepted, rejected, or that skipped.", unit="%"),
    Panel("episode-returns", "training", "Episode returns", "agents", "bar", "sum", "reward", EPISODE,
          group=BY_AGENT, description="Sum of each agent's rewards over an episode.", unit="reward"),
    Panel("throughput", "training", "Throughput over steps", "steps", "line", "avg", "throughput", STEP,
          group=BY_RUN, description="Benchmark (or estimated) throughput τ on the steps that measured it.",
          unit="reads/s"),
    Panel("throughput-change", "training", "Throughput change vs the episode's first step", "steps", "line",
          "avg", "throughput_change", STEP, group=BY_RUN,
          description="τ / τ(first measured step of the episode) − 1.", unit="%"),
    # -- Distribution -------------------------------------------------------------------------------
    Panel("read-share", "distribution", "Reads share per node over time", "nodes", "line", "avg",
          "read_share", STEP, group=BY_NODE, description="Share of all reads each node served.", unit="%"),
    Panel("reads-heatmap", "distribution", "Reads per fragment × node", "reads", "heatmap", "sum", "reads",
          Axis("terms", "fragment", "fragment", size=200), group=BY_NODE,
          description="Reads of each fragment served by each node, over the selected benchmarks.", unit="reads"),
    Panel("replicas", "distribution", "Replicas per fragment", "fragments", "heatmap", "max", "replicas",
          STEP, group=Axis("terms", "fragment", "fragment", size=200),
          description="How many nodes hold each fragment after each step.", unit="replicas"),
    Panel("storage", "distribution", "Storage used per node", "nodes", "line", "max", "storage", STEP,
          group=BY_NODE, description="Fragments held by each node after each step.", unit="fragments"),
    # -- Benchmark ----------------------------------------------------------------------------------
    Panel("benchmark-vs-estimate", "benchmark", "Benchmark vs estimate throughput", "benchmarks", "line",
          "avg", "throughput", STEP, group=BY_SOURCE,
          description="Measured (real/simulated) against estimated throughput at the same steps.", unit="reads/s"),
    Panel("run-durations", "benchmark", "Benchmark run durations (s)", "benchmarks", "bar", "avg",
          "duration_s", STEP, group=BY_SOURCE, description="Wall time of each benchmark run.", unit="s"),
    Panel("worker-count", "benchmark", "Benchmark worker count", "benchmarks", "line", "max", "workers",
          STEP, group=BY_SOURCE, description="Workers that executed the run's tasks.", unit="workers"),
    Panel("reads-per-worker", "benchmark", "Reads/s per worker", "workers", "line", "avg", "reads_per_s",
          STEP, group=BY_WORKER,
          description="Reads per second each benchmark worker sustained on its tasks (its access logs), "
                      "one line per worker: scaling out shows as more lines, a slow worker as a low one.",
          unit="reads/s"),
)


def panels_of(dashboard: str) -> list[Panel]:
    return [p for p in PANELS if p.dashboard == dashboard]
