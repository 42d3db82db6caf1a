"""A backtest's result as the HTML page's plain data (reporting/page.py).

The page shows what the terminal summary and the CSV files say, in one file: the
statistics table (the account, the benchmark and each strategy run alone), their
equity lines, the monthly returns, the account's target weights on each session, and
the orders the risk limits shrank or denied, by reason code.
"""

from __future__ import annotations

from alchemiser.backtest import BacktestResult, alone_statistics
from alchemiser.reporting.figures import rows
from alchemiser.reporting.outputs import allocation_symbols
from alchemiser.reporting.page import Allocations, BacktestPage, MonthlyRow, StatsTable
from alchemiser.reporting.statistics import monthly_returns

ACCOUNT = "account"
SUBTITLED = {"period", "sessions"}
"""Rows the page's subtitle says once for every column."""
ACCOUNT_ONLY = {"risk-free rate"}
"""Rows said once, in the account's column."""


def _allocations(result: BacktestResult) -> Allocations | None:
    """Each session's target weights; a session whose run failed before it had targets
    keeps the session before's (the account still holds them)."""
    symbols = allocation_symbols(result.days)
    if not symbols:
        return None
    weights: dict[str, list[float]] = {s: [] for s in symbols}
    last: dict[str, float] = {}
    for day in result.days:
        if day.targets:
            last = dict(day.targets)
        for symbol in symbols:
            weights[symbol].append(max(last.get(symbol, 0.0), 0.0))
    return Allocations([d.session for d in result.days], weights)


def backtest_page(result: BacktestResult, title: str) -> BacktestPage:
    """The page for ``result``; ``title`` heads it."""
    metrics = result.metrics
    dates = [d.session for d in result.days]
    series: dict[str, list[float]] = {ACCOUNT: [d.equity for d in result.days]}
    if result.benchmark is not None and result.benchmark_equity is not None:
        series[result.benchmark] = list(result.benchmark_equity)
    for name, equity in result.strategy_equity.items():
        series[f"{name} alone"] = list(equity)
    table = rows(metrics, ACCOUNT, result.benchmark or "benchmark")
    for name, stats in alone_statistics(result).items():  # a column for each alone
        figures = {row[0]: row[1] for row in rows(stats) if row[0] not in ACCOUNT_ONLY}
        table = [
            (*table[0], f"{name} alone"),
            *((*row, figures.get(row[0], "")) for row in table[1:]),
        ]
    header, *body = [row for row in table if row[0] not in SUBTITLED]
    subtitle = [
        f"{metrics.start.isoformat()} to {metrics.end.isoformat()}, {metrics.sessions:,} sessions",
        *result.assumptions,
    ]
    notes = []
    if metrics.start > result.first_session:
        notes.append(
            f"The strategies can trade on every session only from {metrics.start.isoformat()} "
            f"(not enough history before): the backtest starts there, not on "
            f"{result.first_session.isoformat()}."
        )
    notes.append(f"Failed sessions: {metrics.failed_days}.")
    return BacktestPage(
        title=title,
        subtitle=subtitle,
        stats=StatsTable(list(header), [(label, list(cells)) for label, *cells in body]),
        dates=dates,
        series=series,
        benchmark=result.benchmark if result.benchmark in series else None,
        monthly=[
            MonthlyRow(row.year, list(row.months), row.total)
            for row in monthly_returns(dates, series[ACCOUNT], metrics.base)
        ],
        allocations=_allocations(result),
        risk_limited=result.limited_by_code,
        notes=notes,
    )
