"""The statistics and the monthly returns as rows of text: (label, values...) for the
terminal table the backtest prints and the HTML report, and the rows of
``monthly_returns.csv``. A figure that does not exist (NaN) reads "n/a"; one the
series is too short for (a trailing return) reads "-"."""

from __future__ import annotations

import math
from collections.abc import Sequence

from alchemiser.reporting.statistics import Drawdown, MonthlyRow, Statistics

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_rows(table: Sequence[MonthlyRow]) -> list[tuple[str, ...]]:
    """The table as text rows, a header first (``year, Jan..Dec, total``); returns as
    fractions with 6 decimals, a month without a session empty."""
    rows: list[tuple[str, ...]] = [("year", *MONTHS, "total")]
    for row in table:
        cells = ("" if m is None else f"{m:.6f}" for m in row.months)
        rows.append((str(row.year), *cells, f"{row.total:.6f}"))
    return rows


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if math.isfinite(value) else "n/a"


def _num(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "n/a"


def _drawdown_rows(drawdown: Drawdown | None) -> list[str]:
    if drawdown is None:
        return ["none", "none", "none", "0 sessions"]
    recovered = drawdown.recovery.isoformat() if drawdown.recovery else "not recovered"
    return [
        drawdown.peak.isoformat(),
        drawdown.trough.isoformat(),
        recovered,
        f"{drawdown.sessions} sessions ({drawdown.days} days)",
    ]


def _column(stats: Statistics) -> list[str]:
    trailing = stats.trailing
    return [
        f"{stats.start.isoformat()} to {stats.end.isoformat()}",
        str(stats.sessions),
        f"${stats.final_equity:,.2f}",
        _pct(stats.total_return),
        _pct(stats.cagr),
        _pct(stats.volatility),
        _num(stats.sharpe),
        _num(stats.sortino),
        _num(stats.calmar),
        _pct(stats.max_drawdown),
        *_drawdown_rows(stats.drawdown),
        _pct(stats.win_rate),
        f"{stats.turnover:.1f}x" if math.isfinite(stats.turnover) else "-",
        _pct(trailing.one_month),
        _pct(trailing.three_months),
        _pct(trailing.one_year),
        _pct(trailing.year_to_date),
    ]


LABELS = (
    "period",
    "sessions",
    "final equity",
    "cumulative return",
    "CAGR",
    "volatility (annual)",
    "Sharpe",
    "Sortino",
    "Calmar",
    "max drawdown",
    "  peak",
    "  trough",
    "  recovered",
    "  duration",
    "win rate (days up)",
    "turnover (per year)",
    "return 1 month",
    "return 3 months",
    "return 1 year",
    "return year to date",
)


def rows(
    stats: Statistics, strategy: str = "strategy", benchmark: str = "benchmark"
) -> list[tuple[str, ...]]:
    """The statistics as rows of (label, strategy value[, benchmark value]), a header
    row first; the relative figures (beta, alpha, ...) fill the strategy column only."""
    columns = [_column(stats)]
    header: tuple[str, ...] = ("", strategy)
    if stats.benchmark is not None:
        columns.append(_column(stats.benchmark))
        header = ("", strategy, benchmark)
    table: list[tuple[str, ...]] = [header]
    table += [(label, *cells) for label, *cells in zip(LABELS, *columns, strict=True)]
    relative_to = stats.relative
    if relative_to is not None:
        table += [
            ("beta", _num(relative_to.beta), ""),
            ("alpha (annual)", _pct(relative_to.alpha), ""),
            ("correlation", _num(relative_to.correlation), ""),
            ("R-squared", _num(relative_to.r_squared), ""),
        ]
    table.append(("risk-free rate", f"{stats.risk_free:.2%} a year", *[""] * (len(header) - 2)))
    return table


def text_table(table: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as aligned text: the label left, values right-aligned in their columns."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines
