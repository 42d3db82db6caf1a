"""Order-path safety against the local exchange: a rerun, a race, an odd reply or a
price gap never produces an order the run's plan did not approve.

Each test drives the real service and the alpaca-py adapters. Each checks at the
exchange, across every attempt of the run: no client_order_id accepted twice, no order
outside what the run approved (summed over its attempts), and the report's status and
code.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from alchemiser.adapters.alpaca.broker import AlpacaBroker
from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.transport import Transport
from alchemiser.adapters.clock import SystemClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.ledger import InMemoryLedger
from alchemiser.config import AppConfig, parse_config
from alchemiser.domain.decisions import Verdict
from alchemiser.domain.orders import OrderRequest, Side
from alchemiser.domain.prices import reference_prices
from alchemiser.domain.report import RunReport, RunStatus
from alchemiser.exchange import ExchangeSettings, Fault, LocalExchange
from tests.integration.test_alpaca_faults import (
    FAST_RETRY,
    ORDERS,
    SCHEDULED,
    TARGETS,
    codes,
    config,
    post_count,
    run,
)
from tests.integration.test_alpaca_quotes import quote

pytestmark = pytest.mark.integration


def settings_with(**tables: Any) -> AppConfig:
    """The fault matrix's config with some tables replaced or extended."""
    document: dict[str, Any] = {
        "account": "fault-matrix",
        "broker": "alpaca",
        "mode": "paper",
        "alpaca": {"secret_id": "unused", "retry": dict(FAST_RETRY)},
        "strategies": [{"name": "core", "allocation": 1.0, "weights": TARGETS}],
        "risk": {"max_position_weight": 1.0},
        "execution": {
            "poll_interval_seconds": 0.02,
            "fill_timeout_seconds": 1.0,
            "cancel_timeout_seconds": 0.5,
        },
    }
    for table, values in tables.items():
        if isinstance(values, dict) and isinstance(document.get(table), dict):
            document[table] = {**document[table], **values}
        else:
            document[table] = values
    return parse_config(document, "test")


def approved_notional(reports: list[RunReport]) -> dict[tuple[str, str], Decimal]:
    """What the run's attempts approved per symbol and side, summed: each attempt plans
    only what is still missing (earlier attempts' orders count against it), so what the
    broker received must stay within the sum. The run's own limits across attempts are
    checked where a test sets them."""
    approved: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for report in reports:
        for decision in report.decisions:
            if decision.verdict is Verdict.DENIED:
                continue
            key = (decision.symbol, decision.side.value)
            approved[key] += decision.approved_qty * decision.ref_price
    return approved


def check_run_invariants(
    exchange: LocalExchange, reports: list[RunReport], exclude: frozenset[str] = frozenset()
) -> None:
    """Across every attempt: no id twice; per symbol and side, what was accepted stays
    within what the first attempt approved (plus the price tolerance); every accepted
    order carries the run's id."""
    accepted = [o for o in exchange.engine.accepted_orders() if o.client_order_id not in exclude]
    ids = [o.client_order_id for o in accepted]
    assert len(ids) == len(set(ids)), f"a client_order_id was accepted twice: {ids}"
    run_ids = {r.run_id for r in reports}
    approved = approved_notional(reports)
    spent: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for order in accepted:
        if order.client_order_id.startswith("fault-matrix-2026"):
            assert any(order.client_order_id.startswith(r) for r in run_ids)
        price = order.filled_avg_price if order.filled_avg_price is not None else Decimal(0)
        amount = (
            Decimal(str(order.notional))
            if order.notional is not None
            else Decimal(str(order.qty)) * price
        )
        spent[(order.symbol, str(order.side))] += amount
    for key, amount in spent.items():
        assert key in approved, f"{key} was never approved"
        assert amount <= approved[key] * Decimal("1.02") + 1, (key, amount, approved[key])
    assert exchange.engine.cash() >= 0, "buys spent more than the cash: the account borrowed"


