"""Composer's JSON score (the API's form of a symphony) into the tree of ``ast.py``.

``read_score`` takes the decoded JSON (``jsondata.decode``) and returns the same
``Symphony`` the text parser makes for the same symphony. Every node's location is a
``ScoreLocation``: the file and the node's JSON path (``children[0].children[1]``), which
every error names. Scores nest thousands of levels deep, so the tree is built bottom-up
from an explicit work stack, as the text parser does. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from alchemiser.domain.scalars import normalise_symbol
from alchemiser.errors import StrategyError, did_you_mean
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
    RebalanceRule,
    ScoreLocation,
    Selection,
    Symphony,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.strategy.symphony.jsondata import decode
from alchemiser.strategy.symphony.names import OSCILLATORS, oscillator_history

SCORE_FUNCTIONS: dict[IndicatorFn, str] = {fn: fn.value for fn in IndicatorFn} | {
    IndicatorFn.STDEV_RETURN: "standard-deviation-return",
    IndicatorFn.STDEV_PRICE: "standard-deviation-price",
}
"""Each indicator's name in a score (Composer's long names)."""
_FUNCTIONS = {name: fn for fn, name in SCORE_FUNCTIONS.items()} | {
    fn.value: fn for fn in IndicatorFn
}
SCORE_COMPARATORS: dict[Comparator, str] = {
    Comparator.GT: "gt",
    Comparator.GE: "gte",
    Comparator.EQ: "eq",
    Comparator.LT: "lt",
    Comparator.LE: "lte",
}
_COMPARATORS = {name: op for op, name in SCORE_COMPARATORS.items()}
SCORE_SELECTIONS = {Selection.TOP: "top", Selection.BOTTOM: "bottom"}
_SELECTIONS = {name: how for how, name in SCORE_SELECTIONS.items()}
_FREQUENCIES = {frequency.value: frequency for frequency in RebalanceFrequency}
_TOLERANCE = 1e-9


def looks_like_score(text: str, source: str) -> bool:
    """A ``.json`` file, or text whose first non-space character is ``{``."""
    if source.lower().endswith(".json"):
        return True
    stripped = text.lstrip(" \t\r\n\ufeff")
    return stripped.startswith("{")


def parse_score(text: str, source: str) -> Symphony:
    """The symphony of the JSON score ``text``; StrategyError naming where it is wrong."""
    return read_score(decode(text, source), source)


def read_score(score: object, source: str) -> Symphony:
    """The symphony of a decoded JSON score (``source`` names the file in locations)."""
    root = _Field(score, ScoreLocation.of(source))
    if root.data.get("step") != "root":
        raise root.error(f'expected the root step {{"step": "root", ...}}, got {root.step()}')
    asset_class = root.data.get("asset-class")
    if isinstance(asset_class, str) and asset_class.upper() == "CRYPTO":
        raise root.error("crypto symphonies are not supported: asset-class CRYPTO", "asset-class")
    name = root.string("name", default="")
    description = root.string("description", default="")
    rule = _rebalance(root)
    options: dict[str, object] = {"rebalance-frequency": rule.frequency.value}
    if rule.threshold is not None:
        options["rebalance-threshold"] = rule.threshold
    if description:
        options["description"] = description
    body = _Builder().many(root, "children")
    return Symphony(name, options, body, root.location, rule)


class _Field:
    """A JSON object of the score with its location, and typed access to its fields."""

    __slots__ = ("data", "location")

    def __init__(self, data: object, location: ScoreLocation) -> None:
        if not isinstance(data, dict):
            raise StrategyError(
                f"expected a JSON object (a step), got {_kind(data)}", location=str(location)
            )
        self.data: dict[str, object] = data
        self.location = location

    def at(self, name: str) -> ScoreLocation:
        return self.location.child(f".{name}")

    def error(self, message: str, name: str | None = None) -> StrategyError:
        where = self.location if name is None else self.at(name)
        return StrategyError(message, location=str(where))

    def step(self) -> str:
        step = self.data.get("step")
        return repr(step) if isinstance(step, str) else f"no step ({_kind(step)})"

    def string(self, name: str, default: str | None = None) -> str:
        value = self.data.get(name)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {_kind(value)}", name)
        return value

    def number(self, name: str) -> float:
        value = self.data.get(name)
        number = _number(value)
        if number is None:
            raise self.error(f"expected a number, got {_kind(value)}", name)
        return number

    def count(self, name: str, value: object = None) -> int:
        """A positive whole number (a JSON number, or a string like "14")."""
        value = self.data.get(name) if value is None else value
        number = _number(value)
        if number is None or number != int(number) or number < 1:
            raise self.error(f"expected a positive whole number, got {_kind(value)}", name)
        return int(number)

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {_kind(value)}", name)
        return value

    def items(self, name: str) -> list[_Field]:
        value = self.data.get(name, [])
        if not isinstance(value, list):
            raise self.error(f"expected a list of steps, got {_kind(value)}", name)
        where = self.at(name)
        return [_Field(item, where.child(f"[{i}]")) for i, item in enumerate(value)]

    def choice(self, name: str, known: Sequence[str]) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or value not in known:
            shown = repr(value) if isinstance(value, str) else _kind(value)
            hint = did_you_mean(value, known) if isinstance(value, str) else ""
            raise self.error(
                f"unknown {name} {shown}{hint}: expected one of {', '.join(known)}", name
            )
        return value


def _kind(value: object) -> str:
    if value is None:
        return "null (or nothing)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return f"{value:g}"
    return "a list" if isinstance(value, list) else "an object"


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _rebalance(root: _Field) -> RebalanceRule:
    frequency = RebalanceFrequency.DAILY
    if root.data.get("rebalance") is not None:
        frequency = _FREQUENCIES[root.choice("rebalance", list(_FREQUENCIES))]
    width = root.data.get("rebalance-corridor-width")
    if width is None:
        return RebalanceRule(frequency)
    threshold = root.number("rebalance-corridor-width")
    if frequency is not RebalanceFrequency.NONE:
        raise root.error(
            f'a corridor applies only with rebalance "none", not {frequency.value!r}',
            "rebalance-corridor-width",
        )
    if not 0 < threshold < 1:
        raise root.error(
            f"expected a fraction of the portfolio above 0 and below 1 (0.05 = 5 points), "
            f"got {threshold:g}",
            "rebalance-corridor-width",
        )
    return RebalanceRule(frequency, threshold)


_Build = Callable[[Sequence[Node]], Node]


class _Plan(NamedTuple):
    """A node waiting for its ``count`` children."""

    build: _Build
    size: int


class _Many(NamedTuple):
    """A list of steps where one node belongs: none is cash, several share equally."""

    steps: list[_Field]
    location: ScoreLocation


class _Builder:
    def many(self, parent: _Field, name: str) -> Node:
        work: list[_Field | _Many | _Plan] = [_Many(parent.items(name), parent.at(name))]
        done: list[Node] = []
        while work:
            item = work.pop()
            if isinstance(item, _Plan):
                split = len(done) - item.size
                done[split:] = [item.build(done[split:])]
                continue
            if isinstance(item, _Many):
                if len(item.steps) == 1:
                    work.append(item.steps[0])
                elif not item.steps:
                    done.append(Cash(item.location))
                else:
                    work.append(_Plan(_equal(item.location), len(item.steps)))
                    work.extend(reversed(item.steps))
                continue
            result = _node(item)
            if isinstance(result, tuple):
                build, parts = result
                work.append(_Plan(build, len(parts)))
                work.extend(reversed(parts))
            else:
                done.append(result)
        return done[0]


def _equal(location: ScoreLocation) -> _Build:
    return lambda nodes: WeightEqual(tuple(nodes), location)


_Expanded = Node | tuple[_Build, Sequence[_Field | _Many]]


def _node(step: _Field) -> _Expanded:
    name = step.data.get("step")
    handler = _HANDLERS.get(name) if isinstance(name, str) else None
    if handler is None:
        if name in ("root", "if-child"):
            raise step.error(f"a {name} step cannot stand here", "step")
        hint = did_you_mean(name, _HANDLERS) if isinstance(name, str) else ""
        raise step.error(
            f"unknown step {step.step()}{hint}: expected one of {', '.join(_HANDLERS)}", "step"
        )
    return handler(step)


def _wt_equal(step: _Field) -> _Expanded:
    parts = step.items("children")
    if not parts:
        return Cash(step.location)
    return _equal(step.location), parts


def _wt_specified(step: _Field) -> _Expanded:
    parts = step.items("children")
    if not parts:
        return Cash(step.location)
    weights: list[float] = []
    for part in parts:
        weight = part.data.get("weight")
        if not isinstance(weight, dict):
            raise part.error(
                f'expected a weight {{"num": 60, "den": 100}}, got {_kind(weight)}', "weight"
            )
        fraction = _Field(weight, part.at("weight"))
        num, den = fraction.number("num"), fraction.number("den")
        if num < 0 or den <= 0:
            raise fraction.error(
                f"a weight is num/den, num 0 or more and den above 0: got {num:g}/{den:g}"
            )
        weights.append(num / den)
    total = math.fsum(weights)
    if abs(total - 100) <= 100 * _TOLERANCE:
        weights = [weight / 100 for weight in weights]
    elif total > 1 + _TOLERANCE:
        raise step.error(
            f"weights sum to {total:g}: expected fractions summing to at most 1, or percents "
            "summing to 100",
            "children",
        )
    fixed, where = tuple(weights), step.location
    return (lambda nodes: WeightSpecified(fixed, tuple(nodes), where)), parts


def _wt_inverse_vol(step: _Field) -> _Expanded:
    window = step.count("window-days")
    parts = step.items("children")
    if not parts:
        return Cash(step.location)
    where = step.location
    return (lambda nodes: WeightInverseVolatility(window, tuple(nodes), where)), parts


def _group(step: _Field) -> _Expanded:
    label = step.string("name", default="")
    where = step.location
    return (lambda nodes: Group(label, nodes[0], where)), [
        _Many(step.items("children"), step.at("children"))
    ]


def _if(step: _Field) -> _Expanded:
    branches = step.items("children")
    conditions = [b for b in branches if not b.flag("is-else-condition?")]
    otherwise = [b for b in branches if b.flag("is-else-condition?")]
    for branch in branches:
        if branch.data.get("step") != "if-child":
            raise branch.error(f"an if holds if-child steps, got {branch.step()}", "step")
    if len(conditions) != 1 or len(otherwise) > 1:
        raise step.error(
            'an if holds two if-child steps: one with "is-else-condition?" false (the '
            f"condition and its branch), one with it true (the else branch); got "
            f"{len(conditions)} condition(s) and {len(otherwise)} else branch(es)",
            "children",
        )
    then = conditions[0]
    condition = _condition(then)
    where = step.location
    parts = [_Many(then.items("children"), then.at("children"))]
    if not otherwise:
        return (lambda nodes: If(condition, nodes[0], Cash(where), where)), parts
    parts.append(_Many(otherwise[0].items("children"), otherwise[0].at("children")))
    return (lambda nodes: If(condition, nodes[0], nodes[1], where)), parts


def _condition(step: _Field) -> Condition:
    op = _COMPARATORS[step.choice("comparator", list(_COMPARATORS))]
    left = _indicator(step, "lhs", ticker=True)
    right: Operand
    if step.flag("rhs-fixed-value?"):
        right = Number(step.number("rhs-val"), step.at("rhs-val"))
    else:
        right = _indicator(step, "rhs", ticker=True)
    return Condition(op, left, right, step.location)


def _indicator(step: _Field, side: str, *, ticker: bool) -> Indicator:
    """``{side}-fn`` with ``{side}-val`` (the ticker, unless in a filter) and its window
    (``{side}-window-days`` or ``{side}-fn-params``); a filter's side is ``sort-by``."""
    fn = _FUNCTIONS[step.choice(f"{side}-fn", list(dict.fromkeys(SCORE_FUNCTIONS.values())))]
    symbol = _ticker(step, f"{side}-val") if ticker else None
    params: dict[str, int] = {}
    raw = step.data.get(f"{side}-fn-params")
    if raw is not None:
        options = _Field(raw, step.at(f"{side}-fn-params"))
        for name in options.data:
            params[name] = options.count(name)
    days = step.data.get(f"{side}-window-days")
    if days is not None and "window" not in params:
        params["window"] = step.count(f"{side}-window-days")
    where = step.at(f"{side}-fn")
    if fn in (IndicatorFn.PPO, IndicatorFn.PPO_SIGNAL):
        known = ["short-window", "long-window"]
        if fn is IndicatorFn.PPO_SIGNAL:
            known.append("smooth-window")
        params.pop("window", None)
        for name in params:
            if name not in known:
                raise step.error(
                    f"unknown {fn.value} option {name!r}{did_you_mean(name, known)}: expected "
                    f"{', '.join(known)}",
                    f"{side}-fn-params",
                )
        values = {name: params.get(name, OSCILLATORS[fn][name]) for name in known}
        if values["short-window"] >= values["long-window"]:
            raise step.error(
                f"{fn.value}: short-window {values['short-window']} must be below long-window "
                f"{values['long-window']}",
                f"{side}-fn-params",
            )
        ordered = tuple(sorted(values.items()))
        return Indicator(fn, symbol, oscillator_history(values), where, ordered)
    for name in params:
        if name != "window":
            raise step.error(
                f"unknown {fn.value} option {name!r}: expected window", f"{side}-fn-params"
            )
    window = params.get("window")
    if window is None and fn is not IndicatorFn.CURRENT_PRICE:
        raise step.error(
            f'{fn.value} needs a window: {side}-window-days or {side}-fn-params {{"window": n}}',
            f"{side}-fn",
        )
    return Indicator(fn, symbol, window or 1, where)


def _filter(step: _Field) -> _Expanded:
    score = _indicator(step, "sort-by", ticker=False)
    how = _SELECTIONS[step.choice("select-fn", list(_SELECTIONS))]
    count = step.count("select-n")
    parts = step.items("children")
    if not parts:
        return Cash(step.location)
    where = step.location
    return (lambda nodes: Filter(score, how, count, tuple(nodes), where)), parts


def _ticker(step: _Field, name: str) -> str:
    raw = step.string(name)
    symbol = raw
    if "::" in raw:
        kind, _, rest = raw.partition("::")
        symbol = rest.partition("//")[0]
        if kind.upper() == "CRYPTO":
            raise step.error(f"crypto symphonies are not supported: {raw!r}", name)
        if kind.upper() != "EQUITIES":
            raise step.error(
                f"unknown asset class in {raw!r}: expected EQUITIES::TICKER//USD", name
            )
    try:
        return normalise_symbol(symbol)
    except ValueError:
        raise step.error(f"invalid ticker {raw!r}: expected one like SPY or BRK/B", name) from None


def _asset(step: _Field) -> _Expanded:
    ticker = _ticker(step, "ticker")
    description = step.data.get("name")
    return Asset(ticker, description if isinstance(description, str) else None, step.location)


def _empty(step: _Field) -> _Expanded:
    return Cash(step.location)


_HANDLERS: dict[str, Callable[[_Field], _Expanded]] = {
    "wt-cash-equal": _wt_equal,
    "wt-cash-specified": _wt_specified,
    "wt-inverse-vol": _wt_inverse_vol,
    "group": _group,
    "if": _if,
    "filter": _filter,
    "asset": _asset,
    "empty": _empty,
}
