"""The account simulated session by session: one ``service.rebalance`` per session
against the simulated broker, marked at each close (backtest.py sets it up)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.adapters.sim.preloaded import PreloadedMarketData
from alchemiser.config import AppConfig
from alchemiser.domain.decisions import Verdict
from alchemiser.domain.market import TradingWindow
from alchemiser.domain.prices import FloatMatrix, PriceHistory
from alchemiser.domain.report import Mode, RunReport, RunStatus, StrategyReport, TargetReport
from alchemiser.reporting.trades import Trade, limited_codes, session_trades
from alchemiser.service import AllocatedStrategy, Dependencies, RunRequest, rebalance


@dataclass
class Day:
    session: date
    equity: float
    cash: float
    traded: float
    status: RunStatus
    limited: int = 0
    """Orders the risk review shrank or denied that day."""
    note: str = ""
    decided: date | None = None
    """The session the day's decision was made on (the one before, at the open)."""
    strategies: tuple[StrategyReport, ...] = ()
    """Each strategy's weights that day, as the run's report gave them."""
    targets: dict[str, float] = field(default_factory=dict)
    """The account's target weight of each symbol that day (empty: the run failed
    before it had targets)."""
    trades: tuple[Trade, ...] = ()
    """Every fill, and every order that did not trade, in the order planned."""
    limits: tuple[str, ...] = ()
    """The risk codes of each order the review shrank or denied (see ``limit_code``)."""


@dataclass
class _DayLedger:
    """Keeps each day's RunReport until the backtest has marked the account."""

    reports: list[RunReport] = field(default_factory=list)

    def record(self, report: RunReport) -> None:
        if report.status is not RunStatus.STARTED:
            self.reports.append(report)

    def finished(self, run_id: str) -> RunReport | None:
        """Every backtest session is a new run: none has finished before."""
        return None


def _mark(
    broker: SimBroker, last_closes: FloatMatrix, columns: dict[str, int], row: int
) -> tuple[float, float]:
    """Equity and cash at a session's close; a position without a close that day is
    marked at its last one (marking only: no order is ever sized from it)."""
    cash, held = broker.holdings()
    equity = float(cash)
    marks = last_closes[row]
    for symbol, qty in held:
        equity += float(qty) * float(marks[columns[symbol]])
    return equity, float(cash)


@dataclass(frozen=True)
class Sessions:
    """What every run of one backtest shares: the data, once loaded, and the sessions."""

    config: AppConfig
    market: PreloadedMarketData
    history: PriceHistory
    trades: list[tuple[date, date]]
    """Each traded session and the session its decision is made on."""
    last_closes: FloatMatrix
    columns: dict[str, int]


def simulate(
    sessions: Sessions,
    strategies: list[AllocatedStrategy],
    step: Callable[[], None],
    *,
    detail: bool,
) -> list[Day]:
    """One account rebalanced on every session. ``detail``: keep each session's trades,
    targets and risk codes (a strategy run alone keeps its equity only)."""
    config, trades = sessions.config, sessions.trades
    window = config.trading_window
    clock = ManualClock(datetime.combine(trades[0][0], datetime.min.time(), tzinfo=UTC))
    broker = SimBroker(
        market=sessions.market,
        session=trades[0][0],
        clock=clock,
        starting_cash=config.sim.starting_cash,
        fill_at_open=window is TradingWindow.OPEN,
        slippage_bps=config.sim.slippage_bps,
        fee_bps=config.sim.fee_bps,
        whole_share_symbols=config.sim.whole_share_symbols,
    )
    ledger = _DayLedger()
    deps = Dependencies(
        broker=broker,
        market_data=sessions.market,
        ledger=ledger,
        clock=clock,
        strategies=strategies,
        policy=config.rebalance,
        limits=config.risk,
        trading_state=config.trading_state,
        execution=config.execution,
        max_staleness_days=config.data.max_staleness_days,
        quotes=broker,
    )
    history = sessions.history
    held_for: dict[str, TargetReport] = {}
    """Each symbol's attribution when it was last in the targets, until it is sold off."""
    days: list[Day] = []
    for session, decided in trades:
        broker.advance_to(session)
        request = RunRequest(
            run_id=f"bt-{session:%Y%m%d}",
            as_of=decided,
            trading_date=session,
            scheduled_time=None,
            mode=Mode.BACKTEST,
            window=window,
        )
        report = rebalance(request, deps)
        ledger.reports.clear()  # the day is summarised below; nothing else reads them
        row = history.row_index(session)
        equity, cash = _mark(broker, sessions.last_closes, sessions.columns, row)
        day = Day(
            session,
            equity,
            cash,
            float(report.turnover),
            report.status,
            sum(1 for d in report.decisions if d.verdict is not Verdict.APPROVED),
            "; ".join(f"{e.code}: {e.message}" for e in report.errors),
            decided,
        )
        if detail:
            day.strategies = report.strategies
            day.targets = {symbol: t.weight for symbol, t in report.targets.items()}
            day.trades = session_trades(report, held_for)
            day.limits = limited_codes(report)
            held_for.update(report.targets)
            for trade in day.trades:
                if trade.qty and trade.symbol not in report.targets:
                    held_for.pop(trade.symbol, None)
        days.append(day)
        step()
    return days