@pytest.fixture
def exchange() -> Any:
    with LocalExchange(settings=ExchangeSettings(cash=Decimal(50_000))) as ex:
        ex.engine.set_position("QQQ", Decimal(60), Decimal(400))
        ex.engine.set_position("BND", Decimal(200), Decimal(70))
        yield ex


# -- 1. a rerun after risk shrank its orders ---------------------------------------------


def test_a_rerun_after_shrunk_orders_places_nothing_more(exchange: LocalExchange) -> None:
    """Each attempt's report was lost (a fresh ledger each time): the broker's own record
    of the run's orders is what stops it trading again."""
    capped = settings_with(risk={"max_order_notional": 10_000})
    reports = [run(exchange, capped).report for _ in range(4)]
    assert reports[0].status is RunStatus.COMPLETED
    assert reports[0].degraded, "shrunk buys must say the run is degraded"
    first = len(exchange.engine.accepted_orders())
    assert first == 5
    for again in reports[1:]:
        assert again.orders == (), again.orders
        assert again.status is RunStatus.BLOCKED
        assert any("earlier attempts" in d.reason for d in again.decisions)
        assert {o.client_order_id for o in again.earlier_orders} >= {
            o.client_order_id for o in reports[0].orders
        }
    assert len(exchange.engine.accepted_orders()) == first
    check_run_invariants(exchange, reports)
    for order in exchange.engine.accepted_orders():  # the run's cap, across attempts
        price = Decimal(str(order.filled_avg_price))
        spent = Decimal(str(order.notional)) if order.notional else order.qty * price
        assert spent <= Decimal(10_000) * Decimal("1.01"), (order.client_order_id, spent)


def test_a_finished_run_is_answered_from_the_ledger(exchange: LocalExchange) -> None:
    ledger = InMemoryLedger()
    first = run(exchange, settings_with(), ledger)
    assert first.report.status is RunStatus.COMPLETED
    requests = len(exchange.requests)
    again = run(exchange, settings_with(), ledger)
    assert again.report.attempt_id == first.report.attempt_id
    assert "answered from the ledger" in again.report.notes[-1]
    # One clock and one calendar read to name the run; nothing of the account.
    assert len(exchange.requests) - requests <= 2
    assert post_count(exchange) == 5


# -- 2-4. the snapshot: read order, consistency, races -------------------------------------


def test_an_empty_positions_reply_is_read_again(exchange: LocalExchange) -> None:
    exchange.add_fault(Fault(method="GET", path="/v2/positions", status=200, body=[]))
    result = run(exchange)
    assert exchange.fault_hits(), "the fault never fired"
    assert result.report.status is RunStatus.COMPLETED, result.report.errors
    # QQQ and BND were seen and sold: the plan started from the real holdings.
    assert {(o.symbol, o.side) for o in result.report.orders if o.side is Side.SELL} == {
        ("QQQ", Side.SELL),
        ("BND", Side.SELL),
    }
    check_run_invariants(exchange, [result.report])


def test_positions_that_never_add_up_fail_closed(exchange: LocalExchange) -> None:
    exchange.add_fault(Fault(method="GET", path="/v2/positions", status=200, body=[], every=True))
    result = run(exchange)
    assert result.report.status is RunStatus.FAILED
    assert codes(result.report) == ["SNAPSHOT_INCONSISTENT"]
    assert post_count(exchange) == 0


