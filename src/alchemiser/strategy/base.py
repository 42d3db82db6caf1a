"""The strategy interface every kind of strategy implements, and the ``fixed`` kind.

A strategy is pure: price history and a date in, target weights out (symbol ->
fraction of the strategy's capital, summing to at most 1; the rest is cash).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Protocol

import numpy as np

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import DataError, DataErrorKind, StrategyError
from alchemiser.strategy.rebalancing import HeldTable, Mask, hold
from alchemiser.strategy.symphony.ast import RebalanceRule

ALL_HISTORY = 1_000_000
"""A lookback meaning "every session there is": RSI and EMA run over the full history."""


class WeightTable(Protocol):
    """A strategy evaluated over a date range: its weights on any session of it."""

    def weights_at(self, as_of: date) -> dict[str, float]:
        """What the strategy holds after ``as_of``'s decision: its targets on a session it
        rebalances, its drifted weights on one it does not (strategy/rebalancing.py)."""
        ...

    def targets_at(self, as_of: date) -> dict[str, float]:
        """The raw targets it decided at the close of ``as_of``."""
        ...

    def rebalance_note(self, as_of: date) -> str | None:
        """What its rebalance rule did on ``as_of``; None without a holdings model (daily,
        no corridor: holdings are the targets)."""
        ...


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

    def targets_at(self, as_of: date) -> dict[str, float]:
        return dict(self._weights)

    def rebalance_note(self, as_of: date) -> str | None:
        return None


class _FixedTargets:
    """A fixed portfolio's targets, decidable on the sessions where each of its symbols
    has a close (the drift needs them)."""

    def __init__(
        self, name: str, weights: dict[str, float], history: PriceHistory, valid: Mask
    ) -> None:
        self._name = name
        self._weights = weights
        self._history = history
        self._valid = valid

    def weights_at(self, as_of: date) -> dict[str, float]:
        index = self._history.row_index(as_of)
        if index < 0 or self._history.session(index) != as_of:
            raise DataError(
                f"no session {as_of.isoformat()} in the price data", kind=DataErrorKind.MISSING
            )
        if not self._valid[index]:
            missing = sorted(
                s for s in self._weights if not np.isfinite(self._history.column(s)[index])
            )
            raise StrategyError(
                f"{self._name}: no decision on {as_of.isoformat()}: no close for "
                + ", ".join(missing)
            )
        return dict(self._weights)


class FixedStrategy:
    """A constant target portfolio, e.g. 60/40 SPY/TLT, optionally with a rebalance rule
    (monthly, a corridor) under which its holdings drift between rebalances."""

    def __init__(
        self,
        name: str,
        weights: Mapping[str, float],
        rule: RebalanceRule | None = None,
        anchor: date | None = None,
    ) -> None:
        self._name = name
        self._weights = dict(weights)
        self.rule = rule or RebalanceRule()
        self.anchor = anchor

    @property
    def name(self) -> str:
        return self._name

    def symbols(self) -> frozenset[str]:
        return frozenset(self._weights)

    def lookback(self) -> int:
        return 1 if self.rule.every_session else ALL_HISTORY

    def _targets(self) -> dict[str, float]:
        return {symbol: weight for symbol, weight in self._weights.items() if weight > 0}

    def evaluate(self, history: PriceHistory, as_of: date) -> dict[str, float]:
        if self.rule.every_session:
            return self._targets()
        return self.evaluate_all(history).weights_at(as_of)

    def evaluate_all(self, history: PriceHistory) -> WeightTable:
        targets = self._targets()
        if self.rule.every_session:
            return _Constant(targets)
        missing = sorted(set(targets) - set(history.symbols))
        if missing:
            raise StrategyError(f"{self._name}: no price history for {', '.join(missing)}")
        length = len(history.dates)
        valid = np.ones(length, dtype=bool)
        for symbol in targets:
            valid &= np.isfinite(history.column(symbol))
        series = {symbol: np.full(length, weight) for symbol, weight in targets.items()}
        holdings = hold(series, valid, history, self.rule, self.anchor)
        table = _FixedTargets(self._name, targets, history, valid)
        return HeldTable(self._name, table, history, holdings)
