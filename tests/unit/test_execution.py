"""The order-placement procedure against a scripted broker and a manual clock."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser.adapters.clock import ManualClock
from alchemiser.domain.orders import (
    MAX_LEGS,
    IntentKind,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    Side,
    assign_legs,
    client_order_id,
)
from alchemiser.errors import BrokerAuthError, BrokerRejected, BrokerTransient, BrokerUnknown
from alchemiser.execution.procedure import ExecutionPolicy, cancel_working, execute
from tests.fakes import Fault, ScriptedBroker

PRICES = {"SPY": Decimal(100), "TLT": Decimal(50), "GLD": Decimal(200)}


def intent(symbol: str, side: Side, qty: str) -> OrderIntent:
    return OrderIntent(
        client_order_id=client_order_id("run", symbol, side),
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        ref_price=PRICES[symbol],
        qty_step=Decimal("0.000001"),
        kind=IntentKind.OPEN if side is Side.BUY else IntentKind.DECREASE,
        current_weight=Decimal(0),
        target_weight=Decimal(0),
        reason="test",
    )


def run(broker: ScriptedBroker, clock: ManualClock, intents: list[OrderIntent], **policy: float):
    """One run, as the service calls it: with this run's earlier orders, read first."""
    return execute(
        intents,
        broker,
        clock,
        ExecutionPolicy(**policy),
        run_id="run",
        cash_reserve=Decimal(0),
        min_trade_notional=Decimal(1),
        earlier_attempts=broker.orders_of_run("run"),
    )


def test_sells_fill_before_buys_are_sent(clock: ManualClock) -> None:
    broker = ScriptedBroker(
        clock, cash=Decimal(0), prices=PRICES, positions={"SPY": Decimal(10)}, fill_after_seconds=3
    )
    result = run(broker, clock, [intent("TLT", Side.BUY, "10"), intent("SPY", Side.SELL, "10")])
    assert broker.submissions[0].endswith("sell-SPY-0")
    # The buy was only sent once the sell's cash had been released, 3 s later.
    assert broker.accepted_at[client_order_id("run", "TLT", Side.BUY)] >= 3
    assert {o.status for o in result.orders} == {OrderStatus.FILLED}
    assert result.errors == []
    assert clock.waits
    assert all(w <= 1.0 for w in clock.waits)


def test_buys_are_sized_from_cash_actually_released(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(100), prices=PRICES, positions={"SPY": Decimal(10)})
    # The sell is rejected, so only $100 is available for a $500 buy.
    broker.faults["SPY"] = Fault(BrokerRejected("wash trade", broker_code="wash_trade"))
    result = run(broker, clock, [intent("SPY", Side.SELL, "10"), intent("TLT", Side.BUY, "10")])
    statuses = {o.symbol: o for o in result.orders}
    assert statuses["SPY"].status is OrderStatus.REJECTED
    assert statuses["TLT"].qty * PRICES["TLT"] <= Decimal(100)
    assert [type(e) for e in result.errors] == [BrokerRejected]


def test_unfilled_orders_are_cancelled_at_the_deadline(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES, fill_after_seconds=None)
    result = run(broker, clock, [intent("GLD", Side.BUY, "1")], fill_timeout_seconds=5)
    assert result.orders[0].status is OrderStatus.CANCELED
    assert broker.cancels == [client_order_id("run", "GLD", Side.BUY)]
    assert clock.monotonic() == pytest.approx(5)


def test_unknown_outcome_that_was_accepted_is_looked_up_not_resent(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES)
    broker.faults["GLD"] = Fault(BrokerUnknown("read timeout after sending"), accepted=True)
    result = run(broker, clock, [intent("GLD", Side.BUY, "1"), intent("TLT", Side.BUY, "1")])
    assert broker.submissions.count(client_order_id("run", "GLD", Side.BUY)) == 1
    assert {o.symbol: o.status for o in result.orders} == {
        "GLD": OrderStatus.FILLED,
        "TLT": OrderStatus.FILLED,
    }


def test_transient_failure_not_accepted_halts_the_run(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES)
    broker.faults["GLD"] = Fault(BrokerTransient("503"))
    result = run(broker, clock, [intent("GLD", Side.BUY, "1"), intent("TLT", Side.BUY, "1")])
    assert broker.orders == {}
    assert [type(e) for e in result.errors] == [BrokerTransient]
    assert result.orders == []


