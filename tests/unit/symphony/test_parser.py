"""The symphony parser: the tree each construct builds, and every error with its location."""

from __future__ import annotations

import random

import pytest

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
    RebalanceFrequency,
    RebalanceRule,
    Selection,
    Symphony,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.strategy.symphony.names import OSCILLATORS
from alchemiser.strategy.symphony.parser import (
    check_symphony,
    iter_indicators,
    iter_nodes,
    parse_symphony,
    symbols,
)
from alchemiser.strategy.symphony.strategy import ticker_locations

OPTIONS = '{:asset-class "EQUITIES", :rebalance-frequency :daily}'


def at(line: int, column: int) -> Location:
    return Location("s.clj", line, column)


def find(text: str, needle: str, nth: int = 1) -> Location:
    """Where the ``nth`` occurrence of ``needle`` starts in ``text`` (counted by hand)."""
    offset = -1
    for _ in range(nth):
        offset = text.index(needle, offset + 1)
    line = text.count("\n", 0, offset) + 1
    return Location("s.clj", line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def wrap(body: str) -> str:
    """``body`` as the node of a symphony, on line 2 from column 1."""
    return f'(defsymphony "S" {{}}\n{body})'


def body(text: str) -> Node:
    return parse_symphony(wrap(text), "s.clj").body


def problem(text: str) -> StrategyError:
    with pytest.raises(StrategyError) as caught:
        parse_symphony(text, "s.clj")
    return caught.value


def test_a_whole_symphony_with_every_construct() -> None:
    text = f"""(defsymphony "Every construct" {OPTIONS}
 (weight-equal
  [(if (> (current-price "SPY") (moving-average-price "SPY" {{:window 200}}))
    [(filter (moving-average-return {{:window 90}}) (select-top 2)
      [(asset "SMR" nil) (asset "BRK/B") (asset "LEU" "Centrus Energy")])]
    [(weight-specified 75 (asset "UVXY") 25 [(asset "BTAL") (asset "TLT")])])
   (weight-inverse-volatility 14 [(group "Bear" [(asset "SQQQ")]) nil []])]))
"""

    def loc(needle: str, nth: int = 1) -> Location:
        return find(text, needle, nth)

    def asset(ticker: str, description: str | None = None) -> Asset:
        return Asset(ticker.replace("/", "."), description, loc(f'(asset "{ticker}"'))

    assert parse_symphony(text, "s.clj") == Symphony(
        "Every construct",
        {"asset-class": "EQUITIES", "rebalance-frequency": "daily"},
        WeightEqual(
            (
                If(
                    Condition(
                        Comparator.GT,
                        Indicator(IndicatorFn.CURRENT_PRICE, "SPY", 1, loc("(current-price")),
                        Indicator(
                            IndicatorFn.MOVING_AVERAGE_PRICE, "SPY", 200, loc("(moving-average-p")
                        ),
                        loc("(> "),
                    ),
                    Filter(
                        Indicator(
                            IndicatorFn.MOVING_AVERAGE_RETURN, None, 90, loc("(moving-av", 2)
                        ),
                        Selection.TOP,
                        2,
                        (asset("SMR"), asset("BRK/B"), asset("LEU", "Centrus Energy")),
                        loc("(filter"),
                    ),
                    WeightSpecified(
                        (0.75, 0.25),
                        (
                            asset("UVXY"),
                            WeightEqual((asset("BTAL"), asset("TLT")), loc('[(asset "BTAL"')),
                        ),
                        loc("(weight-specified"),
                    ),
                    loc("(if"),
                ),
                WeightInverseVolatility(
                    14,
                    (
                        Group("Bear", asset("SQQQ"), loc("(group")),
                        Cash(loc("nil []")),
                        Cash(loc("[]")),
                    ),
                    loc("(weight-inverse"),
                ),
            ),
            loc("(weight-equal"),
        ),
        at(1, 1),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('(asset "SPY")', Asset("SPY", None, at(2, 1))),
        ('(asset "SPY" nil)', Asset("SPY", None, at(2, 1))),
        ('(asset "SPY" "SPDR S&P 500")', Asset("SPY", "SPDR S&P 500", at(2, 1))),
        ('(asset "BRK/B")', Asset("BRK.B", None, at(2, 1))),
        ('(asset " brk.b ")', Asset("BRK.B", None, at(2, 1))),
        ('(asset "spy")', Asset("SPY", None, at(2, 1))),
    ],
)
def test_assets(text: str, expected: Asset) -> None:
    assert body(text) == expected


def test_a_vector_of_one_node_is_that_node() -> None:
    assert body('[(asset "SPY")]') == Asset("SPY", None, at(2, 2))
    assert body('[[[(asset "SPY")]]]') == Asset("SPY", None, at(2, 4))


def test_a_vector_of_several_nodes_is_weight_equal_at_the_vector() -> None:
    assert body('[(asset "A") (asset "B")]') == WeightEqual(
        (Asset("A", None, at(2, 2)), Asset("B", None, at(2, 14))), at(2, 1)
    )


@pytest.mark.parametrize("text", ["nil", "[]", "[[]]", "(weight-equal [])", "(weight-specified)"])
def test_empty_branches_are_cash(text: str) -> None:
    node = body(text)
    assert isinstance(node, Cash)


def test_empty_children_lists_are_cash_at_the_operator() -> None:
    assert body("(weight-equal [])") == Cash(at(2, 1))
    assert body("(weight-inverse-volatility 5 [])") == Cash(at(2, 1))
    assert body("(filter (rsi {:window 5}) (select-bottom 1) [])") == Cash(at(2, 1))


def test_weight_equal_keeps_a_single_child() -> None:
    assert body('(weight-equal [(asset "A")])') == WeightEqual(
        (Asset("A", None, at(2, 16)),), at(2, 1)
    )


@pytest.mark.parametrize(
    ("weights", "fractions"),
    [
        ("0.6 0.4", (0.6, 0.4)),
        ("0.5 0.25", (0.5, 0.25)),
        ("1 0", (1.0, 0.0)),
        ("75 25", (0.75, 0.25)),
        ("33.3 66.7", (0.333, 0.667)),
        ("0.1 0.2 0.7", (0.1, 0.2, 0.7)),
        ("0 0", (0.0, 0.0)),
    ],
)
def test_weight_specified_takes_fractions_or_percents(
    weights: str, fractions: tuple[float, ...]
) -> None:
    pairs = " ".join(f'{w} (asset "A{i}")' for i, w in enumerate(weights.split()))
    node = body(f"(weight-specified {pairs})")
    assert isinstance(node, WeightSpecified)
    assert node.weights == pytest.approx(fractions)
    assert [child.ticker for child in node.children if isinstance(child, Asset)] == [
        f"A{i}" for i in range(len(fractions))
    ]


def test_weight_specified_single_child_any_node() -> None:
    node = body("(weight-specified 1 (if (> 1 2) [nil]))")
    assert isinstance(node, WeightSpecified)
    assert node.weights == (1.0,)
    assert isinstance(node.children[0], If)


def test_weight_inverse_volatility_and_group() -> None:
    node = '(weight-inverse-volatility 14 [(group "G" [(asset "A")]) (asset "B")])'
    text = wrap(node)
    assert body(node) == WeightInverseVolatility(
        14,
        (
            Group("G", Asset("A", None, find(text, '(asset "A"')), find(text, "(group")),
            Asset("B", None, find(text, '(asset "B"')),
        ),
        at(2, 1),
    )


def test_if_without_else_puts_the_weight_in_cash_at_the_if() -> None:
    node = body('(if (< 1 2) [(asset "A")])')
    assert node == If(
        Condition(Comparator.LT, Number(1.0, at(2, 8)), Number(2.0, at(2, 10)), at(2, 5)),
        Asset("A", None, at(2, 14)),
        Cash(at(2, 1)),
        at(2, 1),
    )


