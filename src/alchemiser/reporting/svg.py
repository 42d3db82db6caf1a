"""Hand-written inline SVG charts for the backtest page: no scripts, no network.

Every chart is one ``<svg>`` element meant to sit inside an HTML page (no XML
namespace needed there); the page's CSS styles its text and grid. Long series are
downsampled (keeping each bucket's low and high, so a drawdown's trough survives) and
every piece of text is escaped: symbol and strategy names come from user files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from alchemiser.reporting.page import MonthlyRow

WIDTH = 1000
MAX_LINE_POINTS = 1500
MAX_AREA_POINTS = 600
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#86bcb6",
)  # fmt: skip
ACCOUNT_COLOUR = "#1f3b73"
BENCHMARK_COLOUR = "#7f7f7f"
OTHER_COLOUR = "#c7c7c7"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LEFT, _RIGHT, _BOTTOM = 78, 24, 34
_LIGHT = ' class="light"'


def esc(text: object) -> str:
    """Text safe inside an element or a quoted attribute."""
    return escape(str(text), quote=True)


def downsample(values: Sequence[float], max_points: int = MAX_LINE_POINTS) -> list[int]:
    """Indices of at most about ``max_points`` values: the first, the last and each
    bucket's lowest and highest, in order (a chart's peaks and troughs survive)."""
    n = len(values)
    if n <= max_points:
        return list(range(n))
    size = math.ceil(n / max(1, max_points // 2 - 1))
    keep = {0, n - 1}
    for start in range(0, n, size):
        bucket = range(start, min(n, start + size))
        keep.add(min(bucket, key=values.__getitem__))
        keep.add(max(bucket, key=values.__getitem__))
    return sorted(keep)


def _strided(n: int, max_points: int) -> list[int]:
    if n <= max_points:
        return list(range(n))
    step = math.ceil(n / max_points)
    return sorted({*range(0, n, step), n - 1})


def money(value: float, digits: int = 3) -> str:
    """``$1.25M``, ``$250k``, ``$950``: short dollar labels for an axis."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"${value / scale:.{digits}g}{suffix}"
    return f"${value:.{digits}g}"


def _nice_step(span: float, count: int) -> float:
    raw = span / max(1, count)
    power = 10.0 ** math.floor(math.log10(raw))
    return next((m * power for m in (1, 2, 2.5, 5) if m * power >= raw), 10 * power)


