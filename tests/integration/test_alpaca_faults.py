"""The fault matrix: the real service, the real alpaca-py clients and adapters, the local
exchange on 127.0.0.1 injecting one fault at a time.

Every case checks, at the exchange: no client_order_id accepted twice, at most one order
accepted per symbol and side, every accepted order inside the approved plan (symbol,
side, and size no larger than approved); and that the report names what failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from alchemiser import bootstrap
from alchemiser.adapters.alpaca.broker import AlpacaBroker
from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.market_data import AlpacaMarketData
from alchemiser.adapters.alpaca.transport import Transport
from alchemiser.adapters.clock import SystemClock
from alchemiser.config import AppConfig, parse_config
from alchemiser.domain.decisions import TradingState, Verdict
from alchemiser.domain.orders import OrderStatus, Side
from alchemiser.domain.report import RunReport, RunStatus
from alchemiser.errors import BrokerAuthError
from alchemiser.exchange import ExchangeSettings, Fault, LocalExchange
from alchemiser.ports import Ledger
from alchemiser.service import rebalance

pytestmark = pytest.mark.integration

ORDERS = "/v2/orders"
TARGETS = {"SPY": 0.5, "TLT": 0.3, "GLD": 0.19}
SCHEDULED = datetime(2026, 7, 31, 13, 30, tzinfo=UTC)
FAST_RETRY = {
    "initial_backoff_seconds": 0.01,
    "max_backoff_seconds": 0.05,
    "jitter_seconds": 0.01,
    "connect_timeout_seconds": 1.0,
    "read_timeout_seconds": 0.5,
}


def config(**retry: Any) -> AppConfig:
    return parse_config(
        {
            "account": "fault-matrix",
            "broker": "alpaca",
            "mode": "paper",
            "alpaca": {"secret_id": "unused", "retry": {**FAST_RETRY, **retry}},
            "strategies": [{"name": "core", "allocation": 1.0, "weights": TARGETS}],
            "risk": {"max_position_weight": 1.0},
            "execution": {
                "poll_interval_seconds": 0.02,
                "fill_timeout_seconds": 1.0,
                "cancel_timeout_seconds": 0.5,
            },
        },
        "test",
    )


@dataclass
class Run:
    report: RunReport
    transport: Transport


@pytest.fixture
def exchange() -> Iterator[LocalExchange]:
    with LocalExchange(settings=ExchangeSettings(cash=Decimal(50_000))) as ex:
        # Two holdings to sell, three targets to buy: sells, then buys.
        ex.engine.set_position("QQQ", Decimal(60), Decimal(400))
        ex.engine.set_position("BND", Decimal(200), Decimal(70))
        yield ex


def run(
    exchange: LocalExchange, settings: AppConfig | None = None, ledger: Ledger | None = None
) -> Run:
    """One attempt of the run (same trigger every time); with ``ledger``, attempts share
    it, otherwise each has its own (its report is lost to the next)."""
    settings = settings or config()
    assert settings.alpaca is not None
    clock = SystemClock()
    transport = Transport(clock, settings.alpaca.retry)
    key, secret = "test-key-id", "test-secret-value"
    trading = rest_client(exchange.url, key, secret)
    data = rest_client(exchange.url, key, secret)
    wiring = bootstrap.AlpacaWiring(
        broker=AlpacaBroker(trading, transport),
        market=AlpacaMarketData(trading, data, transport),
        transport=transport,
    )
    request = bootstrap.alpaca_request(
        settings, wiring.market, wiring.broker, SCHEDULED, clock.monotonic() + 30
    )
    deps = bootstrap.build_alpaca(settings, wiring, clock=clock, state_dir=None, ledger=ledger)
    return Run(rebalance(request, deps), transport)


def check_invariants(exchange: LocalExchange, report: RunReport) -> None:
    """Nothing twice, nothing outside the approved plan."""
    accepted = exchange.engine.accepted_orders()
    ids = [o.client_order_id for o in accepted]
    assert len(ids) == len(set(ids)), f"a client_order_id was accepted twice: {ids}"
    sides = [(o.symbol, o.side) for o in accepted]
    assert len(sides) == len(set(sides)), f"two orders for one symbol and side: {sides}"
    approved = {
        (d.symbol, d.side.value): d
        for d in report.decisions
        if d.verdict in (Verdict.APPROVED, Verdict.SHRUNK)
    }
    intents = {i.client_order_id: i for i in report.intents}
    for order in accepted:
        decision = approved.get((order.symbol, str(order.side)))
        assert decision is not None, f"{order.client_order_id} is outside the approved plan"
        intent = intents[decision.client_order_id]
        if order.qty is not None:
            assert Decimal(str(order.qty)) <= decision.approved_qty
        else:
            limit = decision.approved_qty * intent.ref_price * Decimal("1.0001")
            assert Decimal(str(order.notional)) <= limit


def post_count(exchange: LocalExchange, accepted_only: bool = False) -> int:
    return sum(
        1
        for r in exchange.requests
        if r.method == "POST" and r.path == ORDERS and (r.accepted or not accepted_only)
    )


def codes(report: RunReport) -> list[str]:
    return [e.code for e in report.errors]


# -- faults that are retried away -----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limited(retry_after=0.05, method="POST", path=ORDERS),
        Fault.rate_limited(retry_after=None, reset_in=0.2, method="GET", path="/v2/account"),
        Fault.server_error(500, json_body=True, method="GET", path="/v2/positions"),
        Fault.server_error(502, method="GET", path="/v2/positions"),
        Fault.server_error(503, method="GET", path="/v2/stocks/bars"),
        Fault.server_error(504, method="GET", path="/v2/calendar"),
        Fault.server_error(503, method="GET", path="/v2/clock", times=3),
        Fault.connection_reset(method="GET", path="/v2/account"),
        Fault.server_error(503, method="POST", path=ORDERS, when="before"),
        Fault.server_error(500, json_body=True, method="POST", path=ORDERS, nth=3),
        Fault.connection_reset(when="before", method="POST", path=ORDERS, nth=2),
    ],
    ids=lambda f: f.describe(),
)
def test_transient_faults_are_retried_and_the_run_completes(
    exchange: LocalExchange, fault: Fault
) -> None:
    exchange.add_fault(fault)
    result = run(exchange)
    assert exchange.fault_hits(), "the fault never fired"
    assert result.report.status is RunStatus.COMPLETED, result.report.errors
    assert result.transport.retries >= 1
    assert len(exchange.engine.accepted_orders()) == 5
    check_invariants(exchange, result.report)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.server_error(504, method="POST", path=ORDERS, when="after", nth=2),
        Fault.server_error(502, method="POST", path=ORDERS, when="after", nth=4),
        Fault.connection_reset(when="after", method="POST", path=ORDERS, nth=1),
        Fault.slow(2.0, when="after", method="POST", path=ORDERS, nth=3),
    ],
    ids=lambda f: f.describe(),
)
def test_an_accepted_order_whose_reply_was_lost_is_looked_up_not_resent(
    exchange: LocalExchange, fault: Fault
) -> None:
    """The exchange applied the order, then the reply failed (5xx, reset, or slower
    than the 0.5 s read timeout): the adapter looks the order up by client_order_id,
    finds it, and never sends it again."""
    exchange.add_fault(fault)
    result = run(exchange)
    assert result.report.status is RunStatus.COMPLETED, result.report.errors
    assert post_count(exchange) == 5, "an order whose outcome was unknown was sent again"
    assert exchange.count("GET", "/v2/orders:by_client_order_id") >= 1
    check_invariants(exchange, result.report)


def test_a_duplicate_id_after_our_own_retry_resolves_to_the_first_order(
    exchange: LocalExchange,
) -> None:
    """The first POST is applied but its reply is lost; the lookup does not see the
    order yet (404: a broker's read lagging its write), so the adapter resends under the
    same id and gets 422 duplicate: it then looks the order up and carries on with the
    one order the exchange holds."""
    exchange.add_fault(
        Fault.connection_reset(when="after", method="POST", path=ORDERS, nth=1),
        Fault.refusal(
            404, 40410000, "order not found", method="GET", path="/v2/orders:by_client_order_id"
        ),
    )
    result = run(exchange)
    assert result.report.status is RunStatus.COMPLETED, result.report.errors
    assert post_count(exchange, accepted_only=True) == 5
    assert post_count(exchange) == 6  # one resend, refused as a duplicate
    check_invariants(exchange, result.report)


# -- faults that fail the run, closed --------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.insufficient_buying_power(nth=3), "insufficient buying power"),
        (Fault.wash_trade(nth=3), "potential wash trade"),
    ],
    ids=["buying-power", "wash-trade"],
)
def test_a_rejected_order_is_reported_with_the_brokers_reason(
    exchange: LocalExchange, fault: Fault, message: str
) -> None:
    exchange.add_fault(fault)
    result = run(exchange)
    report = result.report
    assert report.status is RunStatus.FAILED
    assert codes(report) == ["BROKER_REJECTED"]
    assert message in report.errors[0].message
    rejected = [o for o in report.orders if o.status is OrderStatus.REJECTED]
    assert len(rejected) == 1
    assert message in (rejected[0].reject_reason or "")
    # The other orders went ahead; the refused one was never retried.
    assert post_count(exchange) == 5
    assert len(exchange.engine.accepted_orders()) == 4
    check_invariants(exchange, report)


def test_a_duplicate_id_on_first_submission_without_such_an_order_halts(
    exchange: LocalExchange,
) -> None:
    """The broker says the id exists but cannot show it: the outcome is unknown, so
    nothing more is sent."""
    exchange.add_fault(Fault.duplicate_client_order_id(nth=2))
    result = run(exchange)
    assert result.report.status is RunStatus.FAILED
    assert "BROKER_UNKNOWN" in codes(result.report)
    assert len(exchange.engine.accepted_orders()) == 1
    check_invariants(exchange, result.report)


def test_an_order_submission_that_never_gets_through_stops_the_run(
    exchange: LocalExchange,
) -> None:
    exchange.add_fault(Fault.server_error(503, method="POST", path=ORDERS, every=True))
    result = run(exchange, config(max_attempts=3))
    report = result.report
    assert report.status is RunStatus.FAILED
    assert "BROKER_UNKNOWN" in codes(report)
    assert "503" in report.errors[0].message
    assert exchange.engine.accepted_orders() == []
    # The first sell was tried three times under one id, then the run stopped.
    assert {r.client_order_id for r in exchange.requests if r.method == "POST"} == {
        report.intents[0].client_order_id
    }


def test_the_circuit_breaker_stops_a_run_against_a_sick_broker(
    exchange: LocalExchange,
) -> None:
    exchange.add_fault(Fault.server_error(503, method="GET", path=ORDERS, every=True))
    result = run(exchange, config(breaker_threshold=3, max_attempts=5))
    report = result.report
    assert report.status is RunStatus.FAILED
    assert "BROKER_CIRCUIT_OPEN" in codes(report)
    # The snapshot's read of open orders failed: nothing was sent.
    assert post_count(exchange) == 0
    gets = exchange.count("GET", ORDERS)
    assert gets == 3, "the breaker should stop requests after 3 failures in a row"


def test_the_breaker_also_stops_polling_and_buys_mid_run(exchange: LocalExchange) -> None:
    # The four list reads before trading (this run's orders, open orders before and after
    # the positions and account, this run's orders again before the first order)
    # succeed; every later one fails: polling after the sells.
    exchange.add_fault(Fault.server_error(503, method="GET", path=ORDERS, nth=5, times=1000))
    exchange.add_fault(
        Fault.server_error(503, method="GET", path="/v2/orders:by_client_order_id", every=True)
    )
    exchange.configure(fill_delay_seconds=0.2)
    result = run(exchange, config(breaker_threshold=5, max_attempts=2))
    report = result.report
    assert report.status is RunStatus.FAILED
    assert "BROKER_CIRCUIT_OPEN" in codes(report)
    sides = {o.side for o in exchange.engine.accepted_orders()}
    assert sides == {Side.SELL.value}, "no buy may be sent once the broker is unreachable"
    # Cancels still go out with the breaker open: no order of ours is left working.
    assert exchange.count("DELETE") == 2
    assert exchange.engine.open_orders() == []
    check_invariants(exchange, report)


def test_bad_credentials_fail_before_any_order(exchange: LocalExchange) -> None:
    exchange.configure(key_id="another-key", secret_key="another-secret")
    with pytest.raises(BrokerAuthError, match="401"):
        run(exchange)  # the first read (the calendar, for the run's dates) is refused
    assert post_count(exchange) == 0
    assert len(exchange.requests) == 1


def test_stale_bars_fail_closed(exchange: LocalExchange) -> None:
    exchange.configure(stale_bars_sessions=1)
    result = run(exchange)
    assert result.report.status is RunStatus.FAILED
    assert codes(result.report) == ["DATA_STALE"]
    assert "2026-07-30" in result.report.errors[0].message
    assert post_count(exchange) == 0


def test_market_closed_is_a_skipped_run(exchange: LocalExchange) -> None:
    exchange.configure(now=datetime(2026, 7, 31, 20, 30, tzinfo=UTC))
    result = run(exchange)
    assert result.report.status is RunStatus.SKIPPED
    assert "closed" in result.report.notes[0]
    assert post_count(exchange) == 0


# -- fills -----------------------------------------------------------------------------


def test_late_fills_are_waited_for(exchange: LocalExchange) -> None:
    exchange.configure(fill_delay_seconds=0.3)
    result = run(exchange)
    assert result.report.status is RunStatus.COMPLETED, result.report.errors
    assert all(o.status is OrderStatus.FILLED for o in result.report.orders)
    check_invariants(exchange, result.report)


def test_a_partial_fill_is_cancelled_at_the_deadline_and_reported(
    exchange: LocalExchange,
) -> None:
    exchange.configure(partial_fills={"SPY": 0.5})
    result = run(exchange)
    report = result.report
    assert report.status is RunStatus.INCOMPLETE
    spy = next(o for o in report.orders if o.symbol == "SPY")
    assert spy.status is OrderStatus.CANCELED
    assert Decimal(0) < spy.filled_qty < spy.qty
    assert exchange.count("DELETE") == 1
    assert [o.symbol for o in exchange.engine.open_orders()] == []
    check_invariants(exchange, report)


def test_a_partial_fill_that_completes_late_is_filled(exchange: LocalExchange) -> None:
    exchange.configure(partial_fills={"TLT": 0.4}, late_fill_seconds=0.3)
    result = run(exchange)
    assert result.report.status is RunStatus.COMPLETED, result.report.errors
    check_invariants(exchange, result.report)


def test_requests_stay_within_budget_and_polls_do_not_grow_with_orders(
    exchange: LocalExchange,
) -> None:
    result = run(exchange)
    orders = len(result.report.orders)
    assert orders == 5
    # Fixed: clock, calendar, this run's orders (twice more: before the first order and
    # before the buys), open orders twice, positions, account, bars, assets, quotes,
    # buying power, the account after (positions, account); per order a submission,
    # plus polling rounds that do not grow with the number of orders; per buy after the
    # first, buying power read again.
    buys = sum(1 for o in result.report.orders if o.side is Side.BUY)
    assert result.transport.requests_sent <= 12 + 2 * orders + buys
    assert not any(r.status == 429 for r in exchange.requests)


def _place_earlier_order(exchange: LocalExchange, symbol: str, client_order_id: str) -> None:
    """An order of ours from an earlier run, still working (its fill is far off)."""
    exchange.configure(fill_delay_seconds=600)
    client = rest_client(exchange.url, "k", "s")
    client.post(
        "/orders",
        {
            "symbol": symbol,
            "qty": "5",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": client_order_id,
        },
    )
    exchange.configure(fill_delay_seconds=0)


def test_our_earlier_working_orders_are_cancelled_even_when_halted(
    exchange: LocalExchange,
) -> None:
    earlier = "fault-matrix-20260730-00000000ab-buy-AGG-0"
    _place_earlier_order(exchange, "AGG", earlier)
    halted = config().model_copy(update={"trading_state": TradingState.HALTED})
    result = run(exchange, halted)
    report = result.report
    assert report.status is RunStatus.BLOCKED
    assert report.errors == ()
    assert exchange.engine.open_orders() == []
    assert exchange.engine.order_by_client_id(earlier).status == "canceled"
    assert any(f"cancelled our earlier order {earlier}" in n for n in report.notes)
    assert post_count(exchange) == 1  # only the earlier order itself


def test_somebody_elses_working_order_stops_the_run(exchange: LocalExchange) -> None:
    _place_earlier_order(exchange, "AGG", "placed-by-hand-1")
    result = run(exchange)
    assert result.report.status is RunStatus.FAILED
    assert codes(result.report) == ["OPEN_ORDERS_PRESENT"]
    assert "placed-by-hand-1" in result.report.errors[0].message
    assert post_count(exchange) == 1
    assert exchange.count("DELETE") == 0


def test_an_account_reply_without_cash_fails_closed(exchange: LocalExchange) -> None:
    """A reply that parses but lacks cash is malformed: read as zero, the equity would
    shrink and the plan would sell what the account holds."""
    exchange.add_fault(
        Fault(
            method="GET",
            path="/v2/account",
            status=200,
            body={"status": "ACTIVE", "buying_power": "50000", "currency": "USD"},
        )
    )
    result = run(exchange)
    assert result.report.status is RunStatus.FAILED
    assert codes(result.report) == ["BROKER_UNKNOWN"]
    assert "cash is missing" in result.report.errors[0].message
    assert post_count(exchange) == 0


# -- the account after a run -----------------------------------------------------------


@pytest.mark.parametrize("slippage_bps", [0, 5])
def test_the_account_after_is_the_exchanges_own_account(slippage_bps: int) -> None:
    """The report's account after a run is valued as the exchange values it: the plan is
    priced at the previous session's closes, the exchange fills at today's close moved
    by its slippage, and the report marks each position at the exchange's own current
    price, so the two agree to the cent per position, slippage or not (before, they
    differed by the day's move)."""
    settings = ExchangeSettings(cash=Decimal(50_000), slippage_bps=Decimal(slippage_bps))
    with LocalExchange(settings=settings) as exchange:
        exchange.engine.set_position("QQQ", Decimal(60), Decimal(400))
        exchange.engine.set_position("BND", Decimal(200), Decimal(70))
        result = run(exchange)
        account = exchange.engine.account_json()
        held = {p["symbol"]: p for p in exchange.engine.positions_json()}
    report = result.report
    assert report.status is RunStatus.COMPLETED, report.errors
    after = report.account_after
    assert after is not None
    assert after.cash == Decimal(account["cash"])
    assert {p.symbol for p in after.positions} == set(held) == set(TARGETS)
    cent = Decimal("0.01")
    for position in after.positions:
        theirs = held[position.symbol]
        assert position.price == Decimal(theirs["current_price"])
        gap = abs(position.market_value - Decimal(theirs["market_value"]))
        assert gap <= cent, position
    assert abs(after.equity - Decimal(account["equity"])) <= cent * len(held)
