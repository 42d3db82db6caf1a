"""The backtest's HTML report: one self-contained page, no scripts, no network.

``render_backtest_html`` turns a ``BacktestPage`` into a page with inline CSS and inline
SVG charts: it opens from a file anywhere, offline, and its Content-Security-Policy lets
it load nothing even if a user edits it. Every string from the page is escaped.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from alchemiser.errors import AlchemiserError
from alchemiser.reporting import svg
from alchemiser.reporting.page import BacktestPage, validate
from alchemiser.reporting.svg import esc

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1d2433; background: #f4f5f7; margin: 0; }
main { max-width: 1060px; margin: 0 auto; padding: 24px 28px 48px; background: #ffffff; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #e1e4e8; }
p.sub { margin: 0; color: #5b6475; }
div.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 4px 14px 4px 0; border-bottom: 1px solid #eceef1; text-align: right;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #c9ced6; }
svg.chart { display: block; width: 100%; height: auto; margin: 4px 0 8px; }
svg.chart text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; fill: #3c4454; }
svg.chart .grid { stroke: #e6e8eb; stroke-width: 1; }
svg.chart .frame { fill: none; stroke: #c9ced6; }
svg.heatmap text { font-size: 11.5px; }
svg.heatmap text.light { fill: #ffffff; }
.muted { color: #6b7385; }
ul.notes li { margin: 2px 0; }
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
WRITE_FAILED = "REPORT_WRITE_FAILED"


def _table(columns: list[str], rows: list[tuple[str, list[str]]], css: str) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><td>{esc(label)}</td>" + "".join(f"<td>{esc(v)}</td>" for v in values) + "</tr>"
        for label, values in rows
    )
    table = f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f'<div class="wide">{table}</div>'


def _section(title: str, content: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{content}</section>"


def _charts(page: BacktestPage) -> list[str]:
    dates = page.dates
    account = (page.account, page.series[page.account])
    bench = (page.benchmark, page.series[page.benchmark]) if page.benchmark else None
    lines = [(account[0], account[1], svg.ACCOUNT_COLOUR, False)]
    if bench is not None:
        lines.append((bench[0], bench[1], svg.BENCHMARK_COLOUR, True))
    out = [_section("Equity (log scale)", svg.line_chart("Equity", dates, lines))]
    if page.strategies:
        strategy_lines = [
            (name, page.series[name], svg.PALETTE[k % len(svg.PALETTE)], False)
            for k, name in enumerate(page.strategies)
        ]
        chart = svg.line_chart("Strategies", dates, strategy_lines, height=320)
        out.append(_section("Strategies (log scale)", chart))
    out.append(_section("Drawdown", svg.drawdown_chart(dates, account, bench)))
    if page.monthly:
        out.append(_section("Monthly returns", svg.heatmap(page.monthly)))
    alloc = page.allocations
    if alloc is not None and alloc.dates and alloc.weights:
        chart = svg.allocation_chart(alloc.dates, dict(alloc.weights))
        out.append(_section("Allocations over time", chart))
    return out


def _risk(page: BacktestPage) -> str:
    if not page.risk_limited:
        return '<p class="muted">Risk limited no order.</p>'
    ranked = sorted(page.risk_limited.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = [(code, [f"{count:,}"]) for code, count in ranked]
    return _table(["Reason code", "Orders"], rows, "risk")


def render_backtest_html(page: BacktestPage) -> str:
    """The whole page as a string; raises ``AlchemiserError`` (``REPORT_INVALID``) for
    a page whose series do not line up."""
    validate(page)
    subtitle = "".join(f'<p class="sub">{esc(line)}</p>' for line in page.subtitle)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(page.title)}</title><style>{_CSS}</style></head>",
        f"<body><main><header><h1>{esc(page.title)}</h1>{subtitle}</header>",
        _section("Statistics", _table(page.stats.columns, page.stats.rows, "stats")),
        *_charts(page),
        _section("Orders limited by risk", _risk(page)),
    ]
    if page.notes:
        items = "".join(f"<li>{esc(note)}</li>" for note in page.notes)
        parts.append(_section("Notes", f'<ul class="notes">{items}</ul>'))
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def write_backtest_html(page: BacktestPage, path: Path) -> None:
    """Render ``page`` and write it to ``path`` atomically: a reader sees the old file or
    the whole new one, never a half-written page."""
    text = render_backtest_html(page)
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AlchemiserError(f"cannot write {path}: {exc.strerror}", code=WRITE_FAILED) from exc
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AlchemiserError(f"cannot write {path}: {exc.strerror}", code=WRITE_FAILED) from exc
