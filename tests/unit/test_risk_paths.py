"""Risk reviews the usual order (no screen, nothing refused, every ceiling fits) in
fewer steps than the general rules: both must give the same verdicts.

A deny list naming a symbol no book holds refuses nothing, but sends every order
through the general rules; the two reviews of each book must be equal, decision for
decision, on books where orders are approved, shrunk and denied.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.decisions import TradingState, Verdict
from alchemiser.portfolio.diff import DiffPolicy, diff
from alchemiser.portfolio.risk import RiskLimits, RiskReview, review

D = Decimal
LIMITS = (
    RiskLimits(),
    RiskLimits(max_orders=10_000),
    RiskLimits(max_orders=10_000, max_order_fraction=D("0.02"), max_position_weight=D("0.03")),
    RiskLimits(max_orders=7, max_turnover=D("0.4"), max_gross_exposure=D("0.7")),
    RiskLimits(max_orders=10_000, max_order_notional=D(900)),
    RiskLimits(max_orders=10_000, max_gross_exposure=D("0.6")),
    RiskLimits(max_orders=10_000, max_gross_exposure=D(2)),
)


def book(seed: int) -> tuple[dict[str, float], AccountSnapshot, dict[str, Decimal]]:
    rng = random.Random(seed)
    names = [f"S{i:03d}" for i in range(rng.randint(1, 120))]
    prices = {n: D(f"{rng.uniform(1, 400):.4f}") for n in names}
    held = rng.sample(names, k=rng.randint(0, len(names)))
    positions = tuple(Position(symbol=n, qty=D(f"{rng.uniform(0.1, 80):.6f}")) for n in held)
    raw = {n: rng.random() for n in rng.sample(names, k=rng.randint(0, len(names)))}
    total = sum(raw.values()) or 1.0
    targets = {n: w / total * rng.choice((0.5, 0.9, 0.99)) for n, w in raw.items()}
    cash = D(rng.choice((500, 20_000, 250_000)))
    return targets, AccountSnapshot(cash=cash, buying_power=cash, positions=positions), prices


def decisions(reviewed: RiskReview) -> list[tuple[object, ...]]:
    return [tuple(d.model_dump().values()) for d in reviewed.decisions] + [
        tuple(i.model_dump().values()) for i in reviewed.approved
    ]


@pytest.mark.parametrize("seed", range(40))
def test_the_usual_orders_get_the_verdicts_of_the_general_rules(seed: int) -> None:
    targets, snapshot, prices = book(seed)
    plan = diff(targets, snapshot, prices, DiffPolicy(), "acct-20260105-0123456789")
    # Every third intent tripled: sells beyond the position, buys beyond cash and caps.
    intents = [i.with_qty(i.qty * 3) if n % 3 == 0 else i for n, i in enumerate(plan.intents)]
    for limits in LIMITS:
        usual = review(intents, snapshot, prices, limits, TradingState.ACTIVE)
        general = review(
            intents,
            snapshot,
            prices,
            limits.model_copy(update={"deny_symbols": frozenset({"ZZZZ"})}),
            TradingState.ACTIVE,
        )
        assert decisions(usual) == decisions(general)


@pytest.mark.parametrize("cents", [-1, 0, 1])
def test_a_buy_worth_exactly_the_cash_left_is_approved_as_it_is(cents: int) -> None:
    snapshot = AccountSnapshot(cash=D(1000), buying_power=D(1000))
    prices = {"SPY": D(250)}
    plan = diff({"SPY": 0.5}, snapshot, prices, DiffPolicy(), "acct-20260105-0123456789")
    (buy,) = plan.intents
    cash = buy.qty * buy.ref_price + D(cents) / 100
    snapshot = AccountSnapshot(cash=cash, buying_power=cash)
    reviewed = review(plan.intents, snapshot, prices, RiskLimits(), TradingState.ACTIVE)
    general = review(
        plan.intents,
        snapshot,
        prices,
        RiskLimits(deny_symbols=frozenset({"ZZZZ"})),
        TradingState.ACTIVE,
    )
    assert decisions(reviewed) == decisions(general)
    assert reviewed.decisions[0].verdict is (Verdict.SHRUNK if cents < 0 else Verdict.APPROVED)


def test_the_books_exercise_every_verdict() -> None:
    seen: set[Verdict] = set()
    for seed in range(40):
        targets, snapshot, prices = book(seed)
        plan = diff(targets, snapshot, prices, DiffPolicy(), "acct-20260105-0123456789")
        for limits in LIMITS:
            reviewed = review(plan.intents, snapshot, prices, limits, TradingState.ACTIVE)
            seen.update(d.verdict for d in reviewed.decisions)
    assert seen == set(Verdict)
