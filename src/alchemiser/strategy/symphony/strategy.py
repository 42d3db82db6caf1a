"""A symphony as a Strategy: parsed once, evaluated over the whole history it is given."""

from __future__ import annotations

from datetime import date

from alchemiser.domain.prices import PriceHistory
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.rebalancing import HeldTable, hold
from alchemiser.strategy.symphony.ast import Asset, Filter, If, Location, Symphony
from alchemiser.strategy.symphony.evaluator import Evaluation, evaluate
from alchemiser.strategy.symphony.parser import iter_nodes, node_indicators, symbols


def ticker_locations(symphony: Symphony) -> list[tuple[str, Location]]:
    """Every ticker the symphony names (assets and indicators), where it names it."""
    # One walk; assets first, then indicators, each in tree order.
    assets: list[tuple[str, Location]] = []
    read: list[tuple[str, Location]] = []
    for node in iter_nodes(symphony):
        if isinstance(node, Asset):
            assets.append((node.ticker, node.location))
        elif isinstance(node, If | Filter):
            read.extend(
                (i.ticker, i.location) for i in node_indicators(node) if i.ticker is not None
            )
    return assets + read


class SymphonyTable(HeldTable):
    """A symphony over a history: what it holds on each session (its targets on a daily
    symphony), and the ``evaluation`` behind them for explaining decisions."""

    def __init__(self, name: str, evaluation: Evaluation, anchor: date | None) -> None:
        rule = evaluation.symphony.rebalance
        holdings = None
        if not rule.every_session:
            root = evaluation.root
            holdings = hold(root.weights, root.valid, evaluation.history, rule, anchor)
        super().__init__(
            name, evaluation, evaluation.history, holdings, str(evaluation.symphony.location)
        )
        self.evaluation = evaluation


class SymphonyStrategy:
    def __init__(self, name: str, symphony: Symphony, anchor: date | None = None) -> None:
        self._name = name
        self.symphony = symphony
        self.anchor = anchor
        """Holdings start at the first decidable session on or after this date (default:
        the first decidable session of the history it is given)."""
        self._symbols = symbols(symphony)

    @property
    def name(self) -> str:
        return self._name

    def symbols(self) -> frozenset[str]:
        return self._symbols

    def lookback(self) -> int:
        return ALL_HISTORY

    def evaluate_all(self, history: PriceHistory, *, trace: bool = False) -> SymphonyTable:
        """Every date of ``history`` at once (a backtest reads all rows): what the symphony
        holds after each session's decision, its targets, and its rebalance notes; with
        ``trace``, everything explaining a decision reads is kept as it is computed."""
        evaluation = evaluate(self.symphony, history, trace=trace)
        return SymphonyTable(self._name, evaluation, self.anchor)

    def evaluate(self, history: PriceHistory, as_of: date) -> dict[str, float]:
        return self.evaluate_all(history).weights_at(as_of)