@pytest.mark.parametrize("op", list(Comparator))
def test_every_comparator(op: Comparator) -> None:
    text = f'(if ({op.value} (rsi "SPY" {{:window 10}}) 70.5) [nil] [(asset "A")])'
    node = body(text)
    assert isinstance(node, If)
    assert node.condition.op is op
    assert node.condition.right == Number(70.5, find(wrap(text), "70.5"))
    assert node.otherwise == Asset("A", None, find(wrap(text), "(asset"))


@pytest.mark.parametrize("fn", [fn for fn in IndicatorFn if fn not in OSCILLATORS])
def test_every_indicator_by_its_name(fn: IndicatorFn) -> None:
    text = f'(if (> ({fn.value} "QQQ" {{:window 7}}) -3) [nil])'
    node = body(text)
    assert isinstance(node, If)
    assert node.condition.left == Indicator(fn, "QQQ", 7, at(2, 8))
    assert node.condition.right == Number(-3.0, find(wrap(text), "-3"))


def test_rsi_is_relative_strength_index() -> None:
    node = body('(if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20})) [nil])')
    assert isinstance(node, If)
    assert node.condition.left == Indicator(IndicatorFn.RSI, "TLT", 20, at(2, 8))
    assert node.condition.right == Indicator(IndicatorFn.RSI, "PSQ", 20, at(2, 33))


def test_current_price_window_is_one_unless_given() -> None:
    node = body('(if (> (current-price "BRK/B") (current-price "SPY" {:window 3})) [nil])')
    assert isinstance(node, If)
    assert node.condition.left == Indicator(IndicatorFn.CURRENT_PRICE, "BRK.B", 1, at(2, 8))
    assert node.condition.right == Indicator(IndicatorFn.CURRENT_PRICE, "SPY", 3, at(2, 32))
    filtered = body('(filter (current-price) (select-top 1) [(asset "A")])')
    assert isinstance(filtered, Filter)
    assert filtered.score == Indicator(IndicatorFn.CURRENT_PRICE, None, 1, at(2, 9))


def test_filter_select_bottom_with_sub_portfolio_candidates() -> None:
    text = '(filter (stdev-return {:window 5}) (select-bottom 1) [(asset "A") [(asset "B") nil]])'
    where = wrap(text)
    assert body(text) == Filter(
        Indicator(IndicatorFn.STDEV_RETURN, None, 5, at(2, 9)),
        Selection.BOTTOM,
        1,
        (
            Asset("A", None, find(where, '(asset "A"')),
            WeightEqual(
                (Asset("B", None, find(where, '(asset "B"')), Cash(find(where, "nil"))),
                find(where, '[(asset "B"'),
            ),
        ),
        at(2, 1),
    )


def test_options_become_plain_python() -> None:
    text = '(defsymphony "N" {:a :daily "b" 0.05 :c [1 "x" :y nil true] :d {:e {}}} nil)'
    assert parse_symphony(text, "s.clj").options == {
        "a": "daily",
        "b": 0.05,
        "c": (1, "x", "y", None, True),
        "d": {"e": {}},
    }


