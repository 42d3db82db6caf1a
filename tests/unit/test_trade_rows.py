"""How one session's report folds into trade rows: fills, shrunk orders, orders placed
smaller at execution, and orders that never traded (not placed, not filled)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from alchemiser.domain.decisions import Adjustment, RiskCode, RiskDecision, TradingState, Verdict
from alchemiser.domain.orders import Fill, IntentKind, OrderIntent, OrderRecord, OrderStatus, Side
from alchemiser.domain.report import Mode, RunReport, RunStatus, StrategyReport, TargetReport
from alchemiser.reporting.trades import limited_codes, session_trades

DAY = date(2026, 7, 1)
D = Decimal


def intent(symbol: str, side: Side, qty: str, reason: str) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"r-{side.value}-{symbol}-0",
        symbol=symbol,
        side=side,
        qty=D(qty),
        ref_price=D(10),
        qty_step=D("0.001"),
        kind=IntentKind.OPEN if side is Side.BUY else IntentKind.EXIT,
        current_weight=D(0),
        target_weight=D("0.5"),
        reason=reason,
    )


def decision(
    planned: OrderIntent, approved: str, verdict: Verdict, *codes: RiskCode
) -> RiskDecision:
    return RiskDecision(
        client_order_id=planned.client_order_id,
        symbol=planned.symbol,
        side=planned.side,
        requested_qty=planned.qty,
        approved_qty=D(approved),
        ref_price=planned.ref_price,
        verdict=verdict,
        codes=codes,
        reason="",
    )


def order(planned: OrderIntent, status: OrderStatus) -> OrderRecord:
    return OrderRecord(
        client_order_id=planned.client_order_id,
        symbol=planned.symbol,
        side=planned.side,
        qty=planned.qty,
        status=status,
    )


def test_each_kind_of_order_becomes_rows() -> None:
    sold = intent("OLD", Side.SELL, "5", "not in target: sell all")
    shrunk = intent("AAA", Side.BUY, "10", "weight 0.000% -> 50.000%")
    smaller = intent("BBB", Side.BUY, "10", "weight 0.000% -> 25.000%")
    unplaced = intent("CCC", Side.BUY, "10", "weight 0.000% -> 10.000%")
    unfilled = intent("DDD", Side.BUY, "10", "weight 0.000% -> 10.000%")
    planned = (sold, shrunk, smaller, unplaced, unfilled)
    report = RunReport(
        run_id="r",
        as_of=DAY,
        trading_date=DAY,
        scheduled_time=None,
        mode=Mode.BACKTEST,
        trading_state=TradingState.ACTIVE,
        status=RunStatus.INCOMPLETE,
        strategies=(
            StrategyReport(name="x", allocation=0.5, weights={}),
            StrategyReport(name="y", allocation=0.5, weights={}),
        ),
        targets={
            s: TargetReport(weight=0.25, attribution={"y": 0.1, "x": 0.15})
            for s in ("AAA", "BBB", "CCC", "DDD")
        },
        intents=planned,
        decisions=(
            decision(sold, "5", Verdict.APPROVED),
            decision(shrunk, "6", Verdict.SHRUNK, RiskCode.POSITION_WEIGHT_EXCEEDS_MAX),
            decision(smaller, "10", Verdict.APPROVED),
            decision(unplaced, "10", Verdict.APPROVED),
            decision(unfilled, "10", Verdict.APPROVED),
        ),
        adjustments=(
            Adjustment(
                client_order_id=smaller.client_order_id,
                symbol="BBB",
                side=Side.BUY,
                approved_qty=D(10),
                placed_qty=D(4),
                reason="buys scaled",
            ),
            Adjustment(
                client_order_id=unplaced.client_order_id,
                symbol="CCC",
                side=Side.BUY,
                approved_qty=D(10),
                placed_qty=D(0),
                reason="no cash left",
            ),
        ),
        orders=(
            order(sold, OrderStatus.FILLED),
            order(shrunk, OrderStatus.FILLED),
            order(smaller, OrderStatus.FILLED),
            order(unfilled, OrderStatus.CANCELED),
        ),
        fills=tuple(
            Fill(
                client_order_id=p.client_order_id,
                symbol=p.symbol,
                side=p.side,
                qty=D(qty),
                price=D("10.01"),
                notional=D(qty) * D("10.01"),
            )
            for p, qty in ((sold, "5"), (shrunk, "6"), (smaller, "4"))
        ),
    )
    before = {"OLD": TargetReport(weight=0.5, attribution={"y": 0.5})}
    rows = session_trades(report, before)
    assert [(r.symbol, r.side, r.qty, r.notional) for r in rows] == [
        ("OLD", "sell", D(5), D("50.05")),
        ("AAA", "buy", D(6), D("60.06")),
        ("BBB", "buy", D(4), D("40.04")),
        ("CCC", "buy", D(0), D(0)),
        ("DDD", "buy", D(0), D(0)),
    ]
    assert sum(r.notional for r in rows) == report.turnover
    assert [r.strategy for r in rows] == ["y", "x+y", "x+y", "x+y", "x+y"]  # config order
    assert [r.reason for r in rows] == [
        "not in target: sell all",
        "weight 0.000% -> 50.000%; shrunk POSITION_WEIGHT_EXCEEDS_MAX",
        "weight 0.000% -> 25.000%; placed smaller: buys scaled",
        "weight 0.000% -> 10.000%; placed smaller: no cash left",
        "weight 0.000% -> 10.000%; not filled (canceled)",
    ]
    assert {r.session for r in rows} == {DAY}
    assert rows[3].price == D(10)  # the price it was sized at
    assert limited_codes(report) == ("POSITION_WEIGHT_EXCEEDS_MAX",)
