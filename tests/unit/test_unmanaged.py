"""Holdings the plan leaves alone: ``partition_unmanaged`` and the ``unmanaged_positions``
policy, by example and by a property of ``diff`` on the partitioned snapshot."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alchemiser.config import parse_config
from alchemiser.domain.account import AccountSnapshot, Position, UnmanagedPosition
from alchemiser.errors import ConfigError
from alchemiser.portfolio.diff import DiffPolicy, diff
from alchemiser.portfolio.unmanaged import partition_unmanaged

D = Decimal
ZERO = D(0)
KEEP = DiffPolicy(unmanaged_positions="keep", drift_abs=ZERO, drift_rel=ZERO, cash_buffer=ZERO)
SELL = DiffPolicy(drift_abs=ZERO, drift_rel=ZERO, cash_buffer=ZERO)
BTC = UnmanagedPosition(
    symbol="BTC/USD", qty=D("0.5"), asset_class="crypto", market_value=D("30000")
)
PRICES = {"SPY": D(500), "TLT": D(90), "XYZ": D(20), "ABC": D(10)}


def account(**positions: str | int) -> AccountSnapshot:
    return AccountSnapshot(
        cash=D(1000),
        buying_power=D(1000),
        positions=tuple(Position(symbol=s, qty=D(q)) for s, q in positions.items()),
        unmanaged=(BTC,),
    )


def test_by_default_a_position_no_strategy_holds_is_sold() -> None:
    assert DiffPolicy().unmanaged_positions == "sell"
    snapshot = account(SPY=2, XYZ=10)
    planned, unmanaged = partition_unmanaged(snapshot, {"SPY", "TLT"}, DiffPolicy())
    assert planned is snapshot
    assert unmanaged == (BTC,)
    result = diff({"SPY": 0.5}, planned, PRICES, SELL, "run-1")
    assert [(i.side.value, i.symbol, i.qty) for i in result.sells] == [("sell", "XYZ", D(10))]
    assert result.equity == D(1000) + 2 * D(500) + 10 * D(20)


def test_keep_moves_positions_outside_the_universe_to_unmanaged() -> None:
    snapshot = account(SPY=2, XYZ=10, ABC="1.5")
    planned, unmanaged = partition_unmanaged(snapshot, {"SPY", "TLT"}, KEEP)
    assert planned.positions == (Position(symbol="SPY", qty=D(2)),)
    assert unmanaged == (
        BTC,
        UnmanagedPosition(symbol="XYZ", qty=D(10), asset_class="us_equity"),
        UnmanagedPosition(symbol="ABC", qty=D("1.5"), asset_class="us_equity"),
    )
    assert planned.unmanaged == unmanaged
    assert (planned.cash, planned.buying_power) == (snapshot.cash, snapshot.buying_power)


def test_with_keep_the_plan_neither_orders_nor_counts_unmanaged_holdings() -> None:
    planned, _ = partition_unmanaged(account(SPY=2, XYZ=10), {"SPY", "TLT"}, KEEP)
    result = diff({"SPY": 0.5, "TLT": 0.5}, planned, PRICES, KEEP, "run-1")
    assert {i.symbol for i in result.intents} == {"TLT"}
    # Equity is what the product manages: cash and SPY, not XYZ (nor the crypto).
    assert result.equity == D(1000) + 2 * D(500)
    assert {h.symbol for h in result.holds} == {"SPY"}


def test_keep_leaves_managed_and_zero_positions_in_place() -> None:
    snapshot = account(SPY=2, XYZ=0)
    planned, unmanaged = partition_unmanaged(snapshot, {"SPY"}, KEEP)
    assert planned is snapshot
    assert unmanaged == (BTC,)


def test_the_config_key_and_its_values() -> None:
    text = '[[strategies]]\nname = "core"\nallocation = 1\nweights = { SPY = 1 }\n'
    assert parse_config(tomllib.loads(text), "t").rebalance.unmanaged_positions == "sell"
    keep = tomllib.loads(text + '[rebalance]\nunmanaged_positions = "keep"\n')
    assert parse_config(keep, "t").rebalance.unmanaged_positions == "keep"
    wrong = tomllib.loads(text + '[rebalance]\nunmanaged_positions = "ignore"\n')
    with pytest.raises(ConfigError, match="unmanaged_positions"):
        parse_config(wrong, "t")
    with pytest.raises(ValidationError):
        DiffPolicy.model_validate({"unmanaged_positions": "ignore"})


SYMBOLS = ("SPY", "TLT", "QQQ", "GLD", "XYZ", "ABC", "BRK.B")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[AccountSnapshot, frozenset[str], dict[str, float]]:
    universe = draw(st.frozensets(st.sampled_from(SYMBOLS), min_size=1))
    held = draw(st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 500)))
    snapshot = AccountSnapshot(
        cash=D(draw(st.integers(0, 100_000))),
        buying_power=D(0),
        positions=tuple(Position(symbol=s, qty=D(q)) for s, q in sorted(held.items())),
        unmanaged=draw(st.sampled_from([(), (BTC,)])),
    )
    targeted = sorted(draw(st.frozensets(st.sampled_from(sorted(universe)))))
    raw = draw(st.lists(st.floats(0.01, 1), min_size=len(targeted), max_size=len(targeted)))
    total = sum(raw) or 1.0
    targets = {s: w / total * 0.99 for s, w in zip(targeted, raw, strict=True)}
    return snapshot, universe, targets


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(scenarios(), st.sampled_from(["keep", "sell"]))
def test_with_keep_no_intent_names_a_symbol_outside_the_universe(
    scenario: tuple[AccountSnapshot, frozenset[str], dict[str, float]],
    choice: Literal["keep", "sell"],
) -> None:
    snapshot, universe, targets = scenario
    policy = DiffPolicy(unmanaged_positions=choice)
    planned, unmanaged = partition_unmanaged(snapshot, universe, policy)
    prices = {s: D(10 + i) for i, s in enumerate(SYMBOLS)}
    if planned.cash + sum((p.qty * prices[p.symbol] for p in planned.positions), ZERO) <= 0:
        return  # nothing to plan: diff refuses an account without equity
    result = diff(targets, planned, prices, policy, "run-1")
    outside = {i.symbol for i in result.intents} - universe
    held_outside = {p.symbol for p in snapshot.positions if p.qty and p.symbol not in universe}
    if choice == "keep":
        assert not outside
        assert {u.symbol for u in unmanaged} == held_outside | {
            u.symbol for u in snapshot.unmanaged
        }
    else:
        assert outside == held_outside  # each sold in full
        assert unmanaged == snapshot.unmanaged
    # Nothing is lost: every position is either planned or left alone, exactly once.
    assert len(planned.positions) + len(unmanaged) == len(snapshot.positions) + len(
        snapshot.unmanaged
    )
