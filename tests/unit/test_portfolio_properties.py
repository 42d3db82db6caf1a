"""Property tests of the pure core: ``diff`` followed by risk ``review``.

Accounts, targets, prices, policies and limits are generated; every property is an
invariant the plan and the risk filter must keep whatever the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from alchemiser.domain.account import AccountSnapshot, Position, market_value
from alchemiser.domain.decisions import HoldReason, RiskCode, TradingState, Verdict
from alchemiser.domain.orders import IntentKind, OrderIntent, Side
from alchemiser.domain.values import to_cents, to_decimal_weight
from alchemiser.portfolio.diff import DiffPolicy, DiffResult, diff, fit_buys_to_cash
from alchemiser.portfolio.risk import RiskLimits, RiskReview, RunUsage, review

pytestmark = pytest.mark.slow

D = Decimal
ZERO = D(0)

SYMBOLS = (
    "SPY",
    "TLT",
    "QQQ",
    "GLD",
    "IEF",
    "BIL",
    "XLK",
    "BRK.B",
    "VTI",
    "AGG",
    "TQQQ",
    "SOXL",
    "UVXY",
    "SHY",
)

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)

quantities = st.one_of(
    st.integers(min_value=1, max_value=2000).map(D),
    st.decimals(min_value=D("0.000001"), max_value=D(500), places=6),
    st.decimals(min_value=D("0.0000001"), max_value=D(20), places=7),
    st.sampled_from([D("7.2273576"), D("0.3"), ZERO]),
)
prices = st.decimals(min_value=D("0.01"), max_value=D(2000), places=4)
cash_amounts = st.one_of(
    st.decimals(min_value=ZERO, max_value=D(250_000), places=2),
    st.decimals(min_value=ZERO, max_value=D(500), places=2),
    st.decimals(min_value=D(-2000), max_value=ZERO, places=2),
)
symbol_sets = st.frozensets(st.sampled_from(SYMBOLS), max_size=5)
ANY_STATE = st.sampled_from(TradingState)
MOSTLY_ACTIVE = st.sampled_from(
    [TradingState.ACTIVE, TradingState.ACTIVE, TradingState.ACTIVE, TradingState.REDUCING]
)


@dataclass(frozen=True)
class Scenario:
    snapshot: AccountSnapshot
    prices: dict[str, Decimal]
    targets: dict[str, float]
    policy: DiffPolicy
    fractionable: frozenset[str] | None
    limits: RiskLimits
    state: TradingState
    run_id: str

    @property
    def equity(self) -> Decimal:
        return self.snapshot.cash + market_value(self.snapshot, self.prices)

    def plan(self) -> DiffResult:
        return diff(
            self.targets, self.snapshot, self.prices, self.policy, self.run_id, self.fractionable
        )

    def check(self, intents: Iterable[OrderIntent]) -> RiskReview:
        return review(tuple(intents), self.snapshot, self.prices, self.limits, self.state)


@st.composite
def target_weights(draw: st.DrawFn, symbols: list[str]) -> dict[str, float]:
    raw = draw(st.lists(st.floats(0, 1), min_size=len(symbols), max_size=len(symbols)))
    total = draw(st.one_of(st.just(1.0), st.floats(0, 1)))
    raw_sum = sum(raw)
    if raw_sum == 0:
        return dict.fromkeys(symbols, 0.0)
    return {s: w / raw_sum * total for s, w in zip(symbols, raw, strict=True)}


@st.composite
def anchored_targets(
    draw: st.DrawFn,
    snapshot: AccountSnapshot,
    price_map: dict[str, Decimal],
    equity: Decimal,
    targeted: list[str],
) -> dict[str, float]:
    """Targets a little below some current weights (often inside the drift band, so those
    positions are held), the rest spread over other symbols: buys then outrun the cash."""
    targets: dict[str, float] = {}
    for position in snapshot.positions:
        if draw(st.integers(0, 3)):
            current = float(position.qty * price_map[position.symbol] / equity)
            targets[position.symbol] = current * (1 - draw(st.floats(0, 0.2)))
    others = [s for s in targeted if s not in targets]
    rest = draw(target_weights(others))
    targets.update((s, w * max(0.0, 1 - sum(targets.values()))) for s, w in rest.items())
    total = sum(targets.values())
    if total > 1:
        targets = {s: w / total * 0.999999 for s, w in targets.items()}
    return targets


@st.composite
def policies(draw: st.DrawFn) -> DiffPolicy:
    return DiffPolicy(
        drift_abs=draw(st.decimals(min_value=ZERO, max_value=D("0.1"), places=3)),
        drift_rel=draw(st.decimals(min_value=ZERO, max_value=D(1), places=2)),
        min_trade_notional=draw(st.decimals(min_value=ZERO, max_value=D(200), places=2)),
        cash_buffer=draw(st.decimals(min_value=ZERO, max_value=D("0.2"), places=3)),
        fractional=draw(st.booleans()),
        whole_share_symbols=draw(symbol_sets),
        qty_step=draw(st.sampled_from([D("0.000001"), D("0.0001"), D("0.01"), D(1)])),
    )


@st.composite
def risk_limits(draw: st.DrawFn, equity: Decimal) -> RiskLimits:
    """Limits scaled to the account so that each of them binds now and then, and loose
    often enough that plenty of orders get through."""
    order_fraction = draw(st.decimals(min_value=D("0.001"), max_value=D("1.5"), places=3))
    dollar_fraction = draw(
        st.none() | st.decimals(min_value=D("0.001"), max_value=D("1.5"), places=3)
    )
    return RiskLimits(
        max_order_fraction=order_fraction,
        max_order_notional=None
        if dollar_fraction is None
        else max(D("0.01"), to_cents(equity * dollar_fraction)),
        max_position_weight=draw(
            st.one_of(st.just(D(1)), st.decimals(min_value=D("0.01"), max_value=D("0.5"), places=2))
        ),
        max_gross_exposure=draw(
            st.one_of(st.just(D(1)), st.decimals(min_value=D("0.1"), max_value=D(4), places=2))
        ),
        max_turnover=draw(
            st.one_of(st.just(D(2)), st.decimals(min_value=D("0.01"), max_value=D(3), places=2))
        ),
        max_orders=draw(st.one_of(st.just(50), st.integers(min_value=0, max_value=15))),
        allow_symbols=draw(
            st.one_of(st.none(), st.none(), st.frozensets(st.sampled_from(SYMBOLS), min_size=1))
        ),
        deny_symbols=draw(
            st.one_of(st.just(frozenset()), st.frozensets(st.sampled_from(SYMBOLS), max_size=3))
        ),
    )


@st.composite
def scenarios(draw: st.DrawFn, states: st.SearchStrategy[TradingState] = ANY_STATE) -> Scenario:
    held = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=12))
    positions = tuple(Position(symbol=s, qty=draw(quantities)) for s in held)
    targeted = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=8))
    priced = sorted(set(held) | set(targeted))
    price_map = {s: draw(prices) for s in priced}
    cash = draw(cash_amounts)
    snapshot = AccountSnapshot(cash=cash, buying_power=max(cash, ZERO), positions=positions)
    equity = cash + market_value(snapshot, price_map)
    assume(equity > ZERO)
    if draw(st.booleans()):
        targets = draw(target_weights(targeted))
    else:
        fresh = [s for s in targeted if s not in held]
        targets = draw(anchored_targets(snapshot, price_map, equity, fresh))
    return Scenario(
        snapshot=snapshot,
        prices=price_map,
        targets=targets,
        policy=draw(policies()),
        fractionable=draw(st.none() | st.frozensets(st.sampled_from(SYMBOLS))),
        limits=draw(risk_limits(equity)),
        state=draw(states),
        run_id=draw(st.sampled_from(["run-1", "2024-06-03T19:45Z", "r"])),
    )


@st.composite
def run_usages(draw: st.DrawFn, scenario: Scenario) -> RunUsage:
    """What earlier attempts may have used: often nothing, often some of each limit,
    now and then more than the limit (a limit lowered between attempts)."""
    limits = scenario.limits
    order_cap = order_ceiling(limits, scenario.equity)
    turnover_cap = limits.max_turnover * scenario.equity

    def dollars(cap: Decimal) -> st.SearchStrategy[Decimal]:
        return st.one_of(
            st.just(ZERO),
            st.decimals(min_value=ZERO, max_value=to_cents(cap * D("1.2")), places=2),
            st.just(to_cents(cap)),
        )

    def per_symbol() -> st.SearchStrategy[dict[str, Decimal]]:
        return st.dictionaries(st.sampled_from(SYMBOLS), dollars(order_cap), max_size=4)

    return RunUsage(
        orders=draw(st.integers(min_value=0, max_value=limits.max_orders + 2)),
        turnover=draw(dollars(turnover_cap)),
        bought=draw(per_symbol()),
        sold=draw(per_symbol()),
    )


def usage_after(used: RunUsage, approved: Iterable[OrderIntent]) -> RunUsage:
    """``used`` plus ``approved``, as if every approved order had been placed in full."""
    orders, turnover = used.orders, used.turnover
    bought, sold = dict(used.bought), dict(used.sold)
    for intent in approved:
        side = bought if intent.side is Side.BUY else sold
        side[intent.symbol] = side.get(intent.symbol, ZERO) + intent.notional
        orders += 1
        turnover += intent.notional
    return RunUsage(orders=orders, turnover=turnover, bought=bought, sold=sold)


def notional(intents: Iterable[OrderIntent], side: Side | None = None) -> Decimal:
    return sum((i.notional for i in intents if side is None or i.side is side), ZERO)


def apply(
    snapshot: AccountSnapshot, intents: Iterable[OrderIntent]
) -> tuple[Decimal, dict[str, Decimal]]:
    """Cash and quantities after every intent fills at its reference price."""
    cash = snapshot.cash
    held = {p.symbol: p.qty for p in snapshot.positions}
    for intent in intents:
        sign = 1 if intent.side is Side.BUY else -1
        cash -= sign * intent.notional
        held[intent.symbol] = held.get(intent.symbol, ZERO) + sign * intent.qty
    return cash, held


# --- checks shared by the property tests ----------------------------------------------


def check_diff_buys_fit_cash(scenario: Scenario, plan: DiffResult) -> None:
    """sum(buys) <= cash + sum(sells) - cash_buffer x equity, exactly (no buys if negative)."""
    available = (
        scenario.snapshot.cash
        + notional(plan.sells)
        - scenario.policy.cash_buffer * scenario.equity
    )
    assert plan.equity == scenario.equity
    assert notional(plan.buys) <= max(available, ZERO)


def check_sells_within_holdings(scenario: Scenario, intents: Iterable[OrderIntent]) -> None:
    for intent in intents:
        if intent.side is Side.SELL:
            assert ZERO < intent.qty <= scenario.snapshot.qty(intent.symbol)
    _, held = apply(scenario.snapshot, intents)
    assert all(qty >= ZERO for qty in held.values())


def check_diff_plan_shape(scenario: Scenario, plan: DiffResult) -> None:
    policy = scenario.policy
    assert plan == scenario.plan()  # deterministic
    sides = [i.side for i in plan.intents]
    assert sides == sorted(sides, key=lambda s: s is Side.BUY)  # sells, then buys
    for side_intents in (plan.sells, plan.buys):
        symbols = [i.symbol for i in side_intents]
        assert symbols == sorted(symbols)
    ids = [i.client_order_id for i in plan.intents]
    assert len(set(ids)) == len(ids)

    # every held or targeted symbol gets at most one intent or hold; each held symbol and
    # each symbol whose weight survives rounding to 1e-10 gets exactly one
    seen = [i.symbol for i in plan.intents] + [h.symbol for h in plan.holds]
    assert len(set(seen)) == len(seen)
    must_appear = set(scenario.snapshot.quantities()) | {
        s for s, w in scenario.targets.items() if to_decimal_weight(w) > ZERO
    }
    may_appear = must_appear | {s for s, w in scenario.targets.items() if w > 0}
    assert must_appear <= set(seen) <= may_appear

    buffer = policy.cash_buffer
    weights = [(i.symbol, i.current_weight, i.target_weight) for i in plan.intents] + [
        (h.symbol, h.current_weight, h.target_weight) for h in plan.holds
    ]
    for symbol, current_weight, target_weight in weights:
        wanted = D(str(scenario.targets.get(symbol, 0.0))) * (1 - buffer)
        assert abs(target_weight - wanted) <= D("1e-9")
        held_value = scenario.snapshot.qty(symbol) * scenario.prices[symbol]
        assert current_weight == held_value / plan.equity

    for intent in plan.intents:
        step = policy.step_for(intent.symbol, scenario.fractionable)
        assert intent.client_order_id == f"{scenario.run_id}-{intent.side.value}-{intent.symbol}-0"
        assert intent.qty_step == step
        assert intent.ref_price == scenario.prices[intent.symbol]
        if intent.kind is IntentKind.EXIT:
            assert intent.qty == scenario.snapshot.qty(intent.symbol)
            assert to_decimal_weight(scenario.targets.get(intent.symbol, 0.0)) == ZERO
        else:
            assert (intent.qty / step) % 1 == 0
            assert intent.notional >= policy.min_trade_notional
            band = min(policy.drift_abs, policy.drift_rel * intent.target_weight)
            assert abs(intent.target_weight - intent.current_weight) > band
    for hold in plan.holds:
        if hold.reason is HoldReason.WITHIN_BAND:
            band = min(policy.drift_abs, policy.drift_rel * hold.target_weight)
            assert abs(hold.target_weight - hold.current_weight) <= band


def order_ceiling(limits: RiskLimits, equity: Decimal) -> Decimal:
    """The per-order ceiling in dollars: the fraction of equity, or the dollar cap when
    that is tighter."""
    by_fraction = limits.max_order_fraction * equity
    if limits.max_order_notional is None:
        return by_fraction
    return min(by_fraction, limits.max_order_notional)


def check_within_limits(scenario: Scenario, approved: tuple[OrderIntent, ...]) -> None:
    limits = scenario.limits
    equity = scenario.equity
    assert len(approved) <= limits.max_orders
    assert notional(approved) <= limits.max_turnover * equity
    for intent in approved:
        assert intent.notional <= order_ceiling(limits, equity)
        assert intent.symbol not in limits.deny_symbols
        if limits.allow_symbols is not None:
            assert intent.symbol in limits.allow_symbols

    cash, held = apply(scenario.snapshot, approved)
    values = {s: q * scenario.prices[s] for s, q in held.items()}
    assert cash + sum(values.values(), ZERO) == equity  # trading at ref prices keeps equity
    bought = {i.symbol for i in approved if i.side is Side.BUY}
    for symbol in bought:
        assert values[symbol] <= limits.max_position_weight * equity
    if bought:
        assert sum(values.values(), ZERO) <= limits.max_gross_exposure * equity


def check_run_within_limits(scenario: Scenario, used: RunUsage, result: RiskReview) -> None:
    """Summed over earlier attempts and this review, no run-wide limit is exceeded; a
    limit earlier attempts already used up lets nothing more through."""
    limits = scenario.limits
    approved = result.approved
    if used.orders >= limits.max_orders:
        assert approved == ()
    else:
        assert used.orders + len(approved) <= limits.max_orders
    turnover_cap = limits.max_turnover * scenario.equity
    if used.turnover >= turnover_cap:
        assert approved == ()
    else:
        assert used.turnover + notional(approved) <= turnover_cap
    order_cap = order_ceiling(limits, scenario.equity)
    for side in Side:
        for symbol in {i.symbol for i in approved if i.side is side}:
            earlier = used.ordered(symbol, side)
            assert earlier < order_cap
            now = notional(i for i in approved if i.side is side and i.symbol == symbol)
            assert earlier + now <= order_cap


def check_buys_within_buying_power(scenario: Scenario, approved: tuple[OrderIntent, ...]) -> None:
    buys = notional(approved, Side.BUY)
    if buys > ZERO:
        assert buys <= scenario.snapshot.cash + notional(approved, Side.SELL)


def check_never_creates_or_enlarges(plan: DiffResult, result: RiskReview) -> None:
    by_id = {i.client_order_id: i for i in plan.intents}
    assert len(result.decisions) == len(plan.intents)
    assert {d.client_order_id for d in result.decisions} == set(by_id)
    approved_ids = [a.client_order_id for a in result.approved]
    assert len(set(approved_ids)) == len(approved_ids)
    for approved in result.approved:
        original = by_id[approved.client_order_id]
        assert approved.symbol == original.symbol
        assert approved.side is original.side
        assert approved.ref_price == original.ref_price
        assert approved.qty_step == original.qty_step
        assert approved.kind is original.kind
        assert ZERO < approved.qty <= original.qty
        if approved.qty != original.qty:  # shrunk: to a whole number of steps
            assert (approved.qty / approved.qty_step) % 1 == 0
    approved_qty = {a.client_order_id: a.qty for a in result.approved}
    for found in result.decisions:
        original = by_id[found.client_order_id]
        assert found.requested_qty == original.qty
        assert found.approved_qty == approved_qty.get(found.client_order_id, ZERO)
        assert (found.verdict is Verdict.DENIED) == (found.approved_qty == ZERO)
        assert (found.verdict is Verdict.APPROVED) == (found.approved_qty == original.qty)
        assert (found.verdict is Verdict.APPROVED) == (found.codes == ())
        assert found.reason
        event(f"{found.side} {found.verdict}")
        for code in found.codes:
            event(code.value)


def check_moves_toward_target(
    scenario: Scenario, equity: Decimal, intents: tuple[OrderIntent, ...]
) -> None:
    """|w_after - t| <= |w_before - t| for every traded symbol, t = intent.target_weight."""
    _, held = apply(scenario.snapshot, intents)
    for intent in intents:
        price = scenario.prices[intent.symbol]
        before = scenario.snapshot.qty(intent.symbol) * price / equity
        after = held[intent.symbol] * price / equity
        target = intent.target_weight
        assert abs(after - target) <= abs(before - target)


# --- the properties -------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenarios())
def test_diff_plans_within_cash_and_holdings(scenario: Scenario) -> None:
    plan = scenario.plan()

    check_diff_buys_fit_cash(scenario, plan)
    check_sells_within_holdings(scenario, plan.intents)
    check_diff_plan_shape(scenario, plan)


@PROPERTY_SETTINGS
@given(scenarios(MOSTLY_ACTIVE))
def test_approved_orders_never_breach_a_limit(scenario: Scenario) -> None:
    plan = scenario.plan()
    result = scenario.check(plan.intents)

    check_within_limits(scenario, result.approved)
    check_sells_within_holdings(scenario, result.approved)
    check_buys_within_buying_power(scenario, result.approved)
    check_never_creates_or_enlarges(plan, result)


@PROPERTY_SETTINGS
@given(scenarios(MOSTLY_ACTIVE))
def test_approved_orders_move_weights_toward_target(scenario: Scenario) -> None:
    plan = scenario.plan()
    approved = scenario.check(plan.intents).approved

    check_moves_toward_target(scenario, plan.equity, plan.intents)
    check_moves_toward_target(scenario, plan.equity, approved)


@PROPERTY_SETTINGS
@given(scenarios())
def test_review_is_idempotent(scenario: Scenario) -> None:
    first = scenario.check(scenario.plan().intents)
    second = scenario.check(first.approved)

    assert second.approved == first.approved
    assert all(d.verdict is Verdict.APPROVED for d in second.decisions)


@PROPERTY_SETTINGS
@given(scenarios(MOSTLY_ACTIVE))
def test_review_puts_sells_first_whatever_the_input_order(scenario: Scenario) -> None:
    plan = scenario.plan()
    buys_first = scenario.check((*plan.buys, *plan.sells))

    assert buys_first == scenario.check(plan.intents)


@PROPERTY_SETTINGS
@given(scenarios(st.just(TradingState.HALTED)))
def test_halted_approves_nothing(scenario: Scenario) -> None:
    plan = scenario.plan()
    result = scenario.check(plan.intents)

    assert result.approved == ()
    assert len(result.decisions) == len(plan.intents)
    assert all(d.verdict is Verdict.DENIED for d in result.decisions)


@PROPERTY_SETTINGS
@given(scenarios(st.just(TradingState.REDUCING)))
def test_reducing_approves_only_sells(scenario: Scenario) -> None:
    plan = scenario.plan()
    result = scenario.check(plan.intents)

    assert all(i.side is Side.SELL for i in result.approved)
    assert all(d.verdict is Verdict.DENIED for d in result.decisions if d.side is Side.BUY)
    check_within_limits(scenario, result.approved)
    check_never_creates_or_enlarges(plan, result)


@PROPERTY_SETTINGS
@given(
    qty=st.integers(min_value=1, max_value=500),
    price=prices,
    data=st.data(),
)
def test_fit_buys_to_cash_uses_every_whole_share_that_fits(
    qty: int, price: Decimal, data: st.DataObject
) -> None:
    fits = data.draw(st.integers(min_value=0, max_value=qty - 1), label="fits")
    slack = data.draw(st.sampled_from([ZERO, D("0.0001")]), label="slack")
    buy = OrderIntent(
        client_order_id="r-buy-SPY-0",
        symbol="SPY",
        side=Side.BUY,
        qty=D(qty),
        ref_price=price,
        qty_step=D(1),
        kind=IntentKind.OPEN,
        current_weight=ZERO,
        target_weight=D("0.5"),
        reason="test",
    )

    kept, dropped = fit_buys_to_cash([buy], fits * price + slack, ZERO)

    assert sum((b.qty for b in kept), ZERO) == fits
    assert len(kept) + len(dropped) == 1


@PROPERTY_SETTINGS
@given(scenarios(MOSTLY_ACTIVE), st.data())
def test_earlier_attempts_and_this_review_stay_within_the_run_limits(
    scenario: Scenario, data: st.DataObject
) -> None:
    plan = scenario.plan()
    used = data.draw(run_usages(scenario), label="used")
    result = review(
        plan.intents, scenario.snapshot, scenario.prices, scenario.limits, scenario.state, used=used
    )

    check_run_within_limits(scenario, used, result)
    check_sells_within_holdings(scenario, result.approved)
    check_buys_within_buying_power(scenario, result.approved)
    check_never_creates_or_enlarges(plan, result)


@PROPERTY_SETTINGS
@given(scenarios(MOSTLY_ACTIVE), st.integers(min_value=2, max_value=4))
def test_reruns_of_a_run_never_trade_past_its_limits(scenario: Scenario, attempts: int) -> None:
    """Each attempt reviews the whole plan again, counting what the attempts before it
    placed: together they stay within one run's limits."""
    plan = scenario.plan()
    used = RunUsage()
    for _ in range(attempts):
        result = review(
            plan.intents,
            scenario.snapshot,
            scenario.prices,
            scenario.limits,
            scenario.state,
            used=used,
        )
        check_run_within_limits(scenario, used, result)
        used = usage_after(used, result.approved)

    limits = scenario.limits
    assert used.orders <= limits.max_orders
    assert used.turnover <= limits.max_turnover * scenario.equity
    order_cap = order_ceiling(limits, scenario.equity)
    assert all(v <= order_cap for v in (*used.bought.values(), *used.sold.values()))


