"""The symphony tree written back out: as ``defsymphony`` text, or as Composer's JSON score.

Both read back (``parse_symphony``, ``read_score``) to a tree with the same weights on
every date. Trees nest thousands of levels deep, so both writers walk with an explicit
stack. Pure: no I/O.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from alchemiser.errors import StrategyError
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
    Operand,
    RebalanceFrequency,
    Symphony,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.strategy.symphony.score import SCORE_COMPARATORS, SCORE_FUNCTIONS, SCORE_SELECTIONS

_MAX_INDENT = 40
"""Indentation stops growing at this depth: a thousand-deep tree stays linear in size."""
_MIRRORED = {
    Comparator.GT: Comparator.LT,
    Comparator.LT: Comparator.GT,
    Comparator.GE: Comparator.LE,
    Comparator.LE: Comparator.GE,
    Comparator.EQ: Comparator.EQ,
}
_ID_NAMESPACE = uuid.UUID("6f1c1a52-3a52-4b8e-9a57-2f6f0c3d5e11")


# ---- text ----


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _indicator_text(spec: Indicator) -> str:
    ticker = f" {_string(spec.ticker)}" if spec.ticker is not None else ""
    if spec.params:
        options = " ".join(f":{name} {value}" for name, value in spec.params)
        return f"({spec.fn.value}{ticker} {{{options}}})"
    if spec.fn is IndicatorFn.CURRENT_PRICE:
        return f"({spec.fn.value}{ticker})"
    return f"({spec.fn.value}{ticker} {{:window {spec.window}}})"


def _operand_text(operand: Operand) -> str:
    if isinstance(operand, Number):
        return _number(operand.value)
    return _indicator_text(operand)


def _condition_text(condition: Condition) -> str:
    left, right = _operand_text(condition.left), _operand_text(condition.right)
    return f"({condition.op.value} {left} {right})"


def to_text(symphony: Symphony) -> str:
    """``symphony`` as ``(defsymphony ...)`` text that parses back to the same tree."""
    rule = symphony.rebalance
    options = [f":rebalance-frequency :{rule.frequency.value}"]
    if rule.threshold is not None:
        options.append(f":rebalance-threshold {rule.threshold!r}")
    description = symphony.options.get("description")
    if isinstance(description, str) and description:
        options.append(f":description {_string(description)}")
    parts: list[str] = [f"(defsymphony {_string(symphony.name)} {{{' '.join(options)}}}"]
    work: list[tuple[Node, int] | str] = [")\n", (symphony.body, 1)]
    while work:
        item = work.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        node, depth = item
        pad = "\n" + "  " * min(depth, _MAX_INDENT)
        pending: list[tuple[Node, int] | str] = [pad]
        inner = depth + 1
        if isinstance(node, Asset):
            described = f" {_string(node.description)}" if node.description is not None else ""
            pending.append(f"(asset {_string(node.ticker)}{described})")
        elif isinstance(node, Cash):
            pending.append("[]")
        elif isinstance(node, WeightSpecified):
            pending.append("(weight-specified")
            for weight, child in zip(node.weights, node.children, strict=True):
                pending += [" " + repr(weight), (child, inner)]
            pending.append(")")
        else:
            if isinstance(node, WeightEqual):
                head = "(weight-equal ["
            elif isinstance(node, WeightInverseVolatility):
                head = f"(weight-inverse-volatility {node.window} ["
            elif isinstance(node, Group):
                head = f"(group {_string(node.label)} ["
            elif isinstance(node, If):
                head = f"(if {_condition_text(node.condition)} ["
            else:
                count = node.count
                head = f"(filter {_indicator_text(node.score)} ({node.selection.value} {count}) ["
            pending.append(head)
            if isinstance(node, If):
                pending += [(node.then, inner), "] [", (node.otherwise, inner), "])"]
            else:
                for child in (node.child,) if isinstance(node, Group) else node.children:
                    pending.append((child, inner))
                pending.append("])")
        work.extend(reversed(pending))
    return "".join(parts)


# ---- JSON score ----


def _fn_fields(spec: Indicator, side: str) -> dict[str, object]:
    fields: dict[str, object] = {f"{side}-fn": SCORE_FUNCTIONS[spec.fn]}
    if spec.ticker is not None:
        fields[f"{side}-val"] = spec.ticker.replace(".", "/")
    if spec.params:
        fields[f"{side}-fn-params"] = dict(spec.params)
    elif spec.fn is not IndicatorFn.CURRENT_PRICE:
        fields[f"{side}-window-days"] = spec.window
    return fields


def _condition_fields(condition: Condition) -> dict[str, object]:
    op, left, right = condition.op, condition.left, condition.right
    if isinstance(left, Number):
        if isinstance(right, Number):
            raise StrategyError(
                "a condition comparing two numbers has no JSON score form (its left side "
                "must be an indicator)",
                location=str(condition.location),
            )
        op, left, right = _MIRRORED[op], right, left
    fields: dict[str, object] = {"comparator": SCORE_COMPARATORS[op], **_fn_fields(left, "lhs")}
    if isinstance(right, Number):
        fields |= {"rhs-fixed-value?": True, "rhs-val": _json_number(right.value)}
    else:
        fields |= {"rhs-fixed-value?": False, **_fn_fields(right, "rhs")}
    return fields


def _json_number(value: float) -> int | float:
    return int(value) if value == int(value) and abs(value) < 1e15 else value


def _weight(value: float) -> dict[str, object]:
    """``{"num": percent, "den": 100}`` when that reads back exactly, else ``value/1``."""
    percent = _json_number(value * 100)
    if percent / 100 == value:
        return {"num": percent, "den": 100}
    return {"num": value, "den": 1}


def to_score(symphony: Symphony) -> dict[str, object]:
    """``symphony`` as Composer's JSON score (a ``dict`` for ``jsondata.encode``).

    Node ids are derived from the symphony's name and the node's position, so the same
    tree always gets the same score. A rebalance corridor with a frequency other than
    none has no score form (Composer's corridor implies ``"rebalance": "none"``)."""
    rule = symphony.rebalance
    counter = 0

    def step(kind: str, /, **fields: object) -> dict[str, object]:
        nonlocal counter
        counter += 1
        key = str(uuid.uuid5(_ID_NAMESPACE, f"{symphony.name}\x00{counter}"))
        return {"id": key, "step": kind, **fields}

    description = symphony.options.get("description")
    root = step(
        "root",
        name=symphony.name,
        description=description if isinstance(description, str) else "",
        rebalance=rule.frequency.value,
    )
    if rule.threshold is not None:
        if rule.frequency is not RebalanceFrequency.NONE:
            raise StrategyError(
                f"a rebalance corridor with frequency {rule.frequency.value!r} has no JSON "
                "score form (there the corridor implies frequency none)",
                location=str(symphony.location),
            )
        root["rebalance-corridor-width"] = rule.threshold
    body = symphony.body
    weighted = isinstance(body, WeightEqual | WeightSpecified | WeightInverseVolatility)
    if not weighted:
        body = WeightEqual((body,), body.location)
    root_children: list[object] = []
    root["children"] = root_children
    work: _Work = [(body, root_children, None)]
    while work:
        node, siblings, extra = work.pop()
        out, pending = _score_step(node, step, work)
        if extra is not None:
            out |= extra
        siblings.append(out)
        if pending:
            kids: list[object] = []
            out["children"] = kids
            weights = node.weights if isinstance(node, WeightSpecified) else None
            for position in reversed(range(len(pending))):
                weight: dict[str, object] | None = None
                if weights is not None:
                    weight = {"weight": _weight(weights[position])}
                work.append((pending[position], kids, weight))
    return root


_Work = list[tuple[Node, list[object], dict[str, object] | None]]


def _score_step(
    node: Node, step: Callable[..., dict[str, object]], work: _Work
) -> tuple[dict[str, object], list[Node]]:
    """The score step of ``node`` and the children still to write into its ``children``
    (an ``if`` queues its two branches on ``work`` itself, inside its if-child steps)."""
    if isinstance(node, Asset):
        out = step("asset", ticker=node.ticker.replace(".", "/"))
        if node.description is not None:
            out["name"] = node.description
        return out, []
    if isinstance(node, Cash):
        return step("empty"), []
    if isinstance(node, WeightEqual):
        return step("wt-cash-equal"), list(node.children)
    if isinstance(node, WeightSpecified):
        return step("wt-cash-specified"), list(node.children)
    if isinstance(node, WeightInverseVolatility):
        return step("wt-inverse-vol", **{"window-days": node.window}), list(node.children)
    if isinstance(node, Group):
        return step("group", name=node.label), [node.child]
    if isinstance(node, Filter):
        fields = _fn_fields(node.score, "sort-by")
        fields |= {"select-fn": SCORE_SELECTIONS[node.selection], "select-n": node.count}
        return step("filter", **fields), list(node.children)
    then = step("if-child", **{"is-else-condition?": False}, **_condition_fields(node.condition))
    otherwise = step("if-child", **{"is-else-condition?": True})
    then_children: list[object] = []
    else_children: list[object] = []
    then["children"], otherwise["children"] = then_children, else_children
    work.append((node.otherwise, else_children, None))
    work.append((node.then, then_children, None))
    return step("if", children=[then, otherwise]), []