def test_two_concurrent_attempts_of_one_run_do_not_both_trade(exchange: LocalExchange) -> None:
    """Attempt B reads this run's orders and the open orders before attempt A trades,
    and its positions (delayed) after: B must not trade on top of A."""
    exchange.add_fault(Fault(method="GET", path="/v2/positions", nth=2, delay_seconds=1.5))
    results: dict[str, RunReport] = {}

    def attempt(name: str) -> None:
        results[name] = run(exchange).report

    first = threading.Thread(target=attempt, args=("a",))
    first.start()
    # B starts once A has read its positions (A's read is the first), before A trades.
    second = threading.Thread(target=attempt, args=("b",))
    second.start()
    first.join(60)
    second.join(60)
    reports = [results["a"], results["b"]]
    traded = [r for r in reports if r.orders]
    idle = [r for r in reports if not r.orders]
    # One attempt trades the plan; the other places nothing: it either saw the first
    # one's orders appear (CONCURRENT_ATTEMPT) or, started later, found nothing to do.
    assert len(traded) == 1, [(r.status, codes(r)) for r in reports]
    assert traded[0].status is RunStatus.COMPLETED
    assert len(idle) == 1
    assert codes(idle[0]) == ["CONCURRENT_ATTEMPT"] or idle[0].status is RunStatus.NOOP
    check_run_invariants(exchange, reports)
    accepted = exchange.engine.accepted_orders()
    sides = [(o.symbol, str(o.side)) for o in accepted]
    assert len(sides) == len(set(sides)), f"a symbol traded twice on one side: {sides}"


# -- 5-6. replies that are not what the API documents ---------------------------------------


def test_a_2xx_that_is_not_an_order_is_looked_up(exchange: LocalExchange) -> None:
    exchange.add_fault(
        Fault(
            method="POST",
            path=ORDERS,
            when="after",
            status=200,
            body={"id": "not-a-complete-order", "status": "new"},
        )
    )
    result = run(exchange)
    assert exchange.fault_hits()
    assert result.report.status is RunStatus.COMPLETED, result.report.errors
    assert len(result.report.orders) == 5
    assert post_count(exchange) == 5
    assert exchange.engine.open_orders() == []
    check_run_invariants(exchange, [result.report])


def test_an_unknown_order_is_cancelled_when_the_breaker_opens(exchange: LocalExchange) -> None:
    """The first sell is applied but its reply is lost; every lookup by id then fails
    until the breaker opens. Before the run ends, the open-order list (read past the
    breaker) finds the order and it is cancelled."""
    exchange.configure(fill_delay_seconds=30)
    exchange.add_fault(Fault.connection_reset(when="after", method="POST", path=ORDERS))
    exchange.add_fault(
        Fault.server_error(500, method="GET", path="/v2/orders:by_client_order_id", every=True)
    )
    result = run(exchange, config(breaker_threshold=3, max_attempts=5))
    report = result.report
    assert report.status is RunStatus.FAILED
    assert exchange.engine.open_orders() == [], "an order of the run was left working"
    assert exchange.count("DELETE") >= 1
    assert any(o.client_order_id == report.intents[0].client_order_id for o in report.orders)
    check_run_invariants(exchange, [report])


def test_a_401_mid_run_stops_submitting(exchange: LocalExchange) -> None:
    exchange.add_fault(
        Fault(
            method="POST",
            path=ORDERS,
            nth=2,
            status=401,
            body={"code": 40110000, "message": "request is not authorized"},
        )
    )
    result = run(exchange)
    assert result.report.status is RunStatus.FAILED
    assert "BROKER_AUTH" in codes(result.report)
    assert post_count(exchange) == 2  # the second was refused; no third was sent
    assert len(exchange.engine.accepted_orders()) == 1
    check_run_invariants(exchange, [result.report])


def test_quantities_go_to_the_broker_as_exact_decimals(exchange: LocalExchange) -> None:
    """A float would send 12345678.12345679 for this quantity."""
    qty = Decimal("12345678.123456789")
    exchange.engine.set_position("SPY", qty, Decimal(1))
    clock = SystemClock()
    transport = Transport(clock, config().alpaca.retry)  # type: ignore[union-attr]
    broker = AlpacaBroker(rest_client(exchange.url, "k", "s"), transport)
    record = broker.submit_order(
        OrderRequest(client_order_id="exact-1", symbol="SPY", side=Side.SELL, qty=qty)
    )
    assert record.qty == qty
    placed = exchange.engine.order_by_client_id("exact-1")
    assert placed is not None
    assert Decimal(str(placed.qty)) == qty


