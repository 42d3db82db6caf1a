"""Daily close history as one dense matrix, and the checks that make prices tradable.

``closes[t, j]`` is the adjusted close of ``symbols[j]`` on ``dates[t]``; NaN means no
bar that session. ``opens``, when the data has them, are the same sessions' opening
prices (what a market-open run fills at in a backtest). Strategies read the matrix
(float maths); the diff reads reference prices, which ``reference_prices`` converts
to Decimal once, after validating them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from alchemiser.domain.scalars import MAX_PRICE, to_decimal_price
from alchemiser.errors import DataError, DataErrorKind

FloatMatrix = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]


class DailyBar(NamedTuple):
    """One session's adjusted prices and volume (the session is a New York date)."""

    day: date
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, eq=False)
class PriceHistory:
    dates: DateArray
    symbols: tuple[str, ...]
    closes: FloatMatrix
    opens: FloatMatrix | None = None
    """Opening prices, same shape as ``closes`` (NaN where a session has none); None
    when the data carries closes only."""

    def __post_init__(self) -> None:
        if self.closes.shape != (len(self.dates), len(self.symbols)):
            raise ValueError(
                f"closes shape {self.closes.shape} does not match "
                f"{len(self.dates)} dates x {len(self.symbols)} symbols"
            )
        if self.opens is not None and self.opens.shape != self.closes.shape:
            raise ValueError(f"opens shape {self.opens.shape} does not match closes")
        if len(self.dates) > 1 and not bool(np.all(self.dates[1:] > self.dates[:-1])):
            raise ValueError("dates must be strictly increasing")

    def column(self, symbol: str) -> FloatMatrix:
        return self.closes[:, self.symbols.index(symbol)]

    def row_index(self, as_of: date) -> int:
        """Index of the last session on or before ``as_of``; -1 when there is none."""
        return int(np.searchsorted(self.dates, np.datetime64(as_of, "D"), side="right")) - 1

    def session(self, index: int) -> date:
        return _to_date(self.dates[index])


def with_session(history: PriceHistory, session: date, latest: Mapping[str, float]) -> PriceHistory:
    """``history`` with one more row, ``session``, holding each symbol's latest price
    (a close-window run: the price a few minutes before the close stands in for the
    session's close). A symbol without a latest price has none that session (NaN).
    ``session`` must come after every row of ``history``."""
    if len(history.dates) and np.datetime64(session, "D") <= history.dates[-1]:
        raise DataError(
            f"{session.isoformat()} is not after the history's last session "
            f"{history.session(len(history.dates) - 1).isoformat()}",
            kind=DataErrorKind.STALE,
        )
    row = np.array([latest.get(s, math.nan) for s in history.symbols], dtype=np.float64)
    return PriceHistory(
        dates=np.append(history.dates, np.datetime64(session, "D")),
        symbols=history.symbols,
        closes=np.vstack([history.closes, row[None, :]]),
        # The session's open is not known to the run: nothing reads it (fills are now).
        opens=None
        if history.opens is None
        else np.vstack([history.opens, np.full((1, len(history.symbols)), np.nan)]),
    )


def session_prices(history: PriceHistory, session: date) -> dict[str, float]:
    """Every symbol's close on ``session`` (the history's last row), as the latest
    prices a simulated close-window run sees; a symbol without one is a DataError."""
    index = len(history.dates) - 1
    if index < 0 or history.session(index) != session:
        raise DataError(f"no prices for {session.isoformat()}", kind=DataErrorKind.STALE)
    row = history.closes[index]
    values = row.tolist()
    missing = [s for s, v in zip(history.symbols, values, strict=True) if not 0 < v < math.inf]
    if missing:
        raise DataError(
            f"no price on {session.isoformat()} for {', '.join(missing[:10])}",
            kind=DataErrorKind.STALE,
        )
    return dict(zip(history.symbols, values, strict=True))


def _to_date(value: np.datetime64) -> date:
    return date.fromisoformat(str(value.astype("datetime64[D]")))


def reference_prices(
    history: PriceHistory, symbols: Iterable[str], as_of: date
) -> dict[str, Decimal]:
    """The close of each symbol on the session ``as_of``, or a DataError naming what is wrong.

    Fails closed: a symbol with no bar on that exact session (missing or stale), a NaN
    or a non-positive close is an error for the whole run, never skipped.
    """
    day = np.datetime64(as_of, "D")
    index = int(np.searchsorted(history.dates, day, side="right")) - 1  # row_index
    if index < 0 or history.dates[index] != day:
        raise DataError(
            f"no market data for session {as_of.isoformat()}", kind=DataErrorKind.MISSING
        )
    # The session's row read once, as Python floats: one lookup per symbol after that.
    row = history.closes[index].tolist()
    wanted = sorted(set(symbols))
    if tuple(wanted) == history.symbols:
        closes = row  # the history holds exactly these, in this order (the usual read)
    else:
        count = len(history.symbols)
        # Each symbol's first column (assigned last to first, so the first one stays).
        columns = dict(zip(reversed(history.symbols), range(count - 1, -1, -1), strict=True))
        found = [columns.get(symbol) for symbol in wanted]
        closes = [math.nan if j is None else row[j] for j in found]
    if all(0 < close < MAX_PRICE for close in closes):  # NaN is not: every one is valid
        return dict(zip(wanted, map(to_decimal_price, closes), strict=True))
    return _first_invalid(history, wanted, index, as_of)


def _first_invalid(
    history: PriceHistory, wanted: list[str], index: int, as_of: date
) -> dict[str, Decimal]:
    """``reference_prices`` when some price is not valid: the error naming the first
    symbol (in order) that is wrong."""
    row = history.closes[index].tolist()
    count = len(history.symbols)
    columns = dict(zip(reversed(history.symbols), range(count - 1, -1, -1), strict=True))
    prices: dict[str, Decimal] = {}
    for symbol in wanted:
        j = columns.get(symbol)
        if j is None:
            raise DataError(f"{symbol}: no price history", kind=DataErrorKind.MISSING)
        close = row[j]
        if math.isnan(close):
            column = history.closes[:, j]
            valid = np.flatnonzero(~np.isnan(column[: index + 1]))
            last = (
                f" (last close {history.session(int(valid[-1])).isoformat()})" if valid.size else ""
            )
            raise DataError(
                f"{symbol}: no close for session {as_of.isoformat()}{last}",
                kind=DataErrorKind.STALE,
            )
        if not math.isfinite(close):
            raise DataError(
                f"{symbol}: price is not finite ({close})", kind=DataErrorKind.NON_FINITE
            )
        if close <= 0:
            raise DataError(
                f"{symbol}: price is not positive ({close})", kind=DataErrorKind.NON_POSITIVE
            )
        try:
            prices[symbol] = to_decimal_price(close)
        except ValueError as error:
            raise DataError(f"{symbol}: {error}", kind=DataErrorKind.NON_FINITE) from error
    return prices


def check_fresh(as_of: date, trading_date: date, max_age_days: int) -> None:
    """Refuse to trade on ``trading_date`` with data whose last session is too old."""
    age = (trading_date - as_of).days
    if age < 0:
        raise DataError(
            f"data session {as_of.isoformat()} is after "
            f"the trading date {trading_date.isoformat()}",
            kind=DataErrorKind.STALE,
        )
    if age > max_age_days:
        raise DataError(
            f"latest data session {as_of.isoformat()} is {age} days before the trading date "
            f"{trading_date.isoformat()} (limit {max_age_days})",
            kind=DataErrorKind.STALE,
        )