def test_deeply_nested_options_do_not_recurse() -> None:
    text = '(defsymphony "N" {:a ' + "[" * 5000 + "]" * 5000 + "} nil)"
    value = parse_symphony(text, "s.clj").options["a"]
    depth = 0
    while value:
        assert isinstance(value, tuple)
        value, depth = value[0], depth + 1
    assert depth == 4999


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("(asset)", "2:1", '(asset "TICKER" "optional description" {:asset-class "EQUITIES"})'),
        ('(asset "A" "b" {} "c")', "2:1", "expects 1 to 3 arguments, got 4"),
        ('(asset "A" "b" "c")', "2:16", "takes its options map last"),
        ("(asset SPY)", "2:8", "ticker (like \"SPY\") must be a string, got the symbol 'SPY'"),
        ('(asset "S P Y")', "2:8", "invalid ticker 'S P Y'"),
        ('(asset "BRK/B/C")', "2:8", "invalid ticker 'BRK/B/C'"),
        ('(asset "SPY" 5)', "2:14", "asset description (or nil) must be a string, got 5"),
        ('(weight-equal (asset "A"))', "2:15", "weight-equal expects a vector of nodes"),
        ("(weight-equal [] [])", "2:1", "(weight-equal [NODE ...]) expects 1 arguments, got 2"),
        ('(weight-specified 0.5 (asset "A") 0.5)', "2:1", "got an odd number (3)"),
        ('(weight-specified -0.5 (asset "A"))', "2:19", "a weight must be a number, 0 or more"),
        ('(weight-specified "x" (asset "A"))', "2:19", "a weight must be a number"),
        ('(weight-specified 0.7 (asset "A") 0.4 (asset "B"))', "2:1", "weights sum to 1.1"),
        ('(weight-specified 60 (asset "A") 60 (asset "B"))', "2:1", "weights sum to 120"),
        ('(weight-inverse-volatility 0 [(asset "A")])', "2:28", "window must be a positive"),
        ('(weight-inverse-volatility 2.5 [(asset "A")])', "2:28", "got 2.5"),
        ("(weight-inverse-volatility [])", "2:1", "expects 2 arguments, got 1"),
        ('(group :g [(asset "A")])', "2:8", "group label must be a string, got :g"),
        ('(group "g")', "2:1", '(group "label" [NODE]) expects 2 arguments, got 1'),
        ("(if (> 1 2))", "2:1", "(if CONDITION [THEN-NODE ...] [ELSE-NODE ...]) expects 2 or 3"),
        ("(if (== 1 2) [nil])", "2:5", "(<= A B) or (= A B), got (== ...) (did you mean `=`?)"),
        ("(if (> 1) [nil])", "2:5", "got 1 operands"),
        ("(if true [nil])", "2:5", "expected a condition"),
        ('(if (> "SPY" 1) [nil])', "2:8", "expected a number or an indicator"),
        ("(if (> (rsi {:window 10}) 1) [nil])", "2:8", 'rsi needs a ticker: (rsi "SPY"'),
        ('(if (> (rsi "SPY") 1) [nil])', "2:8", "rsi needs a window: {:window N}"),
        ('(if (> (rsi "SPY" "10") 1) [nil])', "2:8", "rsi takes one options map {:window N}"),
        ('(if (> (rsi "SPY" 10 {}) 1) [nil])', "2:8", "rsi takes one options map {:window N}"),
        ('(if (> (rsi "SPY" 0) 1) [nil])', "2:19", "rsi window must be a positive whole"),
        ('(if (> (rsi "SPY" {:window 5} {}) 1) [nil])', "2:8", "takes one options map"),
        ('(if (> (rsi "SPY" {:period 5}) 1) [nil])', "2:20", "unexpected rsi option :period"),
        ('(if (> (rsi "SPY" {:window 5 :window 6}) 1) [nil])', "2:30", "expected one :window"),
        ('(if (> (rsi "SPY" {:window -5}) 1) [nil])', "2:28", "rsi window must be a positive"),
        ('(if (> (sma "SPY" {:window 5}) 1) [nil])', "2:9", "unknown indicator the symbol 'sma'"),
        ('(if (> (rsi "$$$" {:window 5}) 1) [nil])', "2:13", "invalid ticker '$$$'"),
        ("(filter (rsi {:window 5}) (select-top 0) [nil])", "2:39", "count must be a positive"),
        ("(filter (rsi {:window 5}) (select-top) [nil])", "2:27", "expected (select-top N) or"),
        ("(filter (rsi {:window 5}) (top 1) [nil])", "2:27", "expected (select-top N) or"),
        ('(filter (rsi "SPY" {:window 5}) (select-top 1) [nil])', "2:14", "takes no ticker"),
        ("(filter rsi (select-top 1) [nil])", "2:9", "expected a filter score"),
        ("(filter (rsi {:window 5}) (select-top 1))", "2:1", "expects 3 arguments, got 2"),
        ("(filter (rsi {:window 5}) (select-top 1) nil)", "2:42", "filter expects a vector"),
        ('(weight-random [(asset "A")])', "2:2", "unknown operator 'weight-random' (did you mean"),
        ('(rsi "SPY" {:window 5})', "2:2", "'rsi' is an indicator, not a node"),
        ("(> 1 2)", "2:2", "'>' is a comparison, not a node"),
        ("()", "2:1", "expected a node (asset, weight-equal, weight-specified"),
        ("(1 2)", "2:1", "got a list"),
        ('"SPY"', "2:1", "expected a node (asset, weight-equal"),
        (":cash", "2:1", "got :cash"),
        ("{}", "2:1", "got a map"),
    ],
)
def test_node_errors(text: str, where: str, message: str) -> None:
    caught = problem(wrap(text))
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("", "1:1", 'empty input: expected (defsymphony "Name" {options} NODE)'),
        ("  ; nothing\n", "1:1", "empty input"),
        ('(asset "A")', "1:1", "expected (defsymphony"),
        ("[defsymphony]", "1:1", "got a vector"),
        ('(defsymphony "N" nil)', "1:1", "expects 3 arguments, got 2"),
        ("(defsymphony N {} nil)", "1:14", "symphony name must be a string"),
        ('(defsymphony "N" [] nil)', "1:18", "expected an options map"),
        ('(defsymphony "N" {:a 1 :a 2} nil)', "1:24", "duplicate map key 'a'"),
        ('(defsymphony "N" {1 2} nil)', "1:19", "map keys must be keywords or strings"),
        ('(defsymphony "N" {:a x} nil)', "1:22", "expected data, got the symbol 'x'"),
        ('(defsymphony "N" {} nil) (defsymphony "M" {} nil)', "1:26", "one (defsymphony"),
        ('(defsymphony "N" {} nil) x', "1:26", "expected one (defsymphony ...) per file"),
    ],
)
def test_outline_errors(text: str, where: str, message: str) -> None:
    caught = problem(text)
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message


