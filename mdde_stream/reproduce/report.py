"""Write a ``reproduce`` run: ``results.json``, ``results.md`` and one self-contained ``reproduce.html``.

All three render the same results document (:mod:`mdde_stream.reproduce.results`). The HTML page
has no external references: styles inline, the throughput plots as inline SVG.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from mdde_stream.reproduce import thesis

NODES = thesis.NODES


def write_all(doc: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results.json": json.dumps(doc, indent=1, default=float) + "\n",
             "results.md": markdown(doc), "reproduce.html": html(doc)}
    for name, text in paths.items():
        (out / name).write_text(text)
    return [out / name for name in paths]


def _f(v: float | None, digits: int = 2, sign: bool = False) -> str:
    if v is None or v != v:  # NaN
        return "—"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _met(t: dict[str, Any]) -> str:
    return "met" if t["met"] else "not met"


def _figure(t: dict[str, Any]) -> str:
    fig = t["figure"]
    return " / ".join(f"{v:.2f}" for v in fig) if isinstance(fig, list) else f"{fig:.2f}"


# -- markdown ---------------------------------------------------------------------------------------


def markdown(doc: dict[str, Any]) -> str:
    cfg = doc["config"]["options"]
    lines = [f"# Thesis beside ours ({cfg['benchmark']} benchmark)", "",
             f"Edge cases: {cfg['runs']} run(s) each (thesis: {thesis.EDGE_CASE_RUNS}; its Tables 5.1-5.4 show "
             f"the first run, so do ours). Random-valid: {cfg['episodes']} episode(s) of {cfg['steps']} steps "
             f"(thesis: {thesis.RANDOM_VALID_EPISODES} of 1001). Step \"-\" is the baseline (the initial "
             "allocation), step k the state after the k-th action.", "", "## Targets", "",
             "| target | ours | limit | result | why |", "|---|---|---|---|---|"]
    for t in doc["targets"]:
        lines.append(f"| {t['description']} | {_figure(t)} | {t['limit']} | **{_met(t)}** | {t['why'] or ''} |")
    edge = doc.get("edge_cases") or {}
    for case, c in edge.items():
        lines += ["", f"## {case} ({c['workload']} workload, {c['runs']} run(s)); fragment numbering: "
                  f"{c['fragment_numbering']}"]
        for source, t in c["tables"].items():
            lines += ["", f"### Table {t['thesis_table']}: {source}, reads per node — ours / thesis (Δ share, points)",
                      "", "| step | " + " | ".join(NODES) + " |", "|---|" + "---|" * len(NODES)]
            for i, label in enumerate(t["steps"]):
                cells = [f"{t['ours'][i][w]:,} / {t['thesis'][i][w]:,} ({t['share_difference_points'][i][w]:+.2f})"
                         for w in range(len(NODES))]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
            lines += ["", f"Mean |share difference|: **{t['mean_abs_share_difference']:.2f} points** (first run); "
                      f"{t['mean_abs_share_difference_all_runs']:.2f} averaged over runs."]
        g = c["estimate_gap"]
        lines += ["", f"§5.2.3 estimate vs benchmark (mean over steps of (τ_est − τ_bench)/τ_bench, mean curves over runs): "
                  f"ours **{_f(g['ours_pct'], sign=True)} %**, thesis {_f(g['thesis_pct'], sign=True)} % "
                  f"(mean |difference| ours {_f(g['ours_abs_pct'])} %)."]
        if "window" in g:
            lines.append(f"Steps {g['window'][0]}-{g['window'][1]}: ours {_f(g['ours_window_pct'], sign=True)} %, "
                         f"thesis {_f(g['thesis_window_pct'], sign=True)} %; std over runs ours "
                         f"{_f(g['ours_window_std']['estimate'])} (estimate) / {_f(g['ours_window_std']['benchmark'])} "
                         f"(benchmark), thesis {g['thesis_window_std']['estimate']} / {g['thesis_window_std']['benchmark']}.")
        lines.append(f"Why: {g['why']}")
    timing = doc.get("timing")
    if timing:
        lines += ["", "## Benchmark vs estimate time", "",
                  f"Thesis: {thesis.BENCHMARK_SECONDS} s per YCSB benchmark, {thesis.ESTIMATE_SECONDS * 1000:.1f} ms per "
                  f"estimate ({thesis.BENCHMARK_SECONDS / thesis.ESTIMATE_SECONDS:,.0f}×). Ours: "
                  f"{_f(timing['wall_per_benchmark_s'], 3)} s wall per {doc['config']['options']['benchmark']} benchmark "
                  f"step (the benchmark's own duration: {_f(timing['benchmark_duration_s'], 3)} s), "
                  f"{timing['estimate_s'] * 1e6:.1f} µs per estimate "
                  f"({timing['wall_per_benchmark_s'] / timing['estimate_s']:,.0f}×)."]
    rv = doc.get("random_valid")
    if rv:
        lines += ["", f"## Tables 5.12-5.14: random-valid agents ({rv['episodes']} episodes; baseline source: "
                  f"{rv['baseline_source']})", "",
                  "Thr. Δ % = the episode's best measurement (baseline included) vs the baseline of its first step; "
                  "reads share from the same measurement.", "",
                  "| table | | Thr. Δ % | " + " | ".join(f"agent {i}" for i in range(len(NODES))) + " |",
                  "|---|---|---|" + "---|" * len(NODES)]
        for kind, t in rv["tables"].items():
            for who in ("thesis", "ours"):
                row = t[who]
                lines.append(f"| {t['thesis_table']} {kind} | {who} | {row['thr_delta_pct']:.3f} | "
                             + " | ".join(f"{v:.3f}" for v in row["reads_pct"]) + " |")
        avg = rv["tables"]["average"]["ours"]
        lines += ["", f"Last measurement of the episode instead of its best: average Thr. Δ {avg['thr_delta_last_pct']:.2f} %. "
                  f"Estimator ceiling from this baseline (every fragment on every node): "
                  f"{_f(rv.get('estimator_ceiling_pct'), sign=True)} %."]
        variants = rv.get("delete_mask_variants")
        if variants:
            lines += ["", "Delete mask (the thesis's rule: another node holds the fragment; MDDE's code: another node's "
                      "replica was read in the latest measurement):", "",
                      "| delete mask | Thr. Δ % (episode best) | Thr. Δ % (last) | reads % per agent |", "|---|---|---|---|"]
            for mask, v in variants.items():
                lines.append(f"| {mask} | {v['thr_delta_pct']:.2f} | {v['thr_delta_last_pct']:.2f} | "
                             + " / ".join(f"{x:.2f}" for x in v["reads_pct"]) + " |")
    return "\n".join(lines) + "\n"


# -- HTML -------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.6em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.met{color:#11772d;font-weight:bold}.not{color:#b00020;font-weight:bold}
.d0{background:#fff}.d1{background:#fff4e0}.d2{background:#ffe0c0}.d3{background:#ffc8c8}
small{color:#666}
"""


