"""Grouped bar charts as standalone SVG, so evaluation plots need no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


def bar_chart(title: str, categories: Sequence[str], series: dict[str, Sequence[float]], y_label: str = "",
              width: int = 720, height: int = 360) -> str:
    """One group of bars per category, one bar per series; negative values grow downwards."""
    for name, values in series.items():
        if len(values) != len(categories):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(categories)} categories")
    left, right, top, bottom = 64, 150, 36, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs] or [0.0]
    hi, lo = max(0.0, *values), min(0.0, *values)
    if hi == lo:
        hi = lo + 1.0
    scale = plot_h / (hi - lo)
    zero_y = top + hi * scale
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
           f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" '
           f'text-anchor="middle">{escape(y_label)}</text>']
    for k in range(5):  # y ticks
        v = lo + (hi - lo) * k / 4
        y = top + (hi - v) * scale
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" stroke="#333"/>')
    for c, category in enumerate(categories):
        x0 = left + c * group_w + group_w * 0.1
        for s, (name, vals) in enumerate(series.items()):
            v = float(vals[c])
            y, h = (zero_y - v * scale, v * scale) if v >= 0 else (zero_y, -v * scale)
            out.append(f'<rect x="{x0 + s * bar_w:.1f}" y="{y:.1f}" width="{bar_w * 0.95:.1f}" height="{h:.1f}" '
                       f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)} · {escape(category)}: {v:.4g}'
                       f'</title></rect>')
        out.append(f'<text x="{left + (c + 0.5) * group_w:.1f}" y="{top + plot_h + 18}" '
                   f'text-anchor="middle">{escape(category)}</text>')
    for s, name in enumerate(series):
        y = top + 10 + 18 * s
        out.append(f'<rect x="{left + plot_w + 14}" y="{y - 9}" width="10" height="10" '
                   f'fill="{PALETTE[s % len(PALETTE)]}"/>')
        out.append(f'<text x="{left + plot_w + 30}" y="{y}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