def test_check_collects_every_semantic_problem_in_file_order() -> None:
    text = """(defsymphony "S" {:a 1 :a 2}
 (weight-equal
  [(if (>> 1 2) [(asset "bad ticker!")] [(foo)])
   (weight-specified 60 (asset "A") 60 (asset 7))
   (filter (rsi "SPY" {:window 3}) (select-top 1) [(asset 1 2 3)])
   nil]))
(extra)"""
    errors = check_symphony(text, "s.clj")
    assert [(e.location, str(e).split(": ")[1]) for e in errors] == [
        ("s.clj:1:24", "duplicate map key 'a'"),
        (
            "s.clj:3:8",
            "expected a condition (> A B), (< A B), (>= A B), (<= A B) or (= A B), "
            "got (>> ...) (did you mean `>`?)",
        ),
        ("s.clj:3:25", "invalid ticker 'bad ticker!'"),
        ("s.clj:3:43", "unknown operator 'foo'"),
        ("s.clj:4:4", "weight-specified weights sum to 120"),
        ("s.clj:4:47", 'ticker (like "SPY") must be a string, got 7'),
        ("s.clj:5:17", "inside filter, rsi scores each candidate and takes no ticker"),
        ("s.clj:5:59", 'ticker (like "SPY") must be a string, got 1'),
        ("s.clj:7:1", "expected one (defsymphony ...) per file"),
    ]
    assert all(isinstance(e, StrategyError) for e in errors)
    with pytest.raises(StrategyError) as caught:
        parse_symphony(text, "s.clj")
    assert caught.value.location == errors[0].location
    assert caught.value.message == errors[0].message


def test_check_reports_only_the_reader_error_when_the_text_cannot_be_read() -> None:
    errors = check_symphony('(defsymphony "S" {:a 1 :a 2} (foo) "open', "s.clj")
    assert len(errors) == 1
    assert errors[0].location == "s.clj:1:36"
    assert "unterminated string" in errors[0].message


def test_check_stops_at_a_broken_outline() -> None:
    errors = check_symphony('(symphony "S" {} (foo)) (bar)', "s.clj")
    assert [e.location for e in errors] == ["s.clj:1:1", "s.clj:1:25"]


