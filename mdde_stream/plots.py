"""Plots through Vega-Lite (Altair): one colour per agent, node and action outcome everywhere.

Every figure the project writes (the HTML run report, the evaluation and edge-case plots) goes
through here so a colour keeps its meaning across panels and files: agent ``agentI`` and the node
``nI`` it controls share colour I, action outcomes are green (valid), red (invalid), grey (skip)
and orange (conflict), throughput sources have theirs. Static SVG and the inlined runtime both
come from ``vl-convert`` (no browser, no network). Altair and vl-convert are the ``plots`` extra;
the rest of the package imports without them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from typing import Any

EXTRA = "plots"
VL_VERSION = "6.4"  # the Vega-Lite version Altair 6 writes; vl-convert bundles it

# Agents and nodes: Tableau-like hues without pure green/red/grey, which mean action outcomes.
PALETTE = ("#4c78a8", "#f58518", "#72b7b2", "#b279a2", "#9d755d", "#eeca3b", "#ff9da6", "#17becf",
           "#8c6d31", "#bcbd22")
FIXED = {
    # action outcomes / kinds
    "valid": "#2e7d32", "accepted": "#2e7d32", "copy": "#2e7d32",
    "invalid": "#c62828", "rejected": "#c62828", "delete": "#c62828",
    "skip": "#9e9e9e", "conflict": "#ef6c00", "conflicting": "#ef6c00",
    # throughput sources
    "real": "#1a237e", "benchmark": "#1a237e", "simulated": "#6a3d9a", "estimate": "#e45756",
    # summaries over episodes
    "best": "#9ecae9", "avg": "#4c78a8", "worst": "#1f3b5c",
}


class PlotsUnavailable(RuntimeError):
    """Altair or vl-convert is missing: the message names the extra that installs them."""


def altair() -> Any:
    """The ``altair`` module, or an error that says which extra to install."""
    try:
        import altair as alt
        import vl_convert  # noqa: F401
    except ImportError as exc:
        raise PlotsUnavailable(
            f"plots need Altair and vl-convert ({exc.name} is missing): pip install 'mdde-stream[{EXTRA}]'"
        ) from None
    return alt


def colour_of(name: str) -> str:
    """The fixed colour of an agent, node, worker, outcome or source; other names hash to the palette."""
    if name in FIXED:
        return FIXED[name]
    match = re.fullmatch(r"(?:agent|n|node|worker|w)[-_]?(\d+)", name)
    if match:
        return PALETTE[int(match.group(1)) % len(PALETTE)]
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def natural_key(name: str) -> tuple:
    """Sort ``f2`` before ``f10`` and numbers numerically."""
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return (head, int(tail) if tail else -1, name)


def colour_scale(names: Iterable[str]) -> Any:
    """An ordinal colour scale that pins every name to ``colour_of(name)``."""
    alt = altair()
    domain = sorted(set(names), key=natural_key)
    return alt.Scale(domain=domain, range=[colour_of(n) for n in domain])


def round_ticks(lo: int, hi: int, target: int = 8) -> list[int]:
    """Integer ticks at a round stride (1, 2, 5 × 10^k) for ordinal axes such as steps."""
    span = max(1, hi - lo)
    stride = 1
    while span / stride > target:
        stride = _next_round(stride)
    first = -(-lo // stride) * stride
    return list(range(first, hi + 1, stride))


def _next_round(stride: int) -> int:
    digits = str(stride)
    lead, zeros = int(digits[0]), len(digits) - 1
    return (2 if lead == 1 else 5 if lead == 2 else 10) * 10**zeros


def to_svg(chart: Any) -> str:
    """A standalone SVG of the chart, rendered by vl-convert (no browser)."""
    altair()
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_dict(), vl_version=VL_VERSION)


def runtime_js() -> str:
    """Vega, Vega-Lite and vega-embed as one script to inline in an HTML page (about 0.9 MB)."""
    altair()
    import vl_convert

    # Without a snippet it bundles Vega, Vega-Lite and vega-embed as globals; the stub marks snippet required.
    return vl_convert.javascript_bundle(vl_version=VL_VERSION)  # type: ignore[call-arg]


CONFIG: dict[str, Any] = {
    "font": "system-ui, -apple-system, Segoe UI, sans-serif",
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal", "gridColor": "#eeeeee"},
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "labelLimit": 160, "symbolType": "square"},
    "title": {"fontSize": 14, "anchor": "start", "fontWeight": "normal"},
    "view": {"stroke": "#cccccc"},
}


def configure(chart: Any) -> Any:
    """The house style: readable fonts, light grid, square legend symbols."""
    return chart.configure(**{k: v for k, v in CONFIG.items() if k in ("font",)}).configure_axis(
        **CONFIG["axis"]).configure_legend(**CONFIG["legend"]).configure_title(**CONFIG["title"]).configure_view(
        **CONFIG["view"])


def grouped_bars_svg(title: str, categories: list[str], series: dict[str, list[float]], value_title: str,
                     series_title: str = "", percent: bool = False) -> str:
    """One group of bars per category, one bar per series, as SVG; ``percent`` takes fractions."""
    for name, values in series.items():
        if len(values) != len(categories):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(categories)} categories")
    alt = altair()
    rows = [{"category": c, "series": name, "value": float(v)}
            for name, values in series.items() for c, v in zip(categories, values)]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("category:N", title=None, sort=list(categories), axis=alt.Axis(labelAngle=0, labelLimit=160)),
        xOffset=alt.XOffset("series:N", sort=list(series)),
        y=alt.Y("value:Q", title=value_title, axis=alt.Axis(format=".0%" if percent else ",~g", tickCount=6)),
        color=alt.Color("series:N", sort=list(series), scale=colour_scale(series),
                        legend=alt.Legend(title=series_title or None, orient="right")),
        tooltip=["category:N", "series:N", alt.Tooltip("value:Q", format=".1%" if percent else ",.4~g")],
    ).properties(width=max(320, 90 * len(categories) * max(1, len(series)) // 2), height=260, title=title)
    return to_svg(configure(chart))
