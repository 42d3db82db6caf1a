"""Combining strategies by allocation, with attribution."""

from __future__ import annotations

import pytest

from alchemiser.errors import StrategyError
from alchemiser.strategy.allocation import StrategyWeights, combine


def test_combine_weights_and_attribution() -> None:
    combined = combine(
        [
            StrategyWeights("balanced", 0.7, {"SPY": 0.6, "TLT": 0.4}),
            StrategyWeights("growth", 0.3, {"QQQ": 0.5, "SPY": 0.3, "GLD": 0.2}),
        ]
    )
    assert combined.weights == pytest.approx({"GLD": 0.06, "QQQ": 0.15, "SPY": 0.51, "TLT": 0.28})
    assert combined.attribution["SPY"] == pytest.approx({"balanced": 0.42, "growth": 0.09})
    assert list(combined.weights) == sorted(combined.weights)


def test_unallocated_capital_stays_cash() -> None:
    combined = combine([StrategyWeights("half", 0.5, {"SPY": 0.5})])
    assert combined.weights == {"SPY": 0.25}


@pytest.mark.parametrize(
    "strategies",
    [
        [StrategyWeights("a", 0.6, {"SPY": 1.0}), StrategyWeights("b", 0.6, {"TLT": 1.0})],
        [StrategyWeights("a", 1.0, {"SPY": 0.8, "TLT": 0.3})],
        [StrategyWeights("a", 1.0, {"SPY": -0.1})],
        [StrategyWeights("a", 1.0, {"SPY": float("nan")})],
    ],
)
def test_invalid_weights_are_strategy_errors(strategies: list[StrategyWeights]) -> None:
    with pytest.raises(StrategyError):
        combine(strategies)
