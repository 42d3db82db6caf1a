"""The backtester: every session of a range through the live run's own code path.

Each day is one ``service.rebalance`` call, exactly as a live run makes it, against
the simulated broker, deciding and filling as the account's trading window says (one
model, docs/ARCHITECTURE.md): ``open`` decides on the previous session's close and
fills at the session's open (its close when the data has no opens, an approximation
the summary states); ``close`` decides on the session's close, standing in for the
price a few minutes before it, and fills there. Fills carry slippage and fees. Only two
things differ from a live run, and neither changes a decision: strategies are evaluated
once over the whole range (vectorised; the day's row is what a live run on that day
computes), and market data is served from one preloaded matrix instead of being
re-read each day.
"""

from __future__ import annotations

import csv
import gc
import itertools
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path

import numpy as np

from alchemiser import bootstrap
from alchemiser.adapters.sim.preloaded import PreloadedMarketData, last_closes_matrix
from alchemiser.config import AppConfig
from alchemiser.domain.market import TradingWindow
from alchemiser.domain.prices import PriceHistory
from alchemiser.domain.report import RunStatus
from alchemiser.errors import DataError, DataErrorKind, StrategyError
from alchemiser.ports import MarketData
from alchemiser.reporting.benchmark import benchmark_equity, gaps, load_benchmark
from alchemiser.reporting.figures import monthly_rows, rows, text_table
from alchemiser.reporting.outputs import risk_limited, write_equity
from alchemiser.reporting.statistics import Statistics, compute, monthly_returns
from alchemiser.reporting.trades import count_codes
from alchemiser.service import AllocatedStrategy
from alchemiser.simulation import Day, Sessions, simulate
from alchemiser.strategy.base import ALL_HISTORY, WeightTable

SUMMARY_WIDTH = 100
BACKTEST_GC_THRESHOLD = 20_000
"""Allocations between the garbage collector's young-generation passes while a
backtest simulates its sessions (``_fewer_collections``)."""


class _Evaluated:
    """A strategy already evaluated over the whole range: each day reads its row."""

    def __init__(self, name: str, symbols: frozenset[str], table: WeightTable) -> None:
        self._name = name
        self._symbols = symbols
        self._table = table

    @property
    def name(self) -> str:
        return self._name

    def symbols(self) -> frozenset[str]:
        return self._symbols

    def lookback(self) -> int:
        return 1

    def evaluate(self, history: PriceHistory, as_of: date) -> dict[str, float]:
        return self._table.weights_at(as_of)

    def evaluate_all(self, history: PriceHistory) -> WeightTable:
        return self._table


def first_decision(tables: Sequence[WeightTable], sessions: Sequence[date]) -> date | None:
    """The session from which every strategy decides on every later session: before it,
    some indicator lacks history (a fund that did not exist yet, say)."""
    first: date | None = None
    for session in sessions:
        try:
            for table in tables:
                table.weights_at(session)
        except StrategyError:
            first = None
            continue
        if first is None:
            first = session
    return first


def _without_opens(history: PriceHistory) -> list[str]:
    """The symbols whose data has no open on any session."""
    opens = history.opens
    if opens is None:
        return list(history.symbols)
    return [s for j, s in enumerate(history.symbols) if not np.isfinite(opens[:, j]).any()]