# -- 10. accounts -------------------------------------------------------------------------


def test_a_pinned_account_number_that_does_not_match_places_nothing(
    exchange: LocalExchange,
) -> None:
    clock = SystemClock()
    transport = Transport(clock, config().alpaca.retry)  # type: ignore[union-attr]
    broker = AlpacaBroker(
        rest_client(exchange.url, "k", "s"),
        transport,
        account_number="PA-NOT-THIS-ONE",
    )
    from alchemiser.errors import AccountMismatch  # noqa: PLC0415

    with pytest.raises(AccountMismatch) as raised:
        broker.snapshot()
    assert raised.value.code == "ACCOUNT_MISMATCH"
    assert "PA-NOT-THIS-ONE" not in str(raised.value)
    assert exchange.engine.account_number not in str(raised.value)
    assert post_count(exchange) == 0


def _earlier_order(exchange: LocalExchange, symbol: str, side: str, qty: int, cid: str) -> None:
    client = rest_client(exchange.url, "k", "s")
    client.post(
        "/orders",
        {
            "symbol": symbol,
            "side": side,
            "type": "market",
            "time_in_force": "day",
            "qty": str(qty),
            "client_order_id": cid,
        },
    )


@pytest.mark.parametrize("nth", [2, 3], ids=["before-positions", "after-positions"])
def test_a_fill_between_the_snapshot_reads_is_not_missed(exchange: LocalExchange, nth: int) -> None:
    """Our earlier run's QQQ sell is half filled and still working; the rest fills as
    the run lists the open orders (the 2nd list read comes before the positions, the
    3rd after them). The plan must start from what is really held either way."""
    earlier = "fault-matrix-20260730-00000000ab-sell-QQQ-0"
    exchange.configure(partial_fills={"QQQ": 0.5})
    _earlier_order(exchange, "QQQ", "sell", 40, earlier)
    exchange.configure(partial_fills={})
    assert exchange.engine.positions()["QQQ"].qty == Decimal(40)
    exchange.add_fault(Fault.market_moves(method="GET", path=ORDERS, nth=nth, when="before"))
    result = run(exchange)
    report = result.report
    assert exchange.fault_hits()
    assert report.status is RunStatus.COMPLETED, report.errors
    assert "QQQ" not in exchange.engine.positions()
    qqq = [o for o in report.orders if o.symbol == "QQQ"]
    assert [o.qty for o in qqq] == [Decimal(20)]
    check_run_invariants(exchange, [report], exclude=frozenset({earlier}))


# -- 8. a fractional residue of an asset traded in whole shares -----------------------------


def test_a_fractional_residue_is_exited_through_close_position() -> None:
    settings = ExchangeSettings(cash=Decimal(50_000), whole_share_symbols=frozenset({"QQQ"}))
    with LocalExchange(settings=settings) as exchange:
        exchange.engine.set_position("QQQ", Decimal("60.5"), Decimal(400))
        result = run(exchange)
        report = result.report
        assert report.status is RunStatus.COMPLETED, report.errors
        assert "QQQ" not in exchange.engine.positions()
        assert any("close-position" in n for n in report.notes)
        qqq = sorted(o.qty for o in report.orders if o.symbol == "QQQ")
        assert qqq == [Decimal("0.5"), Decimal(60)]
        check_run_invariants(exchange, [report])


# -- 17. holdings the product cannot trade -------------------------------------------------


def test_crypto_and_options_are_left_alone(exchange: LocalExchange) -> None:
    exchange.engine.set_position(
        "BTC/USD", Decimal("0.25"), Decimal(60_000), asset_class="crypto", price=Decimal(64_000)
    )
    exchange.engine.set_position(
        "SPY260918C00500000", Decimal(1), Decimal(20), asset_class="us_option", price=Decimal(25)
    )
    result = run(exchange)
    report = result.report
    assert report.status is RunStatus.COMPLETED, report.errors
    assert {u.asset_class for u in report.unmanaged} == {"crypto", "us_option"}
    assert not any(o.symbol.startswith(("BTC", "SPY2")) for o in report.orders)
    positions = exchange.engine.positions()
    assert any(symbol.startswith("BTC") for symbol in positions)
    check_run_invariants(exchange, [report])