def test_check_of_a_valid_symphony_is_empty() -> None:
    assert check_symphony(wrap('(asset "SPY")'), "s.clj") == []


SAMPLE = """(defsymphony "Sample" {}
 (weight-inverse-volatility 30
  [(if (> (rsi "SPY" {:window 10}) (cumulative-return "QQQ" {:window 60}))
     [(asset "BRK/B")]
     [(filter (max-drawdown {:window 45}) (select-top 1) [(asset "TLT") (asset "IEF")])])
   (group "g" [(weight-specified 0.5 (asset "GLD") 0.5 nil)])]))"""


def test_symbols_names_assets_and_indicator_tickers() -> None:
    symphony = parse_symphony(SAMPLE, "s.clj")
    assert symbols(symphony) == {"SPY", "QQQ", "BRK.B", "TLT", "IEF", "GLD"}
    assert symbols(symphony.body) == symbols(symphony)


def test_iter_nodes_is_pre_order_and_iter_indicators_finds_every_one() -> None:
    symphony = parse_symphony(SAMPLE, "s.clj")
    kinds = [type(node).__name__ for node in iter_nodes(symphony)]
    assert kinds == [
        "WeightInverseVolatility",
        "If",
        "Asset",
        "Filter",
        "Asset",
        "Asset",
        "Group",
        "WeightSpecified",
        "Asset",
        "Cash",
    ]
    assert [(i.fn.value, i.window) for i in iter_indicators(symphony)] == [
        ("relative-strength-index", 10),
        ("cumulative-return", 60),
        ("max-drawdown", 45),
    ]


def nested_ifs(depth: int) -> str:
    step = '(if (> (rsi "SPY" {:window 10}) 70)\n [(asset "UVXY")]\n ['
    return '(defsymphony "Deep" {}\n' + step * depth + '(asset "BRK/B")' + "])" * depth + ")"


def test_five_thousand_nested_ifs_parse_without_recursion() -> None:
    depth = 5000
    symphony = parse_symphony(nested_ifs(depth), "deep.clj")
    node: Node = symphony.body
    levels = 0
    while isinstance(node, If):
        levels += 1
        assert node.location == Location("deep.clj", 2 + 2 * (levels - 1), 1 if levels == 1 else 3)
        node = node.otherwise
    assert levels == depth
    assert isinstance(node, Asset)
    assert node.ticker == "BRK.B"
    assert symbols(symphony) == {"SPY", "UVXY", "BRK.B"}
    assert sum(1 for _ in iter_nodes(symphony)) == 2 * depth + 1
    assert check_symphony(nested_ifs(depth), "deep.clj") == []


def test_errors_deep_inside_are_found() -> None:
    text = nested_ifs(3000).replace('(asset "BRK/B")', '(asset "BRK/B" 1)')
    errors = check_symphony(text, "deep.clj")
    assert len(errors) == 1
    assert "asset description (or nil) must be a string, got 1" in errors[0].message


def big_symphony(size: int, seed: int = 7) -> str:
    """A Composer-style file of at least ``size`` characters with every construct."""
    rng = random.Random(seed)
    tickers = ["SPY", "QQQ", "TQQQ", "UVXY", "BIL", "TLT", "SOXL", "BRK/B", "XLK", "KMLM"]
    parts: list[str] = []
    total = 0
    while total < size:
        a, b, c = rng.sample(tickers, 3)
        part = (
            f'(group "Block {len(parts)}"\n  [(weight-equal\n    [(if\n      (> (rsi "{a}" '
            f"{{:window {rng.randint(2, 200)}}}) {rng.randint(10, 90)})\n"
            f'      [(asset "{b}" "Some exchange traded fund")]\n'
            f'      [(weight-specified 60 (asset "{c}" nil) 40\n'
            f"        (filter (moving-average-return {{:window 90}}) (select-top 2)\n"
            f'          [(asset "{a}") (asset "{b}") (weight-inverse-volatility 14 '
            f'[(asset "{c}") (asset "{a}")])]))])])])'
        )
        parts.append(part)
        total += len(part)
    return f'(defsymphony "Big" {OPTIONS}\n (weight-equal\n  [' + "\n   ".join(parts) + "]))\n"


