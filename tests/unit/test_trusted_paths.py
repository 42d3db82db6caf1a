"""The backtest's per-session path builds its values without re-validation
(``Frozen.trusted``) and converts prices and symbols through small caches: what it builds
must be exactly what validation builds, and the caches must answer as the functions do."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.adapters.sim.preloaded import PreloadedMarketData
from alchemiser.domain import scalars, values
from alchemiser.domain.account import AccountSnapshot, Position, value_account
from alchemiser.domain.orders import IntentKind, OrderIntent, OrderRecord, OrderRequest, Side
from alchemiser.domain.prices import PriceHistory, reference_prices
from alchemiser.errors import DataError
from alchemiser.execution.procedure import ExecutionResult, _adjustments, _request
from alchemiser.service import _targets_report
from alchemiser.strategy.allocation import StrategyWeights, combine

SESSIONS = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]


def _same_as_validated(item: BaseModel) -> None:
    validated = type(item).model_validate(item.model_dump())
    assert validated == item
    assert repr(validated) == repr(item)  # the same fields, in declaration order
    assert validated.model_dump_json() == item.model_dump_json()


def _history() -> PriceHistory:
    closes = np.array(
        [[100.0, 50.0, np.nan], [101.5, 49.25, 20.0], [102.125, 48.0, 21.5]], dtype=np.float64
    )
    return PriceHistory(
        dates=np.array(SESSIONS, dtype="datetime64[D]"),
        symbols=("AAA", "BBB", "CCC"),
        closes=closes,
        opens=closes - 0.5,
    )


def _broker(**kwargs: Any) -> SimBroker:
    return SimBroker(
        market=PreloadedMarketData(_history()),
        session=SESSIONS[1],
        clock=ManualClock(datetime(2024, 1, 3, 15, tzinfo=UTC)),
        starting_cash=Decimal(10_000),
        **kwargs,
    )


@pytest.mark.parametrize("at_open", [False, True])
def test_sim_broker_builds_what_validation_builds(at_open: bool) -> None:
    broker = _broker(fill_at_open=at_open, slippage_bps=Decimal(7), fee_bps=Decimal(3))
    records = [
        broker.submit_order(
            OrderRequest(client_order_id="r-buy-AAA-0", symbol="AAA", side=Side.BUY, qty=3)
        ),
        broker.submit_order(
            OrderRequest(
                client_order_id="r-buy-BBB-0",
                symbol="BBB",
                side=Side.BUY,
                notional=Decimal("500.55"),
            )
        ),
        broker.submit_order(
            OrderRequest(client_order_id="r-sell-AAA-0", symbol="AAA", side=Side.SELL, qty=1)
        ),
    ]
    snapshot = broker.snapshot()
    quotes = broker.latest_quotes(["CCC", "AAA", "BBB"])
    fills = ExecutionResult(orders=records).fills
    built: list[BaseModel] = [*records, snapshot, *snapshot.positions, *quotes.values(), *fills]
    assert [p.symbol for p in snapshot.positions] == ["AAA", "BBB"]
    assert all(p.current_price is not None for p in snapshot.positions)
    assert list(quotes) == ["AAA", "BBB", "CCC"]
    assert len(fills) == 3
    for item in built:
        _same_as_validated(item)
    # Nested values too: the snapshot as a whole validates to itself.
    assert AccountSnapshot.model_validate(snapshot.model_dump()) == snapshot


def test_sim_broker_prices_each_symbol_once_a_session_as_a_fresh_read_does() -> None:
    early = _broker()
    early.latest_quotes(["AAA"])  # AAA read first, BBB and CCC later
    both = early.latest_quotes(["CCC", "BBB", "AAA"])
    fresh = _broker().latest_quotes(["AAA", "BBB", "CCC"])
    assert both == fresh
    assert list(both) == list(fresh)


def test_value_account_builds_what_validation_builds() -> None:
    snapshot = AccountSnapshot(
        cash=Decimal("1000.005"),
        buying_power=Decimal(1000),
        positions=(
            Position(symbol="ZZZ", qty=Decimal("1.5")),
            Position(symbol="AAA", qty=Decimal(0)),
            Position(symbol="BBB", qty=Decimal("2.123456789")),
        ),
    )
    prices = {"ZZZ": Decimal("10.1234"), "BBB": Decimal("33.3333")}
    valuation = value_account(snapshot, prices)
    _same_as_validated(valuation)
    assert [p.symbol for p in valuation.positions] == ["BBB", "ZZZ"]
    bbb = Decimal("2.123456789") * Decimal("33.3333")
    equity = Decimal("1000.005") + Decimal("1.5") * Decimal("10.1234") + bbb
    assert valuation.equity == values.to_cents(equity)
    assert valuation.positions[0].weight == (bbb / equity).quantize(Decimal("0.000001"))
    assert valuation.positions[0].market_value == values.to_cents(bbb)
    empty = value_account(AccountSnapshot(cash=Decimal(0), buying_power=Decimal(0)), {})
    _same_as_validated(empty)


def test_targets_report_builds_what_validation_builds() -> None:
    combined = combine(
        [
            StrategyWeights("one", 0.7, {"AAA": 0.4, "BBB": 0.6}),
            StrategyWeights("two", 0.3, {"AAA": 1.0}),
        ]
    )
    report = _targets_report(combined)
    assert list(report) == ["AAA", "BBB"]
    for target in report.values():
        _same_as_validated(target)
    # Each report owns its parts: changing what combine returned changes no report.
    combined.attribution["AAA"]["one"] = 9.0
    assert report["AAA"].attribution["one"] == pytest.approx(0.28)


def test_price_conversion_cache_answers_as_the_conversion_does() -> None:
    scalars._PRICES.clear()
    cases = [101.5, 0.00005, 0.00015, 123456.78905, 1e-5, 3.0, 2.675]
    first = [values.to_decimal_price(v) for v in cases]
    again = [values.to_decimal_price(v) for v in cases]  # from the cache
    scalars._PRICES.clear()
    for value, a, b in zip(cases, first, again, strict=True):
        assert a == b
        assert str(a) == str(b)
        assert str(a) == str(Decimal(repr(value)).quantize(values.PRICE_STEP))
    # Zero keeps its sign and is never cached; non-finite values are still refused.
    assert str(values.to_decimal_price(0.0)) == "0.0000"
    assert str(values.to_decimal_price(-0.0)) == "-0.0000"
    assert 0.0 not in scalars._PRICES
    for bad in (float("nan"), float("inf"), 1e12):
        with pytest.raises(ValueError, match="not finite"):
            values.to_decimal_price(bad)
        with pytest.raises(ValueError, match="not finite"):
            values.to_decimal_price(bad)


def test_price_conversion_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scalars, "_PRICES_MAX", 5)
    scalars._PRICES.clear()
    for i in range(1, 13):
        assert values.to_decimal_price(i + 0.5) == Decimal(f"{i}.5")
    assert 0 < len(scalars._PRICES) <= 5
    scalars._PRICES.clear()


def test_symbol_cache_answers_as_normalising_does(monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(2):
        assert values.normalise_symbol(" brk/b ") == "BRK.B"
        assert values.normalise_symbol("spy") == "SPY"
        with pytest.raises(ValueError, match="not a ticker symbol"):
            values.normalise_symbol("not a ticker")
    assert "not a ticker" not in scalars._NORMALISED
    monkeypatch.setattr(scalars, "_NORMALISED_MAX", len(scalars._NORMALISED))
    assert values.normalise_symbol("qqqm") == "QQQM"
    assert "qqqm" not in scalars._NORMALISED  # full: answered, not kept


def test_reference_prices_read_the_row_like_the_columns() -> None:
    history = _history()
    prices = reference_prices(history, ["BBB", "AAA", "CCC"], SESSIONS[2])
    assert list(prices) == ["AAA", "BBB", "CCC"]
    assert prices == {
        "AAA": Decimal("102.1250"),
        "BBB": Decimal("48.0000"),
        "CCC": Decimal("21.5000"),
    }
    with pytest.raises(DataError, match=r"CCC: no close for session 2024-01-02$"):
        reference_prices(history, ["CCC"], SESSIONS[0])
    with pytest.raises(DataError, match="DDD: no price history"):
        reference_prices(history, ["AAA", "DDD"], SESSIONS[0])
    stale = PriceHistory(
        dates=history.dates,
        symbols=history.symbols,
        closes=np.array([[1.0, 2.0, 3.0], [np.nan, 2.0, 3.0], [np.nan, 2.0, 3.0]]),
    )
    with pytest.raises(
        DataError, match=r"AAA: no close for session 2024-01-04 \(last close 2024-01-02\)"
    ):
        reference_prices(stale, ["AAA"], SESSIONS[2])


def test_order_record_with_a_new_quantity_is_what_validation_builds() -> None:
    record = OrderRecord(
        client_order_id="r-buy-AAA-0",
        symbol="AAA",
        side=Side.BUY,
        qty=Decimal("1.25"),
        status="filled",
        notional=Decimal(100),
        filled_qty=Decimal("1.2"),
        filled_avg_price=Decimal("80"),
    )
    copied = OrderRecord.trusted({**record.__dict__, "qty": Decimal(2)})
    _same_as_validated(copied)
    assert copied.qty == Decimal(2)


def _intent(side: Side, qty: str, qty_step: str) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"r-{side.value}-AAA-0",
        symbol="AAA",
        side=side,
        qty=Decimal(qty),
        ref_price=Decimal("101.5"),
        qty_step=Decimal(qty_step),
        kind=IntentKind.OPEN,
        current_weight=Decimal(0),
        target_weight=Decimal("0.1"),
        reason="test",
    )


def test_order_requests_are_what_validation_builds() -> None:
    dollars = _request(_intent(Side.BUY, "2.5", "0.000000001"))
    shares = _request(_intent(Side.SELL, "2.5", "0.000000001"))
    whole = _request(_intent(Side.BUY, "3", "1"))
    small = _request(_intent(Side.BUY, "0.005", "0.000000001"))  # under $1: as shares
    assert (dollars.qty, dollars.notional) == (None, Decimal("253.75"))
    assert (shares.qty, whole.qty, small.qty) == (Decimal("2.5"), Decimal(3), Decimal("0.005"))
    assert small.notional is None
    for request in (dollars, shares, whole, small):
        _same_as_validated(request)
    # A size the request refuses is still refused.
    with pytest.raises(ValidationError, match="order size must be positive"):
        _request(_intent(Side.SELL, "0", "1"))


def test_snapshot_positions_follow_fills_and_sessions() -> None:
    broker = _broker()

    def order(cid: str, symbol: str, side: Side, qty: int) -> None:
        broker.submit_order(OrderRequest(client_order_id=cid, symbol=symbol, side=side, qty=qty))

    for symbol in ("AAA", "BBB", "CCC"):
        order(f"r-buy-{symbol}-0", symbol, Side.BUY, 3)
    first = broker.snapshot()
    order("r-sell-AAA-0", "AAA", Side.SELL, 1)
    order("r-buy-BBB-1", "BBB", Side.BUY, 1)
    second = broker.snapshot()
    assert [(p.symbol, p.qty) for p in second.positions] == [("AAA", 2), ("BBB", 4), ("CCC", 3)]
    assert second.positions[2] is first.positions[2]  # untraded, same price: the same one
    broker.advance_to(SESSIONS[2])
    third = broker.snapshot()
    assert [p.current_price for p in third.positions] == [
        Decimal("102.125"),
        Decimal(48),
        Decimal("21.5"),
    ]
    assert [p.qty for p in third.positions] == [2, 4, 3]
    assert AccountSnapshot.model_validate(third.model_dump()) == third
    for position in (*second.positions, *third.positions):
        _same_as_validated(position)


def test_adjustments_are_what_validation_builds() -> None:
    fractional = _intent(Side.BUY, "2.5", "0.000000001")
    whole = _intent(Side.BUY, "3", "1").model_copy(update={"client_order_id": "r-buy-BBB-0"})
    changes = _adjustments(
        [fractional, whole],
        [fractional.with_qty(Decimal("1.25"))],
        Decimal("126.875"),
        {"AAA": Decimal("102")},
    )
    assert [(a.approved_qty, a.placed_qty) for a in changes] == [
        (Decimal("2.5"), Decimal("1.25")),
        (Decimal(3), Decimal(0)),
    ]
    assert "ask $102 is above the reference close" in changes[1].reason
    for change in changes:
        _same_as_validated(change)
