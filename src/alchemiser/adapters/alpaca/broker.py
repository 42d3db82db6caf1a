"""The Broker and MarketClock ports on Alpaca's Trading API, through alpaca-py's REST
client (see clients.py): queries and bodies are built here as plain dicts.

Responses are read as raw JSON and mapped here, so a status or field Alpaca adds
later is handled conservatively instead of failing a model validation mid-run: an
unknown order status counts as still working.

Requests per run: the snapshot is three reads (account, positions, open orders), the
asset list one (cached), buying power one, each order one submission, and each round
of polling one list read whatever the number of orders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from alchemiser.adapters.alpaca.transport import (
    NotFound,
    Transport,
    as_list,
    as_mapping,
    harden,
    utc,
)
from alchemiser.domain.account import AccountSnapshot, Position, UnmanagedPosition
from alchemiser.domain.market import NEW_YORK, MarketStatus
from alchemiser.domain.orders import (
    OrderRecord,
    OrderRequest,
    OrderStatus,
    Side,
    run_day,
    run_of,
)
from alchemiser.domain.values import ZERO, normalise_symbol
from alchemiser.errors import (
    AccountMismatch,
    BrokerAuthError,
    BrokerError,
    BrokerRejected,
    BrokerTransient,
    BrokerUnknown,
    DataError,
    DataErrorKind,
    DuplicateOrder,
)

if TYPE_CHECKING:
    from alpaca.common.rest import RESTClient

log = logging.getLogger(__name__)

ORDERS_PAGE = 500
"""The most orders Alpaca lists in one response."""
MAX_ORDER_PAGES = 20
"""Pages of orders read to find a run's orders (10,000 orders in two days)."""
SNAPSHOT_READS = 3
"""How many times a snapshot is read before an inconsistent one fails the run."""
EQUITY_CLASS = "us_equity"
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


def orders_query(
    status: str,
    *,
    after: datetime | None = None,
    until: datetime | None = None,
    newest_first: bool = False,
) -> dict[str, str | int]:
    """GET /v2/orders's query, as alpaca-py's GetOrdersRequest writes it: these keys in
    this order, times as RFC 3339 (a naive time is UTC)."""
    query: dict[str, str | int] = {"status": status, "limit": ORDERS_PAGE}
    if after is not None:
        query["after"] = _rfc3339(after)
    if until is not None:
        query["until"] = _rfc3339(until)
    if newest_first:
        query["direction"] = "desc"
    return query


def _order_id(broker_id: str) -> str:
    """A broker order id as a path segment: a UUID in its canonical form, else a
    ValueError (an id not shaped as documented) and no request, as with alpaca-py."""
    return str(UUID(broker_id))


def _rfc3339(instant: datetime) -> str:
    return (instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)).isoformat()


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


def _instant(raw: Mapping[str, Any]) -> datetime:
    """The earliest time an order carries (submitted or created): a page boundary at it
    cannot pass over an order, whichever of the two the broker sorts and filters by."""
    found = [utc(raw.get(key)) for key in ("submitted_at", "created_at")]
    known = [instant for instant in found if instant is not None]
    if not known:
        raise ValueError("an order without submitted_at or created_at")
    return min(known)


def _order_states(orders: Sequence[OrderRecord]) -> dict[str, tuple[OrderStatus, Decimal]]:
    return {o.client_order_id: (o.status, o.filled_qty) for o in orders}


def _positions(
    raw_positions: Sequence[Any],
) -> tuple[tuple[Position, ...], tuple[UnmanagedPosition, ...]]:
    """US equities the product can trade, and everything else (crypto, options, symbols
    of shapes it does not know), which it leaves alone."""
    managed: list[Position] = []
    unmanaged: list[UnmanagedPosition] = []
    for raw in raw_positions:
        position = as_mapping(raw, "position")
        qty = _required_decimal(position.get("qty"), "qty")
        market_value = _optional_decimal(position.get("market_value"), "market_value")
        asset_class = str(position.get("asset_class") or EQUITY_CLASS)
        text = str(position["symbol"])
        try:
            symbol = normalise_symbol(text) if asset_class == EQUITY_CLASS else None
        except ValueError:
            symbol = None
        if symbol is None:
            unmanaged.append(
                UnmanagedPosition(
                    symbol=text[:64], qty=qty, asset_class=asset_class, market_value=market_value
                )
            )
            continue
        managed.append(
            Position(
                symbol=symbol,
                qty=qty,
                avg_entry_price=_optional_decimal(
                    position.get("avg_entry_price"), "avg_entry_price"
                ),
                market_value=market_value,
                current_price=_optional_decimal(position.get("current_price"), "current_price"),
            )
        )
    return tuple(managed), tuple(unmanaged)


