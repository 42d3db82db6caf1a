"""The diff and the risk review decide exactly as they always have.

Each case runs ``diff`` and then ``review`` on a generated book and hashes their full
outputs: every intent, hold and decision, every field (decimals as written, so a
changed exponent counts), every reason code and reason text. The digests were taken
from the code before its fast paths; any change to a plan, a verdict or a reason text
changes one. The books: the benchmark's rebuild and drift books at 500 symbols, and
books with unmanaged positions kept out of the plan, whole-share and fractional
symbols, odd share steps, sells before buys, buying-power shortfalls, price-collar
denials, symbol lists, trading states, order caps and earlier attempts' usage.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from alchemiser.domain.account import AccountSnapshot, Position, UnmanagedPosition
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.orders import IntentKind, OrderIntent, Side, client_order_id
from alchemiser.portfolio.diff import DiffPolicy, diff
from alchemiser.portfolio.risk import RiskLimits, RunUsage, review
from alchemiser.portfolio.unmanaged import partition_unmanaged
from tests.bench_scripts import bench_script

ROOT = Path(__file__).resolve().parents[2]
D = Decimal
BENCH_LIMITS = RiskLimits(max_orders=10_000, max_position_weight=D(1))


def _text(value: Any) -> str:
    """A canonical text of a result: every field of every model, decimals as written."""
    if isinstance(value, BaseModel):
        fields = ",".join(
            f"{name}={_text(getattr(value, name))}" for name in sorted(type(value).model_fields)
        )
        return f"{type(value).__name__}({fields})"
    if isinstance(value, tuple | list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, frozenset | set):
        return "{" + ",".join(sorted(_text(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_text(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, Decimal):
        return f"D{value}"
    return repr(value)


def _run(
    targets: Mapping[str, float],
    snapshot: AccountSnapshot,
    prices: Mapping[str, Decimal],
    policy: DiffPolicy,
    limits: RiskLimits,
    state: TradingState = TradingState.ACTIVE,
    *,
    review_snapshot: AccountSnapshot | None = None,
    live_prices: Mapping[str, Decimal] | None = None,
    used: RunUsage | None = None,
    fractionable: frozenset[str] | None = None,
    extra: tuple[OrderIntent, ...] = (),
) -> str:
    plan = diff(targets, snapshot, prices, policy, "acct-20240105-0123456789", fractionable)
    verdicts = review(
        plan.intents + extra,
        review_snapshot or snapshot,
        prices,
        limits,
        state,
        live_prices=live_prices,
        used=used,
    )
    text = _text(plan) + "|" + _text(verdicts) + "|" + _text(verdicts.denied)
    text += "|" + _text(plan.sells) + _text(plan.buys)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _book(seed: int, symbols: int, cash: int = 100_000) -> tuple[Any, AccountSnapshot, Any]:
    """A mixed book: some held and untargeted (sold), some targeted and not held."""
    rng = random.Random(seed)
    names = [f"S{i:03d}" for i in range(symbols)]
    prices = {n: D(f"{rng.uniform(0.5, 900):.4f}") for n in names}
    held = rng.sample(names, k=symbols * 2 // 3)
    positions = tuple(
        Position(
            symbol=n,
            qty=D(f"{rng.uniform(0.01, 400):.6f}")
            if rng.random() < 0.7
            else D(rng.randint(1, 300)),
        )
        for n in sorted(held)
    )
    targeted = rng.sample(names, k=symbols * 2 // 3)
    raw = {n: rng.random() ** 3 for n in targeted}
    total = sum(raw.values())
    targets = {n: w / total * 0.97 for n, w in raw.items()}
    for n in rng.sample(targeted, k=3):
        targets[n] = 0.0
    snapshot = AccountSnapshot(cash=D(cash), buying_power=D(cash), positions=positions)
    return targets, snapshot, prices


def _bench_rebuild() -> str:
    targets, snapshot, prices = bench_script("bench_diff_risk").rebuild(500)
    return _run(targets, snapshot, prices, DiffPolicy(), BENCH_LIMITS)


def _bench_drift() -> str:
    targets, snapshot, prices = bench_script("bench_diff_risk").drift(500)
    return _run(targets, snapshot, prices, DiffPolicy(), BENCH_LIMITS)


def _default_limits() -> str:
    """The default limits: at most 50 orders, so most of a big book is denied."""
    targets, snapshot, prices = bench_script("bench_diff_risk").rebuild(300, seed=3)
    return _run(targets, snapshot, prices, DiffPolicy(), RiskLimits())


def _tight_limits() -> str:
    """Order, position, gross and turnover caps that shrink and deny."""
    targets, snapshot, prices = _book(5, 120)
    limits = RiskLimits(
        max_order_fraction=D("0.03"),
        max_position_weight=D("0.02"),
        max_gross_exposure=D("0.9"),
        max_turnover=D("0.6"),
        max_orders=10_000,
    )
    return _run(targets, snapshot, prices, DiffPolicy(), limits)


def _dollar_cap() -> str:
    targets, snapshot, prices = _book(6, 80)
    limits = RiskLimits(max_order_notional=D("2500"), max_orders=10_000)
    return _run(targets, snapshot, prices, DiffPolicy(cash_buffer=D("0.05")), limits)


def _whole_shares() -> str:
    targets, snapshot, prices = _book(7, 90, cash=20_000)
    return _run(targets, snapshot, prices, DiffPolicy(fractional=False), BENCH_LIMITS)


def _mixed_shares() -> str:
    """Whole-share symbols by policy and by the broker's fractionable list, a coarser
    fractional step and a large minimum trade."""
    targets, snapshot, prices = _book(8, 90, cash=30_000)
    policy = DiffPolicy(
        whole_share_symbols=frozenset({"S001", "S002", "S010", "S050"}),
        qty_step=D("0.01"),
        min_trade_notional=D("150"),
        drift_abs=D("0.002"),
        drift_rel=D("0.05"),
    )
    fractionable = frozenset(f"S{i:03d}" for i in range(0, 90, 3))
    return _run(targets, snapshot, prices, policy, BENCH_LIMITS, fractionable=fractionable)


def _odd_step() -> str:
    """A share step that is not a power of ten."""
    targets, snapshot, prices = _book(9, 60)
    return _run(targets, snapshot, prices, DiffPolicy(qty_step=D("0.25")), BENCH_LIMITS)


def _owing(
    snapshot: AccountSnapshot, prices: Mapping[str, Decimal], fraction: str
) -> AccountSnapshot:
    """The snapshot with cash owed: ``fraction`` of its positions' value."""
    value = sum((p.qty * prices[p.symbol] for p in snapshot.positions), D(0))
    return snapshot.model_copy(update={"cash": -(value * D(fraction)).quantize(D("0.01"))})


