"""A scripted in-memory broker for execution tests: delayed fills and injected faults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from alchemiser.adapters.clock import ManualClock
from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.orders import OrderRecord, OrderRequest, OrderStatus, Side
from alchemiser.errors import BrokerError, BrokerRejected, DuplicateOrder


@dataclass
class Fault:
    """Raise ``error`` when ``symbol`` is submitted; ``accepted`` means the broker kept it."""

    error: BrokerError
    accepted: bool = False


@dataclass
class ScriptedBroker:
    clock: ManualClock
    cash: Decimal
    prices: dict[str, Decimal]
    positions: dict[str, Decimal] = field(default_factory=dict)
    fill_after_seconds: float | None = 0.0
    """None: orders never fill on their own."""
    faults: dict[str, Fault] = field(default_factory=dict)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    accepted_at: dict[str, float] = field(default_factory=dict)
    submissions: list[str] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)

    def snapshot(self, *, with_orders: bool = True) -> AccountSnapshot:
        self._settle()
        return AccountSnapshot(
            cash=self.cash,
            buying_power=self.cash,
            positions=tuple(
                Position(symbol=s, qty=q) for s, q in sorted(self.positions.items()) if q
            ),
            open_orders=tuple(o for o in self.orders.values() if not o.status.terminal),
        )

    def buying_power(self) -> Decimal:
        self._settle()
        return self.cash

    def fractionable(self, symbols: Sequence[str]) -> frozenset[str]:
        return frozenset(symbols)

    def submit_order(self, request: OrderRequest) -> OrderRecord:
        self.submissions.append(request.client_order_id)
        if request.client_order_id in self.orders:
            raise DuplicateOrder("duplicate client_order_id")
        fault = self.faults.pop(request.symbol, None)
        if fault is not None and not fault.accepted:
            raise fault.error
        price = self.prices[request.symbol]
        qty = request.qty if request.qty is not None else (request.notional or 0) / price
        record = OrderRecord(
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            qty=qty,
            notional=request.notional,
            status=OrderStatus.ACCEPTED,
            broker_order_id=f"b-{len(self.orders)}",
        )
        notional = qty * price
        if request.side is Side.BUY and notional > self.cash:
            raise BrokerRejected(
                "insufficient buying power", broker_code="insufficient_buying_power"
            )
        self.orders[request.client_order_id] = record
        self.accepted_at[request.client_order_id] = self.clock.monotonic()
        self._settle()
        if fault is not None:
            raise fault.error
        return self.orders[request.client_order_id]

    def _settle(self) -> None:
        if self.fill_after_seconds is None:
            return
        for cid, record in list(self.orders.items()):
            if record.status.terminal:
                continue
            if self.clock.monotonic() - self.accepted_at[cid] < self.fill_after_seconds:
                continue
            price = self.prices[record.symbol]
            sign = 1 if record.side is Side.BUY else -1
            self.cash -= sign * record.qty * price
            self.positions[record.symbol] = (
                self.positions.get(record.symbol, Decimal(0)) + sign * record.qty
            )
            self.orders[cid] = record.model_copy(
                update={
                    "status": OrderStatus.FILLED,
                    "filled_qty": record.qty,
                    "filled_avg_price": price,
                }
            )

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        self._settle()
        return self.orders.get(client_order_id)

    def orders_of_run(self, run_id: str, *, force: bool = False) -> list[OrderRecord]:
        self._settle()
        return [o for c, o in self.orders.items() if c.startswith(f"{run_id}-")]

    def get_orders(self, client_order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        self._settle()
        return {c: self.orders[c] for c in client_order_ids if c in self.orders}

    def working_orders(self) -> list[OrderRecord]:
        self._settle()
        return [o for o in self.orders.values() if not o.status.terminal]

    def close_position(self, symbol: str, qty: Decimal) -> OrderRecord:
        request = OrderRequest(
            client_order_id=f"close-{len(self.orders)}", symbol=symbol, side=Side.SELL, qty=qty
        )
        return self.submit_order(request)

    def cancel_order(self, order: OrderRecord) -> None:
        client_order_id = order.client_order_id
        self.cancels.append(client_order_id)
        if client_order_id not in self.orders:
            return
        record = self.orders[client_order_id]
        if not record.status.terminal:
            record = record.model_copy(update={"status": OrderStatus.CANCELED})
            self.orders[client_order_id] = record