def test_equities_no_strategy_holds_are_kept_when_asked(exchange: LocalExchange) -> None:
    keep = settings_with(rebalance={"unmanaged_positions": "keep"})
    result = run(exchange, keep)
    report = result.report
    assert report.status is RunStatus.COMPLETED, report.errors
    assert {u.symbol for u in report.unmanaged} == {"QQQ", "BND"}
    assert exchange.engine.positions()["QQQ"].qty == Decimal(60)
    assert not any(o.side is Side.SELL for o in report.orders)
    # Targets are fractions of what the product manages: the $50,000 in cash.
    spent = sum((Decimal(str(o.notional or 0)) for o in report.orders), Decimal(0))
    assert spent <= Decimal(50_000)
    check_run_invariants(exchange, [report])


# -- 7. prices that moved since the reference close ----------------------------------------


AS_OF = date(2026, 7, 30)
"""The reference session of a run on the exchange's 2026-07-31."""


def _reference_close(symbol: str) -> Decimal:
    store = FilePriceStore.bundled()
    return reference_prices(store.history([symbol], AS_OF, 1), [symbol], AS_OF)[symbol]


def _whole_share_exchange() -> LocalExchange:
    return LocalExchange(
        settings=ExchangeSettings(
            cash=Decimal(100_000), whole_share_symbols=frozenset({"SPY", "TLT", "GLD"})
        )
    )


def test_whole_share_buys_after_a_gap_up_do_not_overspend() -> None:
    """Every price 12% above the reference close: buys sized at yesterday's close
    would cost more than the cash; sized at the ask, every buy fits and nothing is
    refused for buying power."""
    with _whole_share_exchange() as exchange:
        for symbol in TARGETS:
            jump = _reference_close(symbol) * Decimal("1.12")
            exchange.engine.set_price(symbol, jump.quantize(Decimal("0.01")))
        result = run(exchange)
        report = result.report
        assert report.errors == (), report.errors
        assert report.status is RunStatus.COMPLETED
        assert {o.symbol for o in report.orders} == set(TARGETS)
        assert all(o.status.value == "filled" for o in report.orders)
        assert exchange.engine.cash() >= 0
        assert report.degraded  # fewer shares than the plan asked for, and it says so
        check_run_invariants(exchange, [report])


def test_a_price_far_from_the_reference_close_is_denied() -> None:
    """A 30% jump (a split, a bad bar) is refused by the collar; the rest trades."""
    with _whole_share_exchange() as exchange:
        jump = _reference_close("SPY") * Decimal("1.30")
        exchange.engine.set_price("SPY", jump.quantize(Decimal("0.01")))
        result = run(exchange)
        report = result.report
        denied = [d for d in report.decisions if d.verdict is Verdict.DENIED]
        assert [(d.symbol, [c.value for c in d.codes]) for d in denied] == [
            ("SPY", ["PRICE_DEVIATION"])
        ]
        assert "SPY" not in {o.symbol for o in report.orders}
        assert report.status is RunStatus.COMPLETED
        assert any("PRICE_DEVIATION" in reason for reason in report.degraded)
        check_run_invariants(exchange, [report])


# -- found in review: each was reproduced against the exchange before its fix -----------------


