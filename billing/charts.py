"""Server-rendered SVG charts for the dashboard and the team portal.

No JavaScript library and no CDN: a page must render offline and in any browser, and the charts
it needs are few — a line chart of values over time and a horizontal bar chart of a breakdown.
Colours are the Okabe-Ito palette, distinguishable with the common colour-vision deficiencies;
every point and bar carries a `<title>` (the browser's tooltip, read by screen readers), and the
chart as a whole is an `img` with a title and a description.

Everything here is a pure function of its arguments, and every text is escaped.
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Okabe & Ito (2008): blue, orange, bluish green, reddish purple, sky blue, vermillion, yellow, black.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
AXIS = "#6b7280"
GRID = "#e5e7eb"
TEXT = "#1f2937"
FONT = "font-family:system-ui,sans-serif;font-size:13px"
MAX_X_LABELS = 8

Number = float | int | Decimal
Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and one value per label."""

    name: str
    values: Sequence[Number]


def count(value: float) -> str:
    """12, 1.2k, 3.4M: short enough for an axis."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def usd(value: float) -> str:
    """$1,234.50, or as many decimals as a small amount needs to show ($0.00042)."""
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    decimals = min(8, max(2, 1 - math.floor(math.log10(abs(value)))))  # two significant digits
    shown = f"{value:.{decimals}f}"
    return f"${shown.rstrip('0') if decimals > 2 else shown}"  # $0.005, not $0.0050


def milliseconds(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def nice_ticks(top: float, *, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values from 0 to at least `top`: steps of 1, 2 or 5 times a power of ten
    (`whole`: never less than 1, for counts, which have no 0.2 of a request)."""
    if top <= 0:
        return [0.0, 1.0]
    rough = top / count
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    if whole:
        step = max(1, step)
    steps = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(steps + 1)]


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Format = count,
    width: int = 560,
    height: int = 220,
) -> SafeString:
    """Draw each series against `labels` (the x axis, in order) with a y axis from zero."""
    chart_id = _slug(title)
    left, right, top, bottom = 64, 40, 28 if len(series) > 1 else 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(v) for s in series for v in s.values]
    parts = _frame(chart_id, title, _describe(labels, series, fmt), width, height)
    if not labels or not values or not any(values):
        parts.append(_empty(width, height))
        return _close(parts)
    ticks = nice_ticks(max(values), whole=fmt is count)
    y_max = ticks[-1]

    def x(i: int) -> float:
        return left + (plot_w * i / (len(labels) - 1) if len(labels) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    parts += _y_axis(ticks, fmt, left=left, right=width - right, y=y)
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % every == 0:
            at = f'x="{x(i):.1f}" y="{height - bottom + 18}"'
            parts.append(f'<text {at} text-anchor="middle" fill="{AXIS}">{escape(label)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{AXIS}"/>')
    for n, line in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        points = [(x(i), y(float(v))) for i, v in enumerate(line.values)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        dash = ' stroke-dasharray="6 3"' if n % 2 else ""  # lines differ by more than colour
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for (px, py), label, value in zip(points, labels, line.values, strict=False):
            tip = f"{label} · {line.name}: {fmt(float(value))}"
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}"><title>{escape(tip)}</title></circle>'
            )
    if len(series) > 1:
        parts += _legend(series, left=left, y=14)
    return _close(parts)


def bar_chart(
    bars: Sequence[tuple[str, Number]],
    *,
    title: str,
    fmt: Format = count,
    width: int = 380,
    bar_height: int = 20,
) -> SafeString:
    """Draw one horizontal bar per (label, value), in the order given, labels on the left."""
    chart_id = _slug(title)
    left, right, gap = 140, 72, 6
    height = max(60, len(bars) * (bar_height + gap) + gap)
    description = "; ".join(f"{label}: {fmt(float(value))}" for label, value in bars) or "No data."
    parts = _frame(chart_id, title, description, width, height)
    values = [float(v) for _, v in bars]
    if not bars or not any(values):
        parts.append(_empty(width, height))
        return _close(parts)
    top_value = max(values)
    plot_w = width - left - right
    for i, (label, value) in enumerate(bars):
        y = gap + i * (bar_height + gap)
        length = max(1.0, plot_w * float(value) / top_value) if float(value) > 0 else 0.0
        short = label if len(label) <= 17 else label[:16] + "…"
        tip = f"{label}: {fmt(float(value))}"
        baseline = f"{y + bar_height * 0.7:.1f}"
        parts.append(
            f"<g><title>{escape(tip)}</title>"
            f'<text x="{left - 8}" y="{baseline}" text-anchor="end" fill="{TEXT}">{escape(short)}</text>'
            f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_height}" rx="2" fill="{PALETTE[0]}"/>'
            f'<text x="{left + length + 6:.1f}" y="{baseline}" fill="{TEXT}">{escape(fmt(float(value)))}</text>'
            "</g>"
        )
    return _close(parts)


# --- the pieces ------------------------------------------------------------------------------


def _frame(chart_id: str, title: str, description: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" style="{FONT}" '
        f'preserveAspectRatio="xMinYMin meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _close(parts: list[str]) -> SafeString:
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above went through escape()


def _empty(width: int, height: int) -> str:
    return f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{AXIS}">No data for this range</text>'


def _y_axis(ticks: list[float], fmt: Format, *, left: int, right: int, y: Callable[[float], float]) -> list[str]:
    parts = []
    for tick in ticks:
        ty = y(tick)
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end" fill="{AXIS}">{escape(fmt(tick))}</text>'
        )
    return parts


def _legend(series: Sequence[Series], *, left: int, y: int) -> list[str]:
    parts, x = [], float(left)
    for n, line in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        dash = ' stroke-dasharray="6 3"' if n % 2 else ""
        parts.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{x + 24}" y="{y}" fill="{TEXT}">{escape(line.name)}</text>')
        x += 24 + 8 * len(line.name) + 20
    return parts


def _describe(labels: Sequence[str], series: Sequence[Series], fmt: Format) -> str:
    """A text alternative: each series' total and peak, for readers who cannot see the chart."""
    if not labels:
        return "No data."
    out = []
    for line in series:
        values = [float(v) for v in line.values]
        if values:
            peak = max(range(len(values)), key=values.__getitem__)
            out.append(f"{line.name}: total {fmt(sum(values))}, peak {fmt(values[peak])} at {labels[peak]}")
    return f"From {labels[0]} to {labels[-1]}. " + "; ".join(out)


def _slug(title: str) -> str:
    return "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "x")