def fill_model(
    window: TradingWindow, without_opens: Sequence[str], symbols: int, slippage_bps: object
) -> list[str]:
    """What the backtest assumes about when it decides and where it fills, in words: the
    summary prints it, so nothing a backtest assumes that a live run does not do is left
    unsaid. ``without_opens`` are the symbols whose data has no opens (of ``symbols``)."""
    slip = f"{slippage_bps} bps slippage"
    if window is TradingWindow.CLOSE:
        model = [
            "decides on each session's close and fills at that close (+" + slip + "): the "
            "close stands in for the latest price 15 minutes before it, when a close-window "
            "run decides and trades"
        ]
    elif not without_opens:
        model = [
            "decides on the previous session's close and fills at each session's open "
            f"(+{slip}), as the 09:30 run trades"
        ]
    elif len(without_opens) < symbols:
        names = ", ".join(without_opens[:5]) + ("..." if len(without_opens) > 5 else "")
        model = [
            "decides on the previous session's close and fills at each session's open "
            f"(+{slip}) where the data has one, else at its CLOSE: {len(without_opens)} of "
            f"{symbols} symbols have no opens ({names}); a live run fills them at the 09:30 "
            "open, so their move from open to close is not what it gets"
        ]
    else:
        model = [
            "decides on the previous session's close and fills at each session's CLOSE "
            f"(+{slip}): an approximation, the price data has no opens; a live run fills "
            "at the 09:30 open, so the session's move from open to close is not what it gets"
        ]
    return [
        *model,
        "every order fills in full at that one price (no partial fills, no market impact, "
        "no rejections for liquidity); the run's cash buffer and risk limits apply as live",
    ]


@dataclass(frozen=True)
class Metrics(Statistics):
    """The statistics (reporting/statistics.py) and what the run itself counted."""

    failed_days: int = 0
    limited_orders: int = 0
    """Orders the risk limits shrank or denied over the whole backtest."""


@dataclass
class BacktestResult:
    days: list[Day]
    metrics: Metrics
    first_session: date
    """The first session of the requested range (the start itself may be a holiday)."""
    assumptions: list[str] = field(default_factory=list)
    """When it decides, where it fills, and what it assumes a live run may not get."""
    benchmark: str | None = None
    """The ticker the statistics compare with (bought and held), if any."""
    benchmark_equity: list[float] | None = None
    """Its equity at each day's close, from the same starting cash."""
    strategy_equity: dict[str, list[float]] = field(default_factory=dict)
    """Each strategy run alone (allocation 1.0, the same config and sessions): its
    equity on each of ``days``. Empty for a one-strategy config (the account is that
    strategy) or when the solo runs were not asked for."""

    @property
    def limited_by_code(self) -> dict[str, int]:
        """Orders the risk review shrank or denied over the backtest, by code."""
        return count_codes(code for day in self.days for code in day.limits)


def measure(
    days: list[Day],
    initial: float,
    benchmark: Sequence[float] | None = None,
    risk_free: float = 0.0,
) -> Metrics:
    """Returns are measured from the starting cash, so the first day's costs count;
    ``benchmark`` is its equity on the same sessions from the same starting cash."""
    figures = compute(
        [d.session for d in days],
        [d.equity for d in days],
        initial,
        [d.traded for d in days],
        benchmark,
        risk_free,
    )
    return Metrics(
        **{f.name: getattr(figures, f.name) for f in fields(Statistics)},
        failed_days=sum(1 for d in days if d.status is RunStatus.FAILED),
        limited_orders=sum(d.limited for d in days),
    )


