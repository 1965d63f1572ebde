"""The HTML run report: one self-contained file with the dashboards' views of one run.

It evaluates the very panels the Kibana dashboards are generated from (``panels.PANELS``) over the
very documents the indexer writes (``documents.documents_by_kind``), in memory, so a report and a
dashboard filtered to the same run show the same numbers. Everything is inline (SVG, CSS, a few
lines of script); the file opens from disk with no server and no network.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import Event
from mdde_stream.telemetry.charts import fmt, heatmap, line_chart
from mdde_stream.telemetry.documents import documents_by_kind
from mdde_stream.telemetry.panels import DASHBOARDS, Axis, Panel, panels_of
from mdde_stream.telemetry.runlog import read_run_events

logger = logging.getLogger(__name__)

Series = dict[str, dict[str, dict[Any, float]]]  # split -> group -> x -> value


def _key(doc: dict[str, Any], axis: Axis) -> Any:
    value = doc[axis.field]
    if axis.agg == "histogram":
        return (value // axis.interval) * axis.interval
    return str(value)


def _reduce(metric: str, values: list[float]) -> float:
    if metric == "count":
        return float(len(values))
    if metric == "sum":
        return float(sum(values))
    if metric == "max":
        return float(max(values))
    if metric == "min":
        return float(min(values))
    return float(sum(values) / len(values))


def evaluate(panel: Panel, docs: Iterable[dict[str, Any]]) -> Series:
    """The panel's aggregation in memory: what its Elasticsearch query returns, as nested dicts."""
    needed = [a.field for a in (panel.x, panel.group, panel.split) if a is not None]
    if panel.field is not None:
        needed.append(panel.field)
    buckets: dict[str, dict[str, dict[Any, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for doc in docs:
        if any(doc.get(f) is None for f in needed):
            continue
        split = _key(doc, panel.split) if panel.split else ""
        group = _key(doc, panel.group) if panel.group else panel.metric_label
        buckets[split][group][_key(doc, panel.x)].append(float(doc[panel.field]) if panel.field else 1.0)
    out: Series = {
        split: {group: {x: _reduce(panel.metric, v) for x, v in xs.items()} for group, xs in groups.items()}
        for split, groups in buckets.items()
    }
    if panel.chart == "area_percent":
        for groups in out.values():
            totals: dict[Any, float] = defaultdict(float)
            for xs in groups.values():
                for x, v in xs.items():
                    totals[x] += v
            for xs in groups.values():
                for x in totals:  # a missing outcome at a step is a 0 % share, as Kibana stacks it
                    xs[x] = xs.get(x, 0.0) / totals[x] if totals[x] else 0.0
    return out


def render_panel(panel: Panel, docs: list[dict[str, Any]]) -> str:
    series = evaluate(panel, docs)
    charts = []
    for split in sorted(series) or [""]:
        groups = series.get(split, {})
        cid = f"{panel.id}-{len(charts)}"
        if panel.chart == "heatmap":
            assert panel.group is not None
            cells = {(str(x), g): v for g, xs in groups.items() for x, v in xs.items()}
            body = heatmap(cells, panel.x.label, panel.group.label, panel.metric_label, cid)
        else:
            body = line_chart(groups, panel.x.label, panel.metric_label, panel.chart == "area_percent", cid)
        title = f'<h4>{escape(panel.split.label)} {escape(split)}</h4>' if panel.split and split else ""
        charts.append(f"<div class='chart-box'>{title}{body}</div>")
    return (f"<section class='panel' id='panel-{panel.id}'><h3>{escape(panel.title)}</h3>"
            f"<p class='desc'>{escape(panel.description)}</p>{''.join(charts)}</section>")


def summary_rows(run_id: str, events: list[Event], docs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    steps = docs["steps"]
    agents = sorted({d["agent"] for d in docs["agents"]})
    returns: dict[str, float] = defaultdict(float)
    for d in docs["agents"]:
        returns[d["agent"]] += d["reward"]
    measured = [d["throughput"] for d in steps if "throughput" in d]
    outcomes: dict[str, int] = defaultdict(int)
    for d in docs["actions"]:
        outcomes[d["outcome"]] += 1
    first = min((e.ts for e in events), default=None)
    last = max((e.ts for e in events), default=None)
    return [
        ("run", run_id),
        ("events", str(len(events))),
        ("time", f"{first:%Y-%m-%d %H:%M:%S} → {last:%H:%M:%S} UTC" if first and last else "-"),
        ("episodes", str(len({d['episode'] for d in steps}))),
        ("steps", str(len(steps))),
        ("agents", ", ".join(agents) or "-"),
        ("total return per agent", ", ".join(f"{a}: {fmt(returns[a])}" for a in agents) or "-"),
        ("actions", ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "-"),
        ("throughput (first → last measured)", f"{fmt(measured[0])} → {fmt(measured[-1])}" if measured else "-"),
        ("benchmark / estimate results", str(len(docs["benchmarks"]))),
    ]


def render_report(run_id: str, events: list[Event]) -> str:
    docs = documents_by_kind(events)
    sections = []
    for name, title in DASHBOARDS.items():
        body = "".join(render_panel(p, docs[p.kind]) for p in panels_of(name))
        sections.append(f"<h2 id='{name}'>{escape(title)}</h2><div class='grid'>{body}</div>")
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in summary_rows(run_id, events, docs))
    nav = " · ".join(f"<a href='#{n}'>{escape(t)}</a>" for n, t in DASHBOARDS.items())
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _PAGE.format(
        run=escape(run_id), nav=nav, rows=rows, sections="".join(sections), generated=generated, css=_CSS, js=_JS
    )


def write_report(run_id: str, settings: Settings | None = None, out_path: Path | None = None) -> Path:
    """Read ``run_id``'s events from the bus (``MDDE_BUS``) and write the HTML report; returns its path."""
    settings = settings or get_settings()
    out = Path(out_path) if out_path is not None else settings.data_dir / "reports" / f"{run_id}.html"
    with open_bus(settings=settings) as bus:
        events = read_run_events(bus, settings, run_id)
    if not events:
        logger.warning("run %s has no telemetry events on %s; the report will be empty", run_id, settings.bus or "embedded bus")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(run_id, events), encoding="utf-8")
    logger.info("wrote report of run %s (%d events) to %s", run_id, len(events), out)
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px}h2{margin-top:32px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{margin:0 0 2px;font-size:15px}h4{margin:6px 0 0;font-size:12px;color:#555}
.desc{margin:0 0 6px;color:#666;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(660px,1fr));gap:16px}
.panel{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px}
table.summary{border-collapse:collapse;font-size:13px}table.summary th{text-align:left;padding:2px 16px 2px 0;color:#555}
svg.chart{max-width:100%;height:auto;font-size:11px}svg .plot{fill:#fff;stroke:#ccc}
svg .grid{stroke:#eee}svg .tick{fill:#666}svg .axis{fill:#333;font-size:12px}
svg .legend{cursor:pointer}svg .legend.off{opacity:.3}svg .series.off{display:none}
svg .cell{stroke:#fff;stroke-width:.5}.empty{color:#999;font-style:italic}
#tip{position:fixed;pointer-events:none;background:#222;color:#fff;font-size:12px;padding:3px 6px;
border-radius:3px;display:none}footer{margin-top:32px;color:#999;font-size:12px}
"""

_JS = """
(function () {
  var tip = document.getElementById('tip');
  document.querySelectorAll('[data-tip]').forEach(function (el) {
    el.addEventListener('mousemove', function (ev) {
      tip.textContent = el.getAttribute('data-tip');
      tip.style.display = 'block';
      tip.style.left = (ev.clientX + 12) + 'px';
      tip.style.top = (ev.clientY + 12) + 'px';
    });
    el.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
  document.querySelectorAll('svg.chart .legend').forEach(function (item) {
    item.addEventListener('click', function () {
      var svg = item.closest('svg'), name = item.getAttribute('data-series');
      item.classList.toggle('off');
      svg.querySelectorAll('.series').forEach(function (s) {
        if (s.getAttribute('data-series') === name) { s.classList.toggle('off'); }
      });
    });
  });
  var status = document.getElementById('report-status');
  var charts = document.querySelectorAll('svg.chart').length;
  status.setAttribute('data-charts', String(charts));
  status.textContent = charts + ' charts';
  document.body.setAttribute('data-ready', '1');
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>mdde-stream run {run}</title><style>{css}</style></head>
<body><h1>mdde-stream run <code>{run}</code></h1><p>{nav} · <span id="report-status"></span></p>
<table class="summary">{rows}</table>{sections}
<div id="tip"></div><footer>generated {generated} by mdde-stream report</footer>
<script>{js}</script></body></html>
"""