class AlpacaBroker:
    """Implements ports.Broker and ports.MarketClock."""

    def __init__(
        self, client: RESTClient, transport: Transport, *, account_number: str | None = None
    ) -> None:
        harden(client, transport.session())
        self._client = client
        self._transport = transport
        self._account_number = account_number
        """The config's pin: every account read must be this account (never logged)."""
        self._fractionable: frozenset[str] | None = None
        self._submitted_at: dict[str, Any] = {}

    def _read(self, fn: Callable[[], object], what: str) -> object:
        return self._transport.call(fn, what=what, idempotent=True)

    # -- account -----------------------------------------------------------------

    def _account(self) -> Mapping[str, Any]:
        try:
            account = as_mapping(
                self._read(partial(self._client.get, "/account"), "GET /v2/account"), "account"
            )
        except ValueError as error:
            raise BrokerUnknown(f"GET /v2/account: {error}", broker_code="malformed") from error
        if self._account_number is not None and (
            str(account.get("account_number", "")) != self._account_number
        ):
            # Neither number is said: account numbers stay out of logs and reports.
            raise AccountMismatch(
                "the keys reach a different account than the config's account_number pin: "
                "refusing to trade (check the secret and the pin)"
            )
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

    def _open_orders(self) -> list[OrderRecord]:
        listed = as_list(
            self._read(
                lambda: self._client.get("/orders", orders_query("open")),
                "GET /v2/orders?status=open",
            ),
            "orders",
        )
        if len(listed) >= ORDERS_PAGE:
            raise BrokerRejected(
                f"{len(listed)} or more open orders at the broker: too many to plan "
                "around; cancel them and run again",
                broker_code="too_many_open_orders",
            )
        return [self._remember(order_record(o)) for o in listed]

    def _read_snapshot(self, with_orders: bool) -> tuple[AccountSnapshot, bool]:
        """Open orders, positions, the account, then the open orders again: a fill
        between the reads shows as an order that changed (second value False)."""
        before = self._open_orders() if with_orders else []
        raw_positions = as_list(
            self._read(partial(self._client.get, "/positions"), "GET /v2/positions"), "positions"
        )
        account = self._account()
        after = self._open_orders() if with_orders else []
        positions, unmanaged = _positions(raw_positions)
        snapshot = AccountSnapshot(
            cash=_required_decimal(account.get("cash"), "cash"),
            buying_power=self._spendable(account),
            positions=positions,
            open_orders=tuple(after),
            unmanaged=unmanaged,
            equity=_required_decimal(account.get("equity"), "equity"),
        )
        return snapshot, _order_states(before) == _order_states(after)

    def snapshot(self, *, with_orders: bool = True) -> AccountSnapshot:
        """A snapshot whose figures agree (see ``AccountSnapshot.inconsistency``) and
        during which no open order changed, read up to ``SNAPSHOT_READS`` times; else a
        DataError SNAPSHOT_INCONSISTENT and the run plans nothing. Without orders (the
        account after a run, for the report) one read, unchecked."""
        problem = ""
        for _ in range(SNAPSHOT_READS if with_orders else 1):
            try:
                snapshot, settled = self._read_snapshot(with_orders)
            except (KeyError, TypeError, ValueError) as error:
                raise BrokerUnknown(
                    f"account snapshot: malformed response ({type(error).__name__}: {error})",
                    broker_code="malformed",
                ) from error
            if not with_orders:
                return snapshot
            inconsistency = snapshot.inconsistency()
            if settled and inconsistency is None:
                return snapshot
            problem = inconsistency or "an open order changed while the account was read"
            log.warning("account snapshot inconsistent: reading again", extra={"reason": problem})
        raise DataError(
            f"the account snapshot did not add up in {SNAPSHOT_READS} reads ({problem}): "
            "nothing was planned",
            kind=DataErrorKind.SNAPSHOT_INCONSISTENT,
        )

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
        # The body alpaca-py's MarketOrderRequest would send, but with quantities as exact
        # decimal strings (Alpaca accepts them): a float could send 0.30000000000000004.
        body: dict[str, str] = {
            "symbol": request.symbol,
            "side": request.side.value,
            "type": "market",
            "time_in_force": "day",
            "client_order_id": request.client_order_id,
        }
        if request.qty is not None:
            body["qty"] = format(request.qty, "f")
        if request.notional is not None:
            body["notional"] = format(request.notional, "f")
        what = f"POST /v2/orders {request.client_order_id}"
        attempts = 0
        maybe_delivered = False

        def attempt() -> OrderRecord:
            nonlocal attempts, maybe_delivered
            attempts += 1
            try:
                raw: object = self._transport.once(
                    lambda: self._client.post("/orders", body), what=what, idempotent=False
                )
            except DuplicateOrder as duplicate:
                if not maybe_delivered:
                    raise  # none of our attempts can have arrived: somebody else's order
                found = self._lookup_after_unknown(
                    request.client_order_id, BrokerUnknown(str(duplicate))
                )
                if found is None:
                    # Our own lost submission, most likely, that the broker's reads do
                    # not show yet: its outcome is unknown, never "somebody else's".
                    raise BrokerUnknown(
                        f"{what}: refused as a duplicate after our own submission was lost, "
                        "and the broker does not show the order",
                        broker_code="duplicate_not_found",
                    ) from duplicate
                return found
            except BrokerUnknown as unknown:
                maybe_delivered = True
                found = self._lookup_after_unknown(request.client_order_id, unknown)
                if found is not None:
                    return found
                # Never arrived: sending it again under the same id is safe.
                raise _Resend(str(unknown), broker_code=unknown.broker_code) from unknown
            try:
                return self._remember(order_record(as_mapping(raw, "order")))
            except (KeyError, TypeError, ValueError) as error:
                # A 2xx that is not an order: it may well have been placed. Its outcome
                # is unknown, so it is looked up, never taken for a duplicate.
                maybe_delivered = True
                malformed = f"{what}: malformed response ({type(error).__name__}: {error})"
                found = self._lookup_after_unknown(
                    request.client_order_id, BrokerUnknown(malformed, broker_code="malformed")
                )
                if found is not None:
                    return found
                raise _Resend(malformed, broker_code="malformed") from error

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
                lambda: self._client.get(
                    "/orders:by_client_order_id", {"client_order_id": client_order_id}
                ),
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

    def orders_of_run(self, run_id: str, *, force: bool = False) -> list[OrderRecord]:
        """Every order since the day before the run's trading date (its id starts with
        it), kept if its client_order_id carries this run's id. Read newest first, page
        by page: another tool's busy day must not push this run's orders out of sight
        (every rerun protection rests on this read)."""
        day_text = run_day(run_id)
        if day_text is None:
            return []  # not a run id of ours: it cannot have placed orders
        day = datetime.strptime(day_text, "%Y%m%d").replace(tzinfo=NEW_YORK)
        try:
            return [
                self._remember(order_record(raw))
                for raw in self._orders_since(day - timedelta(days=1), force=force)
                if run_of(str(raw.get("client_order_id"))) == run_id
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/orders: malformed response ({error})", broker_code="malformed"
            ) from error

    def _orders_since(self, after: datetime, *, force: bool) -> list[Mapping[str, Any]]:
        """All orders submitted after ``after``: pages of ORDERS_PAGE, each ending where
        the last began (a microsecond of overlap, so orders sharing the boundary's
        instant are not lost; duplicates are dropped by id). More than MAX_ORDER_PAGES
        pages, or a full page with nothing new, fails closed."""
        seen: dict[str, Mapping[str, Any]] = {}
        until: datetime | None = None
        what = "GET /v2/orders?status=all"
        for _ in range(MAX_ORDER_PAGES):
            query = orders_query("all", after=after, until=until, newest_first=True)
            read = partial(self._client.get, "/orders", query)
            listed = (
                self._transport.once(read, what=what, idempotent=True, force=True)
                if force
                else self._read(read, what)
            )
            page = [as_mapping(raw, "order") for raw in as_list(listed, "orders")]
            fresh = [raw for raw in page if str(raw["id"]) not in seen]
            seen.update((str(raw["id"]), raw) for raw in fresh)
            if len(page) < ORDERS_PAGE:
                return list(seen.values())
            if not fresh:
                raise BrokerRejected(
                    f"more than {ORDERS_PAGE} orders submitted at one instant since "
                    f"{after:%Y-%m-%d}: this run's orders cannot be read in full, so nothing "
                    "is traded",
                    broker_code="orders_unpageable",
                )
            until = min(_instant(raw) for raw in page) + timedelta(microseconds=1)
        raise BrokerRejected(
            f"more than {MAX_ORDER_PAGES * ORDERS_PAGE} orders since {after:%Y-%m-%d}: this "
            "run's orders cannot be read in full, so nothing is traded",
            broker_code="too_many_orders",
        )

    def get_orders(self, client_order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """One list read of all recent orders, filtered to these ids; an id not in it
        (more than a page of orders since) is looked up on its own."""
        wanted = set(client_order_ids)
        if not wanted:
            return {}
        known = [self._submitted_at[c] for c in wanted if c in self._submitted_at]
        after = min(known) - timedelta(minutes=1) if len(known) == len(wanted) else None
        listed = self._read(
            lambda: self._client.get(
                "/orders", orders_query("all", after=after, newest_first=True)
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

    def working_orders(self) -> list[OrderRecord]:
        """Every open order at the broker, in one read that goes out even with the
        circuit breaker open (what is found is cancelled before a run ends)."""
        listed = self._transport.once(
            lambda: self._client.get("/orders", orders_query("open")),
            what="GET /v2/orders?status=open",
            idempotent=True,
            force=True,
        )
        try:
            return [self._remember(order_record(o)) for o in as_list(listed, "orders")]
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/orders: malformed response ({error})", broker_code="malformed"
            ) from error

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
                lambda: self._client.delete(f"/orders/{_order_id(broker_id)}"),
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
            lambda: self._client.delete(f"/positions/{symbol}", {"qty": format(qty, "f")}),
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
        raw = self._read(partial(self._client.get, "/clock"), "GET /v2/clock")
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