def test_an_id_taken_by_a_concurrent_attempt_stops_the_run(clock: ManualClock) -> None:
    """Another attempt of the same run placed this id after our account read: its fills
    are not in our plan, so nothing more is sent."""
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES)
    earlier = broker.orders_of_run("run")  # read before the other attempt's order
    broker.submit_order(_request_of(intent("GLD", Side.BUY, "1")))
    result = execute(
        [intent("GLD", Side.BUY, "1"), intent("TLT", Side.BUY, "1")],
        broker,
        clock,
        ExecutionPolicy(),
        run_id="run",
        cash_reserve=Decimal(0),
        min_trade_notional=Decimal(1),
        earlier_attempts=earlier,
    )
    assert [e.code for e in result.errors] == ["CONCURRENT_ATTEMPT"]
    assert "another attempt" in str(result.errors[0])
    assert list(broker.orders) == ["run-buy-GLD-0"]  # neither a GLD leg 1 nor TLT
    assert broker.submissions == ["run-buy-GLD-0"]  # this attempt sent nothing


def test_a_duplicate_id_at_submission_stops_the_run(clock: ManualClock) -> None:
    """The id was free when the run's orders were read again; it was taken since."""

    class Racing(ScriptedBroker):
        def submit_order(self, request):  # type: ignore[no-untyped-def]
            if not self.orders:
                super().submit_order(request)  # the other attempt's, a moment earlier
            return super().submit_order(request)

    broker = Racing(clock, cash=Decimal(10_000), prices=PRICES)
    result = run(broker, clock, [intent("GLD", Side.BUY, "1"), intent("TLT", Side.BUY, "1")])
    assert [e.code for e in result.errors] == ["CONCURRENT_ATTEMPT"]
    assert list(broker.orders) == ["run-buy-GLD-0"]


def test_a_submission_left_unknown_is_cancelled_in_case_it_arrived(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES)
    broker.faults["GLD"] = Fault(BrokerUnknown("timeout after sending"))
    result = run(broker, clock, [intent("GLD", Side.BUY, "1")])
    assert [e.code for e in result.errors] == ["BROKER_UNKNOWN"]
    assert broker.cancels == ["run-buy-GLD-0"]


def test_orders_that_will_not_cancel_are_reported(clock: ManualClock) -> None:
    class Stubborn(ScriptedBroker):
        def cancel_order(self, order):  # type: ignore[no-untyped-def]
            self.cancels.append(order.client_order_id)

    broker = Stubborn(clock, cash=Decimal(10_000), prices=PRICES, fill_after_seconds=None)
    result = run(broker, clock, [intent("GLD", Side.BUY, "1")], fill_timeout_seconds=2)
    assert [e.code for e in result.errors] == ["BROKER_UNKNOWN"]
    assert "still accepted at the broker after a cancel request" in str(result.errors[0])


def test_no_order_is_placed_after_the_deadline(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES, fill_after_seconds=None)
    broker.positions["SPY"] = Decimal(10)
    result = execute(
        [intent("SPY", Side.SELL, "10"), intent("GLD", Side.BUY, "1")],
        broker,
        clock,
        ExecutionPolicy(fill_timeout_seconds=60),
        run_id="run",
        cash_reserve=Decimal(0),
        min_trade_notional=Decimal(1),
        deadline=clock.monotonic() + 5,
    )
    assert [e.code for e in result.errors] == ["OUT_OF_TIME"]
    assert "GLD" in str(result.errors[0])
    assert broker.submissions == ["run-sell-SPY-0"]


def test_a_finished_earlier_attempt_makes_the_retry_place_the_next_leg(
    clock: ManualClock,
) -> None:
    """A retried run re-plans from the account, which already holds the earlier
    attempt's fills: what it asks for now goes out under the first free leg, and the
    earlier id is never sent again."""
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES)
    run(broker, clock, [intent("GLD", Side.BUY, "1")])
    taken = {o.client_order_id for o in broker.orders_of_run("run")}
    legs, refused = assign_legs([intent("GLD", Side.BUY, "2")], taken)
    again = run(broker, clock, legs)
    assert refused == []
    assert again.errors == []
    assert [o.client_order_id for o in again.orders] == ["run-buy-GLD-1"]
    assert broker.submissions == ["run-buy-GLD-0", "run-buy-GLD-1"]
    assert broker.positions["GLD"] == Decimal(3)