@PROPERTY_SETTINGS
@given(scenarios())
def test_an_empty_usage_and_matching_live_prices_change_nothing(scenario: Scenario) -> None:
    plan = scenario.plan()
    today = scenario.check(plan.intents)
    args = (plan.intents, scenario.snapshot, scenario.prices, scenario.limits, scenario.state)

    assert review(*args, used=RunUsage()) == today
    assert review(*args, live_prices=scenario.prices, used=RunUsage()) == today


@PROPERTY_SETTINGS
@given(scenarios(MOSTLY_ACTIVE), st.data())
def test_the_collar_denies_every_order_off_its_live_price(
    scenario: Scenario, data: st.DataObject
) -> None:
    plan = scenario.plan()
    moves = st.one_of(
        st.none(),
        st.decimals(min_value=D("0.01"), max_value=D(3), places=2),
        st.sampled_from([D("0.75"), D("1.25"), D("0.5"), D(2), ZERO]),
    )
    live: dict[str, Decimal] = {}
    for symbol in sorted(scenario.prices):
        move = data.draw(moves, label=f"move {symbol}")
        if move is not None:
            live[symbol] = scenario.prices[symbol] * move
    args = (plan.intents, scenario.snapshot, scenario.prices, scenario.limits, scenario.state)
    result = review(*args, live_prices=live)

    limit = scenario.limits.max_price_deviation
    for approved in result.approved:
        price = live[approved.symbol]
        assert price > ZERO
        assert abs(price / approved.ref_price - 1) <= limit
    for found in result.decisions:
        if RiskCode.LIVE_PRICE_MISSING in found.codes:
            assert live.get(found.symbol, ZERO) <= ZERO
        if RiskCode.PRICE_DEVIATION in found.codes:
            assert abs(live[found.symbol] / found.ref_price - 1) > limit
    check_within_limits(scenario, result.approved)
    check_never_creates_or_enlarges(plan, result)
