"""Evaluate a symphony over a whole date range at once, vectorised along time.

Every node yields, for each date, the weights it gives each symbol (as fractions of
the node's own capital) and whether it has a decision at all that day (``valid``).
A live run reads the last row; a backtest reads every row. The tree is walked in
post-order with an explicit stack, so nesting depth never touches Python's stack.

Decisions (docs/SYMPHONY.md lists them for users):
- Not enough history, or a missing close, makes a decision impossible on that date:
  the node is *invalid* there. Validity follows the path actually taken: an ``if``
  is valid when its condition can be computed and the branch it takes is valid, so
  an untaken branch's missing data does not matter. A strategy asked for weights on
  an invalid date raises StrategyError naming the indicator and its location.
- ``filter`` excludes candidates with no score (or no decision) that day and picks
  among the rest; ties go to the candidate whose name sorts first (ticker, group
  label, or ``#i`` for other nodes by position). Scores within a relative 1e-9 of each
  other (floating-point noise) are ties. No candidate at all: invalid.
- ``=`` in a condition holds when both sides are within the same relative 1e-9 of
  each other (|a - b| <= 1e-9 * max(|a|, |b|)); a side without a value (NaN) makes
  the condition unknown, as for the other comparators, so NaN never equals anything.
- ``weight-inverse-volatility`` needs every child's volatility, and a positive one.
- A sub-portfolio's price series (for scores and volatilities) compounds its daily
  return: the weights it chose at one close times each asset's return to the next.
- Empty branches hold cash: their weight is simply not invested.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import DataError, DataErrorKind, StrategyError
from alchemiser.strategy.symphony.ast import (
    Asset,
    Cash,
    Comparator,
    Condition,
    Filter,
    Group,
    If,
    Indicator,
    IndicatorFn,
    Node,
    Number,
    Selection,
    Symphony,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
    children,
)
from alchemiser.strategy.symphony.context import (
    Context,
    Key,
    Mask,
    Params,
    Result,
    Series,
    compute,
    describe_window,
    held_asset,
    price_series,
)
from alchemiser.strategy.symphony.ranking import TIE_TOLERANCE, best

__all__ = [
    "TIE_TOLERANCE",
    "Evaluation",
    "Params",
    "Result",
    "Series",
    "candidate_name",
    "describe_window",
    "evaluate",
    "missing_input",
]


def _post_order(root: Node) -> list[tuple[Node, tuple[Node, ...]]]:
    """Children before parents, each node once (with its children), without recursion."""
    walk: list[tuple[Node, tuple[Node, ...]]] = []
    stack: list[tuple[Node, tuple[Node, ...] | None]] = [(root, None)]
    seen: set[int] = set()
    while stack:
        node, kids = stack.pop()
        if kids is None:
            if id(node) in seen:
                continue
            seen.add(id(node))
            kids = children(node)
            if kids:  # a leaf (half the nodes) goes straight into the walk
                stack.append((node, kids))
                stack.extend([(child, None) for child in reversed(kids)])
                continue
        walk.append((node, kids))
    return walk


def _combine(parts: list[tuple[float, Result]], length: int, need: bool) -> Result:
    """Weighted sum of children; valid where every child is."""
    weights: dict[str, Series] = {}
    valid = np.ones(length, dtype=bool)
    for share, result in parts:
        valid &= result.valid
        if not need:
            continue
        for symbol, series in result.weights.items():
            scaled = series * share
            if symbol in weights:
                weights[symbol] = weights[symbol] + scaled
            else:
                weights[symbol] = scaled
    return Result(weights, valid)


def _operand(ctx: Context, operand: Indicator | Number) -> Series | float:
    if isinstance(operand, Number):
        return operand.value  # a scalar broadcasts; no need for a series of it
    return ctx.indicator(operand)


def _equal(left: Series | float, right: Series | float) -> Mask:
    """Equal within the relative TIE_TOLERANCE (the filter's ties); NaN equals nothing."""
    gap: Mask = np.abs(np.subtract(left, right)) <= TIE_TOLERANCE * np.maximum(
        np.abs(left), np.abs(right)
    )
    return gap


_COMPARE: dict[Comparator, Callable[[Series | float, Series | float], Mask]] = {
    Comparator.GT: np.greater,
    Comparator.LT: np.less,
    Comparator.GE: np.greater_equal,
    Comparator.LE: np.less_equal,
    Comparator.EQ: _equal,
}


def _condition(ctx: Context, condition: Condition) -> tuple[Mask, Mask]:
    left = _operand(ctx, condition.left)
    right = _operand(ctx, condition.right)
    known = _spread(np.isfinite(left) & np.isfinite(right), ctx.length)
    with np.errstate(invalid="ignore"):
        holds = _spread(_COMPARE[condition.op](left, right), ctx.length) & known
    return holds, known


def _spread(mask: Mask | np.bool_, length: int) -> Mask:
    """``mask`` over every date: as it is when it is a series already (most conditions
    read one), else a scalar's (two numbers compared) broadcast."""
    if isinstance(mask, np.ndarray) and mask.shape == (length,):
        return mask
    spread: Mask = np.broadcast_to(mask, length)
    return spread


def _if(ctx: Context, node: If) -> Result:
    holds, known = _condition(ctx, node.condition)
    then, otherwise = ctx.results[id(node.then)], ctx.results[id(node.otherwise)]
    weights: dict[str, Series] = {}
    if id(node) in ctx.needs_weights:
        # ``then``'s symbols, then ``otherwise``'s others: an order that does not depend
        # on string hashing, so a sub-portfolio's value adds its parts the same way in
        # every run.
        for symbol in then.weights | otherwise.weights:
            chosen = then.weights.get(symbol, 0.0), otherwise.weights.get(symbol, 0.0)
            weights[symbol] = np.where(holds, *chosen)
    valid = known & np.where(holds, then.valid, otherwise.valid)
    ctx.holds[id(node)] = holds
    if ctx.trace:
        ctx.conditions[id(node)] = (holds, known)
    return Result(weights, valid)


def candidate_name(node: Node, position: int) -> str:
    if isinstance(node, Asset):
        return node.ticker
    if isinstance(node, Group):
        return node.label
    return f"#{position + 1}"


def _scores(
    ctx: Context, node: Filter | WeightInverseVolatility, order: list[int]
) -> tuple[list[str], Series]:
    """The children's score series (columns) in ``order``, with their names."""
    if isinstance(node, Filter):
        fn, window, params = node.score.fn, node.score.window, node.score.params
    else:
        fn, window, params = IndicatorFn.STDEV_RETURN, node.window, ()
    # One contiguous row per child, handed back transposed: columns are children.
    # Children are scored in their own order (the first failure is the first child's).
    stacked = np.empty((len(order), ctx.length))
    slots = {index: slot for slot, index in enumerate(order)}
    for index, child in enumerate(node.children):
        row = stacked[slots[index]]
        held = held_asset(child)
        if isinstance(child, Asset):
            score = ctx.of_close(fn, child.ticker, window, params)
        elif held is not None:
            score = ctx.of_holding(fn, held, window, params)
        else:
            score = compute(fn, price_series(ctx, ctx.results[id(child)]), window, params)
        np.copyto(row, score)
        row[~ctx.results[id(child)].valid] = np.nan
    names = [candidate_name(node.children[i], i) for i in order]
    return names, stacked.T


def _filter(ctx: Context, node: Filter) -> Result:
    names = [candidate_name(child, i) for i, child in enumerate(node.children)]
    order = sorted(range(len(names)), key=lambda i: names[i])
    ordered_names, ordered = _scores(ctx, node, order)
    # Keys and flags are built on the scores' contiguous rows (one per candidate) and
    # handed on transposed, as the scores are: no strided pass over dates x candidates.
    rows = ordered.T
    known_rows = np.isfinite(rows)
    key_rows = np.negative(rows) if node.selection is Selection.TOP else rows.copy()
    np.copyto(key_rows, np.inf, where=~known_rows)
    known = known_rows.T
    available = known_rows.sum(axis=0)
    picks = min(node.count, len(names))
    chosen = best(key_rows.T, known, picks)
    count = np.minimum(available, picks).astype(np.min_scalar_type(picks))
    share = _share(count)
    weights: dict[str, Series] = {}
    if id(node) in ctx.needs_weights:
        for slot, index in enumerate(order):
            factor = np.where(chosen[:, slot], share, 0.0)
            for symbol, series in ctx.results[id(node.children[index])].weights.items():
                part = factor if series is ctx.ones else series * factor
                _add(weights, symbol, part)
    if ctx.trace:
        ctx.rankings[id(node)] = (ordered_names, ordered, chosen)
    ctx.picks[id(node)] = (order, chosen, count)
    return Result(weights, available > 0)


def _add(weights: dict[str, Series], symbol: str, part: Series) -> None:
    """``weights[symbol] += part``, into a new array (series are shared, never updated in
    place); a first part is kept as it is (adding it to 0 would give the same values:
    weights are never -0)."""
    prior = weights.get(symbol)
    weights[symbol] = part if prior is None else prior + part


def _share(count: npt.NDArray[np.integer[Any]]) -> Series:
    """Each pick's share of a filter's capital: 1 / how many it picked (0 for none)."""
    share: Series = np.divide(1.0, count, out=np.zeros(len(count)), where=count > 0)
    return share


def _inverse_volatility(ctx: Context, node: WeightInverseVolatility) -> Result:
    names, vols = _scores(ctx, node, list(range(len(node.children))))
    usable = (
        np.all(np.isfinite(vols) & (vols > 0), axis=1) if names else np.ones(ctx.length, dtype=bool)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(usable[:, None], 1.0 / vols, 0.0)
        total = inverse.sum(axis=1)
        shares = np.divide(
            inverse, total[:, None], out=np.zeros_like(inverse), where=total[:, None] > 0
        )
    weights: dict[str, Series] = {}
    for i, child in enumerate(node.children):
        if id(node) not in ctx.needs_weights:
            break
        for symbol, series in ctx.results[id(child)].weights.items():
            _add(weights, symbol, series * shares[:, i])
    valid = usable & np.all([ctx.results[id(c)].valid for c in node.children], axis=0)
    if ctx.trace:
        ctx.volatilities[id(node)] = (names, vols, shares)
    ctx.shares[id(node)] = shares
    return Result(weights, valid)


def _evaluate_node(ctx: Context, node: Node) -> Result:
    need = id(node) in ctx.needs_weights
    if isinstance(node, Asset):
        weights = {node.ticker: ctx.ones} if need else {}
        return Result(weights, ctx.has_close(node.ticker))
    if isinstance(node, Cash):
        return Result({}, np.ones(ctx.length, dtype=bool))
    if isinstance(node, Group):
        return ctx.results[id(node.child)]
    if isinstance(node, WeightEqual):
        share = 1.0 / len(node.children) if node.children else 0.0
        return _combine([(share, ctx.results[id(c)]) for c in node.children], ctx.length, need)
    if isinstance(node, WeightSpecified):
        parts = [(w, ctx.results[id(c)]) for w, c in zip(node.weights, node.children, strict=True)]
        return _combine(parts, ctx.length, need)
    if isinstance(node, If):
        return _if(ctx, node)
    if isinstance(node, Filter):
        return _filter(ctx, node)
    return _inverse_volatility(ctx, node)


@dataclass
class Evaluation:
    """A symphony evaluated over ``history``: weights and validity for every date."""

    symphony: Symphony
    history: PriceHistory
    root: Result
    evaluated: Context

    @property
    def context(self) -> Context:
        """Every node's result and every decision's inputs (evaluated again with a trace
        when the first evaluation kept only what routes capital)."""
        if not self.evaluated.trace:
            self.evaluated = evaluate(self.symphony, self.history, trace=True).evaluated
        return self.evaluated

    def row(self, as_of: date) -> int:
        index = self.history.row_index(as_of)
        if index < 0 or self.history.session(index) != as_of:
            raise DataError(
                f"no session {as_of.isoformat()} in the price data", kind=DataErrorKind.MISSING
            )
        return index

    def weights_at(self, as_of: date) -> dict[str, float]:
        """The target weights at the close of ``as_of``; StrategyError when undecidable."""
        index = self.row(as_of)
        if not self.root.valid[index]:
            why = missing_input(self, index)
            raise StrategyError(
                f"{self.symphony.name}: no decision on {as_of.isoformat()}: {why}",
                location=str(self.symphony.location),
            )
        return {
            symbol: float(series[index])
            for symbol, series in sorted(self.root.weights.items())
            if series[index] > 0
        }


def evaluate(symphony: Symphony, history: PriceHistory, *, trace: bool = False) -> Evaluation:
    """Evaluate every node of ``symphony`` over every date of ``history``; with ``trace``,
    keep what explaining a decision reads (``Evaluation.context`` evaluates again with
    it when asked and it was not kept)."""
    closes = np.ascontiguousarray(history.closes.T)
    closes.flags.writeable = False
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.full_like(closes, np.nan)
        np.divide(closes[:, 1:], closes[:, :-1], out=returns[:, 1:])
        returns[:, 1:] -= 1.0
    columns = {s: i for i, s in enumerate(history.symbols)}
    no_return = np.isnan(returns)
    known_returns = np.where(no_return, 0.0, returns)
    ctx = Context(history, columns, closes, known_returns, no_return, trace)
    walk = _post_order(symphony.body)
    ctx.needs_weights = _scored_subtrees(walk)
    ctx.ones = np.ones(ctx.length)
    ctx.ones.flags.writeable = False
    parents = Counter(id(child) for _, kids in walk for child in kids)
    if not trace:
        ctx.uses, ctx.held_uses = _indicator_uses([node for node, _ in walk])
    for node, kids in walk:
        try:
            ctx.results[id(node)] = _evaluate_node(ctx, node)
        except StrategyError as error:
            if error.location is None:
                raise StrategyError(error.message, location=str(node.location)) from error
            raise
        # The parent has used its children's results: keep only where they decide, and
        # only for a trace. A deep tree would otherwise hold a weight series per symbol
        # per node until the end, a gigabyte for a thousand-``if`` symphony.
        for child in kids:
            if trace:
                ctx.results[id(child)] = Result({}, ctx.results[id(child)].valid)
                continue
            parents[id(child)] -= 1
            if not parents[id(child)]:
                del ctx.results[id(child)]
    root = Result(_route(ctx, symphony.body), ctx.results[id(symphony.body)].valid)
    return Evaluation(symphony, history, root, ctx)


def _indicator_uses(nodes: list[Node]) -> tuple[Counter[Key], Counter[Key]]:
    """How many times evaluating ``nodes`` reads each indicator of a close, and each
    indicator of a held asset's value."""
    uses: Counter[Key] = Counter()
    held_uses: Counter[Key] = Counter()
    for node in nodes:
        if isinstance(node, If):
            for side in (node.condition.left, node.condition.right):
                if isinstance(side, Indicator) and side.ticker is not None:
                    uses[(side.fn.value, side.window, side.ticker, side.params)] += 1
        elif isinstance(node, Filter | WeightInverseVolatility):
            if isinstance(node, Filter):
                fn, window, params = node.score.fn, node.score.window, node.score.params
            else:
                fn, window, params = IndicatorFn.STDEV_RETURN, node.window, ()
            for child in node.children:
                held = held_asset(child)
                if isinstance(child, Asset):
                    uses[(fn.value, window, child.ticker, params)] += 1
                elif held is not None:
                    held_uses[(fn.value, window, held.ticker, params)] += 1
    return uses, held_uses


def _scored_subtrees(walk: list[tuple[Node, tuple[Node, ...]]]) -> set[int]:
    """Nodes inside a non-asset candidate of a filter or inverse-volatility node: their
    value series is scored, so they need weight series of their own. One pass over the
    walk backwards: every parent of a node comes before it."""
    marked: set[int] = set()
    for node, kids in reversed(walk):
        if id(node) in marked:
            marked.update(id(child) for child in kids)
        elif isinstance(node, Filter | WeightInverseVolatility):
            marked.update(id(child) for child in kids if not isinstance(child, Asset))
    return marked


def _route(ctx: Context, root: Node) -> dict[str, Series]:
    """The account's weights: the root's capital (1 on every date) flows down the tree,
    split as each node decides, and lands on assets. This is the same weighted sum as
    combining children bottom-up, without building every node's weight series.

    Capital stays finite and never negative: it starts at 1 and is only ever split by
    finite non-negative factors (1 / children, specified weights, which the parsers
    keep at 0 or more and summing to at most 1, 1 / picks, 0 or 1, and inverse-
    volatility shares; a positive finite volatility is at least about 1e-162, the
    square root of the smallest double over a window, so its inverse, and their sum
    over any number of children, is finite)."""
    weights: dict[str, Series] = {}
    stack: list[tuple[Node, Series]] = [(root, np.ones(ctx.length))]
    while stack:
        node, capital = stack.pop()
        if not capital.any():
            continue  # a branch never taken on any date
        if isinstance(node, Asset):
            weights[node.ticker] = weights.get(node.ticker, 0.0) + capital
        elif isinstance(node, Group):
            stack.append((node.child, capital))
        elif isinstance(node, WeightEqual):
            equal = capital / len(node.children)  # shared: series are never updated in place
            stack.extend((child, equal) for child in node.children)
        elif isinstance(node, WeightSpecified):
            stack.extend(
                (child, capital * w) for w, child in zip(node.weights, node.children, strict=True)
            )
        elif isinstance(node, If):
            # A mask multiplies in: capital * 1 is capital and capital * 0 is 0, the
            # bits np.where would give, as capital is finite and never negative.
            holds = ctx.holds[id(node)]
            stack.append((node.then, capital * holds))
            stack.append((node.otherwise, capital * ~holds))
        elif isinstance(node, Filter):
            order, chosen, count = ctx.picks[id(node)]
            each = capital * _share(count)
            stack.extend((node.children[i], each * chosen[:, slot]) for slot, i in enumerate(order))
        elif isinstance(node, WeightInverseVolatility):
            shares = ctx.shares[id(node)]
            stack.extend((child, capital * shares[:, i]) for i, child in enumerate(node.children))
    return weights


def missing_input(evaluation: Evaluation, index: int) -> str:
    """Why the decision path has no value at ``index``: the first indicator, condition or
    asset on the taken path that lacks data."""
    ctx = evaluation.context
    stack: list[Node] = [evaluation.symphony.body]
    while stack:
        node = stack.pop()
        result = ctx.results[id(node)]
        if result.valid[index]:
            continue
        if isinstance(node, If):
            holds, known = ctx.conditions[id(node)]
            if not known[index]:
                operands = [
                    o
                    for o in (node.condition.left, node.condition.right)
                    if isinstance(o, Indicator)
                ]
                for operand in operands:
                    if not np.isfinite(ctx.indicator(operand)[index]):
                        return (
                            f"({operand.fn.value} {operand.ticker} "
                            f"{describe_window(operand.window, operand.params)}) at "
                            f"{operand.location} has no value "
                            "(not enough history, or a missing close)"
                        )
            stack.append(node.then if holds[index] else node.otherwise)
        elif isinstance(node, Asset):
            return f"{node.ticker} at {node.location} has no close on that date"
        elif isinstance(node, Filter | WeightInverseVolatility):
            kind = "filter" if isinstance(node, Filter) else "weight-inverse-volatility"
            return (
                f"the {kind} at {node.location} has no usable candidate score (not enough history)"
            )
        else:
            stack.extend(children(node))
    return "missing data"