def test_legs_are_bounded() -> None:
    taken = {client_order_id("run", "GLD", Side.BUY, leg) for leg in range(MAX_LEGS)}
    legs, refused = assign_legs([intent("GLD", Side.BUY, "1"), intent("TLT", Side.BUY, "1")], taken)
    assert [i.client_order_id for i in legs] == ["run-buy-TLT-0"]
    assert [e.code for e in refused] == ["TOO_MANY_LEGS"]


def test_all_our_open_orders_are_cancelled_first(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES, fill_after_seconds=None)
    stale = broker.submit_order(_request_of(intent("GLD", Side.BUY, "1"), "20260730-00000000aa"))
    other = broker.submit_order(_request_of(intent("TLT", Side.BUY, "1"), "20260730-00000000aa"))
    result = cancel_working([stale, other], broker, clock, ExecutionPolicy())
    # Both: an old order of ours must not fill on top of the plan.
    assert broker.cancels == [stale.client_order_id, other.client_order_id]
    assert sum("cancelled our earlier order" in n for n in result.notes) == 2
    assert result.errors == []


def test_an_earlier_order_that_will_not_cancel_is_an_error(clock: ManualClock) -> None:
    class Stubborn(ScriptedBroker):
        def cancel_order(self, order):  # type: ignore[no-untyped-def]
            self.cancels.append(order.client_order_id)

    broker = Stubborn(clock, cash=Decimal(10_000), prices=PRICES, fill_after_seconds=None)
    stale = broker.submit_order(_request_of(intent("GLD", Side.BUY, "1"), "20260730-00000000aa"))
    result = cancel_working([stale], broker, clock, ExecutionPolicy(cancel_timeout_seconds=2))
    assert [e.code for e in result.errors] == ["OPEN_ORDERS_PRESENT"]


def test_an_order_cancelled_by_somebody_else_stops_the_buys(clock: ManualClock) -> None:
    """Another attempt cleared the way by cancelling our sell: our plan is out of date."""

    class Interfering(ScriptedBroker):
        def get_orders(self, client_order_ids):  # type: ignore[no-untyped-def]
            for cid in client_order_ids:
                record = self.orders[cid]
                self.orders[cid] = record.model_copy(update={"status": OrderStatus.CANCELED})
            return super().get_orders(client_order_ids)

    broker = Interfering(
        clock,
        cash=Decimal(0),
        prices=PRICES,
        positions={"SPY": Decimal(10)},
        fill_after_seconds=None,
    )
    result = run(broker, clock, [intent("SPY", Side.SELL, "10"), intent("TLT", Side.BUY, "10")])
    assert [e.code for e in result.errors] == ["CONCURRENT_ATTEMPT"]
    assert broker.submissions == ["run-sell-SPY-0"]


def test_an_authentication_failure_stops_submitting(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES)
    broker.faults["GLD"] = Fault(BrokerAuthError("HTTP 401: unauthorized"))
    result = run(broker, clock, [intent("GLD", Side.BUY, "1"), intent("TLT", Side.BUY, "1")])
    assert [e.code for e in result.errors] == ["BROKER_AUTH"]
    assert broker.submissions == ["run-buy-GLD-0"]  # TLT never sent
    assert result.orders == []


def test_a_fractional_residue_of_a_whole_share_asset_is_closed(clock: ManualClock) -> None:
    broker = ScriptedBroker(
        clock, cash=Decimal(0), prices=PRICES, positions={"SPY": Decimal("60.5")}
    )
    exit_all = intent("SPY", Side.SELL, "60.5").model_copy(update={"qty_step": Decimal(1)})
    result = run(broker, clock, [exit_all])
    assert result.errors == []
    assert [(o.client_order_id, o.qty) for o in result.orders] == [
        ("run-sell-SPY-0", Decimal(60)),
        ("close-1", Decimal("0.5")),
    ]
    assert broker.positions["SPY"] == 0
    assert any("close-position" in n for n in result.notes)


def test_share_buys_are_sized_at_the_ask_after_a_gap_up(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(1_000), prices={**PRICES, "GLD": Decimal(250)})
    whole = intent("GLD", Side.BUY, "5").model_copy(update={"qty_step": Decimal(1)})
    result = run_with_asks(broker, clock, [whole], {"GLD": Decimal(250)})
    assert result.errors == []
    assert [o.qty for o in result.orders] == [Decimal(3)]  # $1,000 / ($250 + 0.5%): 3 shares
    assert [a.placed_qty for a in result.adjustments] == [Decimal(3)]


