"""Combining strategies by allocation, with attribution."""

from __future__ import annotations

import random

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


@pytest.mark.parametrize("allocation", [1.0, 0.7, 0.333333333333, 1e-9])
def test_one_strategy_combines_as_the_general_case_does(allocation: float) -> None:
    rng = random.Random(7)
    raw = [rng.random() ** 3 for _ in range(60)] + [1e-13, 0.0]
    total = sum(raw)
    weights = {f"S{i:02d}": w / total for i, w in enumerate(raw)}
    alone = combine([StrategyWeights("one", allocation, weights)])
    # A second strategy with nothing allocated takes the general path, adding nothing.
    general = combine([StrategyWeights("one", allocation, weights), StrategyWeights("z", 0.0, {})])
    assert alone.weights == general.weights
    assert list(alone.weights) == list(general.weights)
    assert [repr(w) for w in alone.weights.values()] == [repr(w) for w in general.weights.values()]
    assert alone.attribution == general.attribution
    assert list(alone.attribution) == list(general.attribution)
