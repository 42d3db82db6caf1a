"""The simulated exchange behind the local Alpaca-compatible server: the ``Engine``.

State (clock, account, positions, orders) lives behind one lock; every public method
first brings the order book up to the exchange's ``now`` (fills, expiries), so no
background thread is needed. The JSON produced by the ``*_json`` methods is what
Alpaca's Trading API v2 and Market Data API v2 send, field for field where the product
uses them; errors are :class:`ApiError` carrying Alpaca's ``{code, message}``.

The engine composes, and locks around, its parts (none of which locks itself):

- ``calendar``: the clock, sessions and hours (the price data's sessions, then every
  weekday; 09:30-16:00 New York, early closes; no extended hours).
- ``prices``: the daily closes, test price overrides, fill prices with slippage.
- ``account``: cash and positions (a cash account: no margin, no shorting; crypto and
  option holdings only when a test seeds them) and their valuation.
- ``orders`` and ``order_entry``: market day orders, their validation, fills and
  expiries; ``market_data``: bars, latest quotes and trades.
- ``shapes`` and ``params``: Alpaca's JSON objects and errors, and request parameters;
  ``settings``: everything scriptable.

Test controls: ``set_position`` (any quantity, a fractional residue of a whole-share
asset included), ``set_price`` (one session's price: fills, quotes, latest trades,
valuations; never bars), ``fill_open_orders`` (the market moves on),
``advance``/``set_now`` (the clock) and ``configure`` (settings, ``account_number``
and ``stale_trades_seconds`` included). The account's equity is always cash plus the
positions' ``market_value`` as GET /v2/positions shows them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from alchemiser.adapters.files.prices import bundled_prices_dir
from alchemiser.exchange.account import Account, PositionView
from alchemiser.exchange.market_data import MarketData
from alchemiser.exchange.order_entry import OrderEntry, close_params
from alchemiser.exchange.orders import OrderBook, OrdersQuery, SimOrder
from alchemiser.exchange.params import bars_params, one, symbols_param
from alchemiser.exchange.prices import PriceBook, Pricing
from alchemiser.exchange.sessions import NEW_YORK, Clock, MarketCalendar, parse_instant
from alchemiser.exchange.settings import ExchangeSettings, settings_changes_from_json
from alchemiser.exchange.shapes import (
    ASSET_EXCHANGE,
    EQUITY,
    JSON,
    ApiError,
    asset_json,
    not_found,
    unprocessable,
    utc_text,
)

__all__ = [
    "NEW_YORK",
    "ApiError",
    "Engine",
    "ExchangeSettings",
    "PositionView",
    "SimOrder",
    "parse_instant",
    "settings_changes_from_json",
    "utc_text",
]


class Engine:
    """The exchange state. Thread-safe: every public method holds the one lock."""

    def __init__(
        self,
        prices: Path | Traversable | None = None,
        settings: ExchangeSettings | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.prices = PriceBook(prices if prices is not None else bundled_prices_dir())
        self.calendar = MarketCalendar(self.prices.sessions)
        settings = settings or ExchangeSettings()
        session = settings.session or self.calendar.last_data
        if not self.calendar.is_session(session):
            raise ValueError(f"{session.isoformat()} is not a session in the price data")
        self._settings = settings
        start = settings.now or self.calendar.hours(session)[0] + timedelta(seconds=1)
        self._clock = Clock(start)
        current = self._current_settings
        self._pricing = Pricing(self.prices, self.calendar, self._clock, current)
        self._account = Account(
            self._pricing, self.calendar, settings.cash, start, settings.account_number
        )
        self._book = OrderBook(self._pricing, self._account, self.calendar, self._clock, current)
        self._entry = OrderEntry(
            self._book, self._pricing, self._account, self.calendar, self._clock, current
        )
        self._market = MarketData(self._pricing, self.calendar, self._clock, current)

    def _current_settings(self) -> ExchangeSettings:
        return self._settings

    @property
    def account_id(self) -> str:
        return self._account.account_id

    @property
    def account_number(self) -> str:
        return self._account.account_number

    # -- settings and the clock ----------------------------------------------------------

    @property
    def settings(self) -> ExchangeSettings:
        with self._lock:
            return self._settings

    def configure(self, **changes: Any) -> ExchangeSettings:
        """Replace some settings at once. ``now=`` moves the clock, ``advance_seconds=``
        moves it forward; ``cash=`` resets the cash balance."""
        advance = changes.pop("advance_seconds", None)
        with self._lock:
            self._book.settle()
            updated = replace(self._settings, **changes)
            if "session" in changes and updated.session is not None and "now" not in changes:
                if not self.calendar.is_session(updated.session):
                    raise ValueError(f"{updated.session.isoformat()} is not a session")
                self._clock.move_to(self.calendar.hours(updated.session)[0] + timedelta(seconds=1))
            if "now" in changes and updated.now is not None:
                self._clock.move_to(updated.now)
            if "cash" in changes:
                self._account.cash = updated.cash
            if "account_number" in changes and updated.account_number is not None:
                self._account.account_number = updated.account_number
            self._settings = updated
            if advance:
                self._clock.advance(float(advance))
            self._book.settle()
            return updated

    def set_now(self, instant: datetime) -> None:
        self.configure(now=instant)

    def advance(self, seconds: float) -> None:
        """Move the exchange clock forward (tests: delayed fills without waiting)."""
        self.configure(advance_seconds=seconds)

    def now(self) -> datetime:
        with self._lock:
            return self._clock.now()

    def current_session(self) -> date | None:
        """The New York date of now, when it is a session."""
        with self._lock:
            today = self._clock.today()
            return today if self.calendar.is_session(today) else None

    def is_open(self, at: datetime | None = None) -> bool:
        with self._lock:
            return self.calendar.is_open(at or self._clock.now())

    # -- assertions (copies) -----------------------------------------------------------------

    def orders(self) -> list[SimOrder]:
        with self._lock:
            self._book.settle()
            return [replace(o) for o in self._book.orders]

    def accepted_orders(self) -> list[SimOrder]:
        """Every order the exchange accepted, in submission order (same as ``orders``)."""
        return self.orders()

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders() if o.is_open]

    def order(self, order_id: str) -> SimOrder | None:
        with self._lock:
            self._book.settle()
            found = self._book.by_id.get(order_id)
            return replace(found) if found else None

    def order_by_client_id(self, client_order_id: str) -> SimOrder | None:
        with self._lock:
            self._book.settle()
            found = self._book.by_client_id.get(client_order_id)
            return replace(found) if found else None

    def positions(self) -> dict[str, PositionView]:
        with self._lock:
            self._book.settle()
            return self._account.views()

    def cash(self) -> Decimal:
        with self._lock:
            self._book.settle()
            return self._account.cash

    # -- test controls -----------------------------------------------------------------------

    def set_position(
        self,
        symbol: str,
        qty: Decimal,
        avg_entry_price: Decimal,
        *,
        asset_class: str = EQUITY,
        price: Decimal | None = None,
    ) -> None:
        """Seed a holding (tests): ``qty`` shares bought at ``avg_entry_price``; 0 removes
        the holding, whatever its class.

        Any quantity goes, a fractional one of a non-fractionable asset included (a
        residue the product must still be able to exit). ``asset_class`` ``"crypto"``
        (``BTC/USD`` or ``BTCUSD``) or ``"us_option"`` (an OCC symbol such as
        ``SPY260918C00500000``, valued at qty x price x 100) makes a holding the product
        cannot trade; those need ``price`` (they are not in the price data). For a
        ``us_equity`` symbol ``price`` overrides today's price (see ``set_price``)."""
        with self._lock:
            self._book.settle()
            self._account.set_position(symbol.upper(), qty, avg_entry_price, asset_class, price)

    def set_price(self, symbol: str, price: Decimal | None, session: date | None = None) -> None:
        """Override a symbol's price for one session (default: today, the New York date
        of the exchange clock): fills in that session, quotes and position valuations
        use it; bars never do (the session's own bar is not served while it is today,
        and bars of earlier sessions stay the price data's). ``None`` removes the
        override. A symbol not in the price data (crypto, options) gets this price for
        every day."""
        with self._lock:
            # Orders due to fill before the change fill at the old price.
            self._book.settle()
            self._pricing.set_price(symbol.upper(), price, session)

    def fill_open_orders(self, client_order_id: str | None = None) -> list[str]:
        """Fill every open order (or the one with ``client_order_id``) in full now, at
        the price it would fill at (its session's close, else today's, with slippage),
        as if the market moved on. The ids of the orders filled."""
        with self._lock:
            self._book.settle()
            now = self._clock.now()
            filled: list[str] = []
            for order in self._book.orders:
                if not order.is_open:
                    continue
                if client_order_id is not None and order.client_order_id != client_order_id:
                    continue
                if self._book.fill_in_full(order, now):
                    filled.append(order.id)
            return filled

    # -- trading API: clock, calendar, assets ------------------------------------------------

    def clock_json(self) -> JSON:
        with self._lock:
            self._book.settle()
            return self.calendar.clock_json(self._clock.now())

    def calendar_json(self, query: Mapping[str, Sequence[str]]) -> list[JSON]:
        with self._lock:
            return self.calendar.calendar_json(query)

    def _asset_json(self, symbol: str) -> JSON:
        fractionable = symbol not in self._settings.whole_share_symbols
        return asset_json(symbol, fractionable=fractionable)

    def assets_json(self, query: Mapping[str, Sequence[str]]) -> list[JSON]:
        with self._lock:
            status = one(query, "status")
            asset_class = one(query, "asset_class") or "us_equity"
            exchange = one(query, "exchange")
            if status not in (None, "", "active") or asset_class != "us_equity":
                return []
            if exchange and exchange != ASSET_EXCHANGE:
                return []
            return [self._asset_json(s) for s in self.prices.symbols]

    def asset_json(self, symbol_or_id: str) -> JSON:
        with self._lock:
            symbol = self.prices.resolve(symbol_or_id)
            if symbol is None:
                raise not_found("asset not found")
            return self._asset_json(symbol)

    # -- trading API: account and positions ---------------------------------------------------

    def positions_json(self) -> list[JSON]:
        with self._lock:
            self._book.settle()
            return [
                self._account.position_json(s, p, self._book.qty_available(s))
                for s, p in sorted(self._account.positions.items())
            ]

    def position_json(self, symbol_or_id: str) -> JSON:
        with self._lock:
            self._book.settle()
            symbol = self._account.held_symbol(symbol_or_id)
            held = self._account.positions.get(symbol) if symbol else None
            if symbol is None or held is None:
                raise not_found("position does not exist")
            return self._account.position_json(symbol, held, self._book.qty_available(symbol))

    def account_json(self) -> JSON:
        with self._lock:
            self._book.settle()
            return self._account.account_json(self._book.buying_power(), self._clock.today)

    # -- trading API: orders ------------------------------------------------------------------

    def submit_order(self, payload: Any) -> JSON:
        """Validate and accept a market day order, or raise the ApiError Alpaca sends."""
        if not isinstance(payload, Mapping):
            raise ApiError(400, 40010000, "request body format is invalid")
        with self._lock:
            self._book.settle()
            return self._entry.submit(payload)

    def close_position(self, symbol_or_id: str, query: Mapping[str, Sequence[str]]) -> JSON:
        """DELETE /v2/positions/{symbol}: a market day sell of ``qty`` shares, or of
        ``percentage`` of the position, or of all of it; the order, under a
        client_order_id the exchange makes up. A fractional quantity goes even for an
        asset that is not fractionable: this is how a fractional residue is exited."""
        qty_text, percentage_text = close_params(query)
        with self._lock:
            self._book.settle()
            return self._entry.close_position(symbol_or_id, qty_text, percentage_text)

    def orders_json(self, query: Mapping[str, Sequence[str]]) -> list[JSON]:
        selection = OrdersQuery(query)
        with self._lock:
            self._book.settle()
            return selection.select(self._book.orders)

    def order_json(self, order_id: str) -> JSON:
        with self._lock:
            self._book.settle()
            return self._book.find(order_id).to_json()

    def order_by_client_id_json(self, client_order_id: str | None) -> JSON:
        if not client_order_id:
            raise unprocessable("client_order_id is missing")
        with self._lock:
            self._book.settle()
            order = self._book.by_client_id.get(client_order_id)
            if order is None:
                raise not_found("order not found")
            return order.to_json()

    def cancel_order(self, order_id: str) -> None:
        with self._lock:
            self._book.cancel(order_id)

    def cancel_all_json(self) -> list[JSON]:
        with self._lock:
            self._book.settle()
            return self._book.cancel_all_json()

    # -- market data ------------------------------------------------------------------------

    def bars_json(self, query: Mapping[str, Sequence[str]]) -> JSON:
        symbols, limit, sort, after = bars_params(query)
        with self._lock:
            return self._market.bars(query, symbols, limit, sort, after)

    def latest_quotes_json(self, query: Mapping[str, Sequence[str]]) -> JSON:
        symbols = symbols_param(query)
        with self._lock:
            self._book.settle()
            return self._market.latest_quotes(symbols)

    def latest_trades_json(self, query: Mapping[str, Sequence[str]]) -> JSON:
        """Each symbol's latest trade: at its current price (as quotes are), stamped
        ``stale_trades_seconds`` before now; a symbol without a price is left out."""
        symbols = symbols_param(query)
        with self._lock:
            self._book.settle()
            return self._market.latest_trades(symbols)

    # -- the control plane -----------------------------------------------------------------

    def state_json(self) -> JSON:
        with self._lock:
            return {
                "now": self._clock.now().astimezone(NEW_YORK).isoformat(timespec="microseconds"),
                "session": (self.current_session() or self._clock.today()).isoformat(),
                "market_open": self.is_open(),
                "account": self.account_json(),
                "positions": self.positions_json(),
                "orders": [o.to_json() for o in self._book.orders],
                "settings": self._settings.public_json(),
                "prices": self._pricing.prices_json(),
            }
