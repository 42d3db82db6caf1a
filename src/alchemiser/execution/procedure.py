"""The order-placement procedure: sells, wait for fills, size and place buys, wait, tidy up.

Written against the Broker and Clock ports only, so it runs the same against the
simulated broker, a real broker, and in tests with a manual clock. Every order keeps
the client_order_id the plan gave it (a leg no earlier attempt of the run took).
Before the first order the run's orders are read once more: one this attempt did not
see means another attempt is trading, and nothing is sent (CONCURRENT_ATTEMPT). A
duplicate-id refusal means the same. An outcome the broker cannot confirm, or a refusal
of the credentials, stops the run before anything else is sent; whatever of this
attempt may still be working is cancelled before it ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, NoReturn

from pydantic import Field

from alchemiser.domain.decisions import Adjustment
from alchemiser.domain.orders import (
    Fill,
    OrderIntent,
    OrderRecord,
    OrderRequest,
    OrderStatus,
    Side,
    run_of,
)
from alchemiser.domain.values import ZERO, Frozen, floor_to_step, to_cents
from alchemiser.errors import (
    AlchemiserError,
    BrokerAuthError,
    BrokerError,
    BrokerRejected,
    BrokerUnknown,
    CircuitOpen,
    DataError,
    DataErrorKind,
    DuplicateOrder,
)
from alchemiser.portfolio.diff import fit_buys_to_cash
from alchemiser.ports import Broker, Clock

BPS = Decimal(10_000)
CENT = Decimal("0.01")
MIN_NOTIONAL = Decimal(1)
"""The smallest dollar order a broker takes; a smaller fractional buy goes as shares."""
CONCURRENT_ATTEMPT = "CONCURRENT_ATTEMPT"


class ExecutionPolicy(Frozen):
    fill_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    """How long to wait for each leg (sells, then buys) to fill before moving on."""
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    price_tolerance_bps: Decimal = Field(default=Decimal(50), ge=0, le=1000)
    """Least headroom kept when sizing buys from released cash, for prices moving against
    us; the plan's cash buffer counts towards it."""
    cancel_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """How long to wait for cancellations to be confirmed (end of run, and our own
    earlier orders cancelled before trading)."""


