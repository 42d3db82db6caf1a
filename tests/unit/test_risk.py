"""Example-based tests of the pure pre-trade risk filter ``alchemiser.portfolio.risk``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest
from pydantic import ValidationError

from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.decisions import RiskCode, RiskDecision, TradingState, Verdict
from alchemiser.domain.orders import (
    IntentKind,
    OrderIntent,
    OrderRecord,
    OrderStatus,
    Side,
    client_order_id,
)
from alchemiser.portfolio.risk import RiskLimits, RiskReview, RunUsage, review, usage_of

D = Decimal
ZERO = D(0)
FRACTIONAL = "0.000001"

LOOSE = RiskLimits(
    max_order_fraction=D(4),
    max_order_notional=D(10**9),
    max_position_weight=D(1),
    max_gross_exposure=D(4),
    max_turnover=D(100),
    max_orders=1000,
)

PRICES = {"SPY": D(100), "QQQ": D(100), "TLT": D(100), "GLD": D(50)}


def snapshot(cash: str | int, positions: Mapping[str, str | int] | None = None) -> AccountSnapshot:
    return AccountSnapshot(
        cash=D(cash),
        buying_power=max(D(cash), ZERO),
        positions=tuple(Position(symbol=s, qty=D(q)) for s, q in (positions or {}).items()),
    )


# cash $10,000 plus 100 SPY at $100: equity $20,000, gross exposure $10,000
BASE = snapshot(10_000, {"SPY": 100})


def limits(**changes: object) -> RiskLimits:
    return RiskLimits.model_validate({**LOOSE.model_dump(), **changes})


def intent(
    symbol: str,
    side: Side,
    qty: str | int,
    price: str | int | None = None,
    *,
    step: str = FRACTIONAL,
    leg: int = 0,
) -> OrderIntent:
    return OrderIntent(
        client_order_id=client_order_id("run", symbol, side, leg),
        symbol=symbol,
        side=side,
        qty=D(qty),
        ref_price=PRICES[symbol] if price is None else D(price),
        qty_step=D(step),
        kind=IntentKind.INCREASE if side is Side.BUY else IntentKind.DECREASE,
        current_weight=ZERO,
        target_weight=D("0.5"),
        reason="test",
    )


def buy(
    symbol: str,
    qty: str | int,
    price: str | int | None = None,
    *,
    step: str = FRACTIONAL,
    leg: int = 0,
) -> OrderIntent:
    return intent(symbol, Side.BUY, qty, price, step=step, leg=leg)


def sell(
    symbol: str,
    qty: str | int,
    price: str | int | None = None,
    *,
    step: str = FRACTIONAL,
    leg: int = 0,
) -> OrderIntent:
    return intent(symbol, Side.SELL, qty, price, step=step, leg=leg)


def check(
    intents: Sequence[OrderIntent],
    snap: AccountSnapshot = BASE,
    lim: RiskLimits = LOOSE,
    state: TradingState = TradingState.ACTIVE,
    prices: Mapping[str, Decimal] = PRICES,
) -> RiskReview:
    result = review(intents, snap, prices, lim, state)
    assert len(result.decisions) == len(intents)
    return result


def decision(result: RiskReview, order: OrderIntent) -> RiskDecision:
    (found,) = [d for d in result.decisions if d.client_order_id == order.client_order_id]
    return found


def assert_denied(result: RiskReview, order: OrderIntent, code: RiskCode) -> None:
    found = decision(result, order)
    assert found.verdict is Verdict.DENIED
    assert found.codes == (code,)
    assert found.approved_qty == ZERO
    assert found.requested_qty == order.qty
    assert order.client_order_id not in {a.client_order_id for a in result.approved}


def assert_approved(result: RiskReview, order: OrderIntent) -> None:
    found = decision(result, order)
    assert found.verdict is Verdict.APPROVED
    assert found.codes == ()
    assert found.approved_qty == order.qty
    assert order in result.approved


def assert_shrunk(
    result: RiskReview, order: OrderIntent, qty: Decimal, codes: tuple[RiskCode, ...]
) -> None:
    found = decision(result, order)
    assert found.verdict is Verdict.SHRUNK
    assert found.codes == codes
    assert found.requested_qty == order.qty
    assert found.approved_qty == qty
    assert order.with_qty(qty) in result.approved


# --- approval and ordering ------------------------------------------------------------


def test_orders_within_all_limits_are_approved_unchanged() -> None:
    orders = [buy("QQQ", 10), sell("SPY", 10)]

    result = check(orders)

    assert result.approved == (orders[1], orders[0])
    for order in orders:
        assert_approved(result, order)
        assert decision(result, order).reason == "within all limits"
    assert result.denied == ()


def test_sells_are_reviewed_before_buys_each_in_given_order() -> None:
    snap = snapshot(1000, {"SPY": 10, "TLT": 10})
    orders = [buy("QQQ", 1), sell("TLT", 1), buy("GLD", 1), sell("SPY", 1)]

    result = check(orders, snap)

    assert [d.symbol for d in result.decisions] == ["TLT", "SPY", "QQQ", "GLD"]
    assert [a.symbol for a in result.approved] == ["TLT", "SPY", "QQQ", "GLD"]


def test_empty_review() -> None:
    result = check([])

    assert result.decisions == ()
    assert result.approved == ()


# --- trading state --------------------------------------------------------------------


def test_halted_approves_nothing() -> None:
    orders = [sell("SPY", 1), buy("QQQ", 1)]

    result = check(orders, state=TradingState.HALTED)

    assert result.approved == ()
    for order in orders:
        assert_denied(result, order, RiskCode.TRADING_HALTED)
    assert len(result.denied) == 2


def test_reducing_approves_only_sells() -> None:
    orders = [buy("QQQ", 1), sell("SPY", 100), buy("GLD", 1)]

    result = check(orders, state=TradingState.REDUCING)

    assert result.approved == (orders[1],)
    assert_approved(result, orders[1])
    assert_denied(result, orders[0], RiskCode.TRADING_REDUCING_ONLY)
    assert_denied(result, orders[2], RiskCode.TRADING_REDUCING_ONLY)


# --- malformed orders and data --------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "qty", "price"),
    [
        (Side.BUY, "0", "100"),
        (Side.SELL, "0", "100"),
        (Side.BUY, "-1", "100"),
        (Side.SELL, "-1", "100"),
        (Side.BUY, "1", "0"),
        (Side.SELL, "1", "-5"),
    ],
)
def test_invalid_order_is_denied(side: Side, qty: str, price: str) -> None:
    bad = intent("SPY", side, qty, price, leg=1)
    good = buy("QQQ", 1)

    result = check([bad, good])

    assert_denied(result, bad, RiskCode.INVALID_ORDER)
    assert_approved(result, good)
    assert qty in decision(result, bad).reason


def test_held_symbol_without_price_denies_everything() -> None:
    snap = snapshot(10_000, {"SPY": 100, "TLT": 5})
    orders = [buy("QQQ", 1), sell("SPY", 1)]
    prices = {"SPY": D(100), "QQQ": D(100)}

    result = check(orders, snap, prices=prices)

    assert result.approved == ()
    for order in orders:
        assert_denied(result, order, RiskCode.PRICE_MISSING)
        assert "TLT" in decision(result, order).reason
    assert [d.symbol for d in result.decisions] == ["SPY", "QQQ"]


def test_price_is_needed_only_for_held_symbols() -> None:
    # QQQ is not held: its intent's ref_price is enough.
    result = check([buy("QQQ", 1)], prices={"SPY": D(100)})

    assert [a.symbol for a in result.approved] == ["QQQ"]


# --- symbol lists ---------------------------------------------------------------------


def test_deny_list() -> None:
    orders = [buy("QQQ", 1), sell("SPY", 1)]

    result = check(orders, lim=limits(deny_symbols=frozenset({"QQQ"})))

    assert_denied(result, orders[0], RiskCode.SYMBOL_DENIED)
    assert_approved(result, orders[1])
    assert "deny list" in decision(result, orders[0]).reason


def test_deny_list_applies_to_sells_too() -> None:
    order = sell("SPY", 1)

    result = check([order], lim=limits(deny_symbols=["spy"]))

    assert_denied(result, order, RiskCode.SYMBOL_DENIED)


def test_allow_list() -> None:
    orders = [buy("QQQ", 1), sell("SPY", 1), buy("SPY", 1)]

    result = check(orders, lim=limits(allow_symbols=frozenset({"SPY"})))

    assert_denied(result, orders[0], RiskCode.SYMBOL_NOT_ALLOWED)
    assert_approved(result, orders[1])
    assert_approved(result, orders[2])


def test_empty_allow_list_allows_nothing() -> None:
    orders = [buy("QQQ", 1), sell("SPY", 1)]

    result = check(orders, lim=limits(allow_symbols=frozenset()))

    assert result.approved == ()
    for order in orders:
        assert_denied(result, order, RiskCode.SYMBOL_NOT_ALLOWED)


# --- order count ----------------------------------------------------------------------


def test_max_orders_gives_sells_priority() -> None:
    orders = [buy("QQQ", 1), buy("GLD", 1), sell("SPY", 1)]

    result = check(orders, lim=limits(max_orders=2))

    assert [a.symbol for a in result.approved] == ["SPY", "QQQ"]
    assert_denied(result, orders[1], RiskCode.MAX_ORDERS_EXCEEDED)
    assert "2 orders" in decision(result, orders[1]).reason


def test_max_orders_one_keeps_the_sell() -> None:
    orders = [buy("QQQ", 1), sell("SPY", 1)]

    result = check(orders, lim=limits(max_orders=1))

    assert result.approved == (orders[1],)
    assert_denied(result, orders[0], RiskCode.MAX_ORDERS_EXCEEDED)


def test_max_orders_zero_denies_everything() -> None:
    orders = [buy("QQQ", 1), sell("SPY", 1)]

    result = check(orders, lim=limits(max_orders=0))

    assert result.approved == ()
    for order in orders:
        assert_denied(result, order, RiskCode.MAX_ORDERS_EXCEEDED)


def test_denied_orders_do_not_use_up_the_order_count() -> None:
    orders = [sell("SPY", 1), buy("QQQ", 1)]

    result = check(orders, lim=limits(max_orders=1, deny_symbols=frozenset({"SPY"})))

    assert_denied(result, orders[0], RiskCode.SYMBOL_DENIED)
    assert_approved(result, orders[1])


# --- selling what is held -------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "qty", "allowed"),
    [
        ("100", "100", True),
        ("100", "100.000001", False),
        ("100", "101", False),
        ("7.2273576", "7.2273576", True),
        ("7.2273576", "7.2273577", False),
        ("0.3", "0.3", True),
    ],
)
def test_sell_exceeds_position(held: str, qty: str, allowed: bool) -> None:
    order = sell("SPY", qty)

    result = check([order], snapshot(0, {"SPY": held}))

    if allowed:
        assert_approved(result, order)
    else:
        assert_denied(result, order, RiskCode.SELL_EXCEEDS_POSITION)
        assert held in decision(result, order).reason


def test_sell_of_a_symbol_not_held_is_denied() -> None:
    order = sell("TLT", 1)

    result = check([order])

    assert_denied(result, order, RiskCode.SELL_EXCEEDS_POSITION)


def test_sells_in_one_run_draw_down_the_same_position() -> None:
    first, second = sell("SPY", 60), sell("SPY", 60, leg=1)

    result = check([first, second])

    assert_approved(result, first)
    assert_denied(result, second, RiskCode.SELL_EXCEEDS_POSITION)


# --- order notional -------------------------------------------------------------------


def test_order_notional_shrinks_a_buy() -> None:
    order = buy("QQQ", 25)

    result = check([order], lim=limits(max_order_notional=D(1000)))

    assert_shrunk(result, order, D(10), (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))
    (approved,) = result.approved
    assert approved.client_order_id == order.client_order_id
    assert approved.notional == D(1000)
    assert "shrunk from 25 to 10" in decision(result, order).reason


@pytest.mark.parametrize(
    ("side", "step", "expected"),
    [
        (Side.BUY, FRACTIONAL, D("33.333333")),
        (Side.BUY, "1", D(33)),
        (Side.SELL, FRACTIONAL, D("33.333333")),
        (Side.SELL, "1", D(33)),
        (Side.BUY, "0.01", D("33.33")),
    ],
)
def test_order_notional_shrinks_to_the_quantity_step(
    side: Side, step: str, expected: Decimal
) -> None:
    order = intent("SPY", side, 50, "30", step=step)

    result = check([order], lim=limits(max_order_notional=D(1000)))

    assert_shrunk(result, order, expected, (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))
    assert result.approved[0].notional <= D(1000)


def test_whole_share_exit_of_a_fractional_position_shrinks_to_an_integer() -> None:
    order = sell("SPY", "7.2273576", step="1")

    result = check([order], snapshot(0, {"SPY": "7.2273576"}), limits(max_order_notional=D(550)))

    assert_shrunk(result, order, D(5), (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))


def test_order_notional_exactly_at_the_limit_is_approved() -> None:
    order = buy("QQQ", 10)

    result = check([order], lim=limits(max_order_notional=D(1000)))

    assert_approved(result, order)


def test_order_fraction_caps_an_order_at_a_fraction_of_equity() -> None:
    order = buy("QQQ", 80)  # $8,000 of BASE's $20,000 equity

    result = check([order], lim=limits(max_order_fraction=D("0.25"), max_order_notional=None))

    assert_shrunk(result, order, D(50), (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))
    assert result.approved[0].notional == D(5000)
    reason = decision(result, order).reason
    assert "max order fraction (25.00% of equity) leaves $5000.00" in reason


def test_order_fraction_applies_to_sells_too() -> None:
    order = sell("SPY", 100)  # the whole $10,000 position

    result = check([order], lim=limits(max_order_fraction=D("0.3"), max_order_notional=None))

    assert_shrunk(result, order, D(60), (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))


@pytest.mark.parametrize(
    ("fraction", "dollars", "expected", "named"),
    [
        # $20,000 equity: 25% is $5,000; the $3,000 cap is tighter and wins.
        (D("0.25"), D(3000), D(30), "max order notional ($3000.00) leaves $3000.00"),
        # 10% is $2,000, tighter than the $3,000 cap.
        (D("0.10"), D(3000), D(20), "max order fraction (10.00% of equity) leaves $2000.00"),
        # Equal: either is the same ceiling; the dollar cap is named.
        (D("0.15"), D(3000), D(30), "max order notional ($3000.00) leaves $3000.00"),
    ],
)
def test_with_both_order_caps_the_tighter_wins(
    fraction: Decimal, dollars: Decimal, expected: Decimal, named: str
) -> None:
    order = buy("QQQ", 80)

    result = check([order], lim=limits(max_order_fraction=fraction, max_order_notional=dollars))

    assert_shrunk(result, order, expected, (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))
    assert named in decision(result, order).reason


def test_no_dollar_cap_by_default() -> None:
    defaults = RiskLimits()
    assert defaults.max_order_notional is None
    assert defaults.max_order_fraction == D(1)
    assert defaults.max_position_weight == D(1)
    # A $5,000,000 buy in a $10,000,000 cash account passes the defaults whole.
    order = buy("QQQ", 50_000)

    result = check([order], snapshot(10_000_000), defaults)

    assert_approved(result, order)


def test_default_limits_let_a_full_switch_between_two_funds_through() -> None:
    """100% of one fund (less the 1% cash buffer) sold, 100% of another bought."""
    held = snapshot(1_000, {"SPY": 990})  # $100,000 equity, 99% in SPY
    sell_all = sell("SPY", 990)
    buy_all = buy("QQQ", 990)

    result = check([sell_all, buy_all], held, RiskLimits())

    assert_approved(result, sell_all)
    assert_approved(result, buy_all)


def test_order_fraction_bites_the_same_at_ten_times_the_equity() -> None:
    """A limit as a fraction of equity is the same limit on a larger account: the order
    ten times larger on the account ten times larger is shrunk to the same fraction."""
    lim = limits(max_order_fraction=D("0.3"), max_order_notional=None, max_turnover=D("0.5"))
    small = check([buy("QQQ", 80)], BASE, lim)
    large = check([buy("QQQ", 800)], snapshot(100_000, {"SPY": 1_000}), lim)

    (small_buy,), (large_buy,) = small.approved, large.approved
    assert large_buy.qty == 10 * small_buy.qty == D(600)
    assert small.decisions[0].codes == large.decisions[0].codes


# --- turnover -------------------------------------------------------------------------


def test_turnover_counts_sells_and_buys() -> None:
    # max turnover 0.1 x $20,000 equity = $2,000 for the run
    orders = [buy("QQQ", 10), sell("SPY", 15), buy("GLD", 10)]

    result = check(orders, lim=limits(max_turnover=D("0.1")))

    assert_approved(result, orders[1])
    assert_shrunk(result, orders[0], D(5), (RiskCode.TURNOVER_EXCEEDS_MAX,))
    denied = decision(result, orders[2])
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (RiskCode.TURNOVER_EXCEEDS_MAX,)
    assert denied.approved_qty == ZERO
    assert "nothing left" in denied.reason
    assert sum((a.notional for a in result.approved), ZERO) == D(2000)


def test_turnover_shrinks_sells() -> None:
    order = sell("SPY", 50)

    result = check([order], lim=limits(max_turnover=D("0.05")))  # $1,000

    assert_shrunk(result, order, D(10), (RiskCode.TURNOVER_EXCEEDS_MAX,))


# --- buying power ---------------------------------------------------------------------


def test_buy_is_capped_at_cash() -> None:
    order = buy("QQQ", 30)

    result = check([order], snapshot(1000, {"SPY": 100}))

    assert_shrunk(result, order, D(10), (RiskCode.INSUFFICIENT_BUYING_POWER,))
    assert "cash after planned sells" in decision(result, order).reason


def test_buys_may_use_planned_sell_proceeds() -> None:
    orders = [buy("QQQ", 30), sell("SPY", 20)]  # the sell is listed last

    result = check(orders, snapshot(1000, {"SPY": 100}))

    assert_approved(result, orders[0])
    assert_approved(result, orders[1])


def test_denied_sells_do_not_fund_buys() -> None:
    orders = [buy("QQQ", 30), sell("SPY", 20)]

    result = check(orders, snapshot(1000, {"SPY": 100}), limits(deny_symbols=frozenset({"SPY"})))

    assert_shrunk(result, orders[0], D(10), (RiskCode.INSUFFICIENT_BUYING_POWER,))


def test_buys_share_the_cash() -> None:
    orders = [buy("QQQ", 6), buy("TLT", 6)]

    result = check(orders, snapshot(1000, {"SPY": 100}))

    assert_approved(result, orders[0])
    assert_shrunk(result, orders[1], D(4), (RiskCode.INSUFFICIENT_BUYING_POWER,))


@pytest.mark.parametrize("cash", ["0", "-500"])
def test_no_cash_denies_buys(cash: str) -> None:
    order = buy("QQQ", 1)

    result = check([order], snapshot(cash, {"SPY": 100}))

    assert_denied(result, order, RiskCode.INSUFFICIENT_BUYING_POWER)


# --- position weight and gross exposure -----------------------------------------------


def test_position_weight_caps_a_buy_of_a_held_symbol() -> None:
    order = buy("SPY", 30)  # SPY is $10,000 of $20,000; the cap is $12,000

    result = check([order], lim=limits(max_position_weight=D("0.6")))

    assert_shrunk(result, order, D(20), (RiskCode.POSITION_WEIGHT_EXCEEDS_MAX,))
    assert "max position weight" in decision(result, order).reason


def test_position_weight_caps_a_new_position() -> None:
    order = buy("QQQ", 150)

    result = check([order], snapshot(30_000, {"SPY": 100}), limits(max_position_weight=D("0.25")))

    assert_shrunk(result, order, D(100), (RiskCode.POSITION_WEIGHT_EXCEEDS_MAX,))


def test_position_already_above_max_weight_cannot_grow() -> None:
    order = buy("SPY", 1)

    result = check([order], lim=limits(max_position_weight=D("0.4")))

    denied = decision(result, order)
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (RiskCode.POSITION_WEIGHT_EXCEEDS_MAX,)


def test_position_weight_counts_earlier_buys_of_the_run() -> None:
    first, second = buy("QQQ", 60), buy("QQQ", 60, leg=1)

    result = check(
        [first, second], snapshot(30_000, {"SPY": 100}), limits(max_position_weight=D("0.25"))
    )

    assert_approved(result, first)
    assert_shrunk(result, second, D(40), (RiskCode.POSITION_WEIGHT_EXCEEDS_MAX,))


def test_gross_exposure_caps_buys() -> None:
    order = buy("QQQ", 30)  # gross $10,000; cap 0.6 x $20,000 = $12,000

    result = check([order], lim=limits(max_gross_exposure=D("0.6")))

    assert_shrunk(result, order, D(20), (RiskCode.GROSS_EXPOSURE_EXCEEDS_MAX,))
    assert "max gross exposure" in decision(result, order).reason


def test_sells_reduce_gross_exposure_before_buys() -> None:
    orders = [buy("QQQ", 30), sell("SPY", 20)]

    result = check(orders, lim=limits(max_gross_exposure=D("0.6")))

    assert_approved(result, orders[0])
    assert_approved(result, orders[1])


def test_gross_exposure_at_the_cap_denies_buys() -> None:
    order = buy("QQQ", 1)

    result = check([order], lim=limits(max_gross_exposure=D("0.5")))

    denied = decision(result, order)
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (RiskCode.GROSS_EXPOSURE_EXCEEDS_MAX,)


def test_sells_are_not_checked_against_weight_or_exposure() -> None:
    order = sell("SPY", 10)

    tight = limits(max_position_weight=D("0.01"), max_gross_exposure=D("0.01"))
    result = check([order], lim=tight)

    assert_approved(result, order)


# --- several codes, shrunk to zero ----------------------------------------------------


def test_codes_accumulate_in_check_order() -> None:
    order = buy("QQQ", 30)

    result = check([order], snapshot(1000, {"SPY": 100}), limits(max_order_notional=D(2500)))

    assert_shrunk(
        result,
        order,
        D(10),
        (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX, RiskCode.INSUFFICIENT_BUYING_POWER),
    )
    reason = decision(result, order).reason
    assert "max order notional" in reason
    assert "cash after planned sells" in reason


def test_shrunk_to_zero_is_denied_with_the_codes_that_shrank_it() -> None:
    order = buy("QQQ", 5, step="1")

    result = check([order], snapshot(50), limits(max_order_notional=D(150)))

    denied = decision(result, order)
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (
        RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,
        RiskCode.INSUFFICIENT_BUYING_POWER,
    )
    assert denied.approved_qty == ZERO
    assert denied.requested_qty == D(5)
    assert "nothing left worth trading" in denied.reason
    assert result.approved == ()


def test_an_order_shrunk_to_zero_does_not_count_or_spend() -> None:
    orders = [buy("QQQ", 1, step="1"), buy("GLD", 1)]  # $100 does not fit $50; $50 does

    result = check(orders, snapshot(50), limits(max_orders=1))

    denied = decision(result, orders[0])
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (RiskCode.INSUFFICIENT_BUYING_POWER,)
    assert_approved(result, orders[1])


def test_fractional_buy_shrinks_where_whole_share_buy_is_denied() -> None:
    fractional = buy("QQQ", 1)
    whole = buy("QQQ", 1, step="1")

    frac_result = check([fractional], snapshot(50))
    whole_result = check([whole], snapshot(50))

    assert_shrunk(frac_result, fractional, D("0.5"), (RiskCode.INSUFFICIENT_BUYING_POWER,))
    assert decision(whole_result, whole).verdict is Verdict.DENIED


# --- reasons, bookkeeping, limits validation ------------------------------------------


def test_every_decision_has_a_human_reason() -> None:
    snap = snapshot(1000, {"SPY": 100, "TLT": 10})
    orders = [
        buy("QQQ", 30),
        buy("GLD", 1),
        sell("SPY", 200),
        sell("TLT", 10),
        intent("IEF", Side.BUY, 0, "100"),
        buy("XLK", 1, "10"),
        buy("BIL", 1, "10"),
    ]
    lim = limits(
        max_order_notional=D(2500),
        deny_symbols=frozenset({"GLD"}),
        allow_symbols=frozenset({"SPY", "TLT", "QQQ", "GLD", "IEF", "XLK"}),
        max_orders=2,
    )
    prices = {**PRICES, "IEF": D(100), "XLK": D(10), "BIL": D(10)}
    reviews = [
        check(orders, snap, lim, prices=prices),
        check(orders, snap, lim, TradingState.HALTED, prices),
        check(orders, snap, lim, TradingState.REDUCING, prices),
        check(orders, snap, lim, prices={"SPY": D(100)}),
    ]

    codes_seen: set[RiskCode] = set()
    for result in reviews:
        for found in result.decisions:
            assert found.reason.strip()
            assert " " in found.reason
            assert found.reason not in {c.value for c in RiskCode}
            codes_seen.update(found.codes)
    assert codes_seen >= {
        RiskCode.TRADING_HALTED,
        RiskCode.TRADING_REDUCING_ONLY,
        RiskCode.INVALID_ORDER,
        RiskCode.PRICE_MISSING,
        RiskCode.SYMBOL_DENIED,
        RiskCode.SYMBOL_NOT_ALLOWED,
        RiskCode.MAX_ORDERS_EXCEEDED,
        RiskCode.SELL_EXCEEDS_POSITION,
        RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,
        RiskCode.INSUFFICIENT_BUYING_POWER,
    }


def test_denied_property_lists_only_denials() -> None:
    orders = [buy("QQQ", 1), sell("TLT", 1), buy("GLD", 1)]

    result = check(orders, lim=limits(deny_symbols=frozenset({"GLD"})))

    assert {d.symbol for d in result.denied} == {"TLT", "GLD"}
    assert all(d.verdict is Verdict.DENIED for d in result.denied)


def test_input_intents_are_not_modified() -> None:
    order = buy("QQQ", 25)

    check([order], lim=limits(max_order_notional=D(1000)))

    assert order.qty == D(25)


@pytest.mark.parametrize(
    "changes",
    [
        {"max_order_notional": ZERO},
        {"max_order_fraction": ZERO},
        {"max_order_fraction": D("4.01")},
        {"max_position_weight": D("1.5")},
        {"max_position_weight": ZERO},
        {"max_gross_exposure": D(5)},
        {"max_turnover": ZERO},
        {"max_orders": -1},
        {"deny_symbols": ["not a ticker"]},
    ],
)
def test_limits_reject_out_of_range_values(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RiskLimits.model_validate(changes)


# --- price collar: reference prices against the market's prices now ------------------


def collared(
    intents: Sequence[OrderIntent],
    live: Mapping[str, Decimal],
    snap: AccountSnapshot = BASE,
    lim: RiskLimits = LOOSE,
    state: TradingState = TradingState.ACTIVE,
) -> RiskReview:
    result = review(intents, snap, PRICES, lim, state, live_prices=live)
    assert len(result.decisions) == len(intents)
    return result


def test_live_prices_within_the_collar_change_nothing() -> None:
    orders = [buy("QQQ", 10), sell("SPY", 10)]
    live = {"QQQ": D("124.99"), "SPY": D("75.01")}  # within 25% of $100 either way

    assert collared(orders, live) == check(orders)


def test_a_gap_up_beyond_the_collar_denies_the_buy_naming_both_prices() -> None:
    order = buy("QQQ", 10)

    result = collared([order], {"QQQ": D("125.01")})

    assert_denied(result, order, RiskCode.PRICE_DEVIATION)
    reason = decision(result, order).reason
    assert "$125.01" in reason
    assert "$100" in reason
    assert "25.01%" in reason


def test_a_bad_bar_denies_sells_too() -> None:
    # An unadjusted 2-for-1 split: the plan's $100 is twice the market's $50.
    order = sell("SPY", 10)

    result = collared([order], {"SPY": D(50)})

    assert_denied(result, order, RiskCode.PRICE_DEVIATION)


@pytest.mark.parametrize(("live", "allowed"), [("110", True), ("110.01", False), ("90", True)])
def test_the_collar_width_is_a_limit(live: str, allowed: bool) -> None:
    order = buy("QQQ", 1)

    result = collared([order], {"QQQ": D(live)}, lim=limits(max_price_deviation=D("0.1")))

    if allowed:
        assert_approved(result, order)
    else:
        assert_denied(result, order, RiskCode.PRICE_DEVIATION)


@pytest.mark.parametrize("live", [None, "0", "-1", "NaN", "Infinity"])
def test_a_symbol_without_a_usable_live_price_is_denied(live: str | None) -> None:
    order, other = buy("QQQ", 1), buy("GLD", 1)
    prices = {"GLD": D(50)} if live is None else {"GLD": D(50), "QQQ": D(live)}

    result = collared([order, other], prices)

    assert_denied(result, order, RiskCode.LIVE_PRICE_MISSING)
    assert "QQQ" in decision(result, order).reason
    assert_approved(result, other)


def test_without_live_prices_there_is_no_collar() -> None:
    order = buy("QQQ", 1, "1000")  # ten times any plausible price: unchecked without quotes

    assert_approved(check([order]), order)


def test_collared_orders_neither_count_nor_spend() -> None:
    orders = [sell("SPY", 10), buy("QQQ", 5), buy("GLD", 20)]
    live = {"SPY": D(10), "QQQ": D(100), "GLD": D(50)}

    result = collared(orders, live, snapshot(1000, {"SPY": 100}), limits(max_orders=2))

    assert_denied(result, orders[0], RiskCode.PRICE_DEVIATION)
    # Both buys are reviewed (the sell did not use an order), and they share the $1,000
    # of cash (the sell's proceeds never arrive).
    assert_approved(result, orders[1])
    assert_shrunk(result, orders[2], D(10), (RiskCode.INSUFFICIENT_BUYING_POWER,))


def test_trading_state_and_symbol_lists_come_before_the_collar() -> None:
    orders = [buy("QQQ", 1), sell("SPY", 1)]

    halted = collared(orders, {}, state=TradingState.HALTED)
    listed = collared(orders, {}, lim=limits(deny_symbols=frozenset({"QQQ", "SPY"})))
    invalid = collared([buy("QQQ", 0)], {})

    for order in orders:
        assert_denied(halted, order, RiskCode.TRADING_HALTED)
        assert_denied(listed, order, RiskCode.SYMBOL_DENIED)
    assert decision(invalid, buy("QQQ", 0)).codes == (RiskCode.INVALID_ORDER,)


@pytest.mark.parametrize("deviation", [ZERO, D("-0.1"), D("1.01")])
def test_the_collar_width_is_validated(deviation: Decimal) -> None:
    with pytest.raises(ValidationError):
        limits(max_price_deviation=deviation)


# --- run-wide limits across attempts --------------------------------------------------


def retried(
    intents: Sequence[OrderIntent],
    used: RunUsage | None,
    snap: AccountSnapshot = BASE,
    lim: RiskLimits = LOOSE,
) -> RiskReview:
    result = review(intents, snap, PRICES, lim, TradingState.ACTIVE, used=used)
    assert len(result.decisions) == len(intents)
    return result


def test_an_empty_usage_is_a_first_attempt() -> None:
    orders = [buy("QQQ", 30), sell("SPY", 20), buy("GLD", 10)]
    tight = limits(max_orders=2, max_turnover=D("0.1"), max_order_notional=D(1500))

    assert retried(orders, RunUsage(), lim=tight) == check(orders, lim=tight)
    assert retried(orders, None, lim=tight) == check(orders, lim=tight)


def test_max_orders_counts_earlier_attempts() -> None:
    orders = [sell("SPY", 1), buy("QQQ", 1)]

    result = retried(orders, RunUsage(orders=2), lim=limits(max_orders=3))

    assert_approved(result, orders[0])
    assert_denied(result, orders[1], RiskCode.MAX_ORDERS_EXCEEDED)
    reason = decision(result, orders[1]).reason
    assert "earlier attempts" in reason
    assert "2 of them" in reason


def test_max_orders_used_up_by_earlier_attempts_denies_everything() -> None:
    orders = [sell("SPY", 1), buy("QQQ", 1)]

    result = retried(orders, RunUsage(orders=5), lim=limits(max_orders=4))

    assert result.approved == ()
    for order in orders:
        assert_denied(result, order, RiskCode.MAX_ORDERS_EXCEEDED)


def test_turnover_counts_earlier_attempts_dollars() -> None:
    # max turnover 0.1 x $20,000 equity = $2,000 for the run; $1,500 already traded
    order = buy("QQQ", 10)

    result = retried(
        [order], RunUsage(orders=1, turnover=D(1500)), lim=limits(max_turnover=D("0.1"))
    )

    assert_shrunk(result, order, D(5), (RiskCode.TURNOVER_EXCEEDS_MAX,))
    reason = decision(result, order).reason
    assert "$1500.00 traded by earlier attempts" in reason
    assert "leaves $500.00" in reason


def test_turnover_used_up_denies_sells_too() -> None:
    order = sell("SPY", 1)

    result = retried([order], RunUsage(turnover=D(2000)), lim=limits(max_turnover=D("0.1")))

    denied = decision(result, order)
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (RiskCode.TURNOVER_EXCEEDS_MAX,)
    assert "earlier attempts" in denied.reason


def test_order_notional_is_per_symbol_and_side_for_the_whole_run() -> None:
    spy_buy, spy_sell, qqq_buy = buy("SPY", 5, step="1"), sell("SPY", 5), buy("QQQ", 5)
    used = RunUsage(orders=1, turnover=D(750), bought={"spy": D(750)})

    result = retried([spy_buy, spy_sell, qqq_buy], used, lim=limits(max_order_notional=D(1000)))

    # SPY buys have $250 of the $1,000 left; SPY sells and QQQ buys have it all.
    assert_shrunk(result, spy_buy, D(2), (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))
    assert_approved(result, spy_sell)
    assert_approved(result, qqq_buy)
    reason = decision(result, spy_buy).reason
    assert "SPY buys" in reason
    assert "$750.00 ordered by earlier attempts" in reason


def test_order_notional_used_up_by_earlier_attempts_denies_the_order() -> None:
    order = sell("SPY", 1)

    result = retried(
        [order], RunUsage(sold={"SPY": D(1000)}), lim=limits(max_order_notional=D(1000))
    )

    denied = decision(result, order)
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,)
    assert "nothing left worth trading" in denied.reason


def test_orders_for_one_symbol_and_side_share_the_order_notional_cap() -> None:
    first, second = buy("QQQ", 6), buy("QQQ", 6, leg=1)

    result = check([first, second], lim=limits(max_order_notional=D(1000)))

    assert_approved(result, first)
    assert_shrunk(result, second, D(4), (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,))


def test_reruns_of_a_shrunk_run_never_trade_past_its_limits() -> None:
    # The defect: each attempt applied the run's limits afresh, so five attempts of a
    # run that risk shrank to $5,000 invested five times that.
    plan = [buy("QQQ", 100), buy("GLD", 100)]  # $15,000 wanted
    snap = snapshot(100_000)
    lim = limits(max_order_notional=D(5000), max_turnover=D("0.08"), max_orders=3)
    used = RunUsage()
    for _ in range(5):
        result = retried(plan, used, snap, lim)
        bought = dict(used.bought)
        for order in result.approved:
            bought[order.symbol] = bought.get(order.symbol, ZERO) + order.notional
        used = RunUsage(
            orders=used.orders + len(result.approved),
            turnover=used.turnover + sum((a.notional for a in result.approved), ZERO),
            bought=bought,
        )

    assert used.orders <= 3
    assert used.turnover <= D("0.08") * D(100_000)
    assert all(notional <= D(5000) for notional in used.bought.values())
    assert used.turnover == D(8000)  # the run still gets what its limits allow


@pytest.mark.parametrize(
    "changes",
    [{"orders": -1}, {"turnover": D(-1)}, {"bought": {"SPY": D(-1)}}, {"sold": {"no way": D(1)}}],
)
def test_run_usage_rejects_impossible_values(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RunUsage.model_validate(changes)


# -- what earlier attempts used, in the units risk approves in --------------------------


def _earlier(
    symbol: str,
    side: Side,
    *,
    qty: str,
    filled: str,
    price: str,
    status: OrderStatus = OrderStatus.FILLED,
    notional: str | None = None,
) -> OrderRecord:
    return OrderRecord(
        client_order_id=f"a-20260731-00000000aa-{side.value}-{symbol}-0",
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        status=status,
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal(price),
        notional=None if notional is None else Decimal(notional),
        broker_order_id="b-1",
    )


def test_usage_counts_shares_at_the_reference_price_not_the_fill() -> None:
    """A sell capped at $10,000 at a $72.42 reference filled at $72.19 (slippage): it
    used the whole cap, or the next attempt would sell the $31 sliver."""
    sold = _earlier("BND", Side.SELL, qty="138.083402", filled="138.083402", price="72.19")
    used = usage_of([sold], {"BND": Decimal("72.42")})
    assert used.ordered("BND", Side.SELL) == Decimal("138.083402") * Decimal("72.42")
    assert used.orders == 1


def test_usage_counts_a_dollar_order_at_its_dollars() -> None:
    bought = _earlier(
        "SPY", Side.BUY, qty="13.48", filled="13.37971635", price="747.40", notional="10000"
    )
    used = usage_of([bought], {"SPY": Decimal("741.70")})
    assert used.ordered("SPY", Side.BUY) == Decimal(10_000)
    assert used.turnover == Decimal(10_000)


def test_usage_of_orders_that_ended_short_or_may_still_fill() -> None:
    prices = {"SPY": Decimal(100), "TLT": Decimal(50)}
    cancelled = _earlier(
        "SPY", Side.BUY, qty="10", filled="4", price="101", status=OrderStatus.CANCELED
    )
    working = _earlier(
        "TLT", Side.BUY, qty="10", filled="3", price="51", status=OrderStatus.PARTIALLY_FILLED
    )
    refused = _earlier(
        "TLT", Side.SELL, qty="5", filled="0", price="0", status=OrderStatus.REJECTED
    )
    used = usage_of([cancelled, working, refused], prices)
    assert used.ordered("SPY", Side.BUY) == Decimal(400)  # what filled
    assert used.ordered("TLT", Side.BUY) == Decimal(500)  # all of it may still fill
    assert used.ordered("TLT", Side.SELL) == 0
    assert used.orders == 2


def test_a_rerun_of_a_capped_plan_approves_nothing_more() -> None:
    """Through review: the first attempt's capped sell, filled with slippage, leaves
    nothing of the per-order cap for a second attempt."""
    limits = RiskLimits(max_order_notional=Decimal(10_000), max_position_weight=Decimal(1))
    snapshot = AccountSnapshot(
        cash=Decimal(50_000),
        buying_power=Decimal(50_000),
        positions=(Position(symbol="BND", qty=Decimal("61.916598")),),
    )
    prices = {"BND": Decimal("72.42")}
    sold = _earlier("BND", Side.SELL, qty="138.083402", filled="138.083402", price="72.19")
    sell = intent("BND", Side.SELL, "61.916598", "72.42")
    result = review(
        [sell], snapshot, prices, limits, TradingState.ACTIVE, used=usage_of([sold], prices)
    )
    assert result.approved == ()


ACTIVE = TradingState.ACTIVE


def test_an_order_shrunk_to_less_than_a_dollar_is_denied() -> None:
    """A cent of the cap left (an earlier attempt's dollar buy rounded down) is dust."""
    order = buy("SPY", "10")
    used = RunUsage(orders=1, turnover=D("999.99"), bought={"SPY": D("999.99")})
    result = review([order], BASE, PRICES, limits(max_order_notional=D(1000)), ACTIVE, used=used)
    denied = decision(result, order)
    assert denied.verdict is Verdict.DENIED
    assert denied.codes == (RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX,)
    assert result.approved == ()
