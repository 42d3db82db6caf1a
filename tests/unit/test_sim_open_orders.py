"""The simulated broker's open orders always agree with every order it holds, and the
prices it fills and quotes at are always its current session's.

Its fills are immediate, so an order still open comes from an account file (one written
by another version, or edited): the snapshot, ``working_orders`` and the state file must
agree on which orders are open through placing, cancelling and reloading.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.domain.orders import OrderRecord, OrderRequest, OrderStatus, Side
from tests.conftest import LAST


def broker(store: FilePriceStore, clock: ManualClock, path: Path) -> SimBroker:
    return SimBroker(
        market=store, session=LAST, clock=clock, starting_cash=Decimal(10_000), state_path=path
    )


def buy(cid: str, qty: str = "1") -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="SPY", side=Side.BUY, qty=Decimal(qty))


def open_by_file(path: Path) -> list[str]:
    """The ids of the orders the state file holds as not terminal, in its order."""
    orders = json.loads(path.read_text(encoding="utf-8"))["orders"]
    return [cid for cid, o in orders.items() if not OrderStatus(o["status"]).terminal]


def assert_consistent(sim: SimBroker, path: Path) -> list[OrderRecord]:
    expected = open_by_file(path)
    working = sim.working_orders()
    assert [o.client_order_id for o in working] == expected
    assert sim.snapshot().open_orders == tuple(working)
    assert all(sim.get_order(o.client_order_id) == o for o in working)
    return working


def reopen_with(path: Path, statuses: dict[str, OrderStatus]) -> None:
    state = json.loads(path.read_text(encoding="utf-8"))
    for cid, status in statuses.items():
        state["orders"][cid]["status"] = status.value
    path.write_text(json.dumps(state), encoding="utf-8")


def test_open_orders_follow_submit_cancel_and_reload(store, clock, tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    sim = broker(store, clock, path)
    for cid in ("a", "b", "c", "d"):
        sim.submit_order(buy(cid))
    assert assert_consistent(sim, path) == []  # every fill is immediate

    # An account file with orders still working: they are open after a reload, in order.
    reopen_with(path, {"b": OrderStatus.NEW, "d": OrderStatus.PARTIALLY_FILLED})
    sim = broker(store, clock, path)
    assert [o.client_order_id for o in assert_consistent(sim, path)] == ["b", "d"]

    sim.submit_order(buy("e"))  # filled: not open
    assert [o.client_order_id for o in assert_consistent(sim, path)] == ["b", "d"]

    record = sim.get_order("b")
    assert record is not None
    sim.cancel_order(record)
    after = sim.get_order("b")
    assert after is not None
    assert after.status is OrderStatus.CANCELED
    assert [o.client_order_id for o in assert_consistent(sim, path)] == ["d"]

    filled = sim.get_order("a")
    assert filled is not None
    sim.cancel_order(filled)  # finished: nothing changes
    sim.cancel_order(filled.model_copy(update={"client_order_id": "missing"}))
    assert [o.client_order_id for o in assert_consistent(sim, path)] == ["d"]

    reloaded = broker(store, clock, path)
    assert reloaded.working_orders() == sim.working_orders()
    assert reloaded.snapshot() == sim.snapshot()
    assert [o.client_order_id for o in assert_consistent(reloaded, path)] == ["d"]

    last = reloaded.get_order("d")
    assert last is not None
    reloaded.cancel_order(last)
    assert assert_consistent(reloaded, path) == []
    assert assert_consistent(broker(store, clock, path), path) == []


def test_fills_and_quotes_follow_the_session_they_are_made_in(store, clock) -> None:
    earlier = date(2026, 7, 30)
    sim = SimBroker(
        market=store,
        session=earlier,
        clock=clock,
        starting_cash=Decimal(10_000),
        slippage_bps=Decimal(10),
    )
    quoted = sim.latest_quotes(["SPY", "TLT"])
    first = sim.submit_order(buy("a"))
    assert first.filled_avg_price == quoted["SPY"].ask
    sim.advance_to(LAST)
    assert sim.latest_quotes(["SPY"])["SPY"].ask > quoted["SPY"].ask
    second = sim.submit_order(buy("b"))
    assert second.filled_avg_price is not None
    assert first.filled_avg_price is not None
    assert second.filled_avg_price > first.filled_avg_price
    assert second.filled_avg_price == sim.latest_quotes(["SPY"])["SPY"].ask
    fresh = SimBroker(
        market=store,
        session=LAST,
        clock=clock,
        starting_cash=Decimal(10_000),
        slippage_bps=Decimal(10),
    )
    assert fresh.latest_quotes(["SPY", "TLT"]) == sim.latest_quotes(["TLT", "SPY"])
