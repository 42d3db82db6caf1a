"""The rebalance use case end to end over real fakes: simulated broker, file prices."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from alchemiser.adapters.ledger import InMemoryLedger
from alchemiser.domain.decisions import RiskCode, TradingState, Verdict
from alchemiser.domain.orders import OrderRequest, OrderStatus, Side
from alchemiser.domain.report import Mode, RunStatus, SkipReason, failure_reason
from alchemiser.errors import BrokerRejected
from alchemiser.portfolio.risk import RiskLimits
from alchemiser.render import render_report
from alchemiser.service import AllocatedStrategy, RunRequest, make_run_id, rebalance
from alchemiser.strategy.base import FixedStrategy
from alchemiser.strategy.symphony.ast import RebalanceFrequency, RebalanceRule
from tests.conftest import LAST, run_request
from tests.fakes import Fault, ScriptedBroker


def test_first_run_buys_targets_and_records_report(make_deps) -> None:
    deps = make_deps()
    report = rebalance(run_request(), deps)
    assert report.status is RunStatus.COMPLETED
    assert [i.side for i in report.intents] == [Side.BUY, Side.BUY]
    assert {o.status for o in report.orders} == {OrderStatus.FILLED}
    assert len(report.fills) == 2
    after = {p.symbol: p.weight for p in report.account_after.positions}
    assert after["SPY"] == pytest.approx(Decimal("0.594"), abs=Decimal("0.002"))
    assert after["TLT"] == pytest.approx(Decimal("0.396"), abs=Decimal("0.002"))
    assert isinstance(deps.ledger, InMemoryLedger)
    assert [r.status for r in deps.ledger.reports] == [RunStatus.STARTED, report.status]
    assert deps.ledger.reports[-1] == report
    assert report.targets["SPY"].attribution == {"fixed": 0.6}


def test_second_run_converges(make_deps) -> None:
    deps = make_deps()
    rebalance(run_request("r1"), deps)
    second = rebalance(run_request("r2"), deps)
    assert second.status is RunStatus.NOOP
    assert second.intents == ()
    assert second.orders == ()
    assert {h.symbol for h in second.holds} == {"SPY", "TLT"}


def test_held_symbol_without_price_fails_closed(make_deps) -> None:
    deps = make_deps({"SPY": 0.5, "AAA": 0.0})
    first = rebalance(run_request("r1"), make_deps({"SPY": 0.5}, broker=deps.broker))
    assert first.status is RunStatus.COMPLETED
    # Now the account holds SPY and the strategy wants AAA, whose last bar is stale.
    deps = make_deps({"AAA": 0.5}, broker=deps.broker)
    report = rebalance(run_request("r2"), deps)
    assert report.status is RunStatus.FAILED
    assert report.errors[0].code == "DATA_STALE"
    assert "AAA" in report.errors[0].message
    assert report.orders == ()
    assert deps.broker.snapshot().quantities().keys() == {"SPY"}


def test_unknown_symbol_fails_closed(make_deps) -> None:
    deps = make_deps({"ZZZ": 0.5})
    report = rebalance(run_request(), deps)
    assert report.status is RunStatus.FAILED
    assert report.errors[0].code == "DATA_MISSING"
    assert report.orders == ()
    assert [r.status for r in deps.ledger.reports] == [RunStatus.STARTED, report.status]
    assert deps.ledger.reports[-1] == report


def test_stale_session_fails_closed(make_deps) -> None:
    report = rebalance(run_request(trading_date=date(2026, 8, 20)), make_deps())
    assert report.status is RunStatus.FAILED
    assert report.errors[0].code == "DATA_STALE"
    assert report.orders == ()


def test_halted_places_nothing(make_deps) -> None:
    deps = make_deps(state=TradingState.HALTED)
    report = rebalance(run_request(), deps)
    assert report.orders == ()
    assert {d.verdict for d in report.decisions} == {Verdict.DENIED}
    assert {d.codes for d in report.decisions} == {(RiskCode.TRADING_HALTED,)}
    assert deps.broker.snapshot().positions == ()


def test_shrunk_order_is_executed_at_the_approved_size(make_deps) -> None:
    deps = make_deps(
        limits=RiskLimits(max_order_notional=Decimal(10_000), max_position_weight=Decimal(1))
    )
    report = rebalance(run_request(), deps)
    assert {d.verdict for d in report.decisions} == {Verdict.SHRUNK}
    for order, decision in zip(report.orders, report.decisions, strict=True):
        assert order.qty == decision.approved_qty
        assert order.qty * decision.ref_price <= Decimal(10_000)


def test_run_id_is_deterministic_per_trigger() -> None:
    trigger = datetime(2026, 7, 31, 13, 30, tzinfo=UTC)
    assert make_run_id("a", LAST, trigger) == make_run_id("a", LAST, trigger)
    assert make_run_id("a", LAST, trigger) != make_run_id("b", LAST, trigger)
    assert make_run_id("a", LAST, trigger).startswith("a-20260731-")
    same_instant = datetime.fromisoformat("2026-07-31T09:30:00.250-04:00")
    assert make_run_id("a", LAST, same_instant) == make_run_id("a", LAST, trigger)


def test_held_symbol_with_no_price_file_fails_closed(make_deps, clock) -> None:
    broker = ScriptedBroker(
        clock,
        cash=Decimal(10_000),
        prices={"SPY": Decimal(520), "TLT": Decimal(94)},
        positions={"ZZZ": Decimal(3)},
    )
    deps = make_deps(broker=broker)
    report = rebalance(run_request(), deps)
    assert report.status is RunStatus.FAILED
    assert report.errors[0].code == "DATA_MISSING"
    assert "ZZZ" in report.errors[0].message
    assert broker.submissions == []
    assert report.intents == ()


def test_broker_rejection_is_reported_as_failure(make_deps, clock) -> None:
    broker = ScriptedBroker(
        clock, cash=Decimal(10_000), prices={"SPY": Decimal(520), "TLT": Decimal(94)}
    )
    broker.faults["TLT"] = Fault(BrokerRejected("account is restricted", broker_code="restricted"))
    report = rebalance(run_request(), make_deps(broker=broker))
    assert report.status is RunStatus.FAILED
    assert [e.code for e in report.errors] == ["BROKER_REJECTED"]
    statuses = {o.symbol: o.status for o in report.orders}
    assert statuses == {"SPY": OrderStatus.FILLED, "TLT": OrderStatus.REJECTED}


def _open_order(broker: ScriptedBroker, client_order_id: str) -> None:
    broker.fill_after_seconds = None
    broker.submit_order(
        OrderRequest(client_order_id=client_order_id, symbol="SPY", side=Side.BUY, qty=Decimal(10))
    )


def test_open_orders_from_elsewhere_fail_closed(make_deps, clock) -> None:
    broker = ScriptedBroker(
        clock, cash=Decimal(100_000), prices={"SPY": Decimal(520), "TLT": Decimal(94)}
    )
    _open_order(broker, "manual-order-1")
    report = rebalance(run_request("r1"), make_deps(broker=broker))
    assert report.status is RunStatus.FAILED
    assert report.errors[0].code == "OPEN_ORDERS_PRESENT"
    assert "manual-order-1" in report.errors[0].message
    assert broker.submissions == ["manual-order-1"]


def test_own_open_orders_are_cancelled_and_the_retry_places_the_next_leg(make_deps, clock) -> None:
    """A retried run finds its earlier attempt's order still working: it cancels it
    (nothing filled), re-plans from the account, and places the buy as leg 1."""
    run_id = "default-20260731-00000000aa"
    broker = ScriptedBroker(
        clock, cash=Decimal(100_000), prices={"SPY": Decimal(520), "TLT": Decimal(94)}
    )
    _open_order(broker, f"{run_id}-buy-SPY-0")
    broker.fill_after_seconds = 5.0  # still working when the retried run starts
    report = rebalance(run_request(run_id), make_deps(broker=broker))
    assert report.errors == ()
    assert report.status is RunStatus.COMPLETED
    assert broker.cancels == [f"{run_id}-buy-SPY-0"]
    assert broker.submissions.count(f"{run_id}-buy-SPY-0") == 1  # never sent again
    assert {o.client_order_id for o in report.orders} == {
        f"{run_id}-buy-SPY-1",
        f"{run_id}-buy-TLT-0",
    }
    assert any("cancelled our earlier order" in n for n in report.notes)


def test_an_order_of_another_account_is_not_ours(make_deps, clock) -> None:
    """Two accounts of one config on one Alpaca account: the other's order is foreign."""
    broker = ScriptedBroker(
        clock, cash=Decimal(100_000), prices={"SPY": Decimal(520), "TLT": Decimal(94)}
    )
    _open_order(broker, "ira-20260731-00000000aa-buy-SPY-0")
    report = rebalance(run_request("default-20260731-00000000bb"), make_deps(broker=broker))
    assert report.status is RunStatus.FAILED
    assert report.errors[0].code == "OPEN_ORDERS_PRESENT"
    assert broker.cancels == []