def run_backtest(
    config: AppConfig,
    market: MarketData,
    start: date,
    end: date,
    progress: Callable[[int, int], None] | None = None,
    *,
    strategies: bool = True,
    benchmark: str | None = None,
    risk_free: float = 0.0,
) -> BacktestResult:
    """Rebalance daily from ``start`` to ``end`` (sessions of the data's calendar).

    With ``strategies`` and more than one strategy, each strategy is also run alone (its
    allocation 1.0, the rest of the config as is) on the same sessions, reading the same
    evaluated tables: ``strategy_equity``. ``progress`` hears (done, total) over all runs.
    ``benchmark``: the ticker (bought and held, reporting/benchmark.py) the statistics
    compare with, read from ``market`` once the range is known to have sessions
    (BenchmarkError when it cannot be bought on the first); ``risk_free``: the annual
    rate the ratios use.
    """
    if end < start:
        raise StrategyError(f"backtest end {end} is before its start {start}")
    allocated = bootstrap.strategies(config)
    universe = sorted({s for a in allocated for s in a.strategy.symbols()})
    history = market.history(universe, end, ALL_HISTORY)
    evaluated = [
        AllocatedStrategy(
            _Evaluated(a.strategy.name, a.strategy.symbols(), a.strategy.evaluate_all(history)),
            a.allocation,
        )
        for a in allocated
    ]
    window = config.trading_window
    rows = [i for i in range(len(history.dates)) if start <= history.session(i) <= end]
    if not rows:
        raise DataError(f"no sessions between {start} and {end}", kind=DataErrorKind.MISSING)
    # Each traded session and the session its decision is made on: the one before it at
    # the open (so the first session of the data cannot be traded), itself at the close.
    # The first session of the data is never traded: at the open nothing was decided
    # before it, at the close a live run has no session before it to read.
    lag = 1 if window is TradingWindow.OPEN else 0
    trades = [(history.session(i), history.session(i - lag)) for i in rows if i >= 1]
    first = first_decision(
        [a.strategy.evaluate_all(history) for a in evaluated], [d for _, d in trades]
    )
    if first is None:
        raise StrategyError(
            f"the strategies cannot all decide on any session between {start} and {end} "
            "(not enough price history for their indicators)"
        )
    range_start = history.session(rows[0])
    trades = [(t, d) for t, d in trades if d >= first]
    sessions = Sessions(
        config,
        PreloadedMarketData(history),
        history,
        trades,
        last_closes_matrix(history),
        {s: i for i, s in enumerate(history.symbols)},
    )
    alone = evaluated if strategies and len(evaluated) > 1 else []
    total = len(trades) * (1 + len(alone))
    done = itertools.count(1)

    held = None if benchmark is None else load_benchmark(market, benchmark, trades[0][0], end)
    with _fewer_collections() as set_aside:

        def step() -> None:
            set_aside()  # what the session leaves outlives the sessions
            if progress is not None:
                progress(next(done), total)

        days = simulate(sessions, evaluated, step, detail=True)
        solo = {
            a.strategy.name: [
                d.equity
                for d in simulate(
                    sessions, [AllocatedStrategy(a.strategy, 1.0)], step, detail=False
                )
            ]
            for a in alone
        }
    initial = float(config.sim.starting_cash)
    marks = None
    assumptions = fill_model(
        window, _without_opens(history), len(history.symbols), config.sim.slippage_bps
    )
    if held is not None and benchmark is not None:
        dates = [d.session for d in days]
        marks = benchmark_equity(held, benchmark, dates, initial).tolist()
        assumptions += gaps(held, benchmark, dates)
    return BacktestResult(
        days=days,
        metrics=measure(days, initial, marks, risk_free),
        first_session=range_start,
        assumptions=assumptions,
        strategy_equity=solo,
        benchmark=benchmark,
        benchmark_equity=marks,
    )


@contextmanager
def _fewer_collections() -> Iterator[Callable[[], None]]:
    """The cyclic garbage collector run less often while sessions are simulated: each
    session allocates thousands of short-lived report objects (freed by reference
    counting, not cycles), and the default first-generation threshold (700) had the
    collector scanning them about every 10 orders, a sixth of a long backtest's time.
    What exists when the sessions start (the loaded prices, the evaluated strategies)
    outlives them, and so does what each session leaves (its day, the simulated broker's
    orders): both are set aside (``gc.freeze``, again after every session) until the
    sessions end, so the collector does not scan them again and again. A reference cycle
    a session drops waits until then. Only how often the collector runs and what it
    scans changes, for this process and only meanwhile. A caller that has frozen objects
    itself keeps them so: the sessions' objects are then not set aside, since ending
    that would unfreeze the caller's too. Yields what sets aside a session's objects."""
    before = gc.get_threshold()
    ours = gc.get_freeze_count() == 0

    def set_aside() -> None:
        if ours:
            gc.freeze()

    set_aside()
    gc.set_threshold(BACKTEST_GC_THRESHOLD, *before[1:])
    try:
        yield set_aside
    finally:
        gc.set_threshold(*before)
        if ours:
            gc.unfreeze()