def _cash_short() -> str:
    """Buys scaled to the cash the plan has, and a review against less buying power."""
    targets, snapshot, prices = _book(10, 100)
    owing = _owing(snapshot, prices, "0.1")
    poorer = _owing(snapshot, prices, "0.3")
    return _run(targets, owing, prices, DiffPolicy(), BENCH_LIMITS, review_snapshot=poorer)


def _scaled_to_holds() -> str:
    """Buys scaled so far that many fall below the minimum and become holds."""
    targets, snapshot, prices = _book(11, 100)
    policy = DiffPolicy(min_trade_notional=D("400"))
    return _run(targets, _owing(snapshot, prices, "0.6"), prices, policy, BENCH_LIMITS)


def _cash_limited(fractional: bool) -> Callable[[], str]:
    """Small sells held below the minimum, so buys outgrow the cash: one is scaled, one
    is dropped (a cash-limited hold)."""

    def case() -> str:
        prices = {f"H{i:02d}": D("50") for i in range(30)} | {"B1": D("37.13"), "B2": D("12.9")}
        positions = tuple(Position(symbol=f"H{i:02d}", qty=D(20)) for i in range(30))
        snapshot = AccountSnapshot(cash=D(3_000), buying_power=D(3_000), positions=positions)
        targets = {f"H{i:02d}": 0.0275 for i in range(30)} | {"B1": 0.15, "B2": 0.02}
        policy = DiffPolicy(drift_abs=D(0), min_trade_notional=D(500), fractional=fractional)
        return _run(targets, snapshot, prices, policy, BENCH_LIMITS)

    return case


def _position_and_gross() -> str:
    """Position-weight and gross-exposure caps that shrink buys."""
    targets, snapshot, prices = _book(17, 120)
    limits = RiskLimits(
        max_position_weight=D("0.012"), max_gross_exposure=D("0.93"), max_orders=10_000
    )
    return _run(targets, snapshot, prices, DiffPolicy(), limits)


def _collar() -> str:
    """Live prices: some close, some too far, some missing, zero or not finite."""
    targets, snapshot, prices = _book(12, 100)
    rng = random.Random(12)
    live: dict[str, Decimal] = {}
    for symbol, price in prices.items():
        roll = rng.random()
        if roll < 0.05:
            continue
        if roll < 0.07:
            live[symbol] = D("NaN") if roll < 0.06 else D(0)
        elif roll < 0.25:
            live[symbol] = (price * D(rng.choice(["0.5", "1.4", "0.74", "1.26"]))).quantize(
                D("0.0001")
            )
        else:
            live[symbol] = (price * D(f"{rng.uniform(0.8, 1.2):.4f}")).quantize(D("0.0001"))
    limits = RiskLimits(max_orders=10_000, max_price_deviation=D("0.2"))
    return _run(targets, snapshot, prices, DiffPolicy(), limits, live_prices=live)


def _lists_and_states(state: TradingState) -> Callable[[], str]:
    def case() -> str:
        targets, snapshot, prices = _book(13, 70)
        limits = RiskLimits(
            max_orders=25,
            deny_symbols=frozenset({"S003", "S004", "S020"}),
            allow_symbols=frozenset(f"S{i:03d}" for i in range(0, 70) if i % 7),
        )
        return _run(targets, snapshot, prices, DiffPolicy(), limits, state)

    return case


