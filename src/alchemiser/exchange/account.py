"""The local exchange's cash account: cash, positions, and their valuation.

A cash account (no margin, no shorting). Only ``us_equity`` positions trade; crypto and
option holdings exist only when a test seeds them (``set_position(..., asset_class=...,
price=...)``), valued at the price given (an option at qty x price x 100), and count in
the account's equity. The equity is always cash plus the positions' ``market_value`` as
GET /v2/positions shows them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from alchemiser.exchange.prices import Pricing
from alchemiser.exchange.sessions import MarketCalendar
from alchemiser.exchange.shapes import (
    CRYPTO,
    EQUITY,
    JSON,
    OPTION,
    WHOLE,
    account_json,
    asset_id,
    money,
    position_json,
)

ASSET_CLASSES = frozenset({EQUITY, CRYPTO, OPTION})
OPTION_MULTIPLIER = Decimal(100)
"""An option position's value is qty x price x 100, as Alpaca values contracts."""

_OCC_SYMBOL = re.compile(r"[A-Z]{1,6}\d{6}[CP]\d{8}")
_CRYPTO_SYMBOL = re.compile(r"[A-Z0-9]{2,10}/?[A-Z]{3,4}")


def _multiplier(asset_class: str) -> Decimal:
    return OPTION_MULTIPLIER if asset_class == OPTION else WHOLE


@dataclass(frozen=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    asset_class: str = EQUITY

    @property
    def cost_basis(self) -> Decimal:
        return money(self.qty * self.avg_entry_price * _multiplier(self.asset_class))


@dataclass
class Position:
    """Quantity and average entry price (unchanged by sells, as at Alpaca). Only
    ``us_equity`` positions trade here; the other classes are holdings seeded by tests."""

    qty: Decimal
    avg_price: Decimal
    asset_class: str = EQUITY

    @property
    def multiplier(self) -> Decimal:
        return _multiplier(self.asset_class)

    @property
    def cost_basis(self) -> Decimal:
        return money(self.qty * self.avg_price * self.multiplier)


class Account:
    """Cash and positions. Not locked itself: the engine calls it under its lock."""

    def __init__(
        self,
        pricing: Pricing,
        calendar: MarketCalendar,
        cash: Decimal,
        start: datetime,
        account_number: str | None,
    ) -> None:
        self._pricing = pricing
        self._calendar = calendar
        self.account_id = str(uuid.uuid4())
        self.account_number = account_number or (
            "PA" + self.account_id.replace("-", "")[:10].upper()
        )
        self.created_at = start - timedelta(days=365)
        self.cash = cash
        self.positions: dict[str, Position] = {}

    def views(self) -> dict[str, PositionView]:
        return {
            s: PositionView(s, p.qty, p.avg_price, p.asset_class)
            for s, p in sorted(self.positions.items())
        }

    def set_position(
        self,
        symbol: str,
        qty: Decimal,
        avg_entry_price: Decimal,
        asset_class: str,
        price: Decimal | None,
    ) -> None:
        """Seed a holding (see ``Engine.set_position``); ``symbol`` is upper case."""
        if qty <= 0:
            self.positions.pop(symbol, None)
            return
        if asset_class not in ASSET_CLASSES:
            raise ValueError(f"asset_class must be one of {sorted(ASSET_CLASSES)}")
        if asset_class == EQUITY:
            if symbol not in self._pricing.book:
                raise ValueError(f"{symbol}: not in the price data")
        else:
            if symbol in self._pricing.book:
                raise ValueError(f"{symbol}: a us_equity symbol in the price data")
            pattern = _OCC_SYMBOL if asset_class == OPTION else _CRYPTO_SYMBOL
            if pattern.fullmatch(symbol) is None:
                raise ValueError(f"{symbol}: not a {asset_class} symbol")
            if price is None and symbol not in self._pricing.other_prices:
                raise ValueError(f"{symbol}: a {asset_class} position needs a price")
        if price is not None:
            self._pricing.set_price(symbol, price, None)
        self.positions[symbol] = Position(qty, avg_entry_price, asset_class)

    def held_symbol(self, symbol_or_id: str) -> str | None:
        """The symbol of a held position named by symbol or asset id."""
        symbol = symbol_or_id.upper()
        if symbol in self.positions:
            return symbol
        for candidate in self.positions:
            if asset_id(candidate) == symbol_or_id.lower():
                return candidate
        return None

    def _current_price(self, symbol: str, held: Position) -> Decimal:
        return self._pricing.reference_price(symbol) or held.avg_price

    @staticmethod
    def _position_value(held: Position, price: Decimal) -> Decimal:
        """What GET /v2/positions shows as market_value, and the account adds up."""
        return money(held.qty * price * held.multiplier)

    def position_json(self, symbol: str, held: Position, qty_available: Decimal) -> JSON:
        current = self._current_price(symbol, held)
        lastday = self._pricing.previous_price(symbol) or current
        return position_json(
            symbol,
            held.asset_class,
            qty=held.qty,
            qty_available=qty_available,
            avg_price=held.avg_price,
            cost_basis=held.cost_basis,
            current=current,
            lastday=lastday,
            market_value=self._position_value(held, current),
            lastday_value=self._position_value(held, lastday),
        )

    def _market_value(self, previous: bool) -> Decimal:
        total = Decimal(0)
        for symbol, held in self.positions.items():
            if previous:
                price = self._pricing.previous_price(symbol) or held.avg_price
            else:
                price = self._current_price(symbol, held)
            total += self._position_value(held, price)
        return total

    def account_json(self, buying_power: Decimal, today: Callable[[], date]) -> JSON:
        """GET /v2/account, given the buying power open orders leave."""
        long_value = self._market_value(previous=False)
        previous = self._calendar.previous_session(today())
        return account_json(
            account_id=self.account_id,
            account_number=self.account_number,
            created_at=self.created_at,
            cash=self.cash,
            buying_power=buying_power,
            long_value=long_value,
            last_equity=self.cash + self._market_value(previous=True),
            balance_asof=(previous or today()).isoformat(),
        )
