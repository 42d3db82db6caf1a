"""Orders at every stage: the intent the diff plans, the request sent, the broker's record."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from alchemiser.domain.values import ZERO, Frozen, Symbol


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class IntentKind(StrEnum):
    OPEN = "open"
    INCREASE = "increase"
    DECREASE = "decrease"
    EXIT = "exit"


class OrderIntent(Frozen):
    """One planned market order and why: the output of the diff, the input of risk."""

    client_order_id: str
    symbol: Symbol
    side: Side
    qty: Decimal
    ref_price: Decimal
    qty_step: Decimal
    kind: IntentKind
    current_weight: Decimal
    target_weight: Decimal
    reason: str

    @property
    def notional(self) -> Decimal:
        return self.qty * self.ref_price

    @property
    def fractional(self) -> bool:
        return self.qty_step < 1

    def with_qty(self, qty: Decimal) -> OrderIntent:
        return OrderIntent.trusted({**self.__dict__, "qty": qty})


def client_order_id(run_id: str, symbol: str, side: Side, leg: int = 0) -> str:
    """The deterministic order id: the same run, symbol, side and leg give the same id."""
    # join rather than an f-string: formatting a StrEnum member goes through Python-level
    # __format__, and the diff builds one id per order (a StrEnum joins as its value).
    return "-".join((run_id, side, symbol, str(leg)))


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)


class OrderRequest(Frozen):
    """A market, day order as sent to the broker."""

    client_order_id: str
    symbol: Symbol
    side: Side
    qty: Decimal


class OrderRecord(Frozen):
    """The broker's view of one order (or ours, for an order it refused outright)."""

    client_order_id: str
    symbol: Symbol
    side: Side
    qty: Decimal
    status: OrderStatus
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    broker_order_id: str | None = None
    submitted_at: datetime | None = None
    reject_reason: str | None = None


class Fill(Frozen):
    client_order_id: str
    symbol: Symbol
    side: Side
    qty: Decimal
    price: Decimal
    notional: Decimal
