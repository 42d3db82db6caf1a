"""A symphony as a Strategy: read once, evaluated over the whole history it is given."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import StrategyError
from alchemiser.strategy.symphony.ast import (
    Asset,
    Cash,
    Group,
    If,
    Indicator,
    Location,
    Node,
    Symphony,
)
from alchemiser.strategy.symphony.evaluator import Evaluation, evaluate
from alchemiser.strategy.symphony.parser import parse_symphony, symbols

ALL_HISTORY = 1_000_000
"""RSI and EMA run over the full available history, so a symphony asks for all of it."""

BUILTINS = {
    "nuclear": "nuclear.clj",
    "tecl": "tecl.clj",
    "kmlm-switcher": "kmlm_switcher.clj",
}


def read_symphony_file(path: Path) -> Symphony:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StrategyError(f"cannot read {path}: {error}") from error
    return parse_symphony(text, str(path))


def builtin_text(name: str) -> tuple[str, str]:
    """The text of a built-in strategy and the source name its locations use."""
    if name not in BUILTINS:
        raise StrategyError(f"no built-in strategy {name!r} (have {', '.join(sorted(BUILTINS))})")
    package = resources.files("alchemiser.strategy.builtin")
    return package.joinpath(BUILTINS[name]).read_text("utf-8"), f"builtin:{BUILTINS[name]}"


def builtin_symphony(name: str) -> Symphony:
    """One of the strategies shipped with the package (``BUILTINS``)."""
    return parse_symphony(*builtin_text(name))


def ticker_locations(symphony: Symphony) -> list[tuple[str, Location]]:
    """Every ticker the symphony names (assets and indicators), where it names it."""
    found: list[tuple[str, Location]] = []
    stack: list[Node] = [symphony.body]
    while stack:
        node = stack.pop()
        if isinstance(node, Asset):
            found.append((node.ticker, node.location))
        elif isinstance(node, If):
            for operand in (node.condition.left, node.condition.right):
                if isinstance(operand, Indicator) and operand.ticker is not None:
                    found.append((operand.ticker, operand.location))
            stack.extend((node.otherwise, node.then))
        elif isinstance(node, Group):
            stack.append(node.child)
        elif not isinstance(node, Cash):
            stack.extend(reversed(node.children))
    return found


class SymphonyStrategy:
    def __init__(self, name: str, symphony: Symphony) -> None:
        self._name = name
        self.symphony = symphony
        self._symbols = symbols(symphony)

    @property
    def name(self) -> str:
        return self._name

    def symbols(self) -> frozenset[str]:
        return self._symbols

    def lookback(self) -> int:
        return ALL_HISTORY

    def evaluate_all(self, history: PriceHistory) -> Evaluation:
        """Every date of ``history`` at once (a backtest reads all rows)."""
        return evaluate(self.symphony, history)

    def evaluate(self, history: PriceHistory, as_of: date) -> dict[str, float]:
        return self.evaluate_all(history).weights_at(as_of)
