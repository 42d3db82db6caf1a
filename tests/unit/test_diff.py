"""Example-based tests of the pure rebalance planner ``alchemiser.portfolio.diff``."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal

import pytest
from pydantic import ValidationError

from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.decisions import Hold, HoldReason
from alchemiser.domain.orders import IntentKind, OrderIntent, Side
from alchemiser.errors import DataError, DataErrorKind, StrategyError
from alchemiser.portfolio.diff import DiffPolicy, DiffResult, diff, fit_buys_to_cash

D = Decimal
ZERO = D(0)

# No drift band, no minimum notional, no cash buffer: every decimal of drift trades.
EXACT = DiffPolicy(drift_abs=ZERO, drift_rel=ZERO, min_trade_notional=ZERO, cash_buffer=ZERO)


def snapshot(
    cash: str | int, positions: Mapping[str, str | int | Decimal] | None = None
) -> AccountSnapshot:
    """An account holding ``positions`` (symbol -> quantity) and ``cash``."""
    return AccountSnapshot(
        cash=D(cash),
        buying_power=max(D(cash), ZERO),
        positions=tuple(
            Position(symbol=symbol, qty=D(qty)) for symbol, qty in (positions or {}).items()
        ),
    )


def prices_of(**prices: str | int) -> dict[str, Decimal]:
    return {symbol: D(price) for symbol, price in prices.items()}


def policy(**changes: object) -> DiffPolicy:
    """EXACT with some fields changed (validated, like a policy read from config)."""
    return DiffPolicy.model_validate({**EXACT.model_dump(), **changes})


def run(
    targets: Mapping[str, float],
    snap: AccountSnapshot,
    prices: Mapping[str, Decimal],
    pol: DiffPolicy = EXACT,
    run_id: str = "run-1",
    fractionable: Collection[str] | None = None,
) -> DiffResult:
    return diff(targets, snap, prices, pol, run_id, fractionable)


def only_intent(result: DiffResult) -> OrderIntent:
    assert len(result.intents) == 1, result.intents
    return result.intents[0]


def only_hold(result: DiffResult) -> Hold:
    assert len(result.holds) == 1, result.holds
    return result.holds[0]


# --- ordering and ids -------------------------------------------------------------------

ROTATION_SNAPSHOT = snapshot(0, {"TLT": 10, "SPY": 10})
ROTATION_PRICES = prices_of(SPY=100, TLT=100, QQQ=50, GLD=50)
ROTATION_TARGETS = {"QQQ": 0.5, "GLD": 0.5}


def test_sells_come_before_buys_even_when_buy_symbols_sort_first() -> None:
    result = run(ROTATION_TARGETS, ROTATION_SNAPSHOT, ROTATION_PRICES)

    assert [(i.side, i.symbol) for i in result.intents] == [
        (Side.SELL, "SPY"),
        (Side.SELL, "TLT"),
        (Side.BUY, "GLD"),
        (Side.BUY, "QQQ"),
    ]
    assert [i.qty for i in result.intents] == [D(10), D(10), D(20), D(20)]
    assert result.sells == result.intents[:2]
    assert result.buys == result.intents[2:]
    assert result.equity == D(2000)


def test_plan_does_not_depend_on_input_order() -> None:
    reordered_snapshot = snapshot(0, {"SPY": 10, "TLT": 10})
    reordered_targets = {"GLD": 0.5, "QQQ": 0.5}
    reordered_prices = dict(reversed(list(ROTATION_PRICES.items())))

    first = run(ROTATION_TARGETS, ROTATION_SNAPSHOT, ROTATION_PRICES)
    second = run(reordered_targets, reordered_snapshot, reordered_prices)

    assert first == second
    assert [i.symbol for i in first.intents] == [i.symbol for i in second.intents]


def test_client_order_ids_are_run_side_symbol_leg() -> None:
    result = run(ROTATION_TARGETS, ROTATION_SNAPSHOT, ROTATION_PRICES, run_id="run-42")

    assert [i.client_order_id for i in result.intents] == [
        "run-42-sell-SPY-0",
        "run-42-sell-TLT-0",
        "run-42-buy-GLD-0",
        "run-42-buy-QQQ-0",
    ]


def test_client_order_ids_are_deterministic_and_scoped_to_the_run() -> None:
    first = run(ROTATION_TARGETS, ROTATION_SNAPSHOT, ROTATION_PRICES, run_id="2024-05-01")
    again = run(ROTATION_TARGETS, ROTATION_SNAPSHOT, ROTATION_PRICES, run_id="2024-05-01")
    other = run(ROTATION_TARGETS, ROTATION_SNAPSHOT, ROTATION_PRICES, run_id="2024-05-02")

    ids = [i.client_order_id for i in first.intents]
    assert ids == [i.client_order_id for i in again.intents]
    assert first == again
    assert len(set(ids)) == len(ids)
    assert set(ids).isdisjoint(i.client_order_id for i in other.intents)
    for intent in first.intents:
        pattern = rf"2024-05-01-{intent.side.value}-{re.escape(intent.symbol)}-0"
        assert re.fullmatch(pattern, intent.client_order_id)


def test_class_share_symbol_keeps_its_dot_in_the_id() -> None:
    result = run({"BRK.B": 0.5}, snapshot(1000), prices_of(**{"BRK.B": 250}), run_id="r")

    intent = only_intent(result)
    assert intent.client_order_id == "r-buy-BRK.B-0"
    assert intent.qty == D(2)


def test_intent_kinds() -> None:
    snap = snapshot(400, {"SPY": 200, "TLT": 200, "GLD": 200})
    prices = prices_of(SPY=1, TLT=1, GLD=1, QQQ=1)
    # equity 1000: SPY 0.2 -> 0.3, TLT 0.2 -> 0.1, GLD exits, QQQ opens at 0.1
    result = run({"SPY": 0.3, "TLT": 0.1, "QQQ": 0.1}, snap, prices)

    kinds = {i.symbol: (i.side, i.kind, i.qty) for i in result.intents}
    assert kinds == {
        "GLD": (Side.SELL, IntentKind.EXIT, D(200)),
        "TLT": (Side.SELL, IntentKind.DECREASE, D(100)),
        "QQQ": (Side.BUY, IntentKind.OPEN, D(100)),
        "SPY": (Side.BUY, IntentKind.INCREASE, D(100)),
    }
    by_symbol = {i.symbol: i for i in result.intents}
    assert by_symbol["TLT"].current_weight == D("0.2")
    assert by_symbol["TLT"].target_weight == D("0.1")
    assert by_symbol["GLD"].target_weight == ZERO
    assert all(i.ref_price == D(1) for i in result.intents)
    assert all(i.reason for i in result.intents)


# --- full exits and never selling more than held ---------------------------------------


@pytest.mark.parametrize(
    "targets",
    [{}, {"SPY": 0.0}, {"TLT": 0.5}],
    ids=["empty-target", "zero-weight", "dropped-from-target"],
)
def test_exit_sells_a_position_worth_less_than_min_trade_notional(
    targets: dict[str, float],
) -> None:
    snap = snapshot(1000, {"SPY": "0.3"})
    pol = DiffPolicy(min_trade_notional=D(5))

    result = run(targets, snap, prices_of(SPY="2.0000", TLT=10), pol)

    (sell,) = result.sells
    assert sell.symbol == "SPY"
    assert sell.qty == D("0.3")
    assert sell.kind is IntentKind.EXIT
    assert sell.notional < pol.min_trade_notional
    assert all(h.symbol != "SPY" for h in result.holds)


def test_a_decrease_of_the_same_size_is_held_below_min_notional() -> None:
    # Contrast with the exit above: a partial sell of $0.60 is too small to place.
    snap = snapshot(0, {"SPY": 10})
    pol = policy(min_trade_notional=D(5))

    result = run({"SPY": 0.994}, snap, prices_of(SPY=10), pol)

    assert result.intents == ()
    assert only_hold(result).reason is HoldReason.BELOW_MIN_NOTIONAL


@pytest.mark.parametrize(
    "pol",
    [
        DiffPolicy(),
        EXACT,
        DiffPolicy(fractional=False),
        DiffPolicy(whole_share_symbols=frozenset({"SPY"})),
        DiffPolicy(qty_step=D("0.01")),
    ],
    ids=["default", "exact", "not-fractional", "whole-share-symbol", "cent-step"],
)
def test_dropped_symbol_sells_exactly_the_fractional_quantity_held(pol: DiffPolicy) -> None:
    snap = snapshot(100, {"SPY": "7.2273576", "TLT": 3})

    result = run({"TLT": 0.9}, snap, prices_of(SPY="412.3300", TLT=90), pol)

    (sell,) = [i for i in result.intents if i.symbol == "SPY"]
    assert sell.side is Side.SELL
    assert sell.kind is IntentKind.EXIT
    assert sell.qty == D("7.2273576")


WHOLE = DiffPolicy(fractional=False)


@pytest.mark.parametrize(
    ("qty", "pol"),
    [("7.2273576", WHOLE), ("0.3", WHOLE), ("7.2273576", DiffPolicy())],
    ids=["whole-share", "whole-share-below-one", "fractional"],
)
def test_weight_that_rounds_to_zero_exits_in_full(qty: str, pol: DiffPolicy) -> None:
    snap = snapshot(100, {"SPY": qty})

    result = run({"SPY": 1e-11}, snap, prices_of(SPY=100), pol)

    (sell,) = result.sells
    assert sell.qty == D(qty)
    assert sell.kind is IntentKind.EXIT


@pytest.mark.parametrize(
    ("pol", "target", "expected"),
    [
        (EXACT, 0.5, D("3.613678")),
        (EXACT, 0.001, D("7.220130")),
        (EXACT, 1e-10, D("7.227357")),
        (policy(whole_share_symbols=frozenset({"SPY"})), 0.5, D(3)),
        (policy(fractional=False), 0.001, D(7)),
        (DiffPolicy(), 0.5, D("3.649815")),
    ],
)
def test_partial_decrease_never_sells_more_than_held(
    pol: DiffPolicy, target: float, expected: Decimal
) -> None:
    held = D("7.2273576")
    snap = snapshot(0, {"SPY": held})

    sell = only_intent(run({"SPY": target}, snap, prices_of(SPY=100), pol))

    assert sell.side is Side.SELL
    assert sell.kind is IntentKind.DECREASE
    assert sell.qty == expected
    assert sell.qty <= held
    assert (sell.qty / sell.qty_step) % 1 == 0


def test_empty_target_sells_everything() -> None:
    snap = snapshot(100, {"SPY": 10, "TLT": "7.2273576", "BRK.B": "0.3"})
    prices = prices_of(SPY=500, TLT=90, **{"BRK.B": 400})

    result = run({}, snap, prices, DiffPolicy())

    assert result.buys == ()
    assert result.holds == ()
    assert [(i.symbol, i.qty, i.kind) for i in result.intents] == [
        ("BRK.B", D("0.3"), IntentKind.EXIT),
        ("SPY", D(10), IntentKind.EXIT),
        ("TLT", D("7.2273576"), IntentKind.EXIT),
    ]
    assert all(i.side is Side.SELL for i in result.intents)


def test_empty_target_and_no_positions_plans_nothing() -> None:
    result = run({}, snapshot(1000), {})

    assert result.intents == ()
    assert result.holds == ()
    assert result.equity == D(1000)


# --- drift band -----------------------------------------------------------------------

BAND = policy(drift_abs=D("0.05"), drift_rel=D("0.5"))


@pytest.mark.parametrize(
    ("target", "held", "expected"),
    [
        # target 0.5: band = min(0.05, 0.5 * 0.5) = 0.05, the absolute band binds
        (0.5, 460, None),
        (0.5, 450, None),  # drift exactly on the band edge holds
        (0.5, 449, (Side.BUY, D(51))),
        (0.5, 540, None),
        (0.5, 550, None),
        (0.5, 551, (Side.SELL, D(51))),
        (0.5, 700, (Side.SELL, D(200))),
        # target 0.04: band = min(0.05, 0.5 * 0.04) = 0.02, the relative band binds
        (0.04, 25, None),
        (0.04, 20, None),
        (0.04, 15, (Side.BUY, D(25))),
        (0.04, 55, None),
        (0.04, 60, None),
        (0.04, 65, (Side.SELL, D(25))),
    ],
)
def test_drift_band_is_min_of_absolute_and_relative(
    target: float, held: int, expected: tuple[Side, Decimal] | None
) -> None:
    snap = snapshot(1000 - held, {"SPY": held})  # equity is exactly 1000

    result = run({"SPY": target}, snap, prices_of(SPY=1), BAND)

    if expected is None:
        assert result.intents == ()
        hold = only_hold(result)
        assert hold.symbol == "SPY"
        assert hold.reason is HoldReason.WITHIN_BAND
        assert hold.current_weight == D(held) / D(1000)
        assert hold.target_weight == D(str(target))
        assert hold.detail
    else:
        assert result.holds == ()
        intent = only_intent(result)
        assert (intent.side, intent.qty) == expected


def test_zero_band_holds_only_an_exact_match() -> None:
    snap = snapshot(500, {"SPY": 500})

    on_target = run({"SPY": 0.5}, snap, prices_of(SPY=1))
    one_share_off = run({"SPY": 0.501}, snap, prices_of(SPY=1))

    assert on_target.intents == ()
    assert only_hold(on_target).reason is HoldReason.WITHIN_BAND
    assert only_intent(one_share_off).qty == D(1)


# --- minimum notional -----------------------------------------------------------------

MIN_50 = policy(min_trade_notional=D(50))


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        (470, None),  # buy $30
        (530, None),  # sell $30
        (451, None),  # buy $49
        (450, (Side.BUY, D(50))),  # exactly the minimum trades
        (440, (Side.BUY, D(60))),
        (560, (Side.SELL, D(60))),
    ],
)
def test_min_trade_notional_skips_small_trades(
    held: int, expected: tuple[Side, Decimal] | None
) -> None:
    snap = snapshot(1000 - held, {"SPY": held})

    result = run({"SPY": 0.5}, snap, prices_of(SPY=1), MIN_50)

    if expected is None:
        assert result.intents == ()
        hold = only_hold(result)
        assert hold.reason is HoldReason.BELOW_MIN_NOTIONAL
        assert "$50" in hold.detail
    else:
        intent = only_intent(result)
        assert (intent.side, intent.qty) == expected
        assert intent.notional >= MIN_50.min_trade_notional


def test_min_trade_notional_opening_a_position() -> None:
    result = run({"SPY": 0.01, "TLT": 0.5}, snapshot(1000), prices_of(SPY=1, TLT=1), MIN_50)

    assert [(i.symbol, i.qty) for i in result.intents] == [("TLT", D(500))]
    assert [(h.symbol, h.reason) for h in result.holds] == [("SPY", HoldReason.BELOW_MIN_NOTIONAL)]


# --- whole shares ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pol", "fractionable", "expected_qty", "expected_step"),
    [
        (EXACT, None, D("16.666666"), D("0.000001")),
        (policy(whole_share_symbols=frozenset({"SPY"})), None, D(16), D(1)),
        (policy(fractional=False), None, D(16), D(1)),
        (EXACT, ["TLT"], D(16), D(1)),
        (EXACT, [], D(16), D(1)),
        (EXACT, ["SPY", "TLT"], D("16.666666"), D("0.000001")),
        (policy(qty_step=D("0.01")), None, D("16.66"), D("0.01")),
        (policy(fractional=False), ["SPY"], D(16), D(1)),
    ],
)
def test_whole_share_symbols_buy_integer_quantities_rounded_down(
    pol: DiffPolicy,
    fractionable: list[str] | None,
    expected_qty: Decimal,
    expected_step: Decimal,
) -> None:
    # equity 1000, target 0.5 at $30: 16.67 shares wanted
    intent = only_intent(
        run({"SPY": 0.5}, snapshot(1000), prices_of(SPY=30), pol, "r", fractionable)
    )

    assert intent.qty == expected_qty
    assert intent.qty_step == expected_step
    assert intent.notional <= D(500)
    assert intent.fractional is (expected_step < 1)


def test_whole_share_symbol_does_not_make_other_symbols_whole() -> None:
    pol = policy(whole_share_symbols=frozenset({"SPY"}))

    result = run({"SPY": 0.5, "TLT": 0.5}, snapshot(1000), prices_of(SPY=30, TLT=30), pol)

    assert {i.symbol: i.qty for i in result.intents} == {"SPY": D(16), "TLT": D("16.666666")}


def test_whole_share_decrease_rounds_down() -> None:
    snap = snapshot(400, {"SPY": 20})  # 20 x $30 = $600 of $1000

    sell = only_intent(run({"SPY": 0.5}, snap, prices_of(SPY=30), policy(fractional=False)))

    assert sell.side is Side.SELL
    assert sell.qty == D(3)  # 100 / 30 = 3.33 -> 3 shares, leaving weight above 0.5


def test_less_than_one_whole_share_rounds_to_zero() -> None:
    result = run({"SPY": 0.5}, snapshot(1000), prices_of(SPY=600), policy(fractional=False))

    assert result.intents == ()
    hold = only_hold(result)
    assert hold.reason is HoldReason.ROUNDS_TO_ZERO
    assert hold.target_weight == D("0.5")


# --- cash buffer and fitting buys to cash ---------------------------------------------


def test_cash_buffer_is_kept_out_of_the_investable_amount() -> None:
    pol = policy(cash_buffer=D("0.05"))

    intent = only_intent(run({"SPY": 1.0}, snapshot(10_000), prices_of(SPY=10), pol))

    assert intent.qty == D(950)
    assert intent.notional == D(9500)
    assert intent.target_weight == D("0.95")
    assert D(10_000) - intent.notional == pol.cash_buffer * D(10_000)


def test_cash_buffer_is_kept_with_several_targets_and_default_policy() -> None:
    pol = DiffPolicy(cash_buffer=D("0.02"))
    snap = snapshot(10_000)

    result = run({"SPY": 0.6, "TLT": 0.4}, snap, prices_of(SPY="7.0300", TLT="13.1100"), pol)

    spent = sum((i.notional for i in result.buys), ZERO)
    assert len(result.buys) == 2
    assert spent <= D(10_000) - D(200)
    assert spent > D(10_000) - D(201)  # whole target less rounding dust


def test_planned_sell_proceeds_fund_buys() -> None:
    pol = policy(cash_buffer=D("0.02"))
    snap = snapshot(0, {"TLT": 1000})

    result = run({"TLT": 0.5, "SPY": 0.5}, snap, prices_of(TLT=1, SPY=1), pol)

    assert [(i.side, i.symbol, i.qty) for i in result.intents] == [
        (Side.SELL, "TLT", D(510)),
        (Side.BUY, "SPY", D(490)),
    ]
    proceeds = sum((i.notional for i in result.sells), ZERO)
    spent = sum((i.notional for i in result.buys), ZERO)
    assert spent == snap.cash + proceeds - pol.cash_buffer * result.equity


def test_buys_are_scaled_pro_rata_to_fit_cash() -> None:
    # TLT sits above target but inside its band, so only $450 is free for $500 of buys.
    snap = snapshot(450, {"TLT": 550})
    pol = policy(drift_abs=D("0.1"), drift_rel=D(1))

    result = run({"TLT": 0.5, "SPY": 0.3, "QQQ": 0.2}, snap, prices_of(TLT=1, SPY=1, QQQ=1), pol)

    assert [(i.symbol, i.qty) for i in result.buys] == [("QQQ", D(180)), ("SPY", D(270))]
    assert sum((i.notional for i in result.buys), ZERO) == D(450)
    assert [(h.symbol, h.reason) for h in result.holds] == [("TLT", HoldReason.WITHIN_BAND)]


def test_buy_scaled_below_min_notional_is_held_as_cash_limited() -> None:
    snap = snapshot(450, {"TLT": 550})
    pol = policy(drift_abs=D("0.1"), drift_rel=D("0.5"), min_trade_notional=D(46))

    result = run({"TLT": 0.5, "SPY": 0.45, "QQQ": 0.05}, snap, prices_of(TLT=1, SPY=1, QQQ=1), pol)

    assert [(i.symbol, i.qty) for i in result.buys] == [("SPY", D(405))]
    assert [(h.symbol, h.reason) for h in result.holds] == [
        ("QQQ", HoldReason.CASH_LIMITED),
        ("TLT", HoldReason.WITHIN_BAND),
    ]
    cash_limited = result.holds[0]
    assert cash_limited.target_weight == D("0.05")
    assert cash_limited.current_weight == ZERO
    assert "$450.00" in cash_limited.detail


def test_no_buys_when_cash_is_below_the_buffer() -> None:
    # equity 1000, buffer $10, cash $5 and nothing to sell: available is -$5.
    snap = snapshot(5, {"TLT": 995})
    pol = policy(drift_abs=D("0.1"), drift_rel=D("0.5"), cash_buffer=D("0.01"))

    result = run({"TLT": 0.95, "SPY": 0.05}, snap, prices_of(TLT=1, SPY=1), pol)

    assert result.intents == ()
    assert [(h.symbol, h.reason) for h in result.holds] == [
        ("SPY", HoldReason.CASH_LIMITED),
        ("TLT", HoldReason.WITHIN_BAND),
    ]


def _buy(symbol: str, qty: str, price: str, step: str = "0.000001") -> OrderIntent:
    return OrderIntent(
        client_order_id=f"r-buy-{symbol}-0",
        symbol=symbol,
        side=Side.BUY,
        qty=D(qty),
        ref_price=D(price),
        qty_step=D(step),
        kind=IntentKind.OPEN,
        current_weight=ZERO,
        target_weight=D("0.5"),
        reason="test",
    )


def test_fit_buys_to_cash_never_scales_up() -> None:
    buys = [_buy("SPY", "3", "10"), _buy("TLT", "2.5", "4")]

    kept, dropped = fit_buys_to_cash(buys, D(1_000_000), D(1))

    assert kept == buys
    assert dropped == []


def test_fit_buys_to_cash_exact_fit_is_not_scaled() -> None:
    buys = [_buy("SPY", "3", "10"), _buy("TLT", "2.5", "4")]

    kept, dropped = fit_buys_to_cash(buys, D(40), D(1))

    assert kept == buys
    assert dropped == []


def test_fit_buys_to_cash_scales_and_drops() -> None:
    buys = [_buy("SPY", "10", "10", step="1"), _buy("TLT", "100", "1"), _buy("GLD", "1", "5")]

    kept, dropped = fit_buys_to_cash(buys, D("102.5"), D(3))  # factor 0.5

    assert [(b.symbol, b.qty) for b in kept] == [("SPY", D(5)), ("TLT", D(50))]
    assert [b.symbol for b in dropped] == ["GLD"]  # $2.50 < $3
    assert sum((b.notional for b in kept), ZERO) == D(100)


@pytest.mark.parametrize("available", [ZERO, D(-10)])
def test_fit_buys_to_cash_without_cash_drops_every_buy(available: Decimal) -> None:
    buys = [_buy("SPY", "3", "10"), _buy("TLT", "2.5", "4")]

    kept, dropped = fit_buys_to_cash(buys, available, ZERO)

    assert kept == []
    assert dropped == buys


@pytest.mark.parametrize(
    ("qty", "price", "available", "expected"),
    [
        # a rounded factor (25/75 = 0.333...3) would floor 3 x 0.333...3 to 0 shares
        ("3", "25", "25", D(1)),
        ("7", "13.3333", "13.3333", D(1)),
        ("30", "17", "34", D(2)),
        ("3", "25", "49.99", D(1)),
    ],
)
def test_fit_buys_to_cash_keeps_whole_shares_that_fit_exactly(
    qty: str, price: str, available: str, expected: Decimal
) -> None:
    buy = _buy("SPY", qty, price, step="1")

    kept, dropped = fit_buys_to_cash([buy], D(available), ZERO)

    assert [(b.symbol, b.qty) for b in kept] == [("SPY", expected)]
    assert dropped == []


def test_diff_buys_the_whole_share_that_cash_allows() -> None:
    snap = snapshot(25, {"TLT": 3})  # equity 100, TLT 0.75 held vs 0.25 target, in band
    pol = policy(drift_abs=D("0.5"), drift_rel=D(2), whole_share_symbols=frozenset({"SPY"}))

    result = run({"TLT": 0.25, "SPY": 0.75}, snap, prices_of(TLT=25, SPY=25), pol)

    assert [(i.symbol, i.qty) for i in result.buys] == [("SPY", D(1))]


# --- failing closed -------------------------------------------------------------------


def test_missing_price_for_a_held_symbol_fails_closed() -> None:
    snap = snapshot(100, {"SPY": 1, "TLT": 1})

    with pytest.raises(DataError, match="TLT") as caught:
        run({"SPY": 0.5}, snap, prices_of(SPY=100))

    assert caught.value.kind is DataErrorKind.MISSING
    assert caught.value.code == "DATA_MISSING"


def test_missing_price_for_a_target_symbol_fails_closed() -> None:
    with pytest.raises(DataError, match="GLD, QQQ") as caught:
        run({"SPY": 0.3, "QQQ": 0.3, "GLD": 0.3}, snapshot(1000), prices_of(SPY=100))

    assert caught.value.kind is DataErrorKind.MISSING


@pytest.mark.parametrize("bad_price", ["0", "-1.5"])
def test_non_positive_price_counts_as_missing(bad_price: str) -> None:
    with pytest.raises(DataError, match="SPY") as caught:
        run({"SPY": 0.5}, snapshot(1000), prices_of(SPY=bad_price))

    assert caught.value.kind is DataErrorKind.MISSING


def test_zero_weight_unheld_symbol_needs_no_price() -> None:
    result = run({"SPY": 0.5, "QQQ": 0.0}, snapshot(1000), prices_of(SPY=100))

    assert [i.symbol for i in result.intents] == ["SPY"]


def test_zero_quantity_position_needs_no_price() -> None:
    # A flat position is not held: it must not need a price (it once raised KeyError).
    snap = snapshot(1000, {"SPY": 0})

    result = run({"TLT": 0.5}, snap, prices_of(TLT=100))

    assert [(i.symbol, i.qty) for i in result.intents] == [("TLT", D(5))]
    assert result.equity == D(1000)


def test_short_position_fails_closed() -> None:
    snap = snapshot(1000, {"SPY": -2})

    with pytest.raises(DataError, match="short") as caught:
        run({"SPY": 0.5}, snap, prices_of(SPY=100))

    assert caught.value.kind is DataErrorKind.UNSUPPORTED


@pytest.mark.parametrize(
    "targets",
    [
        {"SPY": 0.6, "TLT": 0.5},
        {"SPY": 1.000001},
        {"SPY": -0.1, "TLT": 0.5},
        {"SPY": float("nan")},
        {"SPY": float("inf")},
    ],
    ids=["sum-above-one", "single-above-one", "negative", "nan", "inf"],
)
def test_invalid_weights_raise_strategy_error(targets: dict[str, float]) -> None:
    with pytest.raises(StrategyError):
        run(targets, snapshot(1000), prices_of(SPY=100, TLT=100))


def test_weights_summing_to_exactly_one_are_valid() -> None:
    result = run(
        {"SPY": 0.1, "TLT": 0.2, "GLD": 0.7}, snapshot(1000), prices_of(SPY=1, TLT=1, GLD=1)
    )

    assert sum((i.notional for i in result.buys), ZERO) == D(1000)


@pytest.mark.parametrize(
    ("cash", "positions"),
    [("0", {}), ("-100", {}), ("-100", {"SPY": "0.5"}), ("-50", {"SPY": "0.5"})],
)
def test_non_positive_equity_fails_closed(cash: str, positions: dict[str, str]) -> None:
    with pytest.raises(DataError, match="equity") as caught:
        run({"SPY": 0.5}, snapshot(cash, positions), prices_of(SPY=100))

    assert caught.value.kind is DataErrorKind.UNSUPPORTED


# --- policy validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"cash_buffer": D(1)},
        {"cash_buffer": D("-0.01")},
        {"qty_step": ZERO},
        {"qty_step": D(2)},
        {"drift_abs": D("1.5")},
        {"min_trade_notional": D(-1)},
    ],
)
def test_policy_rejects_out_of_range_values(changes: dict[str, Decimal]) -> None:
    with pytest.raises(ValidationError):
        DiffPolicy.model_validate(changes)


def test_policy_normalises_whole_share_symbols() -> None:
    pol = DiffPolicy.model_validate({"whole_share_symbols": ["spy", "brk/b"]})

    assert pol.whole_share_symbols == frozenset({"SPY", "BRK.B"})
    assert pol.step_for("BRK.B", None) == D(1)
    assert pol.step_for("TLT", None) == pol.qty_step
