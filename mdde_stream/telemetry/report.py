"""The HTML run report: one self-contained file with the dashboards' views of one run.

It evaluates the very panels the Kibana dashboards are generated from (``panels.PANELS``) over the
very documents the indexer writes (``documents.documents_by_kind``), in memory, so a report and a
dashboard filtered to the same run show the same numbers. Each panel becomes a Vega-Lite chart
(``mdde_stream.plots``: fixed colours per agent, node and outcome, units on the value axes, colour
scales on heatmaps); its rows are evaluated per episode and over the whole run, and one episode
selector switches every chart. Vega's runtime is inlined, so the file opens from disk with no
server and no network (its Content-Security-Policy forbids any fetch).
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from mdde_stream.bus import open_bus
from mdde_stream.config import Settings, get_settings
from mdde_stream.events import Event
from mdde_stream.plots import colour_scale, natural_key, round_ticks, runtime_js
from mdde_stream.telemetry.documents import documents_by_kind
from mdde_stream.telemetry.panels import DASHBOARDS, Axis, Panel, panels_of
from mdde_stream.telemetry.runlog import read_run_events

logger = logging.getLogger(__name__)

Series = dict[str, dict[str, dict[Any, float]]]  # split -> group -> x -> value
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


class ReportError(ValueError):
    """A run that cannot be reported (unknown, or a name that is not a run id); the message names it."""


def fmt(value: float) -> str:
    """A compact number for the summary table."""
    if value == 0:
        return "0"
    if abs(value) >= 10_000 or abs(value) < 0.01:
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.3g}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


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


AGG = {"avg": "mean", "sum": "total", "max": "max", "min": "min", "count": "count of"}
GROUP_COLOURED = {"agent", "node", "outcome", "source", "worker_id"}
EMPTY_REASON = {
    "steps": "No steps of this run were recorded.",
    "agents": "No steps of this run were recorded.",
    "actions": "No action results of this run were recorded.",
    "nodes": "No benchmark or estimate measured per-node reads in this run.",
    "fragments": "No steps of this run were recorded.",
    "benchmarks": "No benchmark or estimate results in this run (they come every S steps, from step 0).",
    "reads": "No per-fragment reads: they come with benchmark or estimate results, and this run has none.",
    "workers": "No benchmark worker access logs: only the real benchmark (data nodes and `mdde-stream worker`) "
               "writes them; this run used the estimator or the simulated benchmark.",
}
FIELD_WORDS = {"duration_s": "duration", "reads_per_s": "read rate", "throughput": "throughput τ"}
WIDTH, HEIGHT = 440, 210


def panel_rows(panel: Panel, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The panel's values per episode (``e`` = "0", "1", …) and over the whole run (``e`` = "all")."""
    by_episode: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for doc in docs:
        by_episode[doc["episode"]].append(doc)
    rows: list[dict[str, Any]] = []
    for episode, selected in [("all", docs), *((str(e), by_episode[e]) for e in sorted(by_episode))]:
        for split, groups in evaluate(panel, selected).items():
            for group, xs in groups.items():
                rows += [{"e": episode, "s": split, "g": str(group), "x": x, "v": v} for x, v in xs.items()]
    return rows


def value_title(panel: Panel) -> str:
    what = FIELD_WORDS.get(panel.field or "", (panel.field or "events").replace("_", " "))
    if panel.chart == "area_percent":
        return "share of actions (%)"
    if panel.unit in ("", what):
        return f"{AGG[panel.metric]} {what}"
    return f"{AGG[panel.metric]} {what} ({panel.unit})"


