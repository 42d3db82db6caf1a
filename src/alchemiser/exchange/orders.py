"""The local exchange's order book: orders over time, fills, expiries and reservations.

Only market day orders. An order is routed at the open of its session, fills at the
session's close (moved against the trader by ``slippage_bps``) after
``fill_delay_seconds``, possibly in part first (``partial_fills``, the rest
``late_fill_seconds`` later), and expires at the close keeping any partial fill. On a
day past the price data there is no close: orders never fill. There is no background
thread: ``settle`` brings the book up to the exchange's ``now`` whenever it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from alchemiser.exchange.account import Account, Position
from alchemiser.exchange.params import Query, one
from alchemiser.exchange.prices import Pricing
from alchemiser.exchange.sessions import Clock, MarketCalendar, parse_instant
from alchemiser.exchange.settings import ExchangeSettings
from alchemiser.exchange.shapes import (
    AVG_STEP,
    JSON,
    PRICE_STEP,
    QTY_STEP,
    WHOLE,
    ApiError,
    fmt,
    money,
    not_found,
    unprocessable,
    utc_text,
)

DEFAULT_ORDERS_LIMIT = 50
MAX_ORDERS_LIMIT = 500
OPEN_STATUSES = frozenset({"accepted", "new", "partially_filled"})


@dataclass
class SimOrder:
    """An order as the exchange holds it (``engine.orders()`` returns copies)."""

    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    qty: Decimal | None
    notional: Decimal | None
    submitted_at: datetime
    trade_session: date
    expires_at: datetime
    fill_delay_seconds: float
    partial_ratio: Decimal | None
    late_fill_seconds: float | None
    whole_shares: bool
    status: str = "accepted"
    updated_at: datetime | None = None
    filled_qty: Decimal = Decimal(0)
    filled_value: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    target_qty: Decimal | None = None
    first_fill_done: bool = False
    remainder_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> JSON:
        """The order as Alpaca's API shows it."""
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": utc_text(self.submitted_at),
            "updated_at": utc_text(self.updated_at or self.submitted_at),
            "submitted_at": utc_text(self.submitted_at),
            "filled_at": utc_text(self.filled_at) if self.filled_at else None,
            "expired_at": utc_text(self.expired_at) if self.expired_at else None,
            "expires_at": utc_text(self.expires_at),
            "canceled_at": utc_text(self.canceled_at) if self.canceled_at else None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": self.asset_id,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": fmt(self.notional) if self.notional is not None else None,
            "qty": fmt(self.qty) if self.qty is not None else None,
            "filled_qty": fmt(self.filled_qty),
            "filled_avg_price": (
                fmt(self.filled_avg_price) if self.filled_avg_price is not None else None
            ),
            "order_class": "",
            "order_type": "market",
            "type": "market",
            "side": self.side,
            "position_intent": "buy_to_open" if self.side == "buy" else "sell_to_close",
            "time_in_force": "day",
            "limit_price": None,
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "subtag": None,
            "source": None,
        }


