"""Parsing symphony text into the tree of ``ast.py``, and the helpers that walk that tree.

``parse_symphony`` returns the tree or raises the first problem; ``check_symphony``
returns every problem, for ``alchemiser validate``. A reader error stops everything (the
brackets no longer say what belongs to what); a semantic error spoils only its own node,
so checking reports it and carries on with the node's children and the rest of the file.

Symphonies nest over a thousand ``if``s deep, so nothing here recurses on depth: nodes
are built bottom-up from an explicit work stack, and the walkers use a stack too.
Conditions and indicators are shallow by grammar and are parsed directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, ParamSpec, TypeVar

from alchemiser.errors import StrategyError, did_you_mean
from alchemiser.strategy.symphony.ast import (
    Asset,
    Cash,
    Condition,
    Filter,
    Group,
    If,
    Indicator,
    IndicatorFn,
    Location,
    Node,
    Number,
    Operand,
    RebalanceRule,
    Selection,
    Symphony,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
    children,
)
from alchemiser.strategy.symphony.names import (
    COMPARATORS,
    INDICATORS,
    OSCILLATORS,
    oscillator_history,
)
from alchemiser.strategy.symphony.options import (
    check_asset_class,
    form_error,
    options_map,
    oscillator_options,
    positive_int,
    rebalance_rule,
    string_of,
    ticker_of,
    window_option,
)
from alchemiser.strategy.symphony.reader import (
    Form,
    KeywordForm,
    ListForm,
    MapForm,
    NilForm,
    NumberForm,
    StringForm,
    SymbolForm,
    VectorForm,
    clip,
    describe,
    paused_gc,
    read,
)

_SELECTIONS = {selection.value: selection for selection in Selection}
_NODES = "asset, weight-equal, weight-specified, weight-inverse-volatility, group, if, filter"
# Percent weights are recognised by their sum; the tolerance absorbs the float rounding
# of decimal weights (0.1 + 0.2 ...), nothing anyone would write on purpose.
_TOLERANCE = 1e-9

P = ParamSpec("P")
T = TypeVar("T")
_Build = Callable[[Sequence[Node]], Node]


def parse_symphony(text: str, source: str) -> Symphony:
    """The symphony in ``text``, or its first ``StrategyError`` in file order."""
    symphony, errors = _parse(text, source)
    if errors or symphony is None:
        raise errors[0]
    return symphony


def check_symphony(text: str, source: str) -> list[StrategyError]:
    """Every problem in ``text`` in file order (one per node at most); empty when it parses."""
    try:
        return _parse(text, source)[1]
    except StrategyError as error:  # the reader's: fatal, and the only one to report
        return [error]


def iter_nodes(root: Symphony | Node) -> Iterator[Node]:
    """Every node under ``root`` (itself included), parents before children, in order."""
    stack: list[Node] = [root.body if isinstance(root, Symphony) else root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def iter_indicators(root: Symphony | Node) -> Iterator[Indicator]:
    """Every indicator under ``root``: both sides of each condition, each filter's score."""
    for node in iter_nodes(root):
        yield from node_indicators(node)


def node_indicators(node: Node) -> tuple[Indicator, ...]:
    """The indicators ``node`` itself reads: its condition's sides, or its score."""
    if isinstance(node, If):
        left, right = node.condition.left, node.condition.right
        return tuple(side for side in (left, right) if isinstance(side, Indicator))
    if isinstance(node, Filter):
        return (node.score,)
    return ()


def symbols(root: Symphony | Node) -> frozenset[str]:
    """Every ticker named under ``root``: the assets, and the tickers indicators read."""
    tickers: set[str] = set()
    for node in iter_nodes(root):  # one walk: assets and the indicators alike
        if isinstance(node, Asset):
            tickers.add(node.ticker)
        elif isinstance(node, If | Filter):
            for indicator in node_indicators(node):
                if indicator.ticker is not None:
                    tickers.add(indicator.ticker)
    return frozenset(tickers)


def _parse(text: str, source: str) -> tuple[Symphony | None, list[StrategyError]]:
    with paused_gc():
        forms = read(text, source)
        parser = _Parser()
        try:
            symphony: Symphony | None = parser.symphony(forms, source)
        except StrategyError as error:  # the file's outline is wrong: nothing else to check
            parser.errors.append(error)
            symphony = None
    return symphony, sorted(parser.errors, key=_position)


def _position(error: StrategyError) -> tuple[int, int]:
    """(line, column) of an error's "source:line:col" location, to sort by."""
    _, line, column = str(error.location).rsplit(":", 2)
    return int(line), int(column)


