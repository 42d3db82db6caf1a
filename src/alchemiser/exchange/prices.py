"""The local exchange's prices: the daily closes, test overrides, fill and quote prices.

Prices are the product's daily closes (already split/dividend adjusted), with the
opens where the price files have them. Fills, quotes
and valuations use the current session's close, or a price a test set for one session
(``set_price``); a market order fills at that price moved against the trader by
``slippage_bps``. Symbols not in the price data (crypto, options) have only the price a
test gave them, for every day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.exchange.sessions import Clock, MarketCalendar, to_date
from alchemiser.exchange.settings import ExchangeSettings
from alchemiser.exchange.shapes import BPS, CENT, JSON, PRICE_STEP, asset_id, fmt, to_price


class PriceBook:
    """Every symbol's daily closes, indexed for range and as-of lookups."""

    def __init__(self, directory: Path | Traversable) -> None:
        store = FilePriceStore(directory)
        symbols = sorted(
            {
                # BRK.B.csv.gz is BRK.B: only the suffixes go.
                entry.name.removesuffix(".gz").removesuffix(".csv")
                for entry in directory.iterdir()
                if entry.name.endswith((".csv", ".csv.gz"))
            }
        )
        sessions = store.sessions()
        history = store.history(symbols, end=to_date(sessions[-1]), sessions=len(sessions))
        self.sessions = [to_date(d) for d in history.dates]
        self.symbols: tuple[str, ...] = history.symbols
        self._dates: dict[str, npt.NDArray[np.datetime64]] = {}
        self._closes: dict[str, npt.NDArray[np.float64]] = {}
        self._opens: dict[str, npt.NDArray[np.float64]] = {}
        """NaN where a session has no open (or the file no opens at all)."""
        for column, symbol in enumerate(history.symbols):
            closes = history.closes[:, column]
            valid = ~np.isnan(closes)
            self._dates[symbol] = history.dates[valid]
            self._closes[symbol] = closes[valid]
            opens = history.opens[:, column] if history.opens is not None else closes * np.nan
            self._opens[symbol] = opens[valid]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._dates

    def resolve(self, symbol_or_id: str) -> str | None:
        """The symbol named by symbol or asset id, when it is in the price data."""
        symbol = symbol_or_id.upper()
        if symbol in self:
            return symbol
        for candidate in self.symbols:
            if asset_id(candidate) == symbol_or_id.lower():
                return candidate
        return None

    def close_on(self, symbol: str, day: date) -> float | None:
        dates = self._dates.get(symbol)
        if dates is None:
            return None
        index = int(np.searchsorted(dates, np.datetime64(day, "D")))
        if index < len(dates) and to_date(dates[index]) == day:
            return float(self._closes[symbol][index])
        return None

    def last_close(self, symbol: str, on_or_before: date) -> float | None:
        dates = self._dates.get(symbol)
        if dates is None:
            return None
        index = int(np.searchsorted(dates, np.datetime64(on_or_before, "D"), side="right")) - 1
        return float(self._closes[symbol][index]) if index >= 0 else None

    def series(
        self, symbol: str, first: date, last: date
    ) -> tuple[list[date], list[float], list[float]]:
        """The symbol's sessions, closes and opens (NaN: none) from ``first`` to
        ``last``, inclusive."""
        dates = self._dates.get(symbol)
        if dates is None or first > last:
            return [], [], []
        low = int(np.searchsorted(dates, np.datetime64(first, "D")))
        high = int(np.searchsorted(dates, np.datetime64(last, "D"), side="right"))
        days: list[date] = dates[low:high].astype("datetime64[D]").tolist()
        closes: list[float] = self._closes[symbol][low:high].tolist()
        opens: list[float] = self._opens[symbol][low:high].tolist()
        return days, closes, opens


class Pricing:
    """What each symbol trades, quotes and is valued at, as of the exchange clock.

    Not locked itself: the engine calls it under its lock."""

    def __init__(
        self,
        book: PriceBook,
        calendar: MarketCalendar,
        clock: Clock,
        settings: Callable[[], ExchangeSettings],
    ) -> None:
        self.book = book
        self._calendar = calendar
        self._clock = clock
        self._settings = settings
        self.overrides: dict[str, tuple[date, Decimal]] = {}
        """Per symbol in the price data: a price for one session (``set_price``)."""
        self.other_prices: dict[str, Decimal] = {}
        """Prices of symbols not in the price data (crypto, options), any day."""

    def set_price(self, symbol: str, price: Decimal | None, session: date | None) -> None:
        if price is not None and (not price.is_finite() or price <= 0):
            raise ValueError(f"{symbol}: a price must be > 0, got {price}")
        if symbol not in self.book:
            if session is not None:
                raise ValueError(f"{symbol}: not in the price data, its price has no session")
            if price is None:
                self.other_prices.pop(symbol, None)
            else:
                self.other_prices[symbol] = price
            return
        if price is None:
            self.overrides.pop(symbol, None)
        else:
            self.overrides[symbol] = (session or self._clock.today(), price)

    def session_close(self, symbol: str, day: date) -> Decimal | None:
        """What an order of ``symbol`` fills at in session ``day`` (before slippage)."""
        override = self.overrides.get(symbol)
        if override is not None and override[0] == day:
            return override[1]
        close = self.book.close_on(symbol, day)
        return to_price(close) if close is not None else None

    def reference_price(self, symbol: str) -> Decimal | None:
        """Today's override, else the latest close on or before today (today's close on
        a session day); for a symbol not in the price data, the price it was given."""
        today = self._clock.today()
        override = self.overrides.get(symbol)
        if override is not None and override[0] == today:
            return override[1]
        if symbol not in self.book:
            return self.other_prices.get(symbol)
        close = self.book.last_close(symbol, today)
        return to_price(close) if close is not None else None

    def previous_price(self, symbol: str) -> Decimal | None:
        if symbol not in self.book:
            return self.other_prices.get(symbol)  # no history: yesterday is today
        previous = self._calendar.previous_session(self._clock.today())
        if previous is None:
            return None
        close = self.book.last_close(symbol, previous)
        return to_price(close) if close is not None else None

    def slipped(self, close: Decimal, side: str) -> Decimal:
        move = self._settings().slippage_bps / BPS
        price = close * (1 + move) if side == "buy" else close * (1 - move)
        step = CENT if price >= 1 else PRICE_STEP
        return price.quantize(step, ROUND_HALF_EVEN)

    def estimated_price(self, symbol: str, side: str) -> Decimal | None:
        reference = self.reference_price(symbol)
        return self.slipped(reference, side) if reference is not None else None

    def prices_json(self) -> JSON:
        """The prices tests set, for the control plane's state."""
        return {
            **{s: fmt(p) for s, p in sorted(self.other_prices.items())},
            **{
                s: {"session": day.isoformat(), "price": fmt(p)}
                for s, (day, p) in sorted(self.overrides.items())
            },
        }
