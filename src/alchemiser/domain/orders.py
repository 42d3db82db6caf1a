"""Orders at every stage: the intent the diff plans, the request sent, the broker's record."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import model_validator

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


# ``YYYYMMDD-<10 hex>`` (see service.make_run_id), side, symbol, leg.
_OWN_ID = re.compile(r"^(\d{8}-[0-9a-f]{10})-(buy|sell)-([A-Z0-9.]+)-(\d+)$")
MAX_LEGS = 5
"""How many orders one run may place for one symbol and side (a retried run's later
legs top up what an earlier attempt's order left unfilled)."""


def is_own_order(client_order_id: str) -> bool:
    """Whether this product placed the order (its client_order_id has our shape)."""
    return _OWN_ID.match(client_order_id) is not None


def run_of(client_order_id: str) -> str | None:
    """The run id in one of our client_order_ids, or None for anybody else's."""
    match = _OWN_ID.match(client_order_id)
    return match.group(1) if match else None


def next_leg(client_order_id: str) -> str | None:
    """The id of the next leg for the same run, side and symbol; None after MAX_LEGS."""
    stem, _, leg = client_order_id.rpartition("-")
    if not stem or not leg.isdigit() or int(leg) + 1 >= MAX_LEGS:
        return None
    return f"{stem}-{int(leg) + 1}"


class OrderStatus(StrEnum):
    """The order states the product distinguishes. A broker's other states map onto
    these (adapters): anything still able to fill is not terminal."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.DONE_FOR_DAY,
        OrderStatus.REJECTED,
    }
)


class OrderRequest(Frozen):
    """A market, day order as sent to the broker: a quantity of shares, or (buys of
    fractionable assets) a dollar amount, never both."""

    client_order_id: str
    symbol: Symbol
    side: Side
    qty: Decimal | None = None
    notional: Decimal | None = None

    @model_validator(mode="after")
    def _qty_or_notional(self) -> OrderRequest:
        if (self.qty is None) == (self.notional is None):
            raise ValueError("an order needs exactly one of qty and notional")
        amount = self.qty if self.qty is not None else self.notional
        if amount is not None and amount <= ZERO:
            raise ValueError(f"order size must be positive, got {amount}")
        return self


class OrderRecord(Frozen):
    """The broker's view of one order (or ours, for an order it refused outright).

    ``qty`` is the quantity ordered; for a notional order it is what the plan expected
    (the broker fixes the real quantity when it fills) and ``notional`` is set.
    """

    client_order_id: str
    symbol: Symbol
    side: Side
    qty: Decimal
    status: OrderStatus
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    notional: Decimal | None = None
    broker_order_id: str | None = None
    submitted_at: datetime | None = None
    reject_reason: str | None = None

    @property
    def unfilled(self) -> bool:
        """Not filled in full: anything but FILLED (a notional order's quantity is only
        known once it fills, so the status, not the quantities, decides)."""
        return self.status is not OrderStatus.FILLED


class Fill(Frozen):
    client_order_id: str
    symbol: Symbol
    side: Side
    qty: Decimal
    price: Decimal
    notional: Decimal
