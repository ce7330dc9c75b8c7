"""Per-table charts as inline SVG, drawn on the server: rows and duration over the last runs.

Pure: points in, an SVG string out (every text escaped). A line with a dot per run; a failed
run's dot is drawn hollow and red. The y axis starts at 0 and has 4 labelled ticks; the x axis
names the first and the last run's date.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

WIDTH: Final = 640
HEIGHT: Final = 220
LEFT: Final = 70
RIGHT: Final = 20
TOP: Final = 28
BOTTOM: Final = 36


def nice_max(value: float) -> float:
    """A round number >= value for the top of an axis (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    if value < 1:
        magnitude = 0.1
        while magnitude > value:
            magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _label(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.1f} s" if value < 10 else f"{value:,.0f} s"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def line_chart(
    title: str,
    values: Sequence[float],
    labels: Sequence[str],
    *,
    unit: str = "",
    failed: Sequence[bool] = (),
    color: str = "#1f77b4",
) -> str:
    """An SVG line chart of `values` (oldest first), `labels` naming each point."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_max(max(values, default=0.0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
        'class="chart">',
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{escape(_label(top * i / 4, unit))}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>'
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#444"/>'
    )
    if not values:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            'font-size="12">no runs yet</text></svg>'
        )
        return "".join(parts)
    step = plot_w / (len(values) - 1) if len(values) > 1 else 0.0
    points = [
        (LEFT + (i * step if len(values) > 1 else plot_w / 2), TOP + plot_h - plot_h * v / top)
        for i, v in enumerate(values)
    ]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    for i, (x, y) in enumerate(points):
        bad = i < len(failed) and failed[i]
        fill, stroke = ("#fff", "#d62728") if bad else (color, color)
        tip = f"{labels[i] if i < len(labels) else ''}: {_label(values[i], unit)}"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="2"><title>{escape(tip)}</title></circle>'
        )
    if labels:
        parts.append(
            f'<text x="{LEFT}" y="{HEIGHT - 10}" font-size="11">{escape(labels[0])}</text>'
        )
        if len(labels) > 1:
            parts.append(
                f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 10}" font-size="11" '
                f'text-anchor="end">{escape(labels[-1])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["line_chart", "nice_max"]
