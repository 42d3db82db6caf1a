"""The broker of a dry run: every read goes to the real broker, every write is refused.

The service of a dry run never submits or cancels; this wrapper makes sure of it. A
request to submit, cancel or close raises ``DryRunRefused`` before it reaches the
broker, so a mistake in the service fails the dry run instead of trading.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from alchemiser.domain.account import AccountSnapshot
from alchemiser.domain.orders import OrderRecord, OrderRequest
from alchemiser.errors import DryRunRefused
from alchemiser.ports import Broker


class ReadOnlyBroker:
    """A Broker that reads through to ``broker`` and refuses to change anything."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def snapshot(self, *, with_orders: bool = True) -> AccountSnapshot:
        return self._broker.snapshot(with_orders=with_orders)

    def buying_power(self) -> Decimal:
        return self._broker.buying_power()

    def fractionable(self, symbols: Sequence[str]) -> frozenset[str]:
        return self._broker.fractionable(symbols)

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        return self._broker.get_order(client_order_id)

    def orders_of_run(self, run_id: str, *, force: bool = False) -> list[OrderRecord]:
        return self._broker.orders_of_run(run_id, force=force)

    def get_orders(self, client_order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        return self._broker.get_orders(client_order_ids)

    def working_orders(self) -> list[OrderRecord]:
        return self._broker.working_orders()

    def submit_order(self, request: OrderRequest) -> OrderRecord:
        raise DryRunRefused(
            f"dry run: refusing to submit {request.side.value} {request.symbol} "
            f"({request.client_order_id})"
        )

    def cancel_order(self, order: OrderRecord) -> None:
        raise DryRunRefused(f"dry run: refusing to cancel {order.client_order_id}")

    def close_position(self, symbol: str, qty: Decimal) -> OrderRecord:
        raise DryRunRefused(f"dry run: refusing to close {qty} {symbol}")