@dataclass
class ExecutionResult:
    orders: list[OrderRecord] = field(default_factory=list)
    errors: list[AlchemiserError] = field(default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fills(self) -> list[Fill]:
        """A fill for each order that filled, in order. Built without re-validation:
        each field is the validated order's own, or a Decimal computed from them."""
        return [
            _new_fill(
                {
                    "client_order_id": o.client_order_id,
                    "symbol": o.symbol,
                    "side": o.side,
                    "qty": o.filled_qty,
                    "price": o.filled_avg_price,
                    "notional": to_cents(o.filled_qty * o.filled_avg_price),
                }
            )
            for o in self.orders
            if o.filled_qty > ZERO and o.filled_avg_price is not None
        ]


_new_fill = Fill.trusted


class _Halt(Exception):
    """Internal: an outcome we cannot confirm; stop sending orders."""


def _request(intent: OrderIntent) -> OrderRequest:
    """Buys of fractionable assets go as dollar amounts (the broker sizes them at its
    price); everything else, and every sell, as shares (a sell knows what is held)."""
    qty: Decimal | None = intent.qty
    notional = None
    if intent.side is Side.BUY and intent.fractional:
        # Down to the cent: a buy never spends more than the dollars risk approved.
        dollars = (intent.qty * intent.ref_price).quantize(CENT, ROUND_DOWN)
        if dollars >= MIN_NOTIONAL:
            qty, notional = None, dollars
    fields: dict[str, Any] = {"client_order_id": intent.client_order_id, "symbol": intent.symbol}
    fields.update(side=intent.side, qty=qty, notional=notional)
    # From the validated intent, a positive size is all the request's validation checks.
    positive = notional is not None or (qty is not None and qty > ZERO)
    return OrderRequest.trusted(fields) if positive else OrderRequest(**fields)


def _rejected(request: OrderRequest, intent: OrderIntent, reason: str) -> OrderRecord:
    return OrderRecord(
        client_order_id=request.client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
        notional=request.notional,
        status=OrderStatus.REJECTED,
        reject_reason=reason,
    )


class _Run:
    def __init__(
        self,
        broker: Broker,
        clock: Clock,
        policy: ExecutionPolicy,
        deadline: float | None,
        run_id: str = "",
    ) -> None:
        self.broker = broker
        self.run_id = run_id
        self.others: list[OrderRecord] = []
        """Another attempt's working orders met under our ids: cancelled at the end."""
        self.closing: set[str] = set()
        """Symbols whose close-position outcome stayed unknown: the broker named that
        order, so only the open-order list can find it."""
        self.clock = clock
        self.policy = policy
        self.deadline = deadline
        self.result = ExecutionResult()
        self.records: dict[str, OrderRecord] = {}
        self.expected_qty: dict[str, Decimal] = {}
        self.lookup_failed: set[str] = set()
        self.unresolved: list[OrderRecord] = []
        """Submissions whose outcome stayed unknown: cancelled at the end, in case."""

    def _keep(self, record: OrderRecord) -> None:
        """Store the broker's latest view; a notional order's ``qty`` is the plan's
        estimate (what filled is in ``filled_qty``)."""
        expected = self.expected_qty.get(record.client_order_id)
        if expected is not None and record.notional is not None and record.qty != expected:
            record = OrderRecord.trusted({**record.__dict__, "qty": expected})
        self.records[record.client_order_id] = record

    def _halt_with(self, error: AlchemiserError) -> NoReturn:
        self.result.errors.append(error)
        raise _Halt from error

    def check_alone(self, earlier: Sequence[OrderRecord]) -> None:
        """Read this run's orders once more, before the first submission and again before
        the buys: an order the plan did not start from (a new id, or an earlier one that
        changed) and that this attempt did not place was placed or moved by another
        attempt of this run trading right now. Stop without placing more. An order of
        ours that somebody else cancelled says the same."""
        seen = {o.client_order_id: (o.status, o.filled_qty) for o in earlier}
        try:
            now = self.broker.orders_of_run(self.run_id)
        except BrokerError as failure:
            self._halt_with(failure)
        for order in now:
            if order.client_order_id in self.records:
                self._keep(order)  # our own, as the broker shows it now
        moved = sorted(
            o.client_order_id
            for o in now
            if o.client_order_id not in self.records
            and seen.get(o.client_order_id) != (o.status, o.filled_qty)
        )
        moved += sorted(
            r.client_order_id
            for r in self.records.values()
            if r.status is OrderStatus.CANCELED and r.broker_order_id
        )
        if moved:
            self._halt_with(
                AlchemiserError(
                    f"another attempt of this run is trading ({', '.join(moved[:5])} appeared "
                    "or changed since this attempt read the account): nothing was placed",
                    code=CONCURRENT_ATTEMPT,
                )
            )

    def submit(self, intents: Sequence[OrderIntent], buys: _BuyGuard | None = None) -> list[str]:
        placed = []
        for index, intent in enumerate(intents):
            if self.deadline is not None and self.clock.monotonic() >= self.deadline:
                self._halt_with(
                    AlchemiserError(
                        f"out of time: {len(intents) - index} {intent.side.value} order(s) "
                        f"not placed, from {intent.symbol} on",
                        code="OUT_OF_TIME",
                    )
                )
            order = intent if buys is None else buys.fit(intent)
            if order is None:
                continue
            if order.side is Side.SELL and order.qty_step >= 1 and order.qty % 1:
                placed += self._exit_with_residue(order)
                continue
            record = self._submit_one(order)
            self._keep(record)
            placed.append(record.client_order_id)
        return placed

    def _exit_with_residue(self, intent: OrderIntent) -> list[str]:
        """A fractional holding of an asset the broker trades only in whole shares: the
        whole shares go as a normal order, the fraction through the close-position
        route (which takes fractions), and the report says so."""
        whole = floor_to_step(intent.qty, Decimal(1))
        residue = intent.qty - whole
        placed = []
        if whole > ZERO:
            record = self._submit_one(intent.with_qty(whole))
            self._keep(record)
            placed.append(record.client_order_id)
        try:
            closing = self.broker.close_position(intent.symbol, residue)
        except BrokerAuthError as refused:
            self._halt_with(refused)
        except BrokerRejected as rejection:
            self.result.errors.append(rejection)
            return placed
        except BrokerError as failure:
            self.closing.add(intent.symbol)
            self._halt_with(failure)
        self._keep(closing)
        self.result.notes.append(
            f"{intent.symbol} trades in whole shares only: sold {whole} as "
            f"{intent.client_order_id} and closed the remaining {residue} through the broker's "
            f"close-position route (order {closing.client_order_id})"
        )
        return [*placed, closing.client_order_id]

    def _submit_one(self, intent: OrderIntent) -> OrderRecord:
        request = _request(intent)
        self.expected_qty[request.client_order_id] = intent.qty
        try:
            return self.broker.submit_order(request)
        except DuplicateOrder:
            # The plan's ids are legs no earlier attempt had taken when the account was
            # read: somebody took this one since, so another attempt is trading.
            existing = self._lookup(request.client_order_id)
            if existing is None:
                # Refused as a duplicate, yet not to be found: its outcome is unknown.
                self._unknown(request, intent)
                self._halt_with(
                    BrokerUnknown(
                        f"{request.client_order_id}: the broker reports a duplicate id but "
                        "has no such order"
                    )
                )
            # Not ours, so not in this attempt's orders (its fills are the other
            # attempt's); if still working it is cancelled with ours at the end (the
            # other attempt, finding its order cancelled, stops too).
            if not existing.status.terminal:
                self.others.append(existing)
            self.result.notes.append(
                f"{request.client_order_id} was placed by another attempt of this run "
                f"({existing.status.value}, filled {existing.filled_qty})"
            )
            self._halt_with(
                AlchemiserError(
                    f"{request.client_order_id} was placed by another attempt of this run "
                    "while this one was planning; stopping rather than trade twice",
                    code=CONCURRENT_ATTEMPT,
                )
            )
        except BrokerAuthError as refused:
            self._halt_with(refused)
        except BrokerRejected as rejection:
            self.result.errors.append(rejection)
            return _rejected(request, intent, str(rejection))
        except BrokerError as failure:
            existing = self._lookup(request.client_order_id)
            if existing is not None:
                return existing
            self._unknown(request, intent)
            self._halt_with(failure)

    def _unknown(self, request: OrderRequest, intent: OrderIntent) -> None:
        """A submission that may have arrived: cancelled at the end, in case."""
        self.unresolved.append(
            _rejected(request, intent, "outcome unknown").model_copy(
                update={"status": OrderStatus.PENDING_NEW, "reject_reason": None}
            )
        )

    def _lookup(self, client_order_id: str) -> OrderRecord | None:
        try:
            return self.broker.get_order(client_order_id)
        except BrokerError as failure:
            self._note_lookup_failure(client_order_id, failure)
            return None

    def _note_lookup_failure(self, client_order_id: str, failure: BrokerError) -> None:
        # One error per order: polling a flaky broker must not flood the report.
        if client_order_id not in self.lookup_failed:
            self.lookup_failed.add(client_order_id)
            self.result.errors.append(failure)

    def poll_until_final(
        self, client_order_ids: Sequence[str], timeout: float
    ) -> dict[str, OrderRecord]:
        """Read these orders (one request a round) until all are final, ``timeout``
        passes or the run's hard deadline arrives; returns the latest view of each."""
        deadline = self.clock.monotonic() + timeout
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        latest: dict[str, OrderRecord] = {}
        pending = list(client_order_ids)
        first = True
        while pending:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                break
            # The first read is immediate: market orders at the open usually fill (and
            # cancels usually land) within the round trip.
            if not first:
                self.clock.sleep(min(self.policy.poll_interval_seconds, remaining))
            first = False
            try:
                found = self.broker.get_orders(pending)
            except CircuitOpen as failure:
                # The adapter gave up on the broker: polling on is pointless.
                self.result.errors.append(failure)
                break
            except BrokerError as failure:
                for client_order_id in pending:
                    self._note_lookup_failure(client_order_id, failure)
                continue
            latest.update(found)
            pending = [c for c in pending if c not in found or not found[c].status.terminal]
        return latest

    def wait(self, client_order_ids: Sequence[str], timeout: float | None = None) -> None:
        """Poll until every order is final, the leg's fill timeout passes, or the run's
        hard deadline (what the Lambda has left, less time to tidy up) arrives."""
        pending = [c for c in client_order_ids if not self.records[c].status.terminal]
        if not pending:
            return
        latest = self.poll_until_final(
            pending, self.policy.fill_timeout_seconds if timeout is None else timeout
        )
        for record in latest.values():
            self._keep(record)

    def _still_working(self) -> list[OrderRecord]:
        """What this attempt placed, or may have placed, that may still fill. Where an
        outcome stayed unknown, the run's orders and the broker's open-order list are
        read once each, past the circuit breaker: an order every lookup missed is found
        (filled, it joins the report; working, it is cancelled), and so is a close of a
        fractional residue, under the id the broker gave it."""
        working = {
            r.client_order_id: r
            for r in self.records.values()
            if not r.status.terminal and r.broker_order_id
        }
        unknown = {r.client_order_id for r in self.unresolved} - set(working)
        if unknown and self.run_id:
            try:
                for order in self.broker.orders_of_run(self.run_id, force=True):
                    if order.client_order_id in unknown:
                        self._keep(order)
                        if not order.status.terminal:
                            working[order.client_order_id] = order
            except BrokerError as failure:
                self.result.errors.append(failure)
        if unknown or self.closing:
            wanted = unknown
            try:
                listed = self.broker.working_orders()
            except BrokerError as failure:
                self.result.errors.append(failure)
                listed = []
            for order in listed:
                residue_close = (
                    order.symbol in self.closing
                    and order.side is Side.SELL
                    and run_of(order.client_order_id) is None
                )
                if order.client_order_id in wanted or residue_close:
                    working[order.client_order_id] = order
                    self._keep(order)
        return list(working.values())

    def cancel_open(self) -> None:
        """Cancel what may still be working (found through the open-order list where an
        outcome stayed unknown), read the final states (bounded), and report what would
        not stop."""
        open_orders = self._still_working()
        listed = {o.client_order_id for o in open_orders}
        # An unknown submission the run's orders showed as finished needs no cancel.
        unseen = [r for r in self.unresolved if r.client_order_id not in self.records]
        for other in self.others:
            try:
                self.broker.cancel_order(other)
            except BrokerError as failure:
                self.result.errors.append(failure)
                continue
            self.result.notes.append(
                f"cancelled {other.client_order_id}, another attempt's order still working"
            )
        for record in [*open_orders, *(r for r in unseen if r.client_order_id not in listed)]:
            try:
                self.broker.cancel_order(record)
            except BrokerError as failure:
                self.result.errors.append(failure)
                continue
            if record.client_order_id in listed:
                # Asked, not yet confirmed: what a later read shows replaces this.
                self._keep(record.model_copy(update={"status": OrderStatus.PENDING_CANCEL}))
                self.result.notes.append(
                    f"cancelled {record.client_order_id} ({record.side.value} {record.symbol}), "
                    "still working at the end of the run"
                )
        if not open_orders:
            return
        # Not bounded by the run deadline: cancelling is what that margin is for.
        saved, self.deadline = self.deadline, None
        self.wait([r.client_order_id for r in open_orders], self.policy.cancel_timeout_seconds)
        self.deadline = saved
        for record in open_orders:
            final = self.records[record.client_order_id]
            if not final.status.terminal:
                self.result.errors.append(
                    BrokerUnknown(
                        f"{final.client_order_id} ({final.side.value} {final.symbol}) is still "
                        f"{final.status.value} at the broker after a cancel request: check it",
                        broker_code="still_working",
                    )
                )


class _BuyGuard:
    """Every buy is checked against buying power read just before it (the leg's first
    buy uses the read the leg just made): an order, a fill or a transfer since must not
    make a buy borrow or fail. Share-quantity buys are sized at the live ask plus the
    price tolerance; a dollar buy costs its notional, kept within the same headroom."""

    def __init__(
        self, run: _Run, cash_reserve: Decimal, headroom: Decimal, buying_power: Decimal
    ) -> None:
        self.run = run
        self.cash_reserve = cash_reserve
        self.headroom = headroom
        self.fresh: Decimal | None = buying_power
        """The leg's own read, for its first buy."""

    def _buying_power(self) -> Decimal:
        if self.fresh is not None:
            fresh, self.fresh = self.fresh, None
            return fresh
        try:
            return self.run.broker.buying_power()
        except BrokerError as failure:
            self.run._halt_with(failure)

    def fit(self, intent: OrderIntent) -> OrderIntent | None:
        if intent.qty <= ZERO:
            return None
        buying_power = self._buying_power()
        spendable = max(buying_power - self.cash_reserve, ZERO)
        if intent.fractional and intent.notional >= MIN_NOTIONAL:
            room = min(spendable, buying_power / self.headroom)
            qty = min(
                intent.qty, floor_to_step(max(room, ZERO) / intent.ref_price, intent.qty_step)
            )
            if qty == intent.qty:
                return intent
            said = f"${max(room, ZERO):.2f} to spend"
        else:
            unit = intent.ref_price * self.headroom
            qty = min(intent.qty, floor_to_step(spendable / unit, intent.qty_step))
            if qty == intent.qty:
                return intent
            said = f"{qty} at ${unit:.2f} a share"
        earlier = [
            a for a in self.run.result.adjustments if a.client_order_id == intent.client_order_id
        ]
        for adjustment in earlier:  # one adjustment per order: the last word on its size
            self.run.result.adjustments.remove(adjustment)
        self.run.result.adjustments.append(
            Adjustment(
                client_order_id=intent.client_order_id,
                symbol=intent.symbol,
                side=intent.side,
                approved_qty=earlier[0].approved_qty if earlier else intent.qty,
                placed_qty=qty,
                reason=f"buying power ${buying_power:.2f} just before this buy fits {said}",
            )
        )
        return intent.with_qty(qty) if qty > ZERO else None


def _adjustments(
    approved: Sequence[OrderIntent],
    placed: Sequence[OrderIntent],
    available: Decimal,
    asks: Mapping[str, Decimal],
) -> list[Adjustment]:
    placed_qty = {i.client_order_id: i.qty for i in placed}
    changes = []
    for intent in approved:
        qty = placed_qty.get(intent.client_order_id, ZERO)
        if qty == intent.qty:
            continue
        ask = asks.get(intent.symbol)
        if not intent.fractional and ask is not None and ask > intent.ref_price:
            reason = (
                f"the ask ${ask} is above the reference close ${intent.ref_price}: the approved "
                f"${intent.qty * intent.ref_price:.2f} buys fewer shares"
            )
        else:
            reason = f"buys scaled to fit the ${max(available, ZERO):.2f} left to spend"
        # Built without re-validation: the validated intents' fields, a Decimal, a text.
        changes.append(
            Adjustment.trusted(
                {
                    "client_order_id": intent.client_order_id,
                    "symbol": intent.symbol,
                    "side": intent.side,
                    "approved_qty": intent.qty,
                    "placed_qty": qty,
                    "reason": reason,
                }
            )
        )
    return changes


def _priced_at_ask(buys: Sequence[OrderIntent], asks: Mapping[str, Decimal]) -> list[OrderIntent]:
    """Share-quantity buys re-priced at the live ask where it is above the reference
    close (what they will really cost), with their quantity cut to what the approved
    dollars buy there: risk approved dollars at the reference close, and a gap up must
    not turn them into more. Dollar buys keep their approved dollars."""
    priced = []
    for buy in buys:
        ask = asks.get(buy.symbol)
        if buy.fractional or ask is None or ask <= buy.ref_price:
            priced.append(buy)
            continue
        qty = floor_to_step(buy.qty * buy.ref_price / ask, buy.qty_step)
        priced.append(OrderIntent.trusted({**buy.__dict__, "ref_price": ask, "qty": qty}))
    return priced


def cancel_working(
    orders: Sequence[OrderRecord],
    broker: Broker,
    clock: Clock,
    policy: ExecutionPolicy,
    deadline: float | None = None,
) -> ExecutionResult:
    """Cancel these working orders (our own, from an earlier run or attempt) and wait,
    bounded, until each is final. Every order that would not stop is an error: the
    caller plans nothing on top of an order that may still fill."""
    run = _Run(broker, clock, policy, deadline)
    for order in orders:
        try:
            broker.cancel_order(order)
        except BrokerError as failure:
            run.result.errors.append(failure)
    latest = run.poll_until_final(
        [o.client_order_id for o in orders], policy.cancel_timeout_seconds
    )
    for order in orders:
        now = latest.get(order.client_order_id, order)
        run.result.orders.append(now)
        if not now.status.terminal:
            run.result.errors.append(
                DataError(
                    f"our earlier order {order.client_order_id} ({order.side.value} "
                    f"{order.symbol}) is still {now.status.value} after a cancel request; "
                    "nothing was traded",
                    kind=DataErrorKind.OPEN_ORDERS,
                )
            )
        else:
            run.result.notes.append(
                f"cancelled our earlier order {order.client_order_id} ({order.side.value} "
                f"{order.symbol}, {now.status.value}, filled {now.filled_qty}) before planning"
            )
    return run.result


def execute(
    approved: Sequence[OrderIntent],
    broker: Broker,
    clock: Clock,
    policy: ExecutionPolicy,
    *,
    run_id: str,
    cash_reserve: Decimal,
    min_trade_notional: Decimal,
    deadline: float | None = None,
    earlier_attempts: Sequence[OrderRecord] = (),
    asks: Mapping[str, Decimal] | None = None,
) -> ExecutionResult:
    """Place ``approved`` orders: sells first, then buys sized from the cash released.

    ``earlier_attempts`` are this run's orders as they stood when the account was read
    (all final: the service cancels working ones before planning). They are read once
    more before the first submission; any difference stops the run (another attempt is
    trading). ``asks`` are live quotes: share-quantity buys are sized at them.
    ``cash_reserve`` is the cash the plan keeps back; buys never eat into it.
    ``deadline`` (on ``clock.monotonic``) bounds every wait; what is still open then is
    cancelled. Buys placed smaller than approved, or not at all, are reported as
    adjustments.
    """
    run = _Run(broker, clock, policy, deadline, run_id)
    sells = [i for i in approved if i.side is Side.SELL]
    buys = [i for i in approved if i.side is Side.BUY]
    try:
        if approved:
            run.check_alone(earlier_attempts)
        run.wait(run.submit(sells))
        if buys:
            run.check_alone(earlier_attempts)
            buying_power = broker.buying_power()
            headroom = 1 + policy.price_tolerance_bps / BPS
            available = min(buying_power - cash_reserve, buying_power / headroom)
            priced = [b for b in _priced_at_ask(buys, asks or {}) if b.qty > ZERO]
            sized, _ = fit_buys_to_cash(priced, available, min_trade_notional)
            run.result.adjustments.extend(_adjustments(buys, sized, available, asks or {}))
            run.wait(run.submit(sized, _BuyGuard(run, cash_reserve, headroom, buying_power)))
    except _Halt:
        pass
    except BrokerError as failure:
        run.result.errors.append(failure)
    except (ValueError, ArithmeticError) as invalid:
        # An order that cannot even be built (a defect): stop, but still cancel what
        # is working and let the run write its report.
        run.result.errors.append(
            AlchemiserError(f"an order could not be built: {invalid}", code="ORDER_INVALID")
        )
    run.cancel_open()
    run.result.orders = list(run.records.values())
    return run.result