def test_a_positions_reply_without_market_values_cannot_hide_a_holding() -> None:
    """SPY (a 50% target) is held; every positions reply drops it and leaves BND without
    a market value. Nothing can be checked, so nothing is planned."""
    with LocalExchange(settings=ExchangeSettings(cash=Decimal(20_000))) as exchange:
        exchange.engine.set_position("SPY", Decimal(40), Decimal(500))
        exchange.engine.set_position("BND", Decimal(200), Decimal(70))
        exchange.add_fault(
            Fault(
                method="GET",
                path="/v2/positions",
                status=200,
                every=True,
                body=[
                    {
                        "symbol": "BND",
                        "qty": "200",
                        "asset_class": "us_equity",
                        "avg_entry_price": "70",
                    }
                ],
            )
        )
        result = run(exchange)
        assert result.report.status is RunStatus.FAILED
        assert codes(result.report) == ["SNAPSHOT_INCONSISTENT"]
        assert post_count(exchange) == 0


def test_a_missing_quote_fails_the_run_and_a_retry_trades(exchange: LocalExchange) -> None:
    """Not "blocked" (a finished run the ledger would answer every retry with): a data
    failure, so the next attempt trades once quotes are back."""
    ledger = InMemoryLedger()
    exchange.add_fault(
        Fault(method="GET", path="/v2/stocks/quotes/latest", status=200, body={"quotes": {}})
    )
    first = run(exchange, settings_with(), ledger).report
    assert first.status is RunStatus.FAILED
    assert codes(first) == ["DATA_MISSING"]
    assert post_count(exchange) == 0
    second = run(exchange, settings_with(), ledger).report
    assert second.status is RunStatus.COMPLETED, second.errors
    assert post_count(exchange) == 5
    check_run_invariants(exchange, [first, second])


def test_a_share_buy_priced_at_the_ask_keeps_the_approved_dollars() -> None:
    """+20% (inside the collar): risk approved $10,000 of SPY at the reference close; the
    broker must not receive 13 shares at $890."""
    with _whole_share_exchange() as exchange:
        jump = _reference_close("SPY") * Decimal("1.20")
        exchange.engine.set_price("SPY", jump.quantize(Decimal("0.01")))
        capped = settings_with(risk={"max_order_notional": 10_000, "max_position_weight": 1.0})
        report = run(exchange, capped).report
        assert report.status is RunStatus.COMPLETED, report.errors
        (spy,) = [o for o in exchange.engine.accepted_orders() if o.symbol == "SPY"]
        assert spy.filled_avg_price is not None
        assert Decimal(str(spy.qty)) * Decimal(str(spy.filled_avg_price)) <= Decimal(10_000)
        (adjusted,) = [a for a in report.adjustments if a.symbol == "SPY"]
        assert "ask" in adjusted.reason
        check_run_invariants(exchange, [report])


def test_our_own_lost_order_is_not_taken_for_another_attempt() -> None:
    """The POST is applied, its reply lost; the lookup lags (404 twice) and the resend
    is refused as a duplicate. The order is this attempt's: it stays in the report and
    is cancelled before the run ends, never left working."""
    with LocalExchange(settings=ExchangeSettings(cash=Decimal(50_000))) as exchange:
        exchange.engine.set_position("QQQ", Decimal(60), Decimal(400))
        exchange.engine.set_position("BND", Decimal(200), Decimal(70))
        exchange.configure(fill_delay_seconds=30)
        exchange.add_fault(Fault.connection_reset(when="after", method="POST", path=ORDERS))
        exchange.add_fault(
            Fault(
                method="GET",
                path="/v2/orders:by_client_order_id",
                status=404,
                times=2,
                body={"code": 40410000, "message": "order not found"},
            )
        )
        report = run(exchange).report
        # Found by the next lookup, waited for, cancelled unfilled at the fill timeout.
        assert report.status is RunStatus.INCOMPLETE
        assert "CONCURRENT_ATTEMPT" not in codes(report)
        assert exchange.engine.open_orders() == [], "an order of this attempt was left working"
        first = report.intents[0].client_order_id
        assert first in {o.client_order_id for o in report.orders}
        check_run_invariants(exchange, [report])