def test_a_two_megabyte_file_reads_and_parses() -> None:
    text = big_symphony(2_000_000)
    assert len(text) >= 2_000_000
    symphony = parse_symphony(text, "big.clj")
    assert isinstance(symphony.body, WeightEqual)
    assert len(symphony.body.children) > 1000
    assert "BRK.B" in symbols(symphony)


# ------------------------------------------------------------------ rebalance options


@pytest.mark.parametrize(
    ("options", "frequency", "threshold"),
    [
        ("{}", RebalanceFrequency.DAILY, None),
        ("{:rebalance-frequency :daily}", RebalanceFrequency.DAILY, None),
        ("{:rebalance-frequency :weekly}", RebalanceFrequency.WEEKLY, None),
        ("{:rebalance-frequency :monthly}", RebalanceFrequency.MONTHLY, None),
        ("{:rebalance-frequency :quarterly}", RebalanceFrequency.QUARTERLY, None),
        ("{:rebalance-frequency :yearly}", RebalanceFrequency.YEARLY, None),
        ("{:rebalance-frequency :none}", RebalanceFrequency.NONE, None),
        ("{:rebalance-threshold 0.05}", RebalanceFrequency.NONE, 0.05),
        ("{:rebalance-threshold nil}", RebalanceFrequency.DAILY, None),
        ("{:rebalance-frequency :none :rebalance-threshold 0.1}", RebalanceFrequency.NONE, 0.1),
        (
            "{:rebalance-frequency :monthly :rebalance-threshold 0.05}",
            RebalanceFrequency.MONTHLY,
            0.05,
        ),
        ("{:rebalance-frequency :daily :rebalance-threshold nil}", RebalanceFrequency.DAILY, None),
    ],
)
def test_rebalance_options_are_typed(
    options: str, frequency: RebalanceFrequency, threshold: float | None
) -> None:
    symphony = parse_symphony(f'(defsymphony "N" {options} nil)', "s.clj")
    assert symphony.rebalance == RebalanceRule(frequency, threshold)
    assert symphony.rebalance.every_session is (threshold is None and frequency == "daily")


@pytest.mark.parametrize(
    ("options", "where", "message"),
    [
        ("{:rebalance-frequency :hourly}", "1:40", "unknown :rebalance-frequency :hourly"),
        ('{:rebalance-frequency "daily"}', "1:40", "expected one of :daily, :weekly"),
        ("{:rebalance-threshold 5}", "1:40", "write 0.05 for 5 points"),
        ("{:rebalance-threshold 1.0}", "1:40", "write 0.05 for 5 points"),
        ("{:rebalance-threshold 0}", "1:40", "must be above 0"),
        ("{:rebalance-threshold -0.05}", "1:40", "must be above 0"),
        ("{:rebalance-threshold :five}", "1:40", "must be a number like 0.05"),
        (
            "{:rebalance-frequency :daily :rebalance-threshold 0.05}",
            "1:68",
            "has no effect: every session rebalances; use :rebalance-frequency :none",
        ),
    ],
)
def test_rebalance_option_errors_point_at_the_value(options: str, where: str, message: str) -> None:
    caught = problem(f'(defsymphony "N" {options} nil)')
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message
    assert len(check_symphony(f'(defsymphony "N" {options} nil)', "s.clj")) == 1


def test_ticker_locations_lists_assets_then_indicators_in_tree_order() -> None:
    symphony = parse_symphony(SAMPLE, "s.clj")
    found = ticker_locations(symphony)
    assets = [(n.ticker, n.location) for n in iter_nodes(symphony) if isinstance(n, Asset)]
    read = [(i.ticker, i.location) for i in iter_indicators(symphony) if i.ticker is not None]
    assert found == assets + read
    assert [ticker for ticker, _ in found] == ["BRK.B", "TLT", "IEF", "GLD", "SPY", "QQQ"]
    assert {ticker for ticker, _ in found} == symbols(symphony)
