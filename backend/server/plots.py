"""The status page's plots: small SVG line charts, written directly (no script, no CDN: the backend
often runs offline; text stays text, so the page stays searchable).

Why not matplotlib, which is a dependency anyway: it took 100-180 ms per chart on the 2-core
machine (three charts of 100 rounds: 680 ms a page, bench/bench_status.py), against a target of
200 ms for the whole page. A line chart of a few hundred points is a few polylines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

Point = tuple[float, float | None]
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 170, 12, 40  # margins: axis labels left and below, legend right
LEGEND_PAD, CHAR_WIDTH = 40, 6.2  # a legend entry: its line and gaps, then its name (11 px sans-serif)


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """About `count` round tick values covering [low, high] (1, 2 or 5 times a power of ten apart);
    whole numbers only when `integer` (an axis of counts has no tick at 22.5)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1) if integer else step
    first = math.floor(low / step) * step
    return [first + i * step for i in range(math.ceil((high - first) / step) + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.0e}"


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    threshold: float | None = None,
    counts: bool = False,
) -> str:
    """One SVG chart with a line per series (a None value is a gap) and, optionally, a dashed
    horizontal threshold. The x axis counts (labeled segments); so does the y axis when `counts`.
    The legend is as wide as its longest name."""
    points = [(x, y) for line in series.values() for x, y in line if y is not None]
    xs = [x for x, _ in points] or [0.0, 1.0]
    ys = [y for _, y in points] + ([threshold] if threshold is not None else [])
    y_ticks = nice_ticks(*(ylim or (min([0.0, *ys]), max([0.0, *ys]) or 1.0)), integer=counts)
    x_ticks = nice_ticks(min(xs), max(xs), integer=True)
    x_low, x_high = min(x_ticks[0], min(xs)), max(x_ticks[-1], max(xs))
    y_low, y_high = y_ticks[0], y_ticks[-1]
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    legend = LEGEND_PAD + CHAR_WIDTH * max(map(len, [*series, "threshold"]))
    width = WIDTH - RIGHT + max(RIGHT, math.ceil(legend))

    def px(x: float) -> float:
        return LEFT + (x - x_low) / ((x_high - x_low) or 1) * inner_w

    def py(y: float) -> float:
        return TOP + inner_h - (y - y_low) / ((y_high - y_low) or 1) * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {HEIGHT}" width="{width}" '
        f'height="{HEIGHT}" font-family="sans-serif" font-size="11" role="img">',
        f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#888"/>',
    ]
    for tick in y_ticks:
        y = py(tick)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    for tick in x_ticks:
        x = px(tick)
        parts.append(f'<text x="{x:.1f}" y="{TOP + inner_h + 15}" text-anchor="middle">{tick:g}</text>')
    parts.append(
        f'<text x="{LEFT + inner_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(xlabel)}</text>'
    )
    parts.append(
        f'<text transform="translate(13 {TOP + inner_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(ylabel)}</text>"
    )
    if threshold is not None:
        y = py(threshold)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#666" '
            'stroke-dasharray="5 4"/>'
        )
    for n, (name, line) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        for run in _runs(line):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            if len(run) == 1:
                parts.append(
                    f'<circle cx="{px(run[0][0]):.1f}" cy="{py(run[0][1]):.1f}" r="2.5" fill="{color}"/>'
                )
            else:
                parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        parts += _legend_entry(n, name, f'stroke="{color}" stroke-width="2"')
    if threshold is not None:
        parts += _legend_entry(len(series), "threshold", 'stroke="#666" stroke-dasharray="5 4"')
    parts.append("</svg>")
    return "\n".join(parts)


def _legend_entry(row: int, name: str, stroke: str) -> list[str]:
    x, y = WIDTH - RIGHT + 12, TOP + 8 + 16 * row
    return [
        f'<line x1="{x}" x2="{x + 18}" y1="{y}" y2="{y}" {stroke}/>',
        f'<text x="{x + 23}" y="{y + 4}">{escape(name)}</text>',
    ]


def _runs(line: Sequence[Point]) -> list[list[tuple[float, float]]]:
    """The stretches of a line between gaps (None values)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in line:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


Whisker = tuple[float, float, float]  # an estimate and its interval's bounds


def interval_chart(groups: Mapping[str, Mapping[str, Whisker | None]]) -> str:
    """One SVG chart of estimates with their intervals on a 0–1 axis: per group (a code) a row per
    figure (precision, recall, ...), a dot on a whisker; a figure without an estimate is left out."""
    figures = list(dict.fromkeys(name for row in groups.values() for name in row))
    row_h, group_h = 11, 14 + 11 * len(figures)
    height = TOP + BOTTOM + group_h * len(groups)
    inner_w = WIDTH - LEFT - RIGHT
    legend = LEGEND_PAD + CHAR_WIDTH * max(map(len, figures or [""]))
    width = WIDTH - RIGHT + max(RIGHT, math.ceil(legend))

    def px(x: float) -> float:
        return LEFT + min(max(x, 0.0), 1.0) * inner_w

    inner_h = height - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="sans-serif" font-size="11" role="img">',
        f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#888"/>',
    ]
    for tick in (0, 0.2, 0.4, 0.6, 0.8, 1):
        x = px(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + inner_h}" stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + inner_h + 15}" text-anchor="middle">{tick:g}</text>')
    parts.append(
        f'<text x="{LEFT + inner_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        "estimate and 95 % interval</text>"
    )
    for g, (group, row) in enumerate(groups.items()):
        top = TOP + g * group_h
        parts.append(f'<text x="{LEFT + 4}" y="{top + 11}">{escape(group)}</text>')
        for n, name in enumerate(figures):
            found = row.get(name)
            if found is None:
                continue
            estimate, low, high = found
            y, color = top + 14 + n * row_h + row_h / 2, COLORS[n % len(COLORS)]
            parts.append(
                f'<line x1="{px(low):.1f}" x2="{px(high):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" '
                'stroke-width="2"/>'
            )
            parts.append(f'<circle cx="{px(estimate):.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
    for n, name in enumerate(figures):
        parts += _legend_entry(n, name, f'stroke="{COLORS[n % len(COLORS)]}" stroke-width="2"')
    parts.append("</svg>")
    return "\n".join(parts)
