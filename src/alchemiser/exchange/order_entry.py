"""Placing orders on the local exchange: validating new orders and closing positions.

Only simple market day orders for ``us_equity``, by ``qty`` or ``notional``, in a cash
account: a buy needs the buying power, a sell the shares not already being sold, and an
open order on the other side is a wash trade. Each refusal is the :class:`ApiError`
Alpaca sends. Closing a position places such a sell, fractional even for a whole-share
asset (this is how a fractional residue is exited).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from alchemiser.exchange.account import Account
from alchemiser.exchange.orders import OrderBook, SimOrder
from alchemiser.exchange.params import Query, decimal_field, one, qty_and_notional
from alchemiser.exchange.prices import Pricing
from alchemiser.exchange.sessions import Clock, MarketCalendar
from alchemiser.exchange.settings import ExchangeSettings
from alchemiser.exchange.shapes import (
    EQUITY,
    JSON,
    QTY_STEP,
    RATIO_STEP,
    WHOLE,
    asset_id,
    fmt,
    forbidden,
    money,
    not_found,
    unprocessable,
)

MIN_NOTIONAL = Decimal(1)
MAX_CLIENT_ORDER_ID = 128


def close_params(query: Query) -> tuple[str | None, str | None]:
    """DELETE /v2/positions/{symbol}'s ``qty`` and ``percentage`` (at most one)."""
    qty_text = one(query, "qty") or None
    percentage_text = one(query, "percentage") or None
    if qty_text is not None and percentage_text is not None:
        raise unprocessable("only one of qty or percentage can be specified")
    return qty_text, percentage_text