def linear_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values from ``lo`` to ``hi``: about ``count`` of them."""
    if hi <= lo:
        return [lo]
    step = _nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


_MANTISSAS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0), tuple(range(1, 10)))


def log_ticks(lo: float, hi: float) -> list[float]:
    """Between 4 and about 10 round values on a log axis from ``lo`` to ``hi`` (> 0)."""
    for mantissas in _MANTISSAS:
        ticks = [
            m * 10.0**k
            for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in mantissas
            if lo <= m * 10.0**k <= hi
        ]
        if len(ticks) > 10:
            return ticks[:: math.ceil(len(ticks) / 8)]
        if len(ticks) >= 4:
            return ticks
    return [t for t in linear_ticks(lo, hi, 5) if t > 0]


def _labels(values: Sequence[float], fmt: Callable[[float, int], str]) -> list[str]:
    for digits in (3, 4, 6):
        labels = [fmt(v, digits) for v in values]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def date_ticks(first: date, last: date) -> list[tuple[date, str]]:
    """Up to about ten round dates between ``first`` and ``last`` with their labels."""
    span = (last - first).days
    if span > 2 * 365:
        step = next(s for s in (1, 2, 5, 10, 20, 50) if (last.year - first.year) / s <= 10)
        years = range(first.year + 1, last.year + 1)
        return [(date(y, 1, 1), str(y)) for y in years if y % step == 0]
    if span > 75:
        months = (last.year - first.year) * 12 + last.month - first.month
        step = next(s for s in (1, 2, 3, 6, 12) if months / s <= 10)
        ticks = []
        for k in range(first.year * 12 + first.month, last.year * 12 + last.month + 1):
            day = date(k // 12 if k % 12 else k // 12 - 1, k % 12 or 12, 1)
            if first < day <= last and (day.month - 1) % step == 0:
                ticks.append((day, f"{MONTHS[day.month - 1]} {day.year}"))
        return ticks
    step = next(s for s in (1, 2, 7, 14, 28) if span / s <= 10)
    days = range(first.toordinal(), last.toordinal() + 1, step)
    return [(d, f"{MONTHS[d.month - 1]} {d.day}") for d in map(date.fromordinal, days)]


@dataclass(frozen=True)
class Plot:
    """The plotting rectangle and the data ranges it maps."""

    top: float
    height: float
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    log: bool = False
    left: float = _LEFT
    width: float = WIDTH - _LEFT - _RIGHT

    def x(self, value: float) -> float:
        span = self.x_hi - self.x_lo
        return self.left + ((value - self.x_lo) / span * self.width if span else 0.0)

    def y(self, value: float) -> float:
        f = math.log10 if self.log else float
        lo, hi = f(self.y_lo), f(self.y_hi)
        return (
            self.top + self.height - ((f(value) - lo) / (hi - lo) * self.height if hi > lo else 0)
        )


def _axes(plot: Plot, yticks: Sequence[tuple[float, str]], dates: Sequence[date]) -> list[str]:
    bottom = plot.top + plot.height
    out = [
        f'<rect class="frame" x="{plot.left}" y="{plot.top}" width="{plot.width}"'
        f' height="{plot.height}"/>'
    ]
    for value, label in yticks:
        y = plot.y(value)
        out.append(f'<line class="grid" x1="{plot.left}" x2="{plot.left + plot.width}"'
                   f' y1="{y:.1f}" y2="{y:.1f}"/>')  # fmt: skip
        out.append(
            f'<text x="{plot.left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(label)}</text>'
        )
    for day, label in date_ticks(dates[0], dates[-1]):
        x = plot.x(day.toordinal())
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{plot.top}" y2="{bottom}"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{esc(label)}</text>')
    return out


def legend(items: Sequence[tuple[str, str, bool]], top: float = 8) -> tuple[list[str], float]:
    """Swatches and names (``name, colour, dashed``) laid out in rows; returns the SVG
    pieces and the height they take."""
    out: list[str] = []
    x, y = float(_LEFT), top
    for name, colour, dashed in items:
        text = name if len(name) <= 40 else name[:39] + "\u2026"
        width = 30 + 7 * len(text) + 18
        if x + width > WIDTH - _RIGHT and x > _LEFT:
            x, y = float(_LEFT), y + 18
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<line x1="{x}" x2="{x + 24}" y1="{y + 6}" y2="{y + 6}" stroke="{colour}"'
                   f' stroke-width="3"{dash}/>')  # fmt: skip
        out.append(f'<text x="{x + 30}" y="{y + 10}">{esc(text)}</text>')
        x += width
    return out, (y - top + 18 if items else 0)


def _svg(label: str, height: float, body: Sequence[str], css: str = "chart") -> str:
    return (
        f'<svg class="{css}" viewBox="0 0 {WIDTH} {math.ceil(height)}" role="img"'
        f' aria-label="{esc(label)}"><title>{esc(label)}</title>' + "".join(body) + "</svg>"
    )


def _path(plot: Plot, xs: Sequence[float], ys: Sequence[float]) -> str:
    parts: list[str] = []
    pen_up = True
    for x, y in zip(xs, ys, strict=True):
        if plot.log and y <= 0:
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{plot.x(x):.1f} {plot.y(y):.1f}")
        pen_up = False
    return "".join(parts)


def _line(plot: Plot, dates: Sequence[date], values: Sequence[float], style: str) -> str:
    keep = downsample(values)
    xs = [dates[i].toordinal() for i in keep]
    return f'<path d="{_path(plot, xs, [values[i] for i in keep])}" {style}/>'


def line_chart(
    label: str,
    dates: Sequence[date],
    series: Sequence[tuple[str, Sequence[float], str, bool]],
    height: float = 380,
) -> str:
    """Equity lines (``name, values, colour, dashed``) on a log dollar scale."""
    items, legend_height = legend([(n, c, d) for n, _, c, d in series])
    positive = [v for _, values, _, _ in series for v in values if v > 0]
    lo, hi = (min(positive), max(positive)) if positive else (1.0, 10.0)
    lo, hi = (lo * 0.99, hi * 1.01) if hi / lo < 1.02 else (lo, hi)
    pad = (hi / lo) ** 0.03
    plot = Plot(16 + legend_height, height, dates[0].toordinal(), dates[-1].toordinal(),
                lo / pad, hi * pad, log=True)  # fmt: skip
    ticks = log_ticks(plot.y_lo, plot.y_hi)
    body = items + _axes(plot, list(zip(ticks, _labels(ticks, money), strict=True)), dates)
    for _, values, colour, dashed in series:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        style = f'fill="none" stroke="{colour}" stroke-width="{2 if dashed else 1.6}"{dash}'
        body.append(_line(plot, dates, values, style))
    return _svg(label, plot.top + height + _BOTTOM, body)


def drawdowns(values: Sequence[float]) -> list[float]:
    """Each value's fall from the highest value before it (0 at a new high, -0.25 for
    25% below it)."""
    peak = -math.inf
    out = []
    for v in values:
        peak = max(peak, v)
        out.append(v / peak - 1 if peak > 0 else 0.0)
    return out


def drawdown_chart(
    dates: Sequence[date],
    account: tuple[str, Sequence[float]],
    benchmark: tuple[str, Sequence[float]] | None = None,
    height: float = 220,
) -> str:
    """The account's drawdown as a red area, the benchmark's as a dashed line."""
    curves = [(account[0], drawdowns(account[1]), "#c0392b", False)]
    if benchmark is not None:
        curves.append((benchmark[0], drawdowns(benchmark[1]), BENCHMARK_COLOUR, True))
    items, legend_height = legend([(n, c, d) for n, _, c, d in curves])
    worst = min(min(dd) for _, dd, _, _ in curves)
    ticks = linear_ticks(worst, 0.0, 4) if worst < 0 else [0.0]
    plot = Plot(16 + legend_height, height, dates[0].toordinal(), dates[-1].toordinal(),
                min(worst, ticks[0], -0.01), 0.0)  # fmt: skip
    labels = _labels(ticks, lambda v, d: f"{v * 100:.{d - 3}f}%")
    body = items + _axes(plot, list(zip(ticks, labels, strict=True)), dates)
    keep = downsample(curves[0][1])
    xs = [dates[i].toordinal() for i in keep]
    line = _path(plot, xs, [curves[0][1][i] for i in keep])
    zero = plot.y(0.0)
    area = f"{line}L{plot.x(xs[-1]):.1f} {zero:.1f}L{plot.x(xs[0]):.1f} {zero:.1f}Z"
    body.append(f'<path d="{area}" fill="#e74c3c" fill-opacity="0.35" stroke="#c0392b"'
                ' stroke-width="1"/>')  # fmt: skip
    if benchmark is not None:
        style = f'fill="none" stroke="{BENCHMARK_COLOUR}" stroke-width="1.4" stroke-dasharray="6 4"'
        body.append(_line(plot, dates, curves[1][1], style))
    return _svg("Drawdown", plot.top + height + _BOTTOM, body)


def _mix(a: str, b: str, t: float) -> str:
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def heat_colour(value: float, scale: float) -> tuple[str, bool]:
    """The fill for a return (red below zero, green above, paler near it) and whether
    its text needs to be light to read on it."""
    t = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    return _mix("#f7f7f7", "#1a9850" if t >= 0 else "#d73027", abs(t)), abs(t) > 0.6


def percent(value: float) -> str:
    """``+1.2%``; a return that rounds to nothing is ``0.0%`` (never ``-0.0%``)."""
    text = f"{value * 100:+.1f}%"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text


def heatmap(rows: Sequence[MonthlyRow]) -> str:
    """Monthly returns, one row a year and a year total column, values printed."""
    label_w, gap, cell_h = 56.0, 10.0, 24.0
    cell_w = (WIDTH - _RIGHT - label_w - gap) / 13
    months = [abs(v) for r in rows for v in r.months if v is not None]
    totals = [abs(r.total) for r in rows if r.total is not None]
    month_scale = min(0.15, max([0.02, *months]))
    year_scale = min(0.6, max([0.05, *totals]))
    body = [f'<text x="{label_w + cell_w * (k + 0.5):.1f}" y="16" text-anchor="middle">{m}</text>'
            for k, m in enumerate(MONTHS)]  # fmt: skip
    year_x = label_w + 12 * cell_w + gap
    body.append(f'<text x="{year_x + cell_w / 2:.1f}" y="16" text-anchor="middle">Year</text>')
    for n, row in enumerate(rows):
        y = 24 + n * cell_h
        body.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{row.year}</text>')
        cells = [(label_w + k * cell_w, v, month_scale, "cell month", f"{MONTHS[k]} {row.year}")
                 for k, v in enumerate(row.months)]  # fmt: skip
        cells.append((year_x, row.total, year_scale, "cell year", str(row.year)))
        for x, value, scale, css, name in cells:
            fill, light = heat_colour(value, scale) if value is not None else ("#ffffff", False)
            text = percent(value) if value is not None else ""
            tip = f"{name}: {text or 'no data'}"
            body.append(
                f'<g class="{css}"><title>{esc(tip)}</title><rect x="{x + 1:.1f}" y="{y + 1}"'
                f' width="{cell_w - 2:.1f}" height="{cell_h - 2}" fill="{fill}"/>'
                f'<text x="{x + cell_w / 2:.1f}" y="{y + 16}" text-anchor="middle"'
                f"{_LIGHT if light else ''}>{text}</text></g>"
            )
    return _svg("Monthly returns", 24 + len(rows) * cell_h + 8, body, css="chart heatmap")


def top_symbols(weights: dict[str, Sequence[float]], top_n: int) -> tuple[list[str], list[str]]:
    """The ``top_n`` symbols by average weight, and the rest."""
    ranked = sorted(weights, key=lambda s: (-math.fsum(weights[s]), s))
    return ranked[:top_n], ranked[top_n:]


def allocation_chart(
    dates: Sequence[date], weights: dict[str, Sequence[float]], top_n: int = 8, height: float = 260
) -> str:
    """Weights over time as stacked areas: the ``top_n`` symbols, then "other"."""
    top, rest = top_symbols(weights, top_n)
    layers = [(s, weights[s], PALETTE[k % len(PALETTE)]) for k, s in enumerate(top)]
    if rest:
        other = [math.fsum(weights[s][i] for s in rest) for i in range(len(dates))]
        layers.append(("other", other, OTHER_COLOUR))
    names = [n if n != "other" or not rest else f"other ({len(rest)})" for n, _, _ in layers]
    items, legend_height = legend(
        [(n, c, False) for n, (_, _, c) in zip(names, layers, strict=True)]
    )
    keep = _strided(len(dates), MAX_AREA_POINTS)
    totals = [math.fsum(v[i] for _, v, _ in layers) for i in keep]
    plot = Plot(16 + legend_height, height, dates[0].toordinal(), dates[-1].toordinal(),
                0.0, max([1.0, *totals]))  # fmt: skip
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    body = items + _axes(plot, [(t, f"{t:.0%}") for t in ticks], dates)
    base = [0.0] * len(keep)
    for (_, values, colour), shown in zip(layers, names, strict=True):
        upper = [b + max(0.0, values[i]) for b, i in zip(base, keep, strict=True)]
        xs = [plot.x(dates[i].toordinal()) for i in keep]
        edge = [f"{x:.1f},{plot.y(v):.1f}" for x, v in zip(xs, upper, strict=True)]
        back = [
            f"{x:.1f},{plot.y(v):.1f}" for x, v in zip(reversed(xs), reversed(base), strict=True)
        ]
        points = " ".join(edge + back)
        body.append(
            f'<polygon class="layer" points="{points}" fill="{colour}" stroke="#ffffff"'
            f' stroke-width="0.3"><title>{esc(shown)}</title></polygon>'
        )
        base = upper
    return _svg("Allocations over time", plot.top + height + _BOTTOM, body)
