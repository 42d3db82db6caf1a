"""The simulated broker: fills at the close plus slippage, Alpaca-like refusals, state file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.domain.orders import OrderRequest, OrderStatus, Side
from alchemiser.errors import BrokerRejected, ConfigError, DataError, DuplicateOrder
from tests.conftest import LAST


def broker(store: FilePriceStore, clock: ManualClock, **kwargs: object) -> SimBroker:
    options: dict[str, object] = {"starting_cash": Decimal(10_000), "slippage_bps": Decimal(10)}
    options.update(kwargs)
    return SimBroker(market=store, session=LAST, clock=clock, **options)  # type: ignore[arg-type]


def order(cid: str, symbol: str, side: Side, qty: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=side, qty=Decimal(qty))


def test_buy_fills_at_close_plus_slippage(store, clock) -> None:
    sim = broker(store, clock)
    record = sim.submit_order(order("a", "SPY", Side.BUY, "2.5"))
    close = Decimal("520.0000")  # 500 * 1.04 on the last session
    assert record.status is OrderStatus.FILLED
    assert record.filled_avg_price == close * Decimal("1.001")
    snapshot = sim.snapshot()
    assert snapshot.qty("SPY") == Decimal("2.5")
    assert snapshot.cash == Decimal(10_000) - (Decimal("2.5") * close * Decimal("1.001")).quantize(
        Decimal("0.01")
    )


def test_sell_fills_below_close(store, clock) -> None:
    sim = broker(store, clock)
    sim.submit_order(order("a", "SPY", Side.BUY, "2"))
    record = sim.submit_order(order("b", "SPY", Side.SELL, "2"))
    assert record.filled_avg_price == Decimal("520.0000") * Decimal("0.999")
    assert sim.snapshot().positions == ()


def test_duplicate_client_order_id_is_refused(store, clock) -> None:
    sim = broker(store, clock)
    sim.submit_order(order("a", "SPY", Side.BUY, "1"))
    with pytest.raises(DuplicateOrder):
        sim.submit_order(order("a", "SPY", Side.BUY, "1"))
    assert sim.snapshot().qty("SPY") == Decimal(1)


def test_buying_power_and_held_quantity_are_enforced(store, clock) -> None:
    sim = broker(store, clock)
    with pytest.raises(BrokerRejected) as too_big:
        sim.submit_order(order("a", "SPY", Side.BUY, "100"))
    assert too_big.value.broker_code == "insufficient_buying_power"
    with pytest.raises(BrokerRejected) as oversell:
        sim.submit_order(order("b", "TLT", Side.SELL, "1"))
    assert oversell.value.broker_code == "insufficient_qty"
    assert sim.get_order("a") is None
    assert sim.snapshot().cash == Decimal(10_000)


def test_whole_share_symbols_refuse_fractions(store, clock) -> None:
    sim = broker(store, clock, whole_share_symbols=frozenset({"GLD"}))
    assert sim.fractionable(["GLD", "SPY"]) == frozenset({"SPY"})
    with pytest.raises(BrokerRejected):
        sim.submit_order(order("a", "GLD", Side.BUY, "1.5"))
    assert sim.submit_order(order("b", "GLD", Side.BUY, "1")).status is OrderStatus.FILLED


def test_stale_price_refuses_to_fill(store, clock) -> None:
    sim = broker(store, clock)
    with pytest.raises(DataError):
        sim.submit_order(order("a", "AAA", Side.BUY, "1"))


def test_state_file_persists_and_refuses_time_travel(store, clock, tmp_path: Path) -> None:
    path = tmp_path / "state" / "sim.json"
    sim = broker(store, clock, state_path=path)
    sim.submit_order(order("a", "SPY", Side.BUY, "1"))
    reopened = broker(store, clock, state_path=path)
    assert reopened.snapshot() == sim.snapshot()
    assert reopened.get_order("a") == sim.get_order("a")
    with pytest.raises(ConfigError, match="--reset"):
        SimBroker(
            market=store,
            session=date(2026, 7, 30),
            clock=clock,
            starting_cash=Decimal(1),
            state_path=path,
        )


def test_corrupt_state_file_is_a_config_error(store, clock, tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"sim\.state"):
        broker(store, clock, state_path=path)


def test_cancel_of_filled_order_keeps_it_filled(store, clock) -> None:
    sim = broker(store, clock)
    filled = sim.submit_order(order("a", "SPY", Side.BUY, "1"))
    sim.cancel_order(filled)
    assert sim.get_order("a") == filled
    assert sim.get_orders(["a", "missing"]) == {"a": filled}
    sim.cancel_order(filled.model_copy(update={"client_order_id": "missing"}))  # a no-op
    assert sim.orders_of_run("a") == []


def test_quotes_are_the_prices_orders_fill_at(store, clock) -> None:
    sim = broker(store, clock)

    quotes = sim.latest_quotes(["SPY", "TLT", "SPY"])

    assert sorted(quotes) == ["SPY", "TLT"]
    spy = quotes["SPY"]
    assert spy.ask == Decimal("520.0000") * Decimal("1.001")
    assert spy.bid == Decimal("520.0000") * Decimal("0.999")
    assert spy.at == clock.now()
    bought = sim.submit_order(order("a", "SPY", Side.BUY, "2"))
    sold = sim.submit_order(order("b", "SPY", Side.SELL, "2"))
    assert bought.filled_avg_price == spy.ask
    assert sold.filled_avg_price == spy.bid


def test_quotes_without_slippage_have_no_spread(store, clock) -> None:
    quote = broker(store, clock, slippage_bps=Decimal(0)).latest_quotes(["GLD"])["GLD"]

    assert quote.bid == quote.ask == Decimal("208.0000")  # 200 * 1.04 on the last session


def test_a_symbol_the_market_cannot_price_has_no_quote(store, clock) -> None:
    quotes = broker(store, clock).latest_quotes(["AAA", "NOSUCH", "GLD"])  # AAA is stale

    assert list(quotes) == ["GLD"]
    assert broker(store, clock).latest_quotes([]) == {}


def test_quotes_follow_the_simulated_session(store, clock) -> None:
    sim = SimBroker(
        market=store,
        session=date(2026, 7, 30),
        clock=clock,
        starting_cash=Decimal(1000),
    )
    before = sim.latest_quotes(["SPY"])["SPY"]
    sim.advance_to(LAST)

    assert sim.latest_quotes(["SPY"])["SPY"].ask > before.ask
