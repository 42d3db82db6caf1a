"""Generated and mutated texts: reading and parsing either succeed with the right tree or
raise a ``StrategyError`` located at a real source:line:col, never anything else, never
slowly.

Valid symphonies and data are generated as trees, rendered with random spacing and
comments, and must read back to the same tree (round trips). Random and mutated texts
must only ever produce located ``StrategyError``s, and ``parse_symphony`` must fail
exactly when ``check_symphony`` reports problems, with the first of them.
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    Location,
    Node,
    Number,
    Operand,
    Selection,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.strategy.symphony.names import INDICATORS, OSCILLATORS, oscillator_history
from alchemiser.strategy.symphony.parser import check_symphony, parse_symphony
from alchemiser.strategy.symphony.reader import (
    BoolForm,
    Form,
    KeywordForm,
    ListForm,
    MapForm,
    NilForm,
    StringForm,
    SymbolForm,
    VectorForm,
    read,
)

pytestmark = pytest.mark.slow

SOURCE = "fuzz.clj"
LOCATION = re.compile(r"fuzz\.clj:(\d+):(\d+)")
NOWHERE = Location(SOURCE, 0, 0)
TICKERS = ["SPY", "QQQ", "TLT", "BRK.B", "UVXY", "BIL", "SOXL"]
FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- what every outcome must satisfy ----


def assert_located(error: StrategyError, text: str) -> None:
    """The error points at a real position of ``text`` (a column may be one past the end)."""
    match = LOCATION.fullmatch(error.location or "")
    assert match, error
    line, column = int(match[1]), int(match[2])
    lines = text.split("\n")
    assert 1 <= line <= len(lines), error
    assert 1 <= column <= len(lines[line - 1]) + 1, error
    assert str(error).startswith(f"{error.location}: ")


def check_outcomes(text: str) -> None:
    try:
        read(text, SOURCE)
    except StrategyError as error:
        assert_located(error, text)
    problems = check_symphony(text, SOURCE)
    for problem in problems:
        assert isinstance(problem, StrategyError)
        assert_located(problem, text)
    if problems:  # parse_symphony raises the first of them
        with pytest.raises(StrategyError) as caught:
            parse_symphony(text, SOURCE)
        assert (caught.value.location, caught.value.message) == (
            problems[0].location,
            problems[0].message,
        )
    else:
        parse_symphony(text, SOURCE)


# ---- symphonies: generated trees, rendered as text ----

tickers = st.sampled_from(TICKERS)
windows = st.integers(1, 400)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=64)
labels = st.text(max_size=12)


def indicator(in_filter: bool) -> st.SearchStrategy[Indicator]:
    target = st.none() if in_filter else tickers
    windowed = st.builds(
        Indicator,
        st.sampled_from([fn for fn in IndicatorFn if fn not in OSCILLATORS]),
        target,
        windows,
        st.just(NOWHERE),
    )
    return windowed | st.builds(oscillator, st.sampled_from(list(OSCILLATORS)), target, st.data())


def oscillator(fn: IndicatorFn, ticker: str | None, data: st.DataObject) -> Indicator:
    short = data.draw(st.integers(1, 60))
    params = {"short-window": short, "long-window": data.draw(st.integers(short + 1, 200))}
    if "smooth-window" in OSCILLATORS[fn]:
        params["smooth-window"] = data.draw(st.integers(1, 60))
    pairs = tuple(sorted(params.items()))
    return Indicator(fn, ticker, oscillator_history(params), NOWHERE, pairs)


operands: st.SearchStrategy[Operand] = st.one_of(
    st.builds(Number, numbers, st.just(NOWHERE)), indicator(in_filter=False)
)
conditions = st.builds(
    Condition, st.sampled_from(list(Comparator)), operands, operands, st.just(NOWHERE)
)
leaves: st.SearchStrategy[Node] = st.one_of(
    st.builds(Asset, tickers, st.none() | labels, st.just(NOWHERE)),
    st.just(Cash(NOWHERE)),
)


def weights(count: int) -> st.SearchStrategy[tuple[float, ...]]:
    parts = st.lists(st.integers(0, 100), min_size=count, max_size=count)
    return parts.map(lambda xs: tuple(x / max(sum(xs), 100) for x in xs))


def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    some = st.lists(children, min_size=1, max_size=4).map(tuple)
    specified = some.flatmap(
        lambda nodes: weights(len(nodes)).map(lambda ws: WeightSpecified(ws, nodes, NOWHERE))
    )
    return st.one_of(
        st.builds(WeightEqual, some, st.just(NOWHERE)),
        specified,
        st.builds(WeightInverseVolatility, windows, some, st.just(NOWHERE)),
        st.builds(Group, labels, children, st.just(NOWHERE)),
        st.builds(If, conditions, children, children, st.just(NOWHERE)),
        st.builds(
            Filter,
            indicator(in_filter=True),
            st.sampled_from(list(Selection)),
            st.integers(1, 3),
            some,
            st.just(NOWHERE),
        ),
    )


nodes = st.recursive(leaves, extend, max_leaves=25)


def string(value: str, rng: random.Random) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for char in value:
        if char in escapes:
            out.append(escapes[char])
        elif (ord(char) < 32 or rng.random() < 0.1) and ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render(node: Node, rng: random.Random) -> str:
    """Symphony text for ``node``, in one of the spellings the parser must accept."""

    def gap() -> str:
        return rng.choice([" ", "  ", "\n ", ", ", "\t", " ; a comment (with [brackets\n "])

    def ticker(symbol: str) -> str:
        composer = f"EQUITIES::{symbol.replace('.', '/')}//USD"
        spelt = rng.choice([symbol, symbol.replace(".", "/"), symbol.lower(), composer])
        return string(spelt, rng)

    def ind(spec: Indicator) -> str:
        name = rng.choice([name for name, fn in INDICATORS.items() if fn is spec.fn])
        target = "" if spec.ticker is None else gap() + ticker(spec.ticker)
        if spec.params:
            defaults = OSCILLATORS[spec.fn]  # a default may go unsaid
            given = [(k, v) for k, v in spec.params if v != defaults[k] or rng.random() < 0.5]
            pairs = gap().join(f":{key}{gap()}{value}" for key, value in given)
            options = f"{gap()}{{{pairs}}}" if given or rng.random() < 0.5 else ""
        elif rng.random() < 0.5:
            options = f"{gap()}{spec.window}"
        else:
            options = f"{gap()}{{:window{gap()}{spec.window}}}"
        if spec.fn is IndicatorFn.CURRENT_PRICE and spec.window == 1 and rng.random() < 0.5:
            options = ""
        return f"({name}{target}{options})"

    def operand(value: Operand) -> str:
        return ind(value) if isinstance(value, Indicator) else repr(value.value)

    def many(children: tuple[Node, ...]) -> str:
        return "[" + gap().join(render(child, rng) for child in children) + "]"

    def one(child: Node) -> str:
        return f"[{render(child, rng)}]" if rng.random() < 0.7 else render(child, rng)

    if isinstance(node, Asset):
        if node.description is None:
            described = rng.choice(["", " nil"])
        else:
            described = gap() + string(node.description, rng)
        return f"(asset{gap()}{ticker(node.ticker)}{described})"
    if isinstance(node, Cash):
        return rng.choice(["nil", "[]", "[ ]"])
    if isinstance(node, WeightEqual):
        if len(node.children) > 1 and rng.random() < 0.3:
            return many(node.children)
        return f"(weight-equal{gap()}{many(node.children)})"
    if isinstance(node, WeightSpecified):
        pairs = (
            f"{w!r}{gap()}{render(c, rng)}"
            for w, c in zip(node.weights, node.children, strict=True)
        )
        return f"(weight-specified{gap()}{gap().join(pairs)})"
    if isinstance(node, WeightInverseVolatility):
        return f"(weight-inverse-volatility {node.window}{gap()}{many(node.children)})"
    if isinstance(node, Group):
        return f"(group{gap()}{string(node.label, rng)}{gap()}{one(node.child)})"
    if isinstance(node, If):
        c = node.condition
        condition = f"({c.op.value}{gap()}{operand(c.left)}{gap()}{operand(c.right)})"
        if isinstance(node.otherwise, Cash) and rng.random() < 0.3:
            return f"(if{gap()}{condition}{gap()}{one(node.then)})"
        return f"(if{gap()}{condition}{gap()}{one(node.then)}{gap()}{one(node.otherwise)})"
    assert isinstance(node, Filter)
    select = f"({node.selection.value} {node.count})"
    return f"(filter{gap()}{ind(node.score)}{gap()}{select}{gap()}{many(node.children)})"


def symphony_text(node: Node, rng: random.Random) -> str:
    return f'(defsymphony "Fuzz" {{:rebalance-frequency :daily}}\n {render(node, rng)})\n'


def shape(node: Node | Operand | Condition) -> object:
    """A node without its locations (recursive: generated trees are small)."""
    if isinstance(node, Asset):
        return ("asset", node.ticker, node.description)
    if isinstance(node, Cash):
        return ("cash",)
    if isinstance(node, Indicator):
        return ("indicator", node.fn, node.ticker, node.window, node.params)
    if isinstance(node, Number):
        return ("number", node.value)
    if isinstance(node, Condition):
        return (node.op, shape(node.left), shape(node.right))
    if isinstance(node, Group):
        return ("group", node.label, shape(node.child))
    if isinstance(node, If):
        return ("if", shape(node.condition), shape(node.then), shape(node.otherwise))
    children = tuple(shape(child) for child in node.children)
    if isinstance(node, WeightSpecified):
        return ("specified", node.weights, children)
    if isinstance(node, WeightInverseVolatility):
        return ("inverse-volatility", node.window, children)
    if isinstance(node, Filter):
        return ("filter", shape(node.score), node.selection, node.count, children)
    return ("equal", children)


@FUZZ
@given(node=nodes, seed=st.integers(0, 2**32))
def test_generated_symphonies_parse_back_to_their_tree(node: Node, seed: int) -> None:
    text = symphony_text(node, random.Random(seed))
    parsed = parse_symphony(text, SOURCE)
    assert parsed.options == {"rebalance-frequency": "daily"}
    assert shape(parsed.body) == shape(node)
    assert check_symphony(text, SOURCE) == []


# ---- mutations of valid texts, and random texts ----

NOISE = "()[]{}\"\\;:,. \n\t-+0123456789eE/#@'abnilrsktquvwxyzé\ufeff\x00"


def mutate(text: str, rng: random.Random, times: int) -> str:
    for _ in range(times):
        at = rng.randrange(len(text) + 1)
        span = rng.randint(1, 8)
        kind = rng.randrange(5)
        if kind == 0:  # delete
            text = text[:at] + text[at + span :]
        elif kind == 1:  # insert noise
            text = text[:at] + "".join(rng.choice(NOISE) for _ in range(span)) + text[at:]
        elif kind == 2 and text:  # replace one character
            at = min(at, len(text) - 1)
            text = text[:at] + rng.choice(NOISE) + text[at + 1 :]
        elif kind == 3:  # duplicate a slice somewhere else
            piece = text[at : at + span * 4]
            where = rng.randrange(len(text) + 1)
            text = text[:where] + piece + text[where:]
        else:  # swap a bracket for another
            brackets = [i for i, c in enumerate(text) if c in "()[]{}"]
            if brackets:
                i = rng.choice(brackets)
                text = text[:i] + rng.choice("()[]{}") + text[i + 1 :]
    return text


@FUZZ
@given(node=nodes, seed=st.integers(0, 2**32), times=st.integers(1, 4))
def test_mutated_symphonies_fail_only_with_located_strategy_errors(
    node: Node, seed: int, times: int
) -> None:
    rng = random.Random(seed)
    check_outcomes(mutate(symphony_text(node, rng), rng, times))


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(NOISE) | st.characters(), max_size=200))
def test_random_texts_fail_only_with_located_strategy_errors(text: str) -> None:
    check_outcomes(text)
    check_outcomes(f'(defsymphony "R" {{}} {text})')
    check_outcomes(f'(defsymphony "R" {{}} (if (> (rsi "SPY" {{:window 9}}) 1) [{text}]))')


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), depth=st.integers(500, 2000))
def test_deep_mutated_symphonies_fail_fast(seed: int, depth: int) -> None:
    rng = random.Random(seed)
    step = '(if (> (rsi "SPY" {:window 10}) 70) [(asset "UVXY")] ['
    text = '(defsymphony "Deep" {} ' + step * depth + "nil" + "])" * depth + ")"
    check_outcomes(mutate(text, rng, rng.randint(1, 3)))


# ---- data: generated values read back, every form where its text starts ----

names = st.from_regex(r"[a-z*+!_?<>=][a-z0-9*+!_?<>=.\-]{0,8}", fullmatch=True).filter(
    lambda s: s not in {"nil", "true", "false"} and not re.match(r"[+\-.]?[0-9]", s)
)
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    numbers,
    st.text(max_size=10),
    names.map(lambda n: ("keyword", n)),
    names.map(lambda n: ("symbol", n)),
    st.none(),
    st.booleans(),
)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: ("list", *xs)),
        st.lists(inner, max_size=4).map(lambda xs: ("vector", *xs)),
        st.lists(st.tuples(names, inner), max_size=3).map(lambda kv: ("map", *kv)),
    ),
    max_leaves=20,
)


def write(value: object, rng: random.Random) -> str:
    gap = rng.choice([" ", "\n", ", ", " ;c\n", "\t\n  "])
    if isinstance(value, tuple) and value[0] in {"list", "vector"}:
        inner = gap.join(write(item, rng) for item in value[1:])
        return f"({inner})" if value[0] == "list" else f"[{inner}]"
    if isinstance(value, tuple) and value[0] == "map":
        return "{" + gap.join(f":{k}{gap}{write(v, rng)}" for k, v in value[1:]) + "}"
    if isinstance(value, tuple):
        return (":" if value[0] == "keyword" else "") + str(value[1])
    if value is None or isinstance(value, bool):
        return {None: "nil", True: "true", False: "false"}[value]
    return string(value, rng) if isinstance(value, str) else repr(value)


def plain(form: Form) -> object:
    if isinstance(form, ListForm | VectorForm):
        kind = "list" if isinstance(form, ListForm) else "vector"
        return (kind, *(plain(item) for item in form.items))
    if isinstance(form, MapForm):
        keys = [key.name if isinstance(key, KeywordForm) else None for key, _ in form.pairs]
        return ("map", *zip(keys, (plain(value) for _, value in form.pairs), strict=True))
    if isinstance(form, KeywordForm | SymbolForm):
        return ("keyword" if isinstance(form, KeywordForm) else "symbol", form.name)
    if isinstance(form, NilForm):
        return None
    return form.value


FIRST = {
    ListForm: "(",
    VectorForm: "[",
    MapForm: "{",
    StringForm: '"',
    KeywordForm: ":",
    NilForm: "n",
}


def assert_where_text_starts(form: Form, text: str) -> None:
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    stack = [form]
    while stack:
        current = stack.pop()
        offset = starts[current.location.line - 1] + current.location.column - 1
        if type(current) in FIRST:
            assert text[offset] == FIRST[type(current)]
        elif isinstance(current, BoolForm):
            assert text.startswith(str(current.value).lower(), offset)
        elif isinstance(current, SymbolForm):
            assert text.startswith(current.name, offset)
        else:
            assert text[offset] in "-0123456789"
        if isinstance(current, ListForm | VectorForm):
            stack.extend(current.items)
        elif isinstance(current, MapForm):
            stack.extend(item for pair in current.pairs for item in pair)


@FUZZ
@given(value=data, seed=st.integers(0, 2**32))
def test_data_reads_back_with_every_form_where_its_text_starts(value: object, seed: int) -> None:
    rng = random.Random(seed)
    text = rng.choice(["", "\n", " ; lead\n"]) + write(value, rng)
    (form,) = read(text, SOURCE)
    assert plain(form) == value
    assert_where_text_starts(form, text)