def _earlier_attempts() -> str:
    """An earlier attempt's usage, repeated symbols on one side and invalid orders."""
    targets, snapshot, prices = _book(14, 60)
    used = RunUsage(
        orders=4,
        turnover=D("12345.67"),
        bought={"S001": D("800"), "S005": D("4000.5")},
        sold={"S002": D("10")},
    )
    held = snapshot.quantities()
    some = sorted(held)[:3]
    run_id = "acct-20240105-0123456789"
    extra = tuple(
        OrderIntent(
            client_order_id=client_order_id(run_id, s, side, 1),
            symbol=s,
            side=side,
            qty=qty,
            ref_price=prices[s],
            qty_step=D("0.000001"),
            kind=IntentKind.DECREASE if side is Side.SELL else IntentKind.INCREASE,
            current_weight=D("0.01"),
            target_weight=D("0.02"),
            reason="extra",
        )
        for s, side, qty in (
            (some[0], Side.SELL, held[some[0]]),
            (some[1], Side.BUY, D("3.5")),
            (some[2], Side.SELL, D(0)),
            ("S001", Side.BUY, D("2")),
        )
    )
    limits = RiskLimits(max_order_fraction=D("0.04"), max_orders=40, max_turnover=D("1.5"))
    return _run(targets, snapshot, prices, DiffPolicy(), limits, used=used, extra=extra)


def _unmanaged_kept() -> str:
    """Positions no strategy holds kept out of the plan, beside the broker's own."""
    targets, snapshot, prices = _book(15, 80)
    snapshot = snapshot.model_copy(
        update={
            "unmanaged": (UnmanagedPosition(symbol="BTCUSD", qty=D("0.5"), asset_class="crypto"),)
        }
    )
    policy = DiffPolicy(unmanaged_positions="keep")
    managed, _ = partition_unmanaged(snapshot, [s for s, w in targets.items() if w > 0], policy)
    return _run(targets, managed, prices, policy, BENCH_LIMITS)


def _unpriced_review() -> str:
    """Risk cannot value the account: every order is denied."""
    targets, snapshot, prices = _book(16, 40)
    plan = diff(targets, snapshot, prices, DiffPolicy(), "acct-20240105-0123456789")
    held = (*snapshot.positions, Position(symbol="ZZZ", qty=D(3)))
    verdicts = review(
        plan.intents,
        snapshot.model_copy(update={"positions": held}),
        prices,
        BENCH_LIMITS,
        TradingState.ACTIVE,
    )
    return hashlib.sha256(_text(verdicts).encode()).hexdigest()[:16]


CASES: dict[str, Callable[[], str]] = {
    "bench_rebuild": _bench_rebuild,
    "bench_drift": _bench_drift,
    "default_limits": _default_limits,
    "tight_limits": _tight_limits,
    "dollar_cap": _dollar_cap,
    "whole_shares": _whole_shares,
    "mixed_shares": _mixed_shares,
    "odd_step": _odd_step,
    "cash_short": _cash_short,
    "scaled_to_holds": _scaled_to_holds,
    "position_and_gross": _position_and_gross,
    "cash_limited": _cash_limited(fractional=True),
    "cash_limited_whole": _cash_limited(fractional=False),
    "collar": _collar,
    "lists_active": _lists_and_states(TradingState.ACTIVE),
    "lists_reducing": _lists_and_states(TradingState.REDUCING),
    "lists_halted": _lists_and_states(TradingState.HALTED),
    "earlier_attempts": _earlier_attempts,
    "unmanaged_kept": _unmanaged_kept,
    "unpriced_review": _unpriced_review,
}

DIGESTS = {
    "bench_rebuild": "5e24c3eaf79ef5e9",
    "bench_drift": "4631dfb9288f24ef",
    "default_limits": "26108e89b94ca9c9",
    "tight_limits": "64d14c120c3193bc",
    "dollar_cap": "4df38ad7725222c3",
    "whole_shares": "cdb61bce10dc78cb",
    "mixed_shares": "e77a191045c2d441",
    "odd_step": "69717bf824a15b28",
    "cash_short": "077bfda9a2a1c256",
    "scaled_to_holds": "1aa57964dbaa2b3e",
    "position_and_gross": "c9b63d9a4dc08af5",
    "cash_limited": "7adb9297c8965108",
    "cash_limited_whole": "7e37438c735e986a",
    "collar": "b1b2cc1d42e0ab60",
    "lists_active": "e230552bcf8b6f61",
    "lists_reducing": "76a6b9f2ef0539f4",
    "lists_halted": "3394419a6f9c9c02",
    "earlier_attempts": "75f8d83216c51c4b",
    "unmanaged_kept": "95122ab618f52fa1",
    "unpriced_review": "202136c3e03d23c8",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_diff_and_review_decide_as_they_always_have(name: str) -> None:
    assert CASES[name]() == DIGESTS[name]
