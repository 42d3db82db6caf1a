"""Orders at every stage: the intent the diff plans, the request sent, the broker's record."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import model_validator

from alchemiser.domain.values import ZERO, Frozen, Symbol
from alchemiser.errors import AlchemiserError


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
    return f"{id_stem(run_id, side)}{symbol}-{leg}"


FIRST_LEG = "-0"
"""What ends the first leg's id: ``id_stem(run_id, side) + symbol + FIRST_LEG`` is
``client_order_id(run_id, symbol, side)``."""


def id_stem(run_id: str, side: Side) -> str:
    """What every order id of ``run_id`` on ``side`` starts with, before the symbol (the
    diff joins it once per run and side, not once per order)."""
    # join rather than an f-string: formatting a StrEnum member goes through Python-level
    # __format__ (a StrEnum joins as its value).
    return "-".join((run_id, side, ""))


# ``<account>-YYYYMMDD-<10 hex>`` (see service.make_run_id), side, symbol, leg. The
# account's name is part of every id, so one account's run never takes another
# account's (or another tool's) orders for its own.
_OWN_ID = re.compile(
    r"^(?P<run>(?P<account>[A-Za-z0-9_.-]+)-(?P<day>\d{8})-[0-9a-f]{10})"
    r"-(?:buy|sell)-[A-Z0-9.]+-\d+$"
)
MAX_LEGS = 5
"""How many orders one run may place for one symbol and side (a retried run's later
legs top up what an earlier attempt's order left unfilled)."""


def is_own_order(client_order_id: str, account: str) -> bool:
    """Whether this product placed the order for ``account`` (its client_order_id has
    our shape and names that account)."""
    match = _OWN_ID.match(client_order_id)
    return match is not None and match.group("account") == account


def run_of(client_order_id: str) -> str | None:
    """The run id in one of our client_order_ids, or None for anybody else's."""
    match = _OWN_ID.match(client_order_id)
    return match.group("run") if match else None


_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+-(?P<day>\d{8})-[0-9a-f]{10}$")


def run_day(run_id: str) -> str | None:
    """The trading date (``YYYYMMDD``) a run id names, or None for a malformed one."""
    match = _RUN_ID.match(run_id)
    return match.group("day") if match else None


def next_leg(client_order_id: str) -> str | None:
    """The id of the next leg for the same run, side and symbol; None after MAX_LEGS."""
    stem, _, leg = client_order_id.rpartition("-")
    if not stem or not leg.isdigit() or int(leg) + 1 >= MAX_LEGS:
        return None
    return f"{stem}-{int(leg) + 1}"


def assign_legs(
    intents: Sequence[OrderIntent], taken: Collection[str]
) -> tuple[list[OrderIntent], list[AlchemiserError]]:
    """Each intent under the first leg of its id that no earlier attempt of the run took
    (``taken``): a retry never re-sends an id the broker already has. An intent whose
    MAX_LEGS legs are all taken is not placed; the error says so."""
    placed: list[OrderIntent] = []
    refused: list[AlchemiserError] = []
    for intent in intents:
        client_order_id: str | None = intent.client_order_id
        while client_order_id is not None and client_order_id in taken:
            client_order_id = next_leg(client_order_id)
        if client_order_id is None:
            refused.append(
                AlchemiserError(
                    f"{intent.side.value} {intent.symbol}: this run already placed {MAX_LEGS} "
                    "orders for it; not placing another",
                    code="TOO_MANY_LEGS",
                )
            )
        elif client_order_id == intent.client_order_id:
            placed.append(intent)
        else:
            placed.append(
                OrderIntent.trusted({**intent.__dict__, "client_order_id": client_order_id})
            )
    return placed, refused


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
