"""Combine several strategies' weights into one target, remembering who wanted what."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alchemiser.domain.targets import WEIGHT_TOLERANCE, validate_targets
from alchemiser.errors import StrategyError


@dataclass(frozen=True)
class StrategyWeights:
    """One strategy's evaluated weights and its share of the account."""

    name: str
    allocation: float
    weights: Mapping[str, float]
    rebalance: str | None = None
    """What the strategy's rebalance rule did this session (None: daily, no corridor)."""


@dataclass(frozen=True)
class CombinedTargets:
    weights: dict[str, float]
    attribution: dict[str, dict[str, float]]
    """symbol -> strategy -> that strategy's contribution to the symbol's weight."""


def combine(strategies: Sequence[StrategyWeights]) -> CombinedTargets:
    """Account weight of a symbol = sum over strategies of allocation x strategy weight."""
    total_allocation = sum(s.allocation for s in strategies)
    if total_allocation > 1 + WEIGHT_TOLERANCE:
        raise StrategyError(
            f"strategy allocations sum to {total_allocation:.6f}: must be at most 1"
        )
    attribution: dict[str, dict[str, float]] = {}
    for strategy in strategies:
        try:
            validate_targets(strategy.weights)
        except StrategyError as error:
            raise StrategyError(f"strategy {strategy.name!r}: {error}") from error
        if len(strategies) == 1:
            return _alone(strategy)
        for symbol, weight in strategy.weights.items():
            contribution = strategy.allocation * weight
            if contribution > 0:
                attribution.setdefault(symbol, {})[strategy.name] = contribution
    # Rounded to 12 places: sums like 0.7 x 0.4 print as 0.28, not 0.27999999999999997,
    # and 1e-12 of an account is far below one share of anything.
    attribution = {
        symbol: {name: round(part, 12) for name, part in parts.items()}
        for symbol, parts in attribution.items()
    }
    weights = {
        symbol: round(sum(parts.values()), 12) for symbol, parts in sorted(attribution.items())
    }
    validate_targets(weights)
    return CombinedTargets(weights=weights, attribution=dict(sorted(attribution.items())))


def _alone(strategy: StrategyWeights) -> CombinedTargets:
    """``combine`` of one (validated) strategy: each weight its one part, rounded once.
    Rounding a weight (at most 1) to 12 places again changes nothing, and the sum of one
    part is the part, so this is what the general case computes."""
    name, allocation = strategy.name, strategy.allocation
    weights: dict[str, float] = {}
    for symbol, weight in sorted(strategy.weights.items()):
        contribution = allocation * weight
        if contribution > 0:
            weights[symbol] = round(contribution, 12)
    validate_targets(weights)
    return CombinedTargets(
        weights=weights, attribution={symbol: {name: part} for symbol, part in weights.items()}
    )
