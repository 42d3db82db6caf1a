"""The files a backtest writes beside its summary, from its result alone.

- ``equity.csv``: each session's account equity, cash, traded notional, status,
  risk-limited order count and note, then one ``equity_<strategy>`` column per strategy
  (that strategy run alone on the same sessions, when the config has more than one),
  then ``equity_benchmark`` when a benchmark series is given;
- ``trades.csv``: every fill and every order that did not trade (reporting/trades.py);
- ``allocations.csv``: each session's account target weight per symbol.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from alchemiser.domain.report import RunStatus
from alchemiser.errors import DataError, DataErrorKind
from alchemiser.reporting.trades import TRADE_COLUMNS, Trade


class Day(Protocol):
    """What the files read of one simulated session (``simulation.Day`` is one)."""

    @property
    def session(self) -> date: ...
    @property
    def equity(self) -> float: ...
    @property
    def cash(self) -> float: ...
    @property
    def traded(self) -> float: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def limited(self) -> int: ...
    @property
    def note(self) -> str: ...
    @property
    def targets(self) -> dict[str, float]: ...
    @property
    def trades(self) -> tuple[Trade, ...]: ...


EQUITY_COLUMNS = ("date", "equity", "cash", "traded", "status", "risk_limited", "note")
"""The first columns of equity.csv; the strategies' (and a benchmark's) follow."""
BENCHMARK_COLUMN = "equity_benchmark"


@contextmanager
def _writer(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        yield csv.writer(stream)


def strategy_column(name: str) -> str:
    return f"equity_{name}"


def write_equity(
    days: Sequence[Day],
    path: Path,
    solo: Mapping[str, Sequence[float]],
    benchmark: Sequence[float] | None = None,
) -> None:
    """``solo``: each strategy's equity run alone on each of ``days``; ``benchmark``: a
    benchmark's equity on each of them, if any."""
    if benchmark is not None and len(benchmark) != len(days):
        raise DataError(
            f"{len(benchmark)} benchmark values for {len(days)} backtest sessions",
            kind=DataErrorKind.MISSING,
        )
    header = [*EQUITY_COLUMNS, *(strategy_column(name) for name in solo)]
    if benchmark is not None:
        header.append(BENCHMARK_COLUMN)
    with _writer(path) as writer:
        writer.writerow(header)
        for row, day in enumerate(days):
            writer.writerow(
                [
                    day.session.isoformat(),
                    f"{day.equity:.2f}",
                    f"{day.cash:.2f}",
                    f"{day.traded:.2f}",
                    day.status.value,
                    day.limited,
                    day.note,
                    *(f"{curve[row]:.2f}" for curve in solo.values()),
                    *([f"{benchmark[row]:.2f}"] if benchmark is not None else []),
                ]
            )


def write_trades(days: Sequence[Day], path: Path) -> int:
    """Every session's rows, in date order; returns how many."""
    count = 0
    with _writer(path) as writer:
        writer.writerow(TRADE_COLUMNS)
        for day in days:
            for trade in day.trades:
                writer.writerow(
                    [
                        trade.session.isoformat(),
                        trade.strategy,
                        trade.symbol,
                        trade.side,
                        format(trade.qty.normalize(), "f"),
                        f"{trade.price:.4f}",
                        f"{trade.notional:.2f}",
                        trade.reason,
                    ]
                )
                count += 1
    return count


def allocation_symbols(days: Sequence[Day]) -> list[str]:
    """Every symbol some session targets, in name order."""
    return sorted({symbol for day in days for symbol in day.targets})


def write_allocations(days: Sequence[Day], path: Path) -> None:
    """One row per session: its target weight of each symbol (0 when not targeted; the
    row is empty on a session that failed before it had targets)."""
    symbols = allocation_symbols(days)
    with _writer(path) as writer:
        writer.writerow(["date", *symbols])
        for day in days:
            weights = day.targets
            cells = [f"{weights.get(s, 0.0):.6f}" if weights else "" for s in symbols]
            writer.writerow([day.session.isoformat(), *cells])


def risk_limited(counted: Mapping[str, int]) -> str:
    """The summary's line on the orders the risk limits shrank or denied, by code."""
    total = sum(counted.values())
    line = f"risk-limited  {total} orders shrunk or denied by the [risk] limits"
    if counted:
        line += ": " + ", ".join(f"{code} {n}" for code, n in counted.items())
    return line
