"""The order-placement procedure: sells, wait for fills, size and place buys, wait, tidy up.

Written against the Broker and Clock ports only, so it runs the same against the
simulated broker, a real broker, and in tests with a manual clock. Every order keeps
the client_order_id the plan gave it: a duplicate-id refusal means "look it up", and
an outcome the broker cannot confirm stops the run before anything else is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NoReturn

from pydantic import Field

from alchemiser.domain.decisions import Adjustment
from alchemiser.domain.orders import (
    MAX_LEGS,
    Fill,
    OrderIntent,
    OrderRecord,
    OrderRequest,
    OrderStatus,
    Side,
    next_leg,
)
from alchemiser.domain.values import ZERO, Frozen, to_cents
from alchemiser.errors import (
    AlchemiserError,
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
MIN_NOTIONAL = Decimal(1)
"""The smallest dollar order a broker takes; a smaller fractional buy goes as shares."""


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
        return [
            Fill(
                client_order_id=o.client_order_id,
                symbol=o.symbol,
                side=o.side,
                qty=o.filled_qty,
                price=o.filled_avg_price,
                notional=to_cents(o.filled_qty * o.filled_avg_price),
            )
            for o in self.orders
            if o.filled_qty > ZERO and o.filled_avg_price is not None
        ]


class _Halt(Exception):
    """Internal: an outcome we cannot confirm; stop sending orders."""


def _request(intent: OrderIntent) -> OrderRequest:
    """Buys of fractionable assets go as dollar amounts (the broker sizes them at its
    price); everything else, and every sell, as shares (a sell knows what is held)."""
    if intent.side is Side.BUY and intent.fractional:
        notional = to_cents(intent.qty * intent.ref_price)
        if notional >= MIN_NOTIONAL:
            return OrderRequest(
                client_order_id=intent.client_order_id,
                symbol=intent.symbol,
                side=intent.side,
                notional=notional,
            )
    return OrderRequest(
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
    )


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
        self, broker: Broker, clock: Clock, policy: ExecutionPolicy, deadline: float | None
    ) -> None:
        self.broker = broker
        self.clock = clock
        self.policy = policy
        self.deadline = deadline
        self.result = ExecutionResult()
        self.records: dict[str, OrderRecord] = {}
        self.expected_qty: dict[str, Decimal] = {}
        self.lookup_failed: set[str] = set()
        self.finished_before: set[str] = set()
        """This run's ids taken by earlier attempts whose orders had finished before the
        account was read (or that we cancelled, checked, before trading)."""
        self.unresolved: list[OrderRecord] = []
        """Submissions whose outcome stayed unknown: cancelled at the end, in case."""

    def _keep(self, record: OrderRecord) -> None:
        """Store the broker's latest view; a notional order's ``qty`` is the plan's
        estimate (what filled is in ``filled_qty``)."""
        expected = self.expected_qty.get(record.client_order_id)
        if expected is not None and record.notional is not None and record.qty != expected:
            record = record.model_copy(update={"qty": expected})
        self.records[record.client_order_id] = record

    def clear_the_way(self, own_open: Sequence[OrderRecord]) -> None:
        """Cancel every order of ours still working (an earlier run's or attempt's), and
        wait until they stop: an opposite open order makes a broker refuse a new one as a
        potential wash trade, an old one filling on top of this plan would overshoot it,
        and under HALTED or REDUCING nothing of ours may keep buying."""
        if not own_open:
            return
        for order in own_open:
            try:
                self.broker.cancel_order(order)
            except BrokerError as failure:
                self._halt_with(failure)
        before = {o.client_order_id: o for o in own_open}
        latest = self._poll_until_final(list(before), self.policy.cancel_timeout_seconds)
        for client_order_id, order in before.items():
            now = latest.get(client_order_id, order)
            if not now.status.terminal:
                self._halt_with(
                    DataError(
                        f"our earlier order {client_order_id} ({order.side.value} "
                        f"{order.symbol}) is still {now.status.value} after a cancel request; "
                        "nothing was traded",
                        kind=DataErrorKind.OPEN_ORDERS,
                    )
                )
            if now.filled_qty != order.filled_qty:
                extra = now.filled_qty - order.filled_qty
                self._halt_with(
                    DataError(
                        f"our earlier order {client_order_id} filled {extra} "
                        f"more {order.symbol} while it was being cancelled, so the plan is out of "
                        "date; nothing was traded: run again",
                        kind=DataErrorKind.OPEN_ORDERS,
                    )
                )
            self.finished_before.add(client_order_id)
            self.result.notes.append(
                f"cancelled our earlier order {client_order_id} ({order.side.value} "
                f"{order.symbol}, {now.status.value}) before trading"
            )

    def _halt_with(self, error: AlchemiserError) -> NoReturn:
        self.result.errors.append(error)
        raise _Halt from error

    def submit(self, intents: Sequence[OrderIntent]) -> list[str]:
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
            record = self._submit_one(intent)
            self._keep(record)
            placed.append(record.client_order_id)
        return placed

    def _submit_one(self, intent: OrderIntent) -> OrderRecord:
        request = _request(intent)
        while True:
            self.expected_qty[request.client_order_id] = intent.qty
            try:
                return self.broker.submit_order(request)
            except DuplicateOrder:
                existing = self._lookup(request.client_order_id)
                if existing is None:
                    error: AlchemiserError = BrokerUnknown(
                        f"{request.client_order_id}: the broker reports a duplicate id but "
                        "has no such order"
                    )
                    break
                if existing.client_order_id not in self.finished_before:
                    # Placed after this run read the account: another attempt of the
                    # same run is trading right now. Its orders are not in our plan's
                    # starting point, so anything more could trade twice.
                    error = BrokerUnknown(
                        f"{request.client_order_id} was placed by another attempt of this "
                        f"run while it was planning ({existing.status.value}); stopping "
                        "rather than trade twice",
                        broker_code="concurrent_attempt",
                    )
                    break
                following = next_leg(request.client_order_id)
                if following is None:
                    error = BrokerRejected(
                        f"{intent.side.value} {intent.symbol}: this run already placed "
                        f"{MAX_LEGS} orders for it; not placing another",
                        broker_code="too_many_legs",
                    )
                    break
                # An earlier attempt's order, finished before the account was read: its
                # fills are in the plan's starting point, so what the plan asks for now
                # is additional and goes out as the next leg.
                self.result.notes.append(
                    f"{request.client_order_id} is an earlier attempt's order "
                    f"({existing.status.value}, filled {existing.filled_qty}); "
                    f"placing {following}"
                )
                request = request.model_copy(update={"client_order_id": following})
            except BrokerRejected as rejection:
                self.result.errors.append(rejection)
                return _rejected(request, intent, str(rejection))
            except BrokerError as failure:
                existing = self._lookup(request.client_order_id)
                if existing is not None:
                    return existing
                error = failure
                self.unresolved.append(
                    _rejected(request, intent, "outcome unknown").model_copy(
                        update={"status": OrderStatus.PENDING_NEW, "reject_reason": None}
                    )
                )
                break
        self._halt_with(error)

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

    def _poll_until_final(
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
        latest = self._poll_until_final(
            pending, self.policy.fill_timeout_seconds if timeout is None else timeout
        )
        for record in latest.values():
            self._keep(record)

    def cancel_open(self) -> None:
        """Cancel what is still working (and any submission whose outcome stayed
        unknown), read the final states (bounded), and report what would not stop."""
        open_orders = [
            r for r in self.records.values() if not r.status.terminal and r.broker_order_id
        ]
        for record in [*open_orders, *self.unresolved]:
            try:
                self.broker.cancel_order(record)
            except BrokerError as failure:
                self.result.errors.append(failure)
                continue
            if record in open_orders:
                # Asked, not yet confirmed: what a later read shows replaces this.
                self._keep(record.model_copy(update={"status": OrderStatus.PENDING_CANCEL}))
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


def _adjustments(
    approved: Sequence[OrderIntent], placed: Sequence[OrderIntent], available: Decimal
) -> list[Adjustment]:
    placed_qty = {i.client_order_id: i.qty for i in placed}
    changes = []
    for intent in approved:
        qty = placed_qty.get(intent.client_order_id, ZERO)
        if qty != intent.qty:
            changes.append(
                Adjustment(
                    client_order_id=intent.client_order_id,
                    symbol=intent.symbol,
                    side=intent.side,
                    approved_qty=intent.qty,
                    placed_qty=qty,
                    reason=f"buys scaled to fit the ${max(available, ZERO):.2f} left to spend",
                )
            )
    return changes


def execute(
    approved: Sequence[OrderIntent],
    broker: Broker,
    clock: Clock,
    policy: ExecutionPolicy,
    *,
    cash_reserve: Decimal,
    min_trade_notional: Decimal,
    deadline: float | None = None,
    own_open_orders: Sequence[OrderRecord] = (),
    earlier_attempts: Sequence[OrderRecord] = (),
) -> ExecutionResult:
    """Place ``approved`` orders: sells first, then buys sized from the cash released.

    ``own_open_orders`` are this product's orders still working at the broker (from the
    snapshot the plan came from): they are cancelled first. ``earlier_attempts`` are
    this run's orders as they stood before the account was read: a finished one whose id
    the plan reuses makes the order go out as the next leg; any other taken id stops
    the run (another attempt is trading). ``cash_reserve`` is the cash the plan keeps
    back; buys never eat into it.
    ``deadline`` (on ``clock.monotonic``) bounds every wait; what is still open then is
    cancelled. Buys placed smaller than approved, or not at all, are reported as
    adjustments.
    """
    run = _Run(broker, clock, policy, deadline)
    run.finished_before = {o.client_order_id for o in earlier_attempts if o.status.terminal}
    sells = [i for i in approved if i.side is Side.SELL]
    buys = [i for i in approved if i.side is Side.BUY]
    try:
        run.clear_the_way(own_open_orders)
        run.wait(run.submit(sells))
        if buys:
            buying_power = broker.buying_power()
            headroom = 1 + policy.price_tolerance_bps / BPS
            available = min(buying_power - cash_reserve, buying_power / headroom)
            sized, _ = fit_buys_to_cash(buys, available, min_trade_notional)
            run.result.adjustments.extend(_adjustments(buys, sized, available))
            run.wait(run.submit(sized))
    except _Halt:
        pass
    except BrokerError as failure:
        run.result.errors.append(failure)
    run.cancel_open()
    run.result.orders = list(run.records.values())
    return run.result