def test_a_finished_run_is_answered_from_the_ledger(make_deps, clock) -> None:
    broker = ScriptedBroker(
        clock, cash=Decimal(100_000), prices={"SPY": Decimal(520), "TLT": Decimal(94)}
    )
    deps = make_deps(broker=broker)
    first = rebalance(run_request("r1"), deps)
    assert first.status is RunStatus.COMPLETED
    submitted = list(broker.submissions)
    again = rebalance(run_request("r1"), deps)
    assert broker.submissions == submitted
    assert again.attempt_id == first.attempt_id
    assert "answered from the ledger" in again.notes[-1]
    assert [r.status for r in deps.ledger.reports] == [RunStatus.STARTED, RunStatus.COMPLETED]


def test_a_rerun_after_shrunk_orders_does_not_trade_again(make_deps, clock) -> None:
    """The first attempt's buys were capped at $10,000 each; its report was lost (a
    new ledger): the second attempt counts what the first placed against the run's
    per-order cap and places nothing more."""
    broker = ScriptedBroker(
        clock, cash=Decimal(100_000), prices={"SPY": Decimal(520), "TLT": Decimal(94)}
    )
    limits = RiskLimits(max_order_notional=Decimal(10_000))
    first = rebalance(
        run_request("default-20260731-00000000cc"), make_deps(broker=broker, limits=limits)
    )
    assert first.status is RunStatus.COMPLETED
    assert first.degraded
    placed = list(broker.submissions)
    again = rebalance(
        run_request("default-20260731-00000000cc"), make_deps(broker=broker, limits=limits)
    )
    assert broker.submissions == placed
    assert {o.client_order_id for o in again.earlier_orders} == set(placed)
    assert again.orders == ()
    assert again.status is RunStatus.BLOCKED