class OrderBook:
    """Every order the exchange accepted. Not locked itself: the engine calls it under
    its lock."""

    def __init__(
        self,
        pricing: Pricing,
        account: Account,
        calendar: MarketCalendar,
        clock: Clock,
        settings: Callable[[], ExchangeSettings],
    ) -> None:
        self._pricing = pricing
        self._account = account
        self._calendar = calendar
        self._clock = clock
        self._settings = settings
        self.orders: list[SimOrder] = []
        self.by_id: dict[str, SimOrder] = {}
        self.by_client_id: dict[str, SimOrder] = {}

    def accept(self, order: SimOrder) -> JSON:
        self.orders.append(order)
        self.by_id[order.id] = order
        self.by_client_id[order.client_order_id] = order
        return order.to_json()

    # -- the order book over time ----------------------------------------------------------

    def settle(self) -> None:
        now = self._clock.now()
        for order in self.orders:
            if order.is_open:
                self._settle_order(order, now)

    def _settle_order(self, order: SimOrder, now: datetime) -> None:
        opens, closes = self._calendar.hours(order.trade_session)
        routed = max(order.submitted_at, opens)
        if order.status == "accepted" and routed <= now and routed < closes:
            order.status = "new"
            order.updated_at = routed
        first_at = routed + timedelta(seconds=order.fill_delay_seconds)
        if not order.first_fill_done and first_at <= now and first_at < closes:
            self._first_fill(order, first_at)
        remainder_at = order.remainder_at
        if (
            order.first_fill_done
            and order.is_open
            and remainder_at is not None
            and remainder_at <= now
            and remainder_at < closes
        ):
            assert order.target_qty is not None
            close = self._pricing.session_close(order.symbol, order.trade_session)
            if close is not None:
                price = self._pricing.slipped(close, order.side)
                self._fill(order, order.target_qty - order.filled_qty, price, remainder_at)
            order.status = "filled"
            order.updated_at = remainder_at
        if order.is_open and now >= closes:
            order.status = "expired"
            order.expired_at = closes
            order.updated_at = closes

    def _first_fill(self, order: SimOrder, at: datetime) -> None:
        close = self._pricing.session_close(order.symbol, order.trade_session)
        if close is None:
            return  # no close that session: the order cannot fill, and expires
        order.first_fill_done = True
        price = self._pricing.slipped(close, order.side)
        step = WHOLE if order.whole_shares else QTY_STEP
        if order.qty is not None:
            target = order.qty
        else:
            assert order.notional is not None
            target = (order.notional / price).quantize(QTY_STEP, ROUND_DOWN)
        if order.side == "sell":
            held = self._account.positions.get(order.symbol)
            target = min(target, held.qty if held else Decimal(0))
        order.target_qty = target
        part = target
        if order.partial_ratio is not None and order.partial_ratio < 1:
            part = (target * order.partial_ratio).quantize(step, ROUND_DOWN)
        if part > 0:
            self._fill(order, part, price, at)
            order.status = "filled" if part >= target else "partially_filled"
        if part < target and order.late_fill_seconds is not None:
            order.remainder_at = at + timedelta(seconds=order.late_fill_seconds)
        order.updated_at = at

    def fill_in_full(self, order: SimOrder, at: datetime) -> bool:
        """Fill the rest of an open order now, at its session's close, else today's
        price (with slippage), as if the market moved on; False when it cannot fill."""
        close = self._pricing.session_close(order.symbol, order.trade_session)
        if close is None:
            close = self._pricing.reference_price(order.symbol)
        if close is None:
            return False
        price = self._pricing.slipped(close, order.side)
        target = order.target_qty
        if target is None:
            if order.qty is not None:
                target = order.qty
            else:
                assert order.notional is not None
                target = (order.notional / price).quantize(QTY_STEP, ROUND_DOWN)
        rest = target - order.filled_qty
        if order.side == "sell":
            held = self._account.positions.get(order.symbol)
            rest = min(rest, held.qty if held else Decimal(0))
        if rest <= 0 and order.filled_qty == 0:
            return False  # a sell of nothing held: it stays open
        order.first_fill_done = True
        order.target_qty = order.filled_qty + max(rest, Decimal(0))
        order.remainder_at = None
        self._fill(order, rest, price, at)
        order.status = "filled"
        order.updated_at = at
        return True

    def _fill(self, order: SimOrder, qty: Decimal, price: Decimal, at: datetime) -> None:
        if qty <= 0:
            return
        account = self._account
        value = money(qty * price)
        if order.side == "buy":
            account.cash -= value
            held = account.positions.setdefault(order.symbol, Position(Decimal(0), Decimal(0)))
            total = held.qty + qty
            held.avg_price = ((held.qty * held.avg_price + qty * price) / total).quantize(
                AVG_STEP, ROUND_HALF_EVEN
            )
            held.qty = total
        else:
            held = account.positions[order.symbol]
            held.qty -= qty
            account.cash += value
            if held.qty == 0:
                del account.positions[order.symbol]
        order.filled_qty += qty
        order.filled_value += qty * price
        order.filled_avg_price = (order.filled_value / order.filled_qty).quantize(
            PRICE_STEP, ROUND_HALF_EVEN
        )
        order.filled_at = at
        order.updated_at = at

    # -- reservations ------------------------------------------------------------------------

    def _remaining_qty(self, order: SimOrder) -> Decimal:
        if order.target_qty is not None:
            return order.target_qty - order.filled_qty
        if order.qty is not None:
            return order.qty - order.filled_qty
        assert order.notional is not None
        price = self._pricing.estimated_price(order.symbol, order.side)
        if price is None or price == 0:
            return Decimal(0)
        return (order.notional / price).quantize(QTY_STEP, ROUND_DOWN)

    def _remaining_cost(self, order: SimOrder) -> Decimal:
        if order.target_qty is None and order.notional is not None:
            return order.notional
        price = self._pricing.estimated_price(order.symbol, order.side) or Decimal(0)
        return money(self._remaining_qty(order) * price)

    def buying_power(self) -> Decimal:
        """Cash less what open buys may still cost."""
        reserved = sum(
            (self._remaining_cost(o) for o in self.orders if o.is_open and o.side == "buy"),
            Decimal(0),
        )
        return max(self._account.cash - reserved, Decimal(0))

    def qty_available(self, symbol: str) -> Decimal:
        """The shares held less what open sells may still sell."""
        held = self._account.positions.get(symbol)
        reserved = sum(
            (
                self._remaining_qty(o)
                for o in self.orders
                if o.is_open and o.side == "sell" and o.symbol == symbol
            ),
            Decimal(0),
        )
        return max((held.qty if held else Decimal(0)) - reserved, Decimal(0))

    def has_open(self, symbol: str, side: str) -> bool:
        return any(o.is_open and o.symbol == symbol and o.side == side for o in self.orders)

    # -- reading and canceling ---------------------------------------------------------------

    def find(self, order_id: str) -> SimOrder:
        order = self.by_id.get(order_id.lower())
        if order is None:
            raise not_found("order not found")
        return order

    def cancel(self, order_id: str) -> None:
        """Cancel an open order (settled first, as every engine call is)."""
        self.settle()
        order = self.find(order_id)
        if not order.is_open:
            raise ApiError(422, 42210000, "order is not cancelable")
        now = self._clock.now()
        order.status = "canceled"
        order.canceled_at = now
        order.updated_at = now

    def cancel_all_json(self) -> list[JSON]:
        results: list[JSON] = []
        for order in self.orders:
            if order.is_open:
                self.cancel(order.id)
                results.append({"id": order.id, "status": 200, "body": order.to_json()})
        return results