def test_our_sells_cancelled_by_somebody_else_stop_the_buys() -> None:
    """Our sells are still working when their fill timeout passes; another attempt
    cancels them just before our check before the buys. We place no buy."""
    from alchemiser.adapters.alpaca import broker as broker_module  # noqa: PLC0415

    with LocalExchange(settings=ExchangeSettings(cash=Decimal(50_000))) as exchange:
        exchange.engine.set_position("QQQ", Decimal(60), Decimal(400))
        exchange.engine.set_position("BND", Decimal(200), Decimal(70))
        exchange.configure(fill_delay_seconds=30)
        reads = {"n": 0}
        original = broker_module.AlpacaBroker.orders_of_run

        def other_attempt_cancels(self: AlpacaBroker, run_id: str, *, force: bool = False) -> Any:
            reads["n"] += 1
            if reads["n"] == 3:  # our read before the buys
                for order in exchange.engine.open_orders():
                    exchange.engine.cancel_order(order.id)
            return original(self, run_id, force=force)

        broker_module.AlpacaBroker.orders_of_run = other_attempt_cancels  # type: ignore[method-assign]
        try:
            report = run(exchange).report
        finally:
            broker_module.AlpacaBroker.orders_of_run = original  # type: ignore[method-assign]
        assert "CONCURRENT_ATTEMPT" in codes(report)
        assert not [o for o in exchange.engine.accepted_orders() if str(o.side) == "buy"]
        check_run_invariants(exchange, [report])


def test_a_one_share_buy_above_its_close_is_not_sent_as_zero_shares() -> None:
    """Approved 1 whole share at the reference close; the ask is 1% higher, so the
    approved dollars buy no share at all. The buy is not sent (an adjustment says so)
    and the run still ends with a report."""
    with _whole_share_exchange() as exchange:
        close = _reference_close("SPY")
        exchange.engine.set_price("SPY", (close * Decimal("1.01")).quantize(Decimal("0.01")))
        capped = settings_with(
            risk={"max_order_notional": str((close * Decimal("1.5")).quantize(Decimal(1)))}
        )
        report = run(exchange, capped).report
        assert "SPY" not in {o.symbol for o in report.orders}
        (spy,) = [a for a in report.adjustments if a.symbol == "SPY"]
        assert spy.placed_qty == 0
        assert report.status is RunStatus.COMPLETED, report.errors
        check_run_invariants(exchange, [report])


def test_a_symbol_without_a_quote_is_left_for_the_retry(exchange: LocalExchange) -> None:
    """QQQ has no usable quote (no ask, no bid): its exit is denied, the rest trades,
    and the run is a failure (not a finished run) so the retry sells QQQ."""
    ledger = InMemoryLedger()
    quotes: dict[str, Any] = {
        symbol: quote(float(_reference_close(symbol)), float(_reference_close(symbol)))
        for symbol in ("BND", *TARGETS)
    }
    quotes["QQQ"] = quote(0, 0)
    exchange.add_fault(
        Fault(
            method="GET",
            path="/v2/stocks/quotes/latest",
            status=200,
            body={"quotes": quotes},
        )
    )
    first = run(exchange, settings_with(), ledger).report
    assert first.status is RunStatus.FAILED
    assert codes(first) == ["DATA_MISSING"]
    assert "QQQ" not in {o.symbol for o in first.orders}
    assert first.orders, "the symbols with quotes still traded"
    second = run(exchange, settings_with(), ledger).report
    assert "QQQ" not in exchange.engine.positions()
    assert second.status is RunStatus.COMPLETED, second.errors
    check_run_invariants(exchange, [first, second])