def _diff_class(points: float) -> str:
    a = abs(points)
    return "d0" if a < 2 else "d1" if a < 5 else "d2" if a < 10 else "d3"


def html(doc: dict[str, Any]) -> str:
    cfg = doc["config"]["options"]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>mdde-stream reproduce</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>The thesis beside ours — {escape(cfg['benchmark'])} benchmark</h1>",
             f"<p>Edge cases: {cfg['runs']} run(s) each (thesis: {thesis.EDGE_CASE_RUNS}; Tables 5.1–5.4 are its first "
             f"run, and so are ours). Random-valid: {cfg['episodes']} episode(s) of {cfg['steps']} steps (thesis: "
             f"{thesis.RANDOM_VALID_EPISODES} of 1001). Step “-” is the baseline, step k the state after the k-th "
             "action.</p>", "<h2>Targets</h2><table><tr><th class='l'>target</th><th>ours</th><th>limit</th>"
             "<th>result</th><th class='l'>why</th></tr>"]
    for t in doc["targets"]:
        cls = "met" if t["met"] else "not"
        why = escape(t["why"]) if t["why"] else ("" if t["met"] else "<small>(not filled: --why ID=TEXT)</small>")
        parts.append(f"<tr><td class='l'>{escape(t['description'])} <small>[{t['id']}]</small></td>"
                     f"<td>{escape(_figure(t))}</td><td>{escape(t['limit'])}</td><td class='{cls}'>{_met(t)}</td>"
                     f"<td class='l'>{why}</td></tr>")
    parts.append("</table>")
    for case, c in (doc.get("edge_cases") or {}).items():
        parts.append(f"<h2>{escape(case)} ({escape(c['workload'])}, {c['runs']} run(s))</h2>"
                     f"<p>Fragment numbering: {escape(c['fragment_numbering'])}.</p>")
        for source, t in c["tables"].items():
            parts.append(f"<h3>Table {t['thesis_table']}: {escape(source)} — reads per node, ours / thesis "
                         f"(Δ share in points)</h3><table><tr><th>step</th>"
                         + "".join(f"<th>{n} ours</th><th>{n} thesis</th><th>Δ</th>" for n in NODES) + "</tr>")
            for i, label in enumerate(t["steps"]):
                cells = "".join(
                    f"<td>{t['ours'][i][w]:,}</td><td>{t['thesis'][i][w]:,}</td>"
                    f"<td class='{_diff_class(t['share_difference_points'][i][w])}'>"
                    f"{t['share_difference_points'][i][w]:+.2f}</td>" for w in range(len(NODES)))
                parts.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
            parts.append(f"</table><p>Mean |share difference|: <b>{t['mean_abs_share_difference']:.2f} points</b> "
                         f"(first run); {t['mean_abs_share_difference_all_runs']:.2f} averaged over runs.</p>")
        g = c["estimate_gap"]
        parts.append(f"<p>§5.2.3 estimate vs benchmark, mean over steps of (τ<sub>est</sub> − τ<sub>bench</sub>) / "
                     f"τ<sub>bench</sub> on the mean curves over runs: ours <b>{_f(g['ours_pct'], sign=True)} %</b>, "
                     f"thesis {_f(g['thesis_pct'], sign=True)} %.")
        if "window" in g:
            parts.append(f" Steps {g['window'][0]}–{g['window'][1]}: ours {_f(g['ours_window_pct'], sign=True)} %, "
                         f"thesis {_f(g['thesis_window_pct'], sign=True)} %.")
        parts.append(f" <i>Why:</i> {escape(g['why'])}</p>")
        if c.get("svg"):
            parts.append("<p><small>Throughput per step, mean and min–max over runs; the plot's step 0 is the "
                         "baseline (thesis step “-”), its step k + 1 the thesis's step k.</small></p>" + c["svg"])
    timing = doc.get("timing")
    if timing:
        parts.append(f"<h2>Benchmark vs estimate time</h2><p>Thesis: {thesis.BENCHMARK_SECONDS} s per YCSB benchmark, "
                     f"{thesis.ESTIMATE_SECONDS * 1000:.1f} ms per estimate. Ours: {_f(timing['wall_per_benchmark_s'], 3)} s "
                     f"wall per benchmark step (the benchmark's own duration: {_f(timing['benchmark_duration_s'], 3)} s), "
                     f"{timing['estimate_s'] * 1e6:.1f} µs per estimate.</p>")
    rv = doc.get("random_valid")
    if rv:
        parts.append(f"<h2>Tables 5.12–5.14: random-valid agents</h2><p>{rv['episodes']} episodes; baseline source: "
                     f"{escape(str(rv['baseline_source']))}. Thr. Δ % = the episode's best measurement (baseline included) "
                     "against the baseline of its first step; reads share from the same measurement.</p><table><tr>"
                     "<th class='l'>table</th><th class='l'></th><th>Thr. Δ %</th>"
                     + "".join(f"<th>agent {i}</th>" for i in range(len(NODES))) + "</tr>")
        for kind, t in rv["tables"].items():
            for who in ("thesis", "ours"):
                row = t[who]
                parts.append(f"<tr><td class='l'>{t['thesis_table']} {kind}</td><td class='l'>{who}</td>"
                             f"<td>{row['thr_delta_pct']:.3f}</td>"
                             + "".join(f"<td>{v:.3f}</td>" for v in row["reads_pct"]) + "</tr>")
        parts.append("</table>")
        avg = rv["tables"]["average"]["ours"]
        parts.append(f"<p>Last measurement of the episode instead of its best: average Thr. Δ "
                     f"{avg['thr_delta_last_pct']:.2f} %. Estimator ceiling from this baseline (every fragment on every "
                     f"node): {_f(rv.get('estimator_ceiling_pct'), sign=True)} %.</p>")
        variants = rv.get("delete_mask_variants")
        if variants:
            parts.append("<h3>Delete mask</h3><p>The thesis's rule (another node holds the fragment) beside MDDE's "
                         "code (another node's replica was read in the latest measurement).</p><table><tr>"
                         "<th class='l'>delete mask</th><th>Thr. Δ % (episode best)</th><th>Thr. Δ % (last)</th>"
                         "<th>reads % per agent</th></tr>")
            for mask, v in variants.items():
                parts.append(f"<tr><td class='l'>{escape(mask)}</td><td>{v['thr_delta_pct']:.2f}</td>"
                             f"<td>{v['thr_delta_last_pct']:.2f}</td><td>"
                             + " / ".join(f"{x:.2f}" for x in v["reads_pct"]) + "</td></tr>")
            parts.append("</table>")
    parts.append("<h2>Configuration</h2><pre>" + escape(json.dumps(doc["config"], indent=1)) + "</pre></body></html>")
    return "\n".join(parts) + "\n"
