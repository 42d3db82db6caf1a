"""Target weights: symbol -> fraction of capital; what is not allocated stays cash."""

from __future__ import annotations

import math
from collections.abc import Mapping

from alchemiser.errors import StrategyError

WEIGHT_TOLERANCE = 1e-9


def validate_targets(targets: Mapping[str, float]) -> None:
    """Weights must be finite, non-negative, and sum to at most 1 (the rest is cash)."""
    total = 0.0
    for symbol, weight in targets.items():
        if not math.isfinite(weight) or weight < 0:
            raise StrategyError(
                f"target weight for {symbol} is {weight!r}: must be finite and >= 0"
            )
        total += weight
    if total > 1 + WEIGHT_TOLERANCE:
        raise StrategyError(f"target weights sum to {total:.6f}: must be at most 1")