def test_a_dead_attempts_order_that_finishes_between_reads_is_no_concurrent_attempt(
    exchange: LocalExchange,
) -> None:
    """An attempt of this run died with its QQQ sell half filled; the rest fills just
    after the retry read the run's orders. That is not another attempt trading."""
    from alchemiser.service import make_run_id  # noqa: PLC0415

    run_id = make_run_id("fault-matrix", date(2026, 7, 31), SCHEDULED)
    earlier = f"{run_id}-sell-QQQ-0"
    exchange.configure(partial_fills={"QQQ": 0.5})
    _earlier_order(exchange, "QQQ", "sell", 40, earlier)
    exchange.configure(partial_fills={})
    exchange.add_fault(Fault.market_moves(method="GET", path=ORDERS, nth=1, when="after"))
    report = run(exchange).report
    assert "CONCURRENT_ATTEMPT" not in codes(report)
    assert report.status is RunStatus.COMPLETED, report.errors
    assert "QQQ" not in exchange.engine.positions()
    check_run_invariants(exchange, [report], exclude=frozenset({earlier}))


def test_a_busy_day_of_other_orders_does_not_hide_the_runs_own(exchange: LocalExchange) -> None:
    """Between two attempts of a capped run, another tool places 600 orders: more than
    a page of the order list. The second attempt still finds the first's orders, and
    places nothing more."""
    capped = settings_with(risk={"max_order_notional": 10_000})
    first = run(exchange, capped).report
    assert first.status is RunStatus.COMPLETED
    for number in range(300):
        for side in ("buy", "sell"):  # bought and sold again: the account is unchanged
            exchange.engine.submit_order(
                {
                    "symbol": "AGG",
                    "side": side,
                    "type": "market",
                    "time_in_force": "day",
                    "qty": "1",
                    "client_order_id": f"other-tool-{side}-{number}",
                }
            )
    again = run(exchange, capped).report
    assert {o.client_order_id for o in again.earlier_orders} == {
        o.client_order_id for o in first.orders
    }
    assert again.orders == ()
    check_run_invariants(
        exchange,
        [first, again],
        exclude=frozenset(
            o.client_order_id
            for o in exchange.engine.accepted_orders()
            if o.client_order_id.startswith("other-tool-")
        ),
    )


def test_another_attempts_order_between_the_second_reads_is_seen() -> None:
    """Attempt B's QQQ sell is working when A reads the run's orders and fills before A's
    snapshot, so A reads both again; B places its SPY buy in between. A must see that
    as another attempt trading, not plan SPY as if none were held."""
    from alchemiser.adapters.alpaca import broker as broker_module  # noqa: PLC0415

    with LocalExchange(settings=ExchangeSettings(cash=Decimal(50_000))) as exchange:
        exchange.engine.set_position("QQQ", Decimal(60), Decimal(400))
        exchange.engine.set_position("BND", Decimal(200), Decimal(70))
        reads: list[str] = []
        original = broker_module.AlpacaBroker.orders_of_run

        def other_attempt(self: AlpacaBroker, run_id: str, *, force: bool = False) -> Any:
            reads.append(run_id)
            order = {"type": "market", "time_in_force": "day"}
            if len(reads) == 1:  # B's sell, working at A's first read
                exchange.engine.configure(fill_delay_seconds=5.0)
                exchange.engine.submit_order(
                    {**order, "symbol": "QQQ", "side": "sell", "qty": "60"}
                    | {"client_order_id": f"{run_id}-sell-QQQ-0"}
                )
                exchange.engine.configure(fill_delay_seconds=0.0)
                seen = original(self, run_id, force=force)
                exchange.engine.advance(10)  # it fills before A's snapshot
                return seen
            if len(reads) == 2:  # B's buy, after A's snapshot, before A reads again
                exchange.engine.submit_order(
                    {**order, "symbol": "SPY", "side": "buy", "notional": "40000"}
                    | {"client_order_id": f"{run_id}-buy-SPY-0"}
                )
            return original(self, run_id, force=force)

        broker_module.AlpacaBroker.orders_of_run = other_attempt  # type: ignore[method-assign]
        try:
            report = run(exchange).report
        finally:
            broker_module.AlpacaBroker.orders_of_run = original  # type: ignore[method-assign]
        assert codes(report) == ["CONCURRENT_ATTEMPT"]
        assert report.orders == ()
