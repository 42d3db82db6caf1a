"""The benchmark a backtest is measured against: one ticker bought and held.

Its equity on each session is the starting cash times the ticker's close that session
over its close on the first session (bought at that close, no costs); a session
without a close keeps the last one, and ``gaps`` says so in the backtest's output (a
benchmark whose data stops early is not silently held flat). Read from the same market
data as the backtest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import BenchmarkError, DataError, DataErrorKind
from alchemiser.ports import MarketData
from alchemiser.reporting.statistics import FloatArray
from alchemiser.strategy.base import ALL_HISTORY


def _last_known(closes: FloatArray) -> npt.NDArray[np.intp]:
    """For each row, the row of the last positive finite close up to it; -1 if none."""
    rows = np.arange(len(closes))
    valid = np.isfinite(closes) & (closes > 0)
    return np.maximum.accumulate(np.where(valid, rows, -1)) if len(rows) else rows


def load_benchmark(market: MarketData, symbol: str, start: date, end: date) -> PriceHistory:
    """``symbol``'s closes up to ``end``: BenchmarkError when the data has no file for it,
    or no close on or before the first session from ``start`` on (nothing to buy at)."""
    try:
        history = market.history([symbol], end, ALL_HISTORY)
    except DataError as error:
        raise BenchmarkError(f"benchmark {symbol}: {error}", kind=error.kind) from error
    first = int(np.searchsorted(history.dates, np.datetime64(start, "D"), side="left"))
    known = _last_known(history.column(symbol))
    if first >= len(history.dates) or known[first] < 0:
        raise BenchmarkError(
            f"benchmark {symbol}: no close on or before the first session from "
            f"{start.isoformat()} to {end.isoformat()} in the price data",
            kind=DataErrorKind.MISSING,
        )
    return history


def benchmark_equity(
    history: PriceHistory, symbol: str, sessions: Sequence[date], base: float
) -> FloatArray:
    """``base`` invested in ``symbol`` at the close of ``sessions[0]``, marked at each
    session's close (the last one when a session has none). DataError when no close is
    known on or before the first session."""
    closes = history.column(symbol)
    if not sessions:
        return np.empty(0, dtype=np.float64)
    wanted = np.array([np.datetime64(s, "D") for s in sessions])
    rows = np.searchsorted(history.dates, wanted, side="right") - 1
    known = _last_known(closes)
    last = np.where(rows >= 0, known[np.maximum(rows, 0)], -1)
    if bool(np.any(last < 0)):
        missing = sessions[int(np.argmax(last < 0))]
        raise BenchmarkError(
            f"benchmark {symbol}: no close on or before {missing.isoformat()}",
            kind=DataErrorKind.MISSING,
        )
    marks = closes[last]
    return np.asarray(base * marks / marks[0], dtype=np.float64)


def gaps(history: PriceHistory, symbol: str, sessions: Sequence[date]) -> list[str]:
    """What ``benchmark_equity`` had to assume about ``sessions``, in words: how many had
    no close of their own (held at the last one) and, when its data stops before the
    last session, the date of its last close. Empty when every session has a close."""
    if not sessions:
        return []
    closes = history.column(symbol)
    valid = np.isfinite(closes) & (closes > 0)
    wanted = np.array([np.datetime64(s, "D") for s in sessions])
    rows = np.searchsorted(history.dates, wanted, side="left")
    inside = rows < len(history.dates)
    own = np.zeros(len(sessions), dtype=bool)
    own[inside] = (history.dates[rows[inside]] == wanted[inside]) & valid[rows[inside]]
    missing = int(np.count_nonzero(~own))
    if missing == 0:
        return []
    note = (
        f"benchmark {symbol} has no close on {missing} of the {len(sessions)} sessions: "
        "each is marked at its last close before (no return that day)"
    )
    last = int(np.flatnonzero(own)[-1]) if own.any() else -1
    if last < len(sessions) - 1 and not own[last + 1 :].any():
        stale = len(sessions) - 1 - last
        since = sessions[last].isoformat() if last >= 0 else "before the first session"
        note += (
            f"; its data stops at {since}, so it is held flat for the last {stale} "
            "sessions and its figures (volatility, beta, correlation) count them as flat days"
        )
    return [note]
