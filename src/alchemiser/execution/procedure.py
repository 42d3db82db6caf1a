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

from pydantic import Field

from alchemiser.domain.decisions import Adjustment
from alchemiser.domain.orders import Fill, OrderIntent, OrderRecord, OrderRequest, OrderStatus, Side
from alchemiser.domain.values import ZERO, Frozen, to_cents
from alchemiser.errors import (
    AlchemiserError,
    BrokerError,
    BrokerRejected,
    BrokerUnknown,
    DuplicateOrder,
)
from alchemiser.portfolio.diff import fit_buys_to_cash
from alchemiser.ports import Broker, Clock

BPS = Decimal(10_000)


class ExecutionPolicy(Frozen):
    fill_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    """How long to wait for each leg (sells, then buys) to fill before moving on."""
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    price_tolerance_bps: Decimal = Field(default=Decimal(50), ge=0, le=1000)
    """Least headroom kept when sizing buys from released cash, for prices moving against
    us; the plan's cash buffer counts towards it."""


@dataclass
class ExecutionResult:
    orders: list[OrderRecord] = field(default_factory=list)
    errors: list[AlchemiserError] = field(default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)

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
    return OrderRequest(
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
    )


def _rejected(intent: OrderIntent, reason: str) -> OrderRecord:
    return OrderRecord(
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
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
        self.lookup_failed: set[str] = set()

    def submit(self, intents: Sequence[OrderIntent]) -> list[str]:
        placed = []
        for intent in intents:
            self.records[intent.client_order_id] = self._submit_one(intent)
            placed.append(intent.client_order_id)
        return placed

    def _submit_one(self, intent: OrderIntent) -> OrderRecord:
        try:
            return self.broker.submit_order(_request(intent))
        except DuplicateOrder:
            existing = self.broker.get_order(intent.client_order_id)
            if existing is not None:
                return existing
            error: BrokerError = BrokerUnknown(
                f"{intent.client_order_id}: broker reports a duplicate id but has no such order"
            )
        except BrokerRejected as rejection:
            self.result.errors.append(rejection)
            return _rejected(intent, str(rejection))
        except BrokerError as failure:
            existing = self._lookup(intent.client_order_id)
            if existing is not None:
                return existing
            error = failure
        self.result.errors.append(error)
        raise _Halt from error

    def _lookup(self, client_order_id: str) -> OrderRecord | None:
        try:
            return self.broker.get_order(client_order_id)
        except BrokerError as failure:
            # One error per order: polling a flaky broker must not flood the report.
            if client_order_id not in self.lookup_failed:
                self.lookup_failed.add(client_order_id)
                self.result.errors.append(failure)
            return None

    def wait(self, client_order_ids: Sequence[str]) -> None:
        """Poll until every order is final, the leg's fill timeout passes, or the run's
        hard deadline (what the Lambda has left, less time to tidy up) arrives."""
        deadline = self.clock.monotonic() + self.policy.fill_timeout_seconds
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        pending = [c for c in client_order_ids if not self.records[c].status.terminal]
        while pending:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return
            self.clock.sleep(min(self.policy.poll_interval_seconds, remaining))
            for client_order_id in pending:
                latest = self._lookup(client_order_id)
                if latest is not None:
                    self.records[client_order_id] = latest
            pending = [c for c in pending if not self.records[c].status.terminal]

    def cancel_open(self) -> None:
        for client_order_id, record in self.records.items():
            if record.status.terminal or record.broker_order_id is None:
                continue
            try:
                self.records[client_order_id] = self.broker.cancel_order(client_order_id)
            except BrokerError as failure:
                self.result.errors.append(failure)


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
) -> ExecutionResult:
    """Place ``approved`` orders: sells first, then buys sized from the cash released.

    ``cash_reserve`` is the cash the plan keeps back; buys never eat into it.
    ``deadline`` (on ``clock.monotonic``) bounds every wait; what is still open then is
    cancelled. Buys placed smaller than approved, or not at all, are reported as
    adjustments.
    """
    run = _Run(broker, clock, policy, deadline)
    sells = [i for i in approved if i.side is Side.SELL]
    buys = [i for i in approved if i.side is Side.BUY]
    try:
        run.wait(run.submit(sells))
        if buys:
            buying_power = broker.snapshot().buying_power
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