def write_csv(result: BacktestResult, path: Path) -> None:
    """equity.csv (reporting/outputs.py says what each column holds): the account, each
    strategy run alone, and the benchmark when there is one."""
    write_equity(result.days, path, result.strategy_equity, result.benchmark_equity)


def write_chart(result: BacktestResult, path: Path, title: str) -> None:
    """The equity curve and its drawdown as a PNG.

    matplotlib is imported here, not at module level: it is an optional dependency
    (``alchemiser[backtest]``) that only this command needs, and the Lambda never does.
    """
    import matplotlib  # noqa: PLC0415 - documented lazy import of an optional dependency

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    dates = [d.session for d in result.days]
    equity = np.array([d.equity for d in result.days])
    drawdown = equity / np.maximum.accumulate(equity) - 1
    figure, (top, bottom) = pyplot.subplots(
        2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 1]
    )
    top.plot(dates, equity, linewidth=1.0)
    top.set_yscale("log")  # compounding reads as a straight line; drawdowns keep their size
    top.set_title(title)
    top.set_ylabel("equity ($, log scale)")
    top.grid(alpha=0.3)
    bottom.fill_between(dates, drawdown * 100, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _labelled(label: str, text: str) -> str:
    """``text`` after a 14-column label, wrapped at the summary's width."""
    return textwrap.fill(
        text, SUMMARY_WIDTH, initial_indent=f"{label:<13} ", subsequent_indent=" " * 14
    )


def summary(result: BacktestResult) -> list[str]:
    """What was assumed, then the statistics (against the benchmark, when there is
    one) as a table that reads at 100 columns, then what the run itself counted."""
    metrics = result.metrics
    late = (
        [
            f"the strategies can trade on every session only from {metrics.start.isoformat()} "
            f"(not enough history before): the backtest starts there, not on "
            f"{result.first_session.isoformat()}"
        ]
        if metrics.start > result.first_session
        else []
    )
    notes = [_labelled("note", line) for line in late] + [
        _labelled("fill model" if i == 0 else "assumes", line)
        for i, line in enumerate(result.assumptions)
    ]
    table = rows(metrics, "strategy", result.benchmark or "benchmark")
    shown = [row for row in table if row[0] not in {"period", "sessions"}]
    return [
        *notes[: len(late)],
        f"period        {metrics.start.isoformat()} to {metrics.end.isoformat()} "
        f"({metrics.sessions} sessions)",
        *notes[len(late) :],
        *text_table(shown),
        *_alone_lines(result),
        f"failed days   {metrics.failed_days}",
        textwrap.fill(
            risk_limited(result.limited_by_code), SUMMARY_WIDTH, subsequent_indent=" " * 14
        ),
    ]


def alone_statistics(result: BacktestResult) -> dict[str, Statistics]:
    """Each strategy run alone, measured as the account is (same sessions, starting cash
    and risk-free rate; no turnover: the solo runs keep only their equity)."""
    dates = [d.session for d in result.days]
    base, rate = result.metrics.base, result.metrics.risk_free
    return {
        name: compute(dates, equity, base, risk_free=rate)
        for name, equity in result.strategy_equity.items()
    }


def _alone_lines(result: BacktestResult) -> list[str]:
    """What each strategy did alone, one line each, beside the account's figures."""
    alone = alone_statistics(result)
    if not alone:
        return []
    table: list[tuple[str, ...]] = [
        ("each alone", "CAGR", "Sharpe", "Sortino", "max drawdown", "final equity")
    ]
    for name, stats in alone.items():
        figures = {row[0]: row[1] for row in rows(stats)}
        table.append(
            (
                f"  {name}",
                *(figures[label] for label in ("CAGR", "Sharpe", "Sortino", "max drawdown")),
                f"${stats.final_equity:,.2f}",
            )
        )
    return text_table(table)


def write_monthly_returns(result: BacktestResult, path: Path) -> None:
    """``year,Jan..Dec,total``: each month's and year's return, as fractions."""
    days = result.days
    table = monthly_returns(
        [d.session for d in days], [d.equity for d in days], result.metrics.base
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(monthly_rows(table))