class _Plan(NamedTuple):
    """A node waiting for its children: ``build`` gets them, parsed, in order."""

    build: _Build
    forms: tuple[Form, ...]


class _Parser:
    """One parse. Records semantic errors and goes on; the caller decides what to do."""

    def __init__(self) -> None:
        self.errors: list[StrategyError] = []

    def symphony(self, forms: list[Form], source: str) -> Symphony:
        usage = '(defsymphony "Name" {options} NODE)'
        if not forms:
            raise StrategyError(f"empty input: expected {usage}", location=f"{source}:1:1")
        self.errors += [form_error("expected one (defsymphony ...) per file", f) for f in forms[1:]]
        form = forms[0]
        if not isinstance(form, ListForm) or _operator(form) != "defsymphony":
            raise form_error(f"expected {usage}, got {describe(form)}", form)
        name, options, body = _arguments(form, 3, 3, usage)
        label = self.attempt(string_of, name, "symphony name")
        settings = self.attempt(options_map, options)
        rule = self.attempt(rebalance_rule, options) if settings is not None else None
        if settings is not None:
            self.attempt(check_asset_class, options, "the symphony", only=False)
        body_node = self.node(body)
        return Symphony(
            label or "", settings or {}, body_node, form.location, rule or RebalanceRule()
        )

    def attempt(self, parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``parse(...)``, or None with its error recorded."""
        try:
            return parse(*args, **kwargs)
        except StrategyError as error:
            self.errors.append(error)
            return None

    def node(self, root: Form) -> Node:
        """The node ``root`` spells, built bottom-up: children first, then their parent."""
        work: list[Form | _Plan] = [root]
        done: list[Node] = []
        while work:
            item = work.pop()
            if isinstance(item, _Plan):
                split = len(done) - len(item.forms)
                done[split:] = [item.build(done[split:])]
                continue
            if isinstance(item, VectorForm):
                # A vector where one node belongs: one node is itself, several share equally.
                if len(item.items) == 1:
                    work.append(item.items[0])
                    continue
                result: Node | _Plan = _Plan(_equal(item.location), item.items)
                if not item.items:
                    result = Cash(item.location)
            elif isinstance(item, NilForm):
                result = Cash(item.location)
            else:
                result = self.expand(item)
            if isinstance(result, _Plan):
                work.append(result)
                work.extend(reversed(result.forms))
            else:
                done.append(result)
        return done[0]

    def expand(self, form: Form) -> Node | _Plan:
        """A leaf node, or the plan of a node with children; Cash where the form is wrong.
        A node whose own arguments are wrong still has its children checked."""
        try:
            if not isinstance(form, ListForm):
                raise form_error(f"expected a node ({_NODES}), got {describe(form)}", form)
            operator = _OPERATORS.get(_operator(form) or "")
            if operator is None:
                raise _unknown_node(form)
            children, make = operator(form)
        except StrategyError as error:
            self.errors.append(error)
            return Cash(form.location)
        build = self.attempt(make) or _cash(form.location)
        if children is None:  # a leaf
            return build(())
        return _Plan(build, children) if children else Cash(form.location)


# Operators: each checks the outline of its form and returns its children (None for a
# leaf) and ``make``, which checks the node's own arguments and returns its builder.
_Make = Callable[[], _Build]
_Operator = Callable[[ListForm], tuple[tuple[Form, ...] | None, _Make]]


def _asset(form: ListForm) -> tuple[None, _Make]:
    usage = '(asset "TICKER" "optional description" {:asset-class "EQUITIES"})'
    args = _arguments(form, 1, 3, usage)

    def make() -> _Build:
        ticker = ticker_of(args[0])
        rest = list(args[1:])
        if rest and isinstance(rest[-1], MapForm):
            check_asset_class(rest.pop(), f"asset {ticker}", only=True)
        if len(rest) > 1:
            raise form_error(f"{usage} takes its options map last", rest[1])
        described = bool(rest) and not isinstance(rest[0], NilForm)
        description = string_of(rest[0], "asset description (or nil)") if described else None
        asset = Asset(ticker, description, form.location)
        return lambda _: asset

    return None, make


def _weight_equal(form: ListForm) -> tuple[tuple[Form, ...], _Make]:
    (vector,) = _arguments(form, 1, 1, "(weight-equal [NODE ...])")
    return _vector(vector, "weight-equal"), lambda: _equal(form.location)


def _weight_specified(form: ListForm) -> tuple[tuple[Form, ...], _Make]:
    args = form.items[1:]
    if len(args) % 2:
        raise form_error(
            f"weight-specified expects weight and node pairs, got an odd number ({len(args)})",
            form,
        )

    def make() -> _Build:
        weights = _fractions([_weight(weight) for weight in args[0::2]], form)
        return lambda nodes: WeightSpecified(weights, tuple(nodes), form.location)

    return args[1::2], make


def _inverse_volatility(form: ListForm) -> tuple[tuple[Form, ...], _Make]:
    window, vector = _arguments(form, 2, 2, "(weight-inverse-volatility WINDOW [NODE ...])")

    def make() -> _Build:
        days = positive_int(window, "weight-inverse-volatility window")
        return lambda nodes: WeightInverseVolatility(days, tuple(nodes), form.location)

    return _vector(vector, "weight-inverse-volatility"), make


def _group(form: ListForm) -> tuple[tuple[Form, ...], _Make]:
    label, child = _arguments(form, 2, 2, '(group "label" [NODE])')

    def make() -> _Build:
        name = string_of(label, "group label")
        return lambda nodes: Group(name, nodes[0], form.location)

    return (child,), make


def _if(form: ListForm) -> tuple[tuple[Form, ...], _Make]:
    args = _arguments(form, 2, 3, "(if CONDITION [THEN-NODE ...] [ELSE-NODE ...])")

    def make() -> _Build:
        condition, where = _condition(args[0]), form.location
        if len(args) == 2:  # no else-branch: the weight of a false condition stays in cash
            return lambda nodes: If(condition, nodes[0], Cash(where), where)
        return lambda nodes: If(condition, nodes[0], nodes[1], where)

    return args[1:], make


def _filter(form: ListForm) -> tuple[tuple[Form, ...], _Make]:
    usage = "(filter (SCORE {:window N}) (select-top N) [NODE ...])"
    score, selection, vector = _arguments(form, 3, 3, usage)

    def make() -> _Build:
        if not isinstance(score, ListForm):
            raise form_error(
                f"expected a filter score like (rsi {{:window 10}}), got {describe(score)}", score
            )
        indicator = _indicator(score, in_filter=True)
        how = _SELECTIONS.get(_operator(selection) or "")
        if how is None or not isinstance(selection, ListForm) or len(selection.items) != 2:
            raise form_error(
                f"expected (select-top N) or (select-bottom N), got {describe(selection)}",
                selection,
            )
        count = positive_int(selection.items[1], f"{how.value} count")
        return lambda nodes: Filter(indicator, how, count, tuple(nodes), form.location)

    return _vector(vector, "filter"), make


_OPERATORS: dict[str, _Operator] = {
    "asset": _asset,
    "weight-equal": _weight_equal,
    "weight-specified": _weight_specified,
    "weight-inverse-volatility": _inverse_volatility,
    "group": _group,
    "if": _if,
    "filter": _filter,
}


def _cash(location: Location) -> _Build:
    """Stands in for a node with errors, so that its children are still checked."""
    return lambda _: Cash(location)


def _equal(location: Location) -> _Build:
    return lambda nodes: WeightEqual(tuple(nodes), location)


def _fractions(weights: list[float], form: ListForm) -> tuple[float, ...]:
    """Weights as fractions: percents (summing to 100) divided by 100; above 1 refused."""
    total = math.fsum(weights)
    if abs(total - 100) <= 100 * _TOLERANCE:
        return tuple(weight / 100 for weight in weights)
    if total > 1 + _TOLERANCE:
        raise form_error(
            f"weight-specified weights sum to {total:g}: expected fractions summing to at "
            "most 1, or percents summing to 100",
            form,
        )
    return tuple(weights)


def _condition(form: Form) -> Condition:
    items = form.items if isinstance(form, ListForm) else ()
    name = _operator(form)
    op = COMPARATORS.get(name or "")
    if op is None or len(items) != 3:
        got = f"{len(items) - 1} operands" if op else describe(form)
        hint = did_you_mean(name, COMPARATORS) if name and not op else ""
        raise form_error(
            f"expected a condition (> A B), (< A B), (>= A B), (<= A B) or (= A B), "
            f"got {got}{hint}",
            form,
        )
    return Condition(op, _operand(items[1]), _operand(items[2]), form.location)


def _operand(form: Form) -> Operand:
    if isinstance(form, NumberForm):
        return Number(float(form.value), form.location)
    if isinstance(form, ListForm):
        return _indicator(form, in_filter=False)
    raise form_error(f"expected a number or an indicator, got {describe(form)}", form)


def _indicator(form: ListForm, *, in_filter: bool) -> Indicator:
    """``(fn "TICKER" {:window N})`` or ``(fn "TICKER" N)``; inside a filter without the
    ticker. The oscillators take ``{:short-window S :long-window L ...}`` instead."""
    name = _operator(form) or ""
    fn = INDICATORS.get(name)
    if fn is None:
        head = form.items[0] if form.items else form
        hint = did_you_mean(name, INDICATORS) if name else ""
        known = ", ".join(INDICATORS)
        raise form_error(f"unknown indicator {describe(head)}{hint}: expected {known}", head)
    args = form.items[1:]
    has_ticker = bool(args) and isinstance(args[0], StringForm)
    if in_filter and has_ticker:
        raise form_error(
            f"inside filter, {name} scores each candidate and takes no ticker", args[0]
        )
    if not in_filter and not has_ticker:
        raise form_error(f'{name} needs a ticker: ({name} "SPY" {{:window 10}})', form)
    ticker = ticker_of(args[0]) if has_ticker else None
    options = args[1:] if has_ticker else args
    if fn in OSCILLATORS:
        params = oscillator_options(options, name, OSCILLATORS[fn], form)
        history = oscillator_history(params)
        return Indicator(fn, ticker, history, form.location, tuple(sorted(params.items())))
    if len(options) > 1 or (options and not isinstance(options[0], MapForm | NumberForm)):
        raise form_error(
            f"{name} takes one options map {{:window N}} (or a window N) after its ticker", form
        )
    window = None
    if options and isinstance(options[0], MapForm):
        window = window_option(options[0], name)
    elif options:
        window = positive_int(options[0], f"{name} window")
    if window is None and fn is not IndicatorFn.CURRENT_PRICE:
        raise form_error(f"{name} needs a window: {{:window N}}", form)
    return Indicator(fn, ticker, window or 1, form.location)  # current-price: the last close


def _unknown_node(form: ListForm) -> StrategyError:
    head = form.items[0] if form.items else form
    name = _operator(form)
    if name in INDICATORS or name in COMPARATORS:
        what = "an indicator" if name in INDICATORS else "a comparison"
        return form_error(f"'{name}' is {what}, not a node: expected one of {_NODES}", head)
    if name is None:
        return form_error(f"expected a node ({_NODES}), got {describe(form)}", form)
    hint = did_you_mean(name, _OPERATORS)
    return form_error(f"unknown operator '{clip(name)}'{hint}: expected one of {_NODES}", head)


def _arguments(form: ListForm, least: int, most: int, usage: str) -> tuple[Form, ...]:
    args = form.items[1:]
    if not least <= len(args) <= most:
        expected = {0: f"{least}", 1: f"{least} or {most}"}.get(most - least, f"{least} to {most}")
        raise form_error(f"{usage} expects {expected} arguments, got {len(args)}", form)
    return args


def _vector(form: Form, operator: str) -> tuple[Form, ...]:
    if not isinstance(form, VectorForm):
        raise form_error(f"{operator} expects a vector of nodes [...], got {describe(form)}", form)
    return form.items


def _weight(form: Form) -> float:
    if not isinstance(form, NumberForm) or form.value < 0:
        raise form_error(f"a weight must be a number, 0 or more, got {describe(form)}", form)
    return float(form.value)


def _operator(form: Form) -> str | None:
    """The symbol a list starts with: its operator.

    Composer writes ``((unimplemented :NAME) ...)`` (or ``(unimplemented :NAME)``) where
    it could not export an operator: that is refused here, naming NAME, wherever it is."""
    if not isinstance(form, ListForm) or not form.items:
        return None
    head = form.items[0]
    if isinstance(head, SymbolForm) and head.name != "unimplemented":
        return head.name  # the common case, first: a plain operator
    placeholder = form if isinstance(head, SymbolForm) else head
    if _operator_name(placeholder) == "unimplemented":
        assert isinstance(placeholder, ListForm)
        what = placeholder.items[1:2]
        name = what[0].name if what and isinstance(what[0], KeywordForm) else "an operator"
        raise form_error(
            f"Composer could not export `{clip(name)}` (it wrote `(unimplemented ...)`): "
            "rebuild that block in Composer with operators it can export, or write it by hand",
            placeholder,
        )
    return head.name if isinstance(head, SymbolForm) else None


def _operator_name(form: Form) -> str | None:
    if isinstance(form, ListForm) and form.items and isinstance(form.items[0], SymbolForm):
        return form.items[0].name
    return None
