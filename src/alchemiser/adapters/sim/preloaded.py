"""Market data for a backtest: one history matrix loaded up front, read by slicing.

A backtest reads every session's prices from the matrix it evaluated its strategies
on instead of reading the price files again each day, and marks its account at each
session's closes from one forward-filled copy of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import numpy as np

from alchemiser.domain.prices import FloatMatrix, PriceHistory, session_prices
from alchemiser.errors import DataError, DataErrorKind


class PreloadedMarketData:
    """MarketData over one history matrix loaded up front (slices, no file reads)."""

    def __init__(self, history: PriceHistory) -> None:
        self._history = history
        self._columns = {s: i for i, s in enumerate(history.symbols)}
        self._rows: dict[date, int] = {}
        """``history.row_index`` of each day asked so far (a backtest asks for the same
        few sessions several times a session)."""

    def _row_index(self, day: date) -> int:
        index = self._rows.get(day)
        if index is None:
            index = self._rows[day] = self._history.row_index(day)
        return index

    def latest_session(self, before: date | None = None) -> date:
        index = len(self._history.dates) - 1
        if before is not None:
            index = int(np.searchsorted(self._history.dates, np.datetime64(before, "D"))) - 1
        if index < 0:
            raise DataError("no session before that date", kind=DataErrorKind.MISSING)
        return self._history.session(index)

    def is_session(self, day: date) -> bool:
        index = self._row_index(day)
        return index >= 0 and self._history.session(index) == day

    def history(self, symbols: Sequence[str], end: date, sessions: int) -> PriceHistory:
        stop = self._row_index(end) + 1
        start = max(stop - max(sessions, 1), 0)
        ordered = tuple(sorted(set(symbols)))
        missing = [s for s in ordered if s not in self._columns]
        if missing:
            raise DataError(f"{', '.join(missing)}: no price history", kind=DataErrorKind.MISSING)
        columns = [self._columns[s] for s in ordered]
        opens = self._history.opens
        return PriceHistory(
            dates=self._history.dates[start:stop],
            symbols=ordered,
            closes=self._history.closes[start:stop][:, columns],
            opens=None if opens is None else opens[start:stop][:, columns],
        )

    def latest_prices(
        self, symbols: Sequence[str], session: date, now: datetime | None = None
    ) -> dict[str, float]:
        """The session's closes (a backtest of the close window decides on them)."""
        return session_prices(self.history(symbols, session, 1), session)


def last_closes_matrix(history: PriceHistory) -> FloatMatrix:
    """Each session's close of each symbol, or its last close before when it has none
    that session (NaN before its first)."""
    closes = history.closes
    rows = np.arange(len(closes))[:, None]
    last = np.maximum.accumulate(np.where(np.isfinite(closes), rows, -1), axis=0)
    filled = closes[np.maximum(last, 0), np.arange(closes.shape[1])]
    return np.where(last >= 0, filled, np.nan)
