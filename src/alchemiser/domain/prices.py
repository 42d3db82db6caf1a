"""Daily close history as one dense matrix, and the checks that make prices tradable.

``closes[t, j]`` is the adjusted close of ``symbols[j]`` on ``dates[t]``; NaN means no
bar that session. Strategies read the matrix (float maths); the diff reads reference
prices, which ``reference_prices`` converts to Decimal once, after validating them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from alchemiser.domain.values import to_decimal_price
from alchemiser.errors import DataError, DataErrorKind

FloatMatrix = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]


@dataclass(frozen=True, eq=False)
class PriceHistory:
    dates: DateArray
    symbols: tuple[str, ...]
    closes: FloatMatrix

    def __post_init__(self) -> None:
        if self.closes.shape != (len(self.dates), len(self.symbols)):
            raise ValueError(
                f"closes shape {self.closes.shape} does not match "
                f"{len(self.dates)} dates x {len(self.symbols)} symbols"
            )
        if len(self.dates) > 1 and not bool(np.all(self.dates[1:] > self.dates[:-1])):
            raise ValueError("dates must be strictly increasing")

    def column(self, symbol: str) -> FloatMatrix:
        return self.closes[:, self.symbols.index(symbol)]

    def row_index(self, as_of: date) -> int:
        """Index of the last session on or before ``as_of``; -1 when there is none."""
        return int(np.searchsorted(self.dates, np.datetime64(as_of, "D"), side="right")) - 1

    def session(self, index: int) -> date:
        return _to_date(self.dates[index])


def _to_date(value: np.datetime64) -> date:
    return date.fromisoformat(str(value.astype("datetime64[D]")))


def reference_prices(
    history: PriceHistory, symbols: Iterable[str], as_of: date
) -> dict[str, Decimal]:
    """The close of each symbol on the session ``as_of``, or a DataError naming what is wrong.

    Fails closed: a symbol with no bar on that exact session (missing or stale), a NaN
    or a non-positive close is an error for the whole run, never skipped.
    """
    index = history.row_index(as_of)
    if index < 0 or history.session(index) != as_of:
        raise DataError(
            f"no market data for session {as_of.isoformat()}", kind=DataErrorKind.MISSING
        )
    prices: dict[str, Decimal] = {}
    for symbol in sorted(set(symbols)):
        if symbol not in history.symbols:
            raise DataError(f"{symbol}: no price history", kind=DataErrorKind.MISSING)
        column = history.column(symbol)
        close = float(column[index])
        if math.isnan(close):
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
