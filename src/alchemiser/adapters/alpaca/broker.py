"""The Broker and MarketClock ports on Alpaca's Trading API, through alpaca-py.

Responses are read as raw JSON (alpaca-py's ``raw_data``) and mapped here, so a status
or field Alpaca adds later is handled conservatively instead of failing a model
validation mid-run: an unknown order status counts as still working.

Requests per run: the snapshot is three reads (account, positions, open orders), the
asset list one (cached), buying power one, each order one submission, and each round
of polling one list read whatever the number of orders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca.common.enums import Sort
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import ClosePositionRequest, GetOrdersRequest, MarketOrderRequest

from alchemiser.adapters.alpaca.transport import (
    BrokerAuthError,
    NotFound,
    Transport,
    as_list,
    as_mapping,
    harden,
    utc,
)
from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.market import NEW_YORK, MarketStatus
from alchemiser.domain.orders import OrderRecord, OrderRequest, OrderStatus, Side, run_of
from alchemiser.domain.values import ZERO, normalise_symbol
from alchemiser.errors import (
    BrokerError,
    BrokerRejected,
    BrokerTransient,
    BrokerUnknown,
    DuplicateOrder,
)

ORDERS_PAGE = 500
"""The most orders Alpaca lists in one response."""
ACTIVE_ACCOUNT = "ACTIVE"
NOT_CANCELABLE = "42210000"

_STATUS: Mapping[str, OrderStatus] = {
    "pending_new": OrderStatus.PENDING_NEW,
    "accepted": OrderStatus.ACCEPTED,
    "new": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "done_for_day": OrderStatus.DONE_FOR_DAY,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "replaced": OrderStatus.CANCELED,
    "pending_cancel": OrderStatus.PENDING_CANCEL,
    "rejected": OrderStatus.REJECTED,
    "pending_review": OrderStatus.PENDING_NEW,
    "held": OrderStatus.PENDING_NEW,
}
"""Alpaca's order states onto ours. Anything else (pending_replace, stopped, suspended,
calculated, accepted_for_bidding, a state added later) maps to ACCEPTED: still able to
fill, so waited for and cancelled at the deadline, never assumed finished."""


def _decimal(value: object, field: str) -> Decimal:
    if value is None or value == "":
        return ZERO
    try:
        number = Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError(f"{field} is not a number: {value!r}") from error
    if not number.is_finite():
        raise ValueError(f"{field} is not finite: {value!r}")
    return number


def _required_decimal(value: object, field: str) -> Decimal:
    """Cash and held quantities: a missing one is a malformed reply, never zero (a zero
    would shrink equity, and the plan would sell what the account holds)."""
    if value is None or value == "":
        raise ValueError(f"{field} is missing")
    return _decimal(value, field)


def _optional_decimal(value: object, field: str) -> Decimal | None:
    return None if value is None or value == "" else _decimal(value, field)


def order_record(raw: Mapping[str, Any]) -> OrderRecord:
    """One Alpaca order (JSON) as the product's OrderRecord."""
    status = _STATUS.get(str(raw["status"]), OrderStatus.ACCEPTED)
    notional = _optional_decimal(raw.get("notional"), "notional")
    filled_qty = _decimal(raw.get("filled_qty"), "filled_qty")
    qty = _optional_decimal(raw.get("qty"), "qty")
    return OrderRecord(
        client_order_id=str(raw["client_order_id"]),
        symbol=normalise_symbol(str(raw["symbol"])),
        side=Side(str(raw["side"])),
        qty=qty if qty is not None else filled_qty,
        status=status,
        filled_qty=filled_qty,
        filled_avg_price=_optional_decimal(raw.get("filled_avg_price"), "filled_avg_price"),
        notional=notional,
        broker_order_id=str(raw["id"]),
        submitted_at=utc(raw.get("submitted_at") or raw.get("created_at")),
        reject_reason=None if status is not OrderStatus.REJECTED else "rejected by the broker",
    )


