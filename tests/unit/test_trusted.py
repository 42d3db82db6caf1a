"""``Frozen.trusted`` (the hot-path constructor) must build exactly what validation builds."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from pydantic import ValidationError

from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.decisions import Hold, RiskDecision, TradingState
from alchemiser.domain.orders import OrderIntent
from alchemiser.domain.values import to_decimal_weight, to_decimal_weights
from alchemiser.portfolio.diff import DiffPolicy, diff
from alchemiser.portfolio.risk import RiskLimits, review


@pytest.fixture(scope="module")
def built() -> tuple[list[OrderIntent], list[Hold], list[RiskDecision]]:
    snapshot = AccountSnapshot(
        cash=Decimal(5000),
        buying_power=Decimal(5000),
        positions=(
            Position(symbol="SPY", qty=Decimal("7.5")),
            Position(symbol="GLD", qty=Decimal(2)),
        ),
    )
    prices = {
        "SPY": Decimal("500.25"),
        "TLT": Decimal("90.1"),
        "GLD": Decimal("200"),
        "IEF": Decimal("95"),
    }
    plan = diff({"SPY": 0.3, "TLT": 0.4, "IEF": 0.0001}, snapshot, prices, DiffPolicy(), "run")
    verdicts = review(
        plan.intents,
        snapshot,
        prices,
        RiskLimits(max_order_notional=Decimal(1000)),
        TradingState.ACTIVE,
    )
    assert plan.intents
    assert plan.holds
    assert any(d.codes for d in verdicts.decisions)
    return list(plan.intents) + list(verdicts.approved), list(plan.holds), list(verdicts.decisions)


def test_trusted_instances_equal_validated_ones(built) -> None:
    for group in built:
        for item in group:
            validated = type(item).model_validate(item.model_dump())
            assert validated == item
            assert validated.model_dump_json() == item.model_dump_json()
            assert validated.model_fields_set == item.model_fields_set


def test_trusted_instances_are_immutable(built) -> None:
    intent = built[0][0]
    with pytest.raises(ValidationError):
        intent.qty = Decimal(1)  # type: ignore[misc]


def test_weights_convert_like_an_exact_half_even_rounding() -> None:
    rng = random.Random(3)
    weights = {f"S{i}": rng.random() ** rng.choice([1, 3, 9]) for i in range(2000)}
    weights |= {"TIE": 0.00000000005, "HALF": 0.5, "ONE": 1.0, "TINY": 1e-11}
    converted = to_decimal_weights(weights)
    for symbol, weight in weights.items():
        exact = Decimal(weight).quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN)
        assert converted[symbol] == exact == to_decimal_weight(weight)
        assert converted[symbol].as_tuple().exponent == exact.as_tuple().exponent
    with pytest.raises(ValueError, match="not finite"):
        to_decimal_weights({"X": float("nan")})
