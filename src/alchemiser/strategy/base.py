"""The strategy interface every kind of strategy implements, and the ``fixed`` kind.

A strategy is pure: price history and a date in, target weights out (symbol ->
fraction of the strategy's capital, summing to at most 1; the rest is cash).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Protocol

from alchemiser.domain.prices import PriceHistory

ALL_HISTORY = 1_000_000
"""A lookback meaning "every session there is": RSI and EMA run over the full history."""


class WeightTable(Protocol):
    """A strategy evaluated over a date range: its weights on any session of it."""

    def weights_at(self, as_of: date) -> dict[str, float]: ...


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def symbols(self) -> frozenset[str]:
        """Every symbol whose history the strategy may read or hold."""
        ...

    def lookback(self) -> int:
        """How many sessions of history, up to ``as_of``, evaluation needs."""
        ...

    def evaluate(self, history: PriceHistory, as_of: date) -> dict[str, float]:
        """Target weights as of the close of ``as_of``."""
        ...

    def evaluate_all(self, history: PriceHistory) -> WeightTable:
        """Every session of ``history`` at once (what a backtest reads)."""
        ...


class _Constant:
    def __init__(self, weights: Mapping[str, float]) -> None:
        self._weights = dict(weights)

    def weights_at(self, as_of: date) -> dict[str, float]:
        return dict(self._weights)


class FixedStrategy:
    """A constant target portfolio, e.g. 60/40 SPY/TLT."""

    def __init__(self, name: str, weights: Mapping[str, float]) -> None:
        self._name = name
        self._weights = dict(weights)

    @property
    def name(self) -> str:
        return self._name

    def symbols(self) -> frozenset[str]:
        return frozenset(self._weights)

    def lookback(self) -> int:
        return 1

    def evaluate(self, history: PriceHistory, as_of: date) -> dict[str, float]:
        return {symbol: weight for symbol, weight in self._weights.items() if weight > 0}

    def evaluate_all(self, history: PriceHistory) -> WeightTable:
        return _Constant(self.evaluate(history, date.min))