class AlpacaBroker:
    """Implements ports.Broker and ports.MarketClock."""

    def __init__(
        self, client: TradingClient, transport: Transport, *, account_number: str | None = None
    ) -> None:
        harden(client, transport.session())
        self._client = client
        self._transport = transport
        self._account_number = account_number
        self._fractionable: frozenset[str] | None = None
        self._submitted_at: dict[str, Any] = {}

    def _read(self, fn: Callable[[], object], what: str) -> object:
        return self._transport.call(fn, what=what, idempotent=True)

    # -- account -----------------------------------------------------------------

    def _account(self) -> Mapping[str, Any]:
        try:
            account = as_mapping(self._read(self._client.get_account, "GET /v2/account"), "account")
        except ValueError as error:
            raise BrokerUnknown(f"GET /v2/account: {error}", broker_code="malformed") from error
        status = str(account.get("status", ""))
        blocked = [
            flag
            for flag in ("account_blocked", "trading_blocked")
            if bool(account.get(flag, False))
        ]
        if status != ACTIVE_ACCOUNT or blocked:
            raise BrokerRejected(
                f"the account cannot trade (status {status or 'unknown'}"
                + (f", {', '.join(blocked)}" if blocked else "")
                + ")",
                broker_code="account_not_active",
            )
        return account

    @staticmethod
    def _spendable(account: Mapping[str, Any]) -> Decimal:
        """Cash we may spend without borrowing: the least of cash, buying power and
        (margin accounts) non-marginable buying power."""
        values = [_required_decimal(account.get("cash"), "cash")]
        for field in ("buying_power", "non_marginable_buying_power"):
            if account.get(field) not in (None, ""):
                values.append(_decimal(account.get(field), field))
        return min(values)

    def snapshot(self, *, with_orders: bool = True) -> AccountSnapshot:
        try:
            account = self._account()
            positions = as_list(
                self._read(self._client.get_all_positions, "GET /v2/positions"), "positions"
            )
            open_orders = (
                as_list(
                    self._read(
                        lambda: self._client.get_orders(
                            GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=ORDERS_PAGE)
                        ),
                        "GET /v2/orders?status=open",
                    ),
                    "orders",
                )
                if with_orders
                else []
            )
            if len(open_orders) >= ORDERS_PAGE:
                raise BrokerRejected(
                    f"{len(open_orders)} or more open orders at the broker: too many to plan "
                    "around; cancel them and run again",
                    broker_code="too_many_open_orders",
                )
            return AccountSnapshot(
                cash=_required_decimal(account.get("cash"), "cash"),
                buying_power=self._spendable(account),
                positions=tuple(
                    Position(
                        symbol=normalise_symbol(str(p["symbol"])),
                        qty=_required_decimal(p.get("qty"), "qty"),
                        avg_entry_price=_optional_decimal(
                            p.get("avg_entry_price"), "avg_entry_price"
                        ),
                    )
                    for p in positions
                ),
                open_orders=tuple(self._remember(order_record(o)) for o in open_orders),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"account snapshot: malformed response ({type(error).__name__}: {error})",
                broker_code="malformed",
            ) from error

    def buying_power(self) -> Decimal:
        try:
            return self._spendable(self._account())
        except (TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/account: malformed response ({error})", broker_code="malformed"
            ) from error

    def fractionable(self, symbols: Sequence[str]) -> frozenset[str]:
        """One read of the whole active asset list (cached): the number of requests
        does not grow with the number of symbols."""
        if self._fractionable is None:
            listed = self._read(
                lambda: self._client.get(
                    "/assets", {"status": "active", "asset_class": "us_equity"}
                ),
                "GET /v2/assets",
            )
            if not isinstance(listed, list):
                raise BrokerUnknown("GET /v2/assets: malformed response", broker_code="malformed")
            assets: list[object] = listed
            fractionable = set()
            for asset in assets:
                if not isinstance(asset, Mapping) or not asset.get("tradable", False):
                    continue
                try:
                    symbol = normalise_symbol(str(asset.get("symbol", "")))
                except ValueError:
                    continue  # a symbol shape we never trade (warrants, units)
                if asset.get("fractionable", False):
                    fractionable.add(symbol)
            self._fractionable = frozenset(fractionable)
        return frozenset(s for s in symbols if s in self._fractionable)

    # -- orders ------------------------------------------------------------------

    def _remember(self, record: OrderRecord) -> OrderRecord:
        if record.submitted_at is not None:
            self._submitted_at.setdefault(record.client_order_id, record.submitted_at)
        return record

    def submit_order(self, request: OrderRequest) -> OrderRecord:
        """Submit once per attempt, always with the same client_order_id.

        A submission whose outcome is unknown (timeout, reset, 5xx, garbled reply) is
        looked up by client_order_id before anything else; only when the broker has
        no such order is it sent again. A duplicate-id refusal on a repeat of our own
        submission means the first one arrived: the order is looked up and returned.
        A duplicate on the first attempt is an earlier run's order: DuplicateOrder.
        """
        order = MarketOrderRequest(
            symbol=request.symbol,
            side=OrderSide.BUY if request.side is Side.BUY else OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            client_order_id=request.client_order_id,
            qty=None if request.qty is None else float(request.qty),
            notional=None if request.notional is None else float(request.notional),
        )
        what = f"POST /v2/orders {request.client_order_id}"
        attempts = 0
        maybe_delivered = False

        def attempt() -> OrderRecord:
            nonlocal attempts, maybe_delivered
            attempts += 1
            try:
                raw: object = self._transport.once(
                    lambda: self._client.submit_order(order), what=what, idempotent=False
                )
            except DuplicateOrder:
                if not maybe_delivered:
                    raise  # none of our attempts can have arrived: an earlier run's order
                found = self.get_order(request.client_order_id)
                if found is None:
                    raise
                return found
            except BrokerUnknown as unknown:
                maybe_delivered = True
                found = self._lookup_after_unknown(request.client_order_id, unknown)
                if found is not None:
                    return found
                # Never arrived: sending it again under the same id is safe.
                raise _Resend(str(unknown), broker_code=unknown.broker_code) from unknown
            if not isinstance(raw, Mapping):
                maybe_delivered = True
                found = self._lookup_after_unknown(
                    request.client_order_id,
                    BrokerUnknown(f"{what}: malformed response", broker_code="malformed"),
                )
                if found is not None:
                    return found
                raise _Resend(f"{what}: malformed response", broker_code="malformed")
            return self._remember(order_record(raw))

        try:
            return self._transport.call(attempt, what=what, idempotent=True)
        except _Resend as exhausted:
            raise BrokerUnknown(
                f"{what}: no confirmation after {attempts} attempt(s) ({exhausted})",
                broker_code=exhausted.broker_code,
            ) from exhausted

    def _lookup_after_unknown(
        self, client_order_id: str, unknown: BrokerUnknown
    ) -> OrderRecord | None:
        try:
            return self.get_order(client_order_id)
        except BrokerError as failure:
            raise BrokerUnknown(
                f"{unknown}; then the lookup by client_order_id failed too ({failure})",
                broker_code=unknown.broker_code,
            ) from failure

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        try:
            raw = self._read(
                lambda: self._client.get_order_by_client_id(client_order_id),
                f"GET /v2/orders:by_client_order_id {client_order_id}",
            )
        except NotFound:
            return None
        try:
            return self._remember(order_record(as_mapping(raw, "order")))
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"order {client_order_id}: malformed response ({error})", broker_code="malformed"
            ) from error

    def orders_of_run(self, run_id: str) -> list[OrderRecord]:
        """One list read of orders since the day before the run's trading date (its id
        starts with it), kept if their client_order_id carries this run's id."""
        try:
            day = datetime.strptime(run_id[:8], "%Y%m%d").replace(tzinfo=NEW_YORK)
        except ValueError:
            return []  # not a run id of ours: it cannot have placed orders
        listed = self._read(
            lambda: self._client.get_orders(
                GetOrdersRequest(
                    status=QueryOrderStatus.ALL,
                    limit=ORDERS_PAGE,
                    after=day - timedelta(days=1),
                    direction=Sort.DESC,
                )
            ),
            "GET /v2/orders?status=all",
        )
        try:
            return [
                self._remember(order_record(raw))
                for raw in as_list(listed, "orders")
                if isinstance(raw, Mapping) and run_of(str(raw.get("client_order_id"))) == run_id
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/orders: malformed response ({error})", broker_code="malformed"
            ) from error

    def get_orders(self, client_order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """One list read of all recent orders, filtered to these ids; an id not in it
        (more than a page of orders since) is looked up on its own."""
        wanted = set(client_order_ids)
        if not wanted:
            return {}
        known = [self._submitted_at[c] for c in wanted if c in self._submitted_at]
        after = min(known) - timedelta(minutes=1) if len(known) == len(wanted) else None
        listed = self._read(
            lambda: self._client.get_orders(
                GetOrdersRequest(
                    status=QueryOrderStatus.ALL,
                    limit=ORDERS_PAGE,
                    after=after,
                    direction=Sort.DESC,
                )
            ),
            "GET /v2/orders?status=all",
        )
        found: dict[str, OrderRecord] = {}
        try:
            for raw in as_list(listed, "orders"):
                if isinstance(raw, Mapping) and raw.get("client_order_id") in wanted:
                    record = self._remember(order_record(raw))
                    found[record.client_order_id] = record
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/orders: malformed response ({error})", broker_code="malformed"
            ) from error
        for client_order_id in sorted(wanted - set(found)):
            alone = self.get_order(client_order_id)
            if alone is not None:
                found[client_order_id] = alone
        return found

    def cancel_order(self, order: OrderRecord) -> None:
        """One attempt, even with the circuit breaker open: leaving an order working
        because the broker was flaky earlier is worse than one more request."""
        broker_id = order.broker_order_id
        if broker_id is None:
            current = self.get_order(order.client_order_id)
            if current is None or current.broker_order_id is None:
                return  # the broker never had it: nothing to cancel
            broker_id = current.broker_order_id
        try:
            self._transport.once(
                lambda: self._client.cancel_order_by_id(broker_id),
                what=f"DELETE /v2/orders/{order.client_order_id}",
                idempotent=True,
                force=True,
            )
        except NotFound:
            return
        except BrokerRejected as refused:
            # 422 "order is not cancelable": it finished first; later reads say how.
            if refused.broker_code != NOT_CANCELABLE or isinstance(refused, BrokerAuthError):
                raise

    def close_position(self, symbol: str, qty: Decimal) -> OrderRecord:
        """DELETE /v2/positions/{symbol}?qty=: one attempt (a repeat could sell twice);
        an unknown outcome is BrokerUnknown, and the position read by a later attempt
        says what happened."""
        what = f"DELETE /v2/positions/{symbol}"
        raw = self._transport.once(
            lambda: self._client.close_position(
                symbol, close_options=ClosePositionRequest(qty=format(qty, "f"))
            ),
            what=what,
            idempotent=False,
        )
        try:
            return self._remember(order_record(as_mapping(raw, "order")))
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"{what}: malformed response ({error})", broker_code="malformed"
            ) from error

    # -- market clock --------------------------------------------------------------

    def market_status(self) -> MarketStatus:
        raw = self._read(self._client.get_clock, "GET /v2/clock")
        try:
            clock = as_mapping(raw, "clock")
            now = utc(str(clock["timestamp"]))
            next_open = utc(str(clock["next_open"]))
            next_close = utc(str(clock["next_close"]))
            if now is None or next_open is None or next_close is None:
                raise ValueError("a timestamp is missing")
            return MarketStatus(
                at=now,
                is_open=bool(clock["is_open"]),
                next_open=next_open,
                next_close=next_close,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/clock: malformed response ({error})", broker_code="malformed"
            ) from error


class _Resend(BrokerTransient):
    """Internal: the broker has no such order, so it never arrived; the retry policy
    may send it again (same client_order_id). Surfaces as BrokerUnknown if it runs out."""