class Spending(ScriptedBroker):
    """Somebody else spends $500 between any two of our buying-power reads."""

    def buying_power(self) -> Decimal:
        self.cash -= Decimal(500)
        return super().buying_power()


@pytest.mark.parametrize("step", ["1", "0.000001"], ids=["shares", "dollars"])
def test_buying_power_is_read_again_before_each_buy(clock: ManualClock, step: str) -> None:
    broker = Spending(clock, cash=Decimal(2_000), prices=PRICES)
    buys = [
        intent(symbol, Side.BUY, qty).model_copy(update={"qty_step": Decimal(step)})
        for symbol, qty in (("GLD", "4"), ("SPY", "5"))
    ]
    result = run_with_asks(broker, clock, buys, {})
    assert result.errors == []
    # $1,500 at the leg's read: both fit. GLD ($800) uses that read; before SPY,
    # $1,500 - $800 - $500 = $200 is left: SPY is cut to what that buys.
    placed = {o.symbol: o for o in result.orders}
    assert placed["GLD"].qty == Decimal(4)
    spy = placed["SPY"]
    spent = spy.notional if spy.notional is not None else spy.qty * PRICES["SPY"]
    assert spent <= Decimal(200)
    assert spy.qty < 5
    assert "buying power $200.00 just before this buy" in result.adjustments[-1].reason


def run_with_asks(
    broker: ScriptedBroker, clock: ManualClock, intents: list[OrderIntent], asks: dict[str, Decimal]
):  # type: ignore[no-untyped-def]
    return execute(
        intents,
        broker,
        clock,
        ExecutionPolicy(),
        run_id="run",
        cash_reserve=Decimal(0),
        min_trade_notional=Decimal(1),
        asks=asks,
    )


def _request_of(i: OrderIntent, run_id: str = "run") -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id(run_id, i.symbol, i.side),
        symbol=i.symbol,
        side=i.side,
        qty=i.qty,
    )


def test_buys_resized_at_execution_are_reported(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(1_000), prices=PRICES)
    result = execute(
        [intent("TLT", Side.BUY, "10"), intent("GLD", Side.BUY, "2")],
        broker,
        clock,
        ExecutionPolicy(),
        run_id="run",
        cash_reserve=Decimal(500),
        min_trade_notional=Decimal(1),
    )
    placed = {o.symbol: o.qty for o in result.orders}
    assert sum(q * PRICES[s] for s, q in placed.items()) <= Decimal(500)
    assert {a.symbol for a in result.adjustments} == {"TLT", "GLD"}
    for adjustment in result.adjustments:
        assert adjustment.placed_qty == placed[adjustment.symbol] < adjustment.approved_qty
        assert "$500.00" in adjustment.reason


def test_deadline_cuts_the_wait_short(clock: ManualClock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(10_000), prices=PRICES, fill_after_seconds=None)
    result = execute(
        [intent("GLD", Side.BUY, "1")],
        broker,
        clock,
        ExecutionPolicy(fill_timeout_seconds=60),
        run_id="run",
        cash_reserve=Decimal(0),
        min_trade_notional=Decimal(1),
        deadline=clock.monotonic() + 2.5,
    )
    assert clock.monotonic() == pytest.approx(2.5)
    assert result.orders[0].status is OrderStatus.CANCELED


class FlakyLookups(ScriptedBroker):
    def get_order(self, client_order_id: str):  # type: ignore[no-untyped-def]
        raise BrokerTransient("503 from the status endpoint")

    def get_orders(self, client_order_ids):  # type: ignore[no-untyped-def]
        raise BrokerTransient("503 from the status endpoint")


def test_a_flaky_status_endpoint_reports_one_error_per_order(clock: ManualClock) -> None:
    broker = FlakyLookups(clock, cash=Decimal(10_000), prices=PRICES, fill_after_seconds=None)
    result = run(
        broker,
        clock,
        [intent("GLD", Side.BUY, "1"), intent("TLT", Side.BUY, "1")],
        fill_timeout_seconds=30,
    )
    # One lookup error per order, then (cancels asked for, no read could confirm them)
    # one "still working" error per order: the report says so.
    assert [type(e) for e in result.errors] == [BrokerTransient] * 2 + [BrokerUnknown] * 2
    assert {o.status for o in result.orders} == {OrderStatus.PENDING_CANCEL}