class OrderEntry:
    """Validates and places orders. Not locked itself: the engine calls it under its
    lock, with the order book settled."""

    def __init__(
        self,
        book: OrderBook,
        pricing: Pricing,
        account: Account,
        calendar: MarketCalendar,
        clock: Clock,
        settings: Callable[[], ExchangeSettings],
    ) -> None:
        self._book = book
        self._pricing = pricing
        self._account = account
        self._calendar = calendar
        self._clock = clock
        self._settings = settings

    def submit(self, payload: Mapping[str, Any]) -> JSON:
        """Validate and accept a market day order, or raise the ApiError Alpaca sends."""
        client_order_id = self._client_order_id(payload)
        symbol, side = self._symbol_and_side(payload)
        qty, notional = qty_and_notional(payload)
        whole = symbol in self._settings().whole_share_symbols
        self._check_order(symbol, side, qty, notional, whole)
        order = self._new_order(client_order_id, symbol, side, qty, notional, whole)
        return self._book.accept(order)

    def _new_order(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: Decimal | None,
        notional: Decimal | None,
        whole: bool,
    ) -> SimOrder:
        now = self._clock.now()
        session = self._calendar.trade_session(now)
        settings = self._settings()
        ratio = settings.partial_fills.get(symbol)
        return SimOrder(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            symbol=symbol,
            asset_id=asset_id(symbol),
            side=side,
            qty=qty,
            notional=notional,
            submitted_at=now,
            updated_at=now,
            trade_session=session,
            expires_at=self._calendar.hours(session)[1],
            fill_delay_seconds=settings.fill_delay_seconds,
            partial_ratio=Decimal(repr(ratio)).quantize(RATIO_STEP, ROUND_FLOOR) if ratio else None,
            late_fill_seconds=settings.late_fill_seconds,
            whole_shares=whole,
        )

    def close_position(
        self, symbol_or_id: str, qty_text: str | None, percentage_text: str | None
    ) -> JSON:
        """A market day sell of ``qty`` shares, or of ``percentage`` of the position, or
        of all of it; the order, under a client_order_id the exchange makes up."""
        symbol = self._account.held_symbol(symbol_or_id)
        held = self._account.positions.get(symbol) if symbol is not None else None
        if symbol is None or held is None:
            raise not_found(f"position not found: {symbol_or_id}")
        if held.asset_class != EQUITY:
            raise unprocessable(
                f"only us_equity positions can be closed on the local exchange, "
                f"not {held.asset_class}"
            )
        if qty_text is not None:
            qty = decimal_field("qty", qty_text)
            if qty <= 0:
                raise unprocessable("qty must be > 0")
            if qty != qty.quantize(QTY_STEP, ROUND_DOWN):
                raise unprocessable("qty must have at most 9 decimal places")
        elif percentage_text is not None:
            percentage = decimal_field("percentage", percentage_text)
            if not 0 < percentage <= 100:
                raise unprocessable("percentage must be > 0 and <= 100")
            # Alpaca sells a fraction only when the position is fractional.
            step = WHOLE if held.qty == held.qty.to_integral_value() else QTY_STEP
            qty = (held.qty * percentage / 100).quantize(step, ROUND_DOWN)
            if qty <= 0:
                raise unprocessable("qty must be > 0")
        else:
            qty = held.qty
        available = self._book.qty_available(symbol)
        if qty > available:
            raise unprocessable(
                f"insufficient qty available for order (requested: {fmt(qty)}, "
                f"available: {fmt(available)})"
            )
        if self._book.has_open(symbol, "buy"):
            raise forbidden("potential wash trade detected. use complex orders")
        order = self._new_order(str(uuid.uuid4()), symbol, "sell", qty, None, whole=False)
        return self._book.accept(order)

    def _client_order_id(self, payload: Mapping[str, Any]) -> str:
        client_order_id = payload.get("client_order_id")
        if client_order_id is None or client_order_id == "":
            return str(uuid.uuid4())
        if not isinstance(client_order_id, str):
            raise unprocessable("invalid client_order_id")
        if len(client_order_id) > MAX_CLIENT_ORDER_ID:
            raise unprocessable(
                f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters"
            )
        if client_order_id in self._book.by_client_id:
            raise unprocessable("client_order_id must be unique")
        return client_order_id

    def _symbol_and_side(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        raw_symbol = payload.get("symbol")
        if not isinstance(raw_symbol, str) or not raw_symbol.strip():
            raise unprocessable("symbol is required")
        symbol = self._pricing.book.resolve(raw_symbol.strip())
        if symbol is None:
            raise unprocessable(f'asset "{raw_symbol.strip()}" not found')
        side = payload.get("side")
        if side not in ("buy", "sell"):
            raise unprocessable("side must be buy or sell")
        if payload.get("type", payload.get("order_type")) != "market":
            raise unprocessable("only market orders are supported by the local exchange")
        if payload.get("time_in_force") != "day":
            raise unprocessable("only day orders are supported by the local exchange")
        if payload.get("order_class") not in (None, "", "simple"):
            raise unprocessable("only simple orders are supported by the local exchange")
        if payload.get("extended_hours"):
            raise unprocessable("extended hours orders must be DAY limit orders")
        return symbol, str(side)

    def _check_order(
        self, symbol: str, side: str, qty: Decimal | None, notional: Decimal | None, whole: bool
    ) -> None:
        fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
        if whole and fractional:
            raise forbidden(f'asset "{symbol}" is not fractionable')
        if notional is not None and notional < MIN_NOTIONAL:
            raise forbidden("cost basis must be >= 1")
        if any(o.is_open and o.symbol == symbol and o.side != side for o in self._book.orders):
            raise forbidden("potential wash trade detected. use complex orders")
        price = self._pricing.estimated_price(symbol, side)
        if price is None:
            raise forbidden(f'asset "{symbol}" has no price to trade at')
        if side == "buy":
            cost = notional if notional is not None else money((qty or Decimal(0)) * price)
            if cost > self._book.buying_power():
                raise forbidden("insufficient buying power")
            return
        wanted = qty if qty is not None else (notional or Decimal(0)) / price
        available = self._book.qty_available(symbol)
        if wanted > available:
            requested = wanted if qty is not None else wanted.quantize(QTY_STEP, ROUND_CEILING)
            raise forbidden(
                f"insufficient qty available for order (requested: {fmt(requested)}, "
                f"available: {fmt(available)})"
            )
