"""Small inline-SVG charts for the run report: multi-series line charts and heatmaps.

Drawn on the server side as plain SVG so the report needs no library, no network and no script to
show its data; the report's few lines of script only add tooltips and legend toggles.
"""

from __future__ import annotations

from html import escape

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 140, 16, 40


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000 or abs(value) < 0.01:
        return f"{value:.3g}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / (count - 1)
    return [lo + i * step for i in range(count)]


def line_chart(
    series: dict[str, dict[float, float]], x_label: str, y_label: str, percent: bool = False, chart_id: str = "c"
) -> str:
    """One polyline per series over a numeric x axis; ``series`` maps name -> {x: y}."""
    points = [(x, y) for s in series.values() for x, y in s.items()]
    if not points:
        return '<p class="empty">no data for this panel in this run</p>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    if percent:
        y0, y1 = 0.0, 1.0
    if y1 == y0:
        y1 = y0 + 1.0
    if x1 == x0:
        x1 = x0 + 1.0
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return TOP + ph - (y - y0) / (y1 - y0) * ph

    parts = [f'<svg class="chart line" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img" aria-label="{escape(y_label)} over {escape(x_label)}">']
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="plot"/>')
    for t in _ticks(y0, y1):
        label = f"{t * 100:.0f}%" if percent else fmt(t)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{label}</text>')
    integer_x = all(float(x).is_integer() for x in xs)
    x_ticks = _ticks(x0, x1, 6)
    if integer_x:
        stride = max(1, int((x1 - x0) // 5) or 1)
        x_ticks = [float(v) for v in range(int(x0), int(x1) + 1, stride)]
    for t in x_ticks:
        parts.append(f'<text class="tick" x="{sx(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{fmt(round(t, 2))}</text>')
    parts.append(f'<text class="axis" x="{LEFT + pw / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text class="axis" transform="translate(14 {TOP + ph / 2}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    for i, (name, data) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        pts = sorted(data.items())
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<g class="series" data-series="{escape(name)}">')
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        for x, y in pts:
            value = f"{y * 100:.1f}%" if percent else fmt(y)
            tip = escape(f"{name} · {x_label} {fmt(x)}: {value}")
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}" data-tip="{tip}"/>')
        parts.append("</g>")
        ly = TOP + 14 + i * 16
        parts.append(f'<g class="legend" data-series="{escape(name)}"><rect x="{WIDTH - RIGHT + 12}" y="{ly - 9}" '
                     f'width="10" height="10" fill="{color}"/><text x="{WIDTH - RIGHT + 28}" y="{ly}">'
                     f'{escape(name[:18])}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _color(t: float) -> str:
    """White → dark green, as Kibana's "Greens" heatmap scheme."""
    t = max(0.0, min(1.0, t))
    r, g, b = (int(247 + (0 - 247) * t), int(252 + (109 - 252) * t), int(245 + (44 - 245) * t))
    return f"rgb({r},{g},{b})"


def heatmap(
    cells: dict[tuple[str, str], float], x_label: str, y_label: str, value_label: str, chart_id: str = "h"
) -> str:
    """Colour-coded grid; ``cells`` maps (x, y) -> value, x and y are category names."""
    if not cells:
        return '<p class="empty">no data for this panel in this run</p>'
    xs = sorted({x for x, _ in cells}, key=_natural)
    ys = sorted({y for _, y in cells}, key=_natural)
    hi = max(cells.values()) or 1.0
    cw = max(4.0, min(36.0, (WIDTH - LEFT - 20) / len(xs)))
    ch = max(8.0, min(28.0, 300 / len(ys)))
    width = int(LEFT + cw * len(xs) + 20)
    height = int(TOP + ch * len(ys) + BOTTOM + 20)
    parts = [f'<svg class="chart heatmap" id="{chart_id}" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{escape(value_label)} by {escape(x_label)} and {escape(y_label)}">']
    for j, y in enumerate(ys):
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{TOP + j * ch + ch / 2 + 4:.1f}" '
                     f'text-anchor="end">{escape(y[:12])}</text>')
    every = max(1, int(len(xs) / (WIDTH / 40)))
    for i, x in enumerate(xs):
        if i % every == 0:
            parts.append(f'<text class="tick" x="{LEFT + i * cw + cw / 2:.1f}" y="{TOP + len(ys) * ch + 14:.1f}" '
                         f'text-anchor="middle">{escape(x[:8])}</text>')
    for (x, y), value in cells.items():
        i, j = xs.index(x), ys.index(y)
        tip = escape(f"{x_label} {x} · {y_label} {y}: {fmt(value)}")
        parts.append(f'<rect class="cell" x="{LEFT + i * cw:.1f}" y="{TOP + j * ch:.1f}" width="{cw:.1f}" '
                     f'height="{ch:.1f}" fill="{_color(value / hi)}" data-tip="{tip}"/>')
    parts.append(f'<text class="axis" x="{LEFT + cw * len(xs) / 2:.1f}" y="{height - 8}" '
                 f'text-anchor="middle">{escape(x_label)} (max {escape(value_label)} = {fmt(hi)})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _natural(name: str) -> tuple:
    """Sort ``f2`` before ``f10`` and numbers numerically."""
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return (head, int(tail) if tail else -1, name)