def test_scheduled_run_on_a_closed_day_is_skipped(make_deps) -> None:
    deps = make_deps()
    saturday = date(2026, 8, 1)
    request = RunRequest(
        run_id="r1",
        as_of=LAST,
        trading_date=saturday,
        scheduled_time=datetime(2026, 8, 1, 13, 30, tzinfo=UTC),
        mode=Mode.SIM,
    )
    report = rebalance(request, deps)
    assert report.status is RunStatus.SKIPPED
    assert report.skipped is SkipReason.HOLIDAY
    assert report.status.succeeded
    assert report.notes == ("2026-08-01 is not a trading session",)
    assert report.orders == ()
    assert deps.broker.snapshot().positions == ()
    assert [r.status for r in deps.ledger.reports] == [RunStatus.STARTED, report.status]
    assert deps.ledger.reports[-1] == report


def test_everything_denied_is_blocked(make_deps) -> None:
    report = rebalance(run_request(), make_deps(state=TradingState.HALTED))
    assert report.status is RunStatus.BLOCKED
    assert report.status.succeeded


def test_orders_that_never_fill_leave_the_run_incomplete(make_deps, clock) -> None:
    broker = ScriptedBroker(
        clock,
        cash=Decimal(100_000),
        prices={"SPY": Decimal(520), "TLT": Decimal(94)},
        fill_after_seconds=None,
    )
    report = rebalance(run_request(), make_deps(broker=broker))
    assert report.status is RunStatus.INCOMPLETE
    assert not report.status.succeeded
    assert {o.status for o in report.orders} == {OrderStatus.CANCELED}
    assert "not filled in full" in failure_reason(report)


def test_time_budget_bounds_the_waits(make_deps, clock) -> None:
    broker = ScriptedBroker(
        clock,
        cash=Decimal(100_000),
        prices={"SPY": Decimal(520), "TLT": Decimal(94)},
        fill_after_seconds=None,
    )
    request = RunRequest(
        run_id="r1",
        as_of=LAST,
        trading_date=LAST,
        scheduled_time=None,
        mode=Mode.SIM,
        deadline=4.0,
    )
    start = clock.monotonic()
    report = rebalance(request, make_deps(broker=broker))
    assert clock.monotonic() - start == pytest.approx(4.0)
    assert report.status is RunStatus.INCOMPLETE


def test_a_position_that_appears_during_the_run_is_reported_not_a_crash(make_deps, clock) -> None:
    """A trade by hand (or anybody's order) fills mid-run in a symbol the plan never
    priced: the account after is still valued and the run still recorded."""

    class Meddled(ScriptedBroker):
        def submit_order(self, request: OrderRequest):  # type: ignore[no-untyped-def]
            self.positions["ZZZ"] = Decimal(3)
            return super().submit_order(request)

    broker = Meddled(clock, cash=Decimal(100_000), prices={"SPY": Decimal(520), "TLT": Decimal(94)})
    deps = make_deps(broker=broker)
    report = rebalance(run_request("r1"), deps)
    assert report.status is RunStatus.COMPLETED
    assert report.account_after is not None
    assert "ZZZ" in {p.symbol for p in report.account_after.positions}
    assert any("ZZZ appeared during the run" in n for n in report.notes)
    assert [r.status for r in deps.ledger.reports] == [RunStatus.STARTED, report.status]
    assert deps.ledger.reports[-1] == report


def test_a_strategy_rebalance_note_is_in_the_report(make_deps) -> None:
    deps = make_deps()
    rule = RebalanceRule(RebalanceFrequency.MONTHLY)
    monthly = FixedStrategy("monthly", {"SPY": 0.6, "TLT": 0.4}, rule)
    deps = dataclasses.replace(deps, strategies=[AllocatedStrategy(monthly, 1.0)])
    report = rebalance(run_request(), deps)
    assert report.status is RunStatus.COMPLETED
    (strategy,) = report.strategies
    # Every symbol of these prices gains 1% a session: the drifted weights are the targets.
    assert strategy.weights == pytest.approx({"SPY": 0.6, "TLT": 0.4})
    assert strategy.rebalance == "monthly: next rebalance 2026-08-01; keeping drifted weights"
    assert f"  monthly: {strategy.rebalance}" in render_report(report).splitlines()
    daily = rebalance(run_request("20260731-daily"), make_deps())
    assert daily.strategies[0].rebalance is None