class OrdersQuery:
    """GET /v2/orders's filters, read before the book is (outside the engine's lock)."""

    def __init__(self, query: Query) -> None:
        status = one(query, "status") or "open"
        if status not in ("open", "closed", "all"):
            raise unprocessable(f"invalid status: {status!r}")
        direction = one(query, "direction") or "desc"
        if direction not in ("asc", "desc"):
            raise unprocessable(f"invalid direction: {direction!r}")
        try:
            limit = int(one(query, "limit") or DEFAULT_ORDERS_LIMIT)
        except ValueError as error:
            raise unprocessable("invalid limit") from error
        if limit < 1:
            raise unprocessable("invalid limit")
        self.limit = min(limit, MAX_ORDERS_LIMIT)
        bounds: dict[str, datetime] = {}
        for name in ("after", "until"):
            text = one(query, name)
            if text:
                try:
                    bounds[name] = parse_instant(text, UTC)
                except ValueError as error:
                    raise unprocessable(f"invalid {name}: {text!r}") from error
        self.status = status
        self.direction = direction
        self.bounds = bounds
        self.symbols = {s.strip().upper() for s in (one(query, "symbols") or "").split(",") if s}
        self.side = one(query, "side")

    def select(self, orders: list[SimOrder]) -> list[JSON]:
        status, bounds, symbols, side = self.status, self.bounds, self.symbols, self.side
        selected = [
            o
            for o in orders
            if (status == "all" or (status == "open") == o.is_open)
            and ("after" not in bounds or o.submitted_at > bounds["after"])
            and ("until" not in bounds or o.submitted_at < bounds["until"])
            and (not symbols or o.symbol in symbols)
            and (not side or o.side == side)
        ]
        if self.direction == "desc":
            selected.reverse()
        return [o.to_json() for o in selected[: self.limit]]
