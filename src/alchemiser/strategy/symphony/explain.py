"""The decision path of a symphony on one date, as lines a person can check.

Each ``if`` shows both sides' values and the branch taken, each ``filter`` its
candidates, scores and picks, each inverse-volatility node its volatilities and
shares; then the final weights. Only the path the strategy actually took is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alchemiser.strategy.symphony.ast import (
    Asset,
    Cash,
    Filter,
    Group,
    If,
    Indicator,
    Node,
    Number,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.strategy.symphony.evaluator import Evaluation, Params, Series, candidate_name


@dataclass(frozen=True)
class _Visit:
    node: Node
    depth: int
    share: float


def _value(evaluation: Evaluation, operand: Indicator | Number, index: int) -> str:
    if isinstance(operand, Number):
        return f"{operand.value:g}"
    value = float(evaluation.context.indicator(operand)[index])
    text = "n/a" if math.isnan(value) else f"{value:.4f}"
    return (
        f"{operand.fn.value}({operand.ticker}, {_window(operand.window, operand.params)}) = {text}"
    )


def explain(evaluation: Evaluation, index: int) -> list[str]:
    """The path taken at row ``index`` of the evaluation, one line per step."""
    ctx = evaluation.context
    lines = [f"{evaluation.symphony.name} on {evaluation.history.session(index).isoformat()}"]
    stack = [_Visit(evaluation.symphony.body, 1, 1.0)]
    while stack:
        visit = stack.pop()
        node, pad = visit.node, "  " * visit.depth
        where = f"  [{node.location}]"
        if isinstance(node, If):
            holds, known = ctx.conditions[id(node)]
            condition = node.condition
            left = _value(evaluation, condition.left, index)
            right = _value(evaluation, condition.right, index)
            verdict = "unknown" if not known[index] else ("true" if holds[index] else "false")
            taken = "then" if holds[index] else "else"
            lines.append(
                f"{pad}if {left} {condition.op.value} {right}: {verdict} -> {taken}{where}"
            )
            branch = node.then if holds[index] else node.otherwise
            stack.append(_Visit(branch, visit.depth + 1, visit.share))
        elif isinstance(node, Filter):
            names, scores, chosen = ctx.rankings[id(node)]
            ranked = ", ".join(
                f"{name} {_fmt(scores[index, slot])}{' *' if chosen[index, slot] else ''}"
                for slot, name in enumerate(names)
            )
            score = f"{node.score.fn.value}({_window(node.score.window, node.score.params)})"
            lines.append(
                f"{pad}filter {score} {node.selection.value} {node.count}: {ranked}{where}"
            )
            picked = [slot for slot in range(len(names)) if chosen[index, slot]]
            by_name = _named(node)
            for slot in reversed(picked):
                stack.append(
                    _Visit(by_name[names[slot]], visit.depth + 1, visit.share / len(picked))
                )
        elif isinstance(node, WeightInverseVolatility):
            names, vols, shares = ctx.volatilities[id(node)]
            parts = ", ".join(
                f"{name} vol {_fmt(vols[index, i])} -> {shares[index, i]:.2%}"
                for i, name in enumerate(names)
            )
            lines.append(f"{pad}inverse volatility ({node.window}): {parts}{where}")
            for i in reversed(range(len(node.children))):
                stack.append(
                    _Visit(node.children[i], visit.depth + 1, visit.share * float(shares[index, i]))
                )
        elif isinstance(node, Group):
            lines.append(f"{pad}group {node.label!r}{where}")
            stack.append(_Visit(node.child, visit.depth + 1, visit.share))
        elif isinstance(node, WeightEqual | WeightSpecified):
            weights = (
                [1 / len(node.children)] * len(node.children)
                if isinstance(node, WeightEqual)
                else list(node.weights)
            )
            for weight, child in reversed(list(zip(weights, node.children, strict=True))):
                stack.append(_Visit(child, visit.depth, visit.share * weight))
        elif isinstance(node, Asset):
            lines.append(f"{pad}{node.ticker} {visit.share:.2%}")
        elif isinstance(node, Cash):
            lines.append(f"{pad}cash {visit.share:.2%}")
    final = {
        symbol: float(series[index])
        for symbol, series in sorted(evaluation.root.weights.items())
        if series[index] > 0
    }
    lines.append("weights: " + (", ".join(f"{s} {w:.2%}" for s, w in final.items()) or "all cash"))
    return lines


def _named(node: Filter) -> dict[str, Node]:
    return {candidate_name(child, i): child for i, child in enumerate(node.children)}


def _fmt(value: Series | float) -> str:
    number = float(value)
    return "n/a" if not np.isfinite(number) else f"{number:.4f}"


def _window(window: int, params: Params) -> str:
    """``14``, or an indicator's options: ``long-window 26, short-window 12``."""
    return ", ".join(f"{name} {value}" for name, value in params) if params else str(window)