def panel_spec(panel: Panel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One panel as a Vega-Lite spec (Altair), filtered by the page's ``episode`` signal."""
    from mdde_stream.plots import altair, configure

    alt = altair()
    percent = panel.unit == "%"
    value_fmt = ".1%" if percent else ",.4~g"
    xs = [r["x"] for r in rows]
    numeric_x = panel.x.agg == "histogram"
    x_sort = None if numeric_x else sorted({str(x) for x in xs}, key=natural_key)
    tooltip = [alt.Tooltip("g:N", title=panel.group.label if panel.group else "series"),
               alt.Tooltip("x:" + ("Q" if numeric_x else "N"), title=panel.x.label),
               alt.Tooltip("v:Q", title=value_title(panel), format=value_fmt)]
    base = alt.Chart(alt.NamedData(name="rows")).transform_filter("datum.e == episode")
    y_axis = alt.Axis(format=".0%", tickCount=5) if percent else alt.Axis(tickCount=5)
    groups = sorted({r["g"] for r in rows}, key=natural_key)
    coloured = panel.group is not None and panel.group.field in GROUP_COLOURED
    symbol = {"symbolType": "stroke", "symbolStrokeWidth": 3} if panel.chart == "line" else {}
    legend = (alt.Legend(title=panel.group.label if panel.group else None, orient="right", **symbol)
              if len(groups) > 1 or coloured else None)  # one run's line needs no legend
    colour = alt.Color("g:N", scale=colour_scale(groups) if coloured else alt.Scale(scheme="tableau10"),
                       legend=legend, sort=groups)
    width, height = (WIDTH, HEIGHT) if not panel.split else (WIDTH // 2 - 30, HEIGHT // 2)
    if panel.chart == "heatmap":
        assert panel.group is not None
        x_enc = alt.X("x:O", title=panel.x.label, sort=x_sort,
                      axis=alt.Axis(labelAngle=0, labelOverlap="parity",
                                    values=round_ticks(int(min(xs)), int(max(xs))) if numeric_x and xs else alt.Undefined))
        chart = base.mark_rect().encode(
            x=x_enc, y=alt.Y("g:N", title=panel.group.label, sort=groups),
            color=alt.Color("v:Q", title=f"{AGG[panel.metric]} {panel.unit}", scale=alt.Scale(scheme="greens", zero=True),
                            legend=alt.Legend(orient="right", gradientLength=150)),
            tooltip=tooltip)
    elif panel.chart == "bar":
        x_values = sorted({int(x) for x in xs}) if xs else []
        chart = base.mark_bar().encode(
            x=alt.X("x:O", title=panel.x.label,
                    axis=alt.Axis(labelAngle=0, values=round_ticks(x_values[0], x_values[-1]) if len(x_values) > 12 else alt.Undefined)),
            xOffset=alt.XOffset("g:N", sort=groups), y=alt.Y("v:Q", title=value_title(panel), axis=y_axis),
            color=colour, tooltip=tooltip)
    elif panel.chart == "area_percent":
        chart = base.mark_area(line=False, interpolate="step").encode(
            x=alt.X("x:Q", title=panel.x.label, axis=alt.Axis(format="d", tickMinStep=1),
                    scale=alt.Scale(nice=False, domainMin=0)),  # an episode starts at step 0
            y=alt.Y("v:Q", title=value_title(panel), stack="zero", scale=alt.Scale(domain=[0, 1]), axis=y_axis),
            color=colour, tooltip=tooltip)
    else:
        dense = len(set(xs)) > 80  # markers on a thousand steps only hide the lines
        chart = base.mark_line(point=False if dense else alt.OverlayMarkDef(size=18), strokeWidth=1.4 if dense else 1.8).encode(
            x=alt.X("x:Q", title=panel.x.label, axis=alt.Axis(format="d", tickMinStep=1),
                    scale=alt.Scale(nice=False, domainMin=0)),  # an episode starts at step 0
            y=alt.Y("v:Q", title=value_title(panel), axis=y_axis), color=colour, tooltip=tooltip)
    if panel.chart == "heatmap":
        height = max(height, 14 * len(groups))  # a readable label per row
    chart = chart.properties(width=width, height=height)
    if panel.split:
        splits = sorted({r["s"] for r in rows}, key=natural_key)
        chart = chart.facet(facet=alt.Facet("s:N", title=None, sort=splits,
                                            header=alt.Header(labelFontSize=11, labelFontWeight='bold')),
                            columns=2)
    chart = chart.add_params(alt.param(name="episode", value="all"))
    spec: dict[str, Any] = configure(chart).to_dict()  # validated without the rows: that is the slow part
    spec["datasets"] = {"rows": rows}
    return spec


def render_panel(panel: Panel, docs: list[dict[str, Any]], specs: dict[str, Any]) -> str:
    """The panel's section; its Vega-Lite spec goes into ``specs`` under the chart element's id."""
    rows = panel_rows(panel, docs)
    head = (f"<section class='panel' id='panel-{panel.id}'><h3>{escape(panel.title)}</h3>"
            f"<p class='desc'>{escape(panel.description)}</p>")
    if not rows:
        reason = EMPTY_REASON.get(panel.kind, "No data for this panel in this run.")
        return f"{head}<p class='empty'>No data: {escape(reason)}</p></section>"
    chart_id = f"chart-{panel.id}"
    specs[chart_id] = panel_spec(panel, rows)
    episodes = " ".join(sorted({r["e"] for r in rows}))
    return (f"{head}<div class='chart' id='{chart_id}' data-episodes='{escape(episodes)}'></div>"
            f"<p class='empty episode-empty' hidden>No data for this panel in the selected episode.</p></section>")


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
    specs: dict[str, Any] = {}
    sections = []
    for name, title in DASHBOARDS.items():
        body = "".join(render_panel(p, docs[p.kind], specs) for p in panels_of(name))
        sections.append(f"<h2 id='{name}'>{escape(title)}</h2><div class='grid'>{body}</div>")
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in summary_rows(run_id, events, docs))
    nav = " · ".join(f"<a href='#{n}'>{escape(t)}</a>" for n, t in DASHBOARDS.items())
    episodes = sorted({e.episode for e in events})
    options = "<option value='all'>all episodes</option>" + "".join(
        f"<option value='{e}'>episode {e}</option>" for e in episodes)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    specs_json = json.dumps(specs, separators=(",", ":")).replace("</", "<\\/")
    return _PAGE.format(run=escape(run_id), nav=nav, rows=rows, sections="".join(sections), generated=generated,
                        css=_CSS, js=_JS, runtime=runtime_js().replace("</script", "<\\/script"),
                        specs=specs_json, options=options)


def report_path(run_id: str, settings: Settings) -> Path:
    """``<data_dir>/reports/RUN.html``; a run id that is not a plain name (``/``, ``..``) is refused."""
    folder = (settings.data_dir / "reports").resolve()
    if not RUN_ID.fullmatch(run_id):
        raise ReportError(f"run {run_id!r} is not a run id (letters, digits, '.', '_', ':', '-')")
    path = (folder / f"{run_id}.html").resolve()
    if path.parent != folder:
        raise ReportError(f"run {run_id!r} would be written outside {folder}")
    return path


def write_report(run_id: str, settings: Settings | None = None, out_path: Path | None = None) -> Path:
    """Read ``run_id``'s events from the bus (``MDDE_BUS``) and write the HTML report; returns its path.

    Raises ``ReportError`` for a run with no events on the bus (nothing is written) and
    ``PlotsUnavailable`` without the ``plots`` extra.
    """
    settings = settings or get_settings()
    out = report_path(run_id, settings) if out_path is None else Path(out_path)
    if not RUN_ID.fullmatch(run_id):
        raise ReportError(f"run {run_id!r} is not a run id (letters, digits, '.', '_', ':', '-')")
    runtime_js()  # fail on a missing extra before reading the bus
    with open_bus(settings=settings) as bus:
        events = read_run_events(bus, settings, run_id)
    if not events:
        raise ReportError(f"run {run_id!r} has no events on {settings.bus or 'the embedded bus in ' + str(settings.data_dir)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(run_id, events), encoding="utf-8")
    logger.info("wrote report of run %s (%d events) to %s", run_id, len(events), out)
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px}h2{margin-top:32px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{margin:0 0 2px;font-size:15px}.desc{margin:0 0 6px;color:#666;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(620px,1fr));gap:16px}
.panel{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px;overflow-x:auto}
table.summary{border-collapse:collapse;font-size:13px}table.summary th{text-align:left;padding:2px 16px 2px 0;color:#555}
.empty{color:#777;font-style:italic;font-size:13px}.controls{margin:12px 0;font-size:14px}
footer{margin-top:32px;color:#999;font-size:12px}
"""

_JS = """
(async function () {
  var specs = JSON.parse(document.getElementById('specs').textContent);
  var views = [];
  for (var id of Object.keys(specs)) {
    var result = await vegaEmbed('#' + id, specs[id], {renderer: 'svg', actions: false});
    views.push([id, result.view]);
  }
  var select = document.getElementById('episode');
  async function show() {
    var episode = select.value;
    for (var [id, view] of views) {
      view.signal('episode', episode);
      await view.runAsync();
      var box = document.getElementById(id);
      var has = box.getAttribute('data-episodes').split(' ').indexOf(episode) >= 0;
      box.style.display = has ? '' : 'none';
      box.nextElementSibling.hidden = has;
    }
    document.body.setAttribute('data-episode', episode);
  }
  var linked = /episode=([^&]+)/.exec(location.hash);  // report.html#episode=3 opens on episode 3
  if (linked && select.querySelector('option[value="' + linked[1] + '"]')) { select.value = linked[1]; }
  select.addEventListener('change', function () {
    try { history.replaceState(null, '', '#episode=' + select.value); } catch (e) { /* file: may refuse */ }
    show();
  });
  await show();
  var status = document.getElementById('report-status');
  status.setAttribute('data-charts', String(views.length));
  status.textContent = views.length + ' charts';
  document.body.setAttribute('data-ready', '1');
})().catch(function (err) { document.body.setAttribute('data-error', String(err)); console.error(err); });
"""

# Vega compiles its expressions with Function(), hence 'unsafe-eval'; default-src 'none' still forbids
# every fetch, so the report can load nothing.
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline' 'unsafe-eval'; img-src data:">
<title>mdde-stream run {run}</title><style>{css}</style><script>{runtime}</script></head>
<body><h1>mdde-stream run <code>{run}</code></h1><p>{nav} · <span id="report-status"></span></p>
<table class="summary">{rows}</table>
<p class="controls"><label>Show <select id="episode">{options}</select></label>
(every chart follows; "all episodes" aggregates as the Kibana dashboards do)</p>{sections}
<footer>generated {generated} by mdde-stream report</footer>
<script type="application/json" id="specs">{specs}</script>
<script>{js}</script></body></html>
"""
