"""Composer's JSON score: every step and field read into the tree, every error located by
its JSON path, the writers, round trips that keep every date's weights, and the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import BUILTINS, builtin_text, read_symphony_file
from alchemiser.cli import main
from alchemiser.errors import StrategyError
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.ast import (
    Asset,
    Cash,
    Comparator,
    Filter,
    Group,
    If,
    Indicator,
    IndicatorFn,
    Number,
    RebalanceFrequency,
    RebalanceRule,
    ScoreLocation,
    Selection,
    Symphony,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.strategy.symphony.evaluator import evaluate
from alchemiser.strategy.symphony.jsondata import _decode_deep, decode, encode
from alchemiser.strategy.symphony.parser import parse_symphony, symbols
from alchemiser.strategy.symphony.score import looks_like_score, parse_score, read_score
from alchemiser.strategy.symphony.writer import to_score, to_text
from tests.bench_scripts import bench_script

SOURCE = "s.json"
AS_OF = date(2026, 7, 31)
ROOT = Path(__file__).resolve().parents[3]


def score(*children: dict[str, Any], **root: Any) -> dict[str, Any]:
    return {"id": "r", "step": "root", "name": "S", **root, "children": list(children)}


def asset(ticker: str, **fields: Any) -> dict[str, Any]:
    return {"id": "x", "step": "asset", "ticker": ticker, **fields}


def if_(condition: dict[str, Any], then: list[Any], otherwise: list[Any]) -> dict[str, Any]:
    return {
        "step": "if",
        "children": [
            {"step": "if-child", "is-else-condition?": False, **condition, "children": then},
            {"step": "if-child", "is-else-condition?": True, "children": otherwise},
        ],
    }


RSI_ABOVE_70 = {
    "comparator": "gt",
    "lhs-fn": "relative-strength-index",
    "lhs-val": "SPY",
    "lhs-window-days": 10,
    "rhs-fixed-value?": True,
    "rhs-val": 70,
}


def body(data: dict[str, Any]) -> Any:
    return read_score(score(data), SOURCE).body


def fails(data: object, match: str, where: str) -> None:
    with pytest.raises(StrategyError, match=match) as caught:
        read_score(data, SOURCE)
    assert caught.value.location == f"{SOURCE}:{where}" if where else SOURCE


# ---- steps and fields ----


def test_root_fields_and_rebalance_rules() -> None:
    plain = read_score(score(asset("SPY"), description="d"), SOURCE)
    assert plain.name == "S"
    assert plain.rebalance == RebalanceRule()
    assert plain.options == {"rebalance-frequency": "daily", "description": "d"}
    assert plain.body == Asset("SPY", None, ScoreLocation.of(SOURCE, "children[0]"))
    assert str(plain.location) == SOURCE
    for word in ("none", "daily", "weekly", "monthly", "quarterly", "yearly"):
        symphony = read_score(score(asset("SPY"), rebalance=word), SOURCE)
        assert symphony.rebalance == RebalanceRule(RebalanceFrequency(word))
    corridor = score(asset("SPY"), rebalance="none", **{"rebalance-corridor-width": 0.05})
    assert read_score(corridor, SOURCE).rebalance == RebalanceRule(RebalanceFrequency.NONE, 0.05)
    nulled = score(asset("SPY"), rebalance="daily", **{"rebalance-corridor-width": None})
    assert read_score(nulled, SOURCE).rebalance == RebalanceRule()


def test_weight_steps() -> None:
    equal = body({"step": "wt-cash-equal", "children": [asset("SPY"), asset("BRK/B")]})
    assert isinstance(equal, WeightEqual)
    assert [c.ticker for c in equal.children if isinstance(c, Asset)] == ["SPY", "BRK.B"]
    assert isinstance(body({"step": "wt-cash-equal", "children": []}), Cash)
    specified = body(
        {
            "step": "wt-cash-specified",
            "children": [
                {**asset("SPY"), "weight": {"num": "60", "den": 100}},
                {**asset("TLT"), "weight": {"num": 30, "den": "100"}},
            ],
        }
    )
    assert isinstance(specified, WeightSpecified)
    assert specified.weights == (0.6, 0.3)
    percent = body(
        {
            "step": "wt-cash-specified",
            "children": [
                {**asset("SPY"), "weight": {"num": 60, "den": 1}},
                {**asset("TLT"), "weight": {"num": 40, "den": 1}},
            ],
        }
    )
    assert isinstance(percent, WeightSpecified)
    assert percent.weights == (0.6, 0.4)
    inverse = body({"step": "wt-inverse-vol", "window-days": "14", "children": [asset("SPY")]})
    assert isinstance(inverse, WeightInverseVolatility)
    assert inverse.window == 14


def test_group_asset_and_empty() -> None:
    group = body({"step": "group", "name": "G", "children": [asset("SPY", name="SPDR")]})
    assert isinstance(group, Group)
    assert group.label == "G"
    assert group.child == Asset("SPY", "SPDR", ScoreLocation.of(SOURCE, "children[0].children[0]"))
    assert isinstance(body({"step": "empty"}), Cash)
    assert isinstance(body(asset("EQUITIES::SPY//USD")), Asset)
    assert body(asset("EQUITIES::SPY//USD")).ticker == "SPY"


def test_if_with_fixed_value_and_indicator_sides() -> None:
    node = body(if_(RSI_ABOVE_70, [asset("UVXY")], [asset("SPY"), asset("TLT")]))
    assert isinstance(node, If)
    condition = node.condition
    assert condition.op is Comparator.GT
    assert isinstance(condition.left, Indicator)
    assert (condition.left.fn, condition.left.ticker, condition.left.window) == (
        IndicatorFn.RSI,
        "SPY",
        10,
    )
    assert str(condition.left.location) == f"{SOURCE}:children[0].children[0].lhs-fn"
    assert condition.right == Number(
        70.0, ScoreLocation.of(SOURCE, "children[0].children[0].rhs-val")
    )
    assert isinstance(node.then, Asset)
    assert isinstance(node.otherwise, WeightEqual)
    names = {
        "gt": Comparator.GT,
        "gte": Comparator.GE,
        "eq": Comparator.EQ,
        "lt": Comparator.LT,
        "lte": Comparator.LE,
    }
    for word, op in names.items():
        versus = {
            "comparator": word,
            "lhs-fn": "current-price",
            "lhs-val": "SPY",
            "rhs-fixed-value?": False,
            "rhs-fn": "moving-average-price",
            "rhs-val": "SPY",
            "rhs-fn-params": {"window": 200},
        }
        node = body(if_(versus, [asset("SPY")], []))
        assert isinstance(node, If)
        assert node.condition.op is op
        assert isinstance(node.otherwise, Cash)
        left, right = node.condition.left, node.condition.right
        assert isinstance(left, Indicator)
        assert isinstance(right, Indicator)
        assert (left.fn, left.window, right.fn, right.window) == (
            IndicatorFn.CURRENT_PRICE,
            1,
            IndicatorFn.MOVING_AVERAGE_PRICE,
            200,
        )
    string_number = body(if_({**RSI_ABOVE_70, "rhs-val": "-2.5"}, [asset("SPY")], []))
    assert isinstance(string_number, If)
    assert isinstance(string_number.condition.right, Number)
    assert string_number.condition.right.value == -2.5
    no_else = {"step": "if", "children": [{"step": "if-child", **RSI_ABOVE_70, "children": []}]}
    only_then = body(no_else)
    assert isinstance(only_then, If)
    assert isinstance(only_then.then, Cash)
    assert isinstance(only_then.otherwise, Cash)


def test_every_function_name() -> None:
    long_names = {
        "relative-strength-index": IndicatorFn.RSI,
        "standard-deviation-return": IndicatorFn.STDEV_RETURN,
        "standard-deviation-price": IndicatorFn.STDEV_PRICE,
        "moving-average-price": IndicatorFn.MOVING_AVERAGE_PRICE,
        "exponential-moving-average-price": IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE,
        "cumulative-return": IndicatorFn.CUMULATIVE_RETURN,
        "moving-average-return": IndicatorFn.MOVING_AVERAGE_RETURN,
        "max-drawdown": IndicatorFn.MAX_DRAWDOWN,
    }
    for name, fn in long_names.items():
        node = body(if_({**RSI_ABOVE_70, "lhs-fn": name}, [asset("SPY")], []))
        assert isinstance(node, If)
        assert isinstance(node.condition.left, Indicator)
        assert node.condition.left.fn is fn


def test_percentage_price_oscillators_take_their_options_with_defaults() -> None:
    ppo = {**RSI_ABOVE_70, "lhs-fn": "percentage-price-oscillator", "lhs-window-days": None}
    ppo["lhs-fn-params"] = {"short-window": 5}
    node = body(if_(ppo, [asset("SPY")], []))
    assert isinstance(node, If)
    left = node.condition.left
    assert isinstance(left, Indicator)
    assert left.fn is IndicatorFn.PPO
    assert left.params == (("long-window", 26), ("short-window", 5))
    assert left.window == 26
    signal = {**ppo, "lhs-fn": "percentage-price-oscillator-signal", "lhs-fn-params": None}
    node = body(if_(signal, [asset("SPY")], []))
    assert isinstance(node, If)
    left = node.condition.left
    assert isinstance(left, Indicator)
    assert left.params == (("long-window", 26), ("short-window", 12), ("smooth-window", 9))


def test_filter() -> None:
    node = body(
        {
            "step": "filter",
            "sort-by-fn": "cumulative-return",
            "sort-by-window-days": 60,
            "select-fn": "bottom",
            "select-n": "2",
            "children": [asset("SPY"), asset("TLT"), asset("GLD")],
        }
    )
    assert isinstance(node, Filter)
    assert (node.score.fn, node.score.ticker, node.score.window) == (
        IndicatorFn.CUMULATIVE_RETURN,
        None,
        60,
    )
    assert (node.selection, node.count, len(node.children)) == (Selection.BOTTOM, 2, 3)
    params = body(
        {
            "step": "filter",
            "sort-by-fn": "relative-strength-index",
            "sort-by-fn-params": {"window": 10},
            "select-fn": "top",
            "select-n": 1,
            "children": [asset("SPY"), asset("TLT")],
        }
    )
    assert isinstance(params, Filter)
    assert (params.score.window, params.selection) == (10, Selection.TOP)


# ---- errors: each names its JSON path ----

NESTED = "children[0].children[0]"


@pytest.mark.parametrize(
    ("data", "match", "where"),
    [
        ([], "expected a JSON object", ""),
        ({"step": "if"}, "expected the root step", ""),
        (
            score(asset("SPY"), rebalance="fortnightly"),
            "unknown rebalance 'fortnightly'",
            "rebalance",
        ),
        (score(asset("SPY"), rebalance="dayly"), "did you mean `daily`", "rebalance"),
        (
            score(asset("SPY"), rebalance="weekly", **{"rebalance-corridor-width": 0.05}),
            "only with rebalance",
            "rebalance-corridor-width",
        ),
        (
            score(asset("SPY"), rebalance="none", **{"rebalance-corridor-width": 5}),
            "below 1",
            "rebalance-corridor-width",
        ),
        (score(asset("SPY"), **{"asset-class": "CRYPTO"}), "crypto symphonies", "asset-class"),
        (
            score({"step": "wt-cash-equl", "children": []}),
            "did you mean `wt-cash-equal`",
            "children[0].step",
        ),
        (score({"step": "if-child"}), "cannot stand here", "children[0].step"),
        (score({"children": []}), "unknown step no step", "children[0].step"),
        (
            score("SPY"),  # type: ignore[arg-type]
            "expected a JSON object",
            "children[0]",
        ),
        (
            score({"step": "group", "children": "x"}),
            "expected a list of steps",
            "children[0].children",
        ),
        (
            score(asset("CRYPTO::BTC//USD")),
            "crypto symphonies are not supported: 'CRYPTO::BTC//USD'",
            "children[0].ticker",
        ),
        (score(asset("FOREX::EUR//USD")), "unknown asset class", "children[0].ticker"),
        (score(asset("not a ticker")), "invalid ticker", "children[0].ticker"),
        (
            score(asset(3)),  # type: ignore[arg-type]
            "expected a string, got 3",
            "children[0].ticker",
        ),
        (
            score({"step": "wt-cash-specified", "children": [asset("SPY")]}),
            "expected a weight",
            "children[0].children[0].weight",
        ),
        (
            score(
                {
                    "step": "wt-cash-specified",
                    "children": [{**asset("SPY"), "weight": {"num": "x", "den": 1}}],
                }
            ),
            "expected a number, got 'x'",
            "children[0].children[0].weight.num",
        ),
        (
            score(
                {
                    "step": "wt-cash-specified",
                    "children": [{**asset("SPY"), "weight": {"num": 1, "den": 0}}],
                }
            ),
            "den above 0",
            "children[0].children[0].weight",
        ),
        (
            score(
                {
                    "step": "wt-cash-specified",
                    "children": [{**asset("SPY"), "weight": {"num": 3, "den": 2}}],
                }
            ),
            "sum to 1.5",
            "children[0].children",
        ),
        (
            score({"step": "wt-inverse-vol", "window-days": 0, "children": []}),
            "positive whole",
            "children[0].window-days",
        ),
        (
            score({"step": "wt-inverse-vol", "window-days": 2.5, "children": []}),
            "positive whole",
            "children[0].window-days",
        ),
        (score({"step": "if", "children": []}), "0 condition", "children[0].children"),
        (
            score({"step": "if", "children": [asset("SPY")]}),
            "holds if-child steps",
            "children[0].children[0].step",
        ),
        (
            score({"step": "if", "children": [{"step": "if-child", "is-else-condition?": "no"}]}),
            "expected true or false",
            "children[0].children[0].is-else-condition?",
        ),
        (
            score(if_({**RSI_ABOVE_70, "comparator": "gtt"}, [], [])),
            "did you mean `gt`",
            f"{NESTED}.comparator",
        ),
        (
            score(if_({**RSI_ABOVE_70, "lhs-fn": "relative-strength-indx"}, [], [])),
            "did you mean `relative-strength-index`",
            f"{NESTED}.lhs-fn",
        ),
        (
            score(if_({**RSI_ABOVE_70, "lhs-window-days": None}, [], [])),
            "needs a window",
            f"{NESTED}.lhs-fn",
        ),
        (
            score(if_({**RSI_ABOVE_70, "lhs-fn-params": {"windw": 3}}, [], [])),
            "unknown relative-strength-index option 'windw'",
            f"{NESTED}.lhs-fn-params",
        ),
        (
            score(if_({**RSI_ABOVE_70, "lhs-fn-params": 3}, [], [])),
            "expected a JSON object",
            f"{NESTED}.lhs-fn-params",
        ),
        (
            score(
                if_(
                    {
                        **RSI_ABOVE_70,
                        "lhs-fn": "percentage-price-oscillator",
                        "lhs-fn-params": {"smooth-window": 3},
                    },
                    [],
                    [],
                )
            ),
            "unknown percentage-price-oscillator option 'smooth-window'",
            f"{NESTED}.lhs-fn-params",
        ),
        (
            score(if_({**RSI_ABOVE_70, "rhs-val": "high"}, [], [])),
            "expected a number, got 'high'",
            f"{NESTED}.rhs-val",
        ),
        (
            score(if_({**RSI_ABOVE_70, "rhs-fixed-value?": False}, [], [])),
            "unknown rhs-fn",
            f"{NESTED}.rhs-fn",
        ),
        (
            score(if_({**RSI_ABOVE_70, "lhs-val": "CRYPTO::ETH//USD"}, [], [])),
            "crypto",
            f"{NESTED}.lhs-val",
        ),
        (
            score(
                {
                    "step": "filter",
                    "sort-by-fn": "cumulative-return",
                    "sort-by-window-days": 5,
                    "select-fn": "best",
                    "select-n": 1,
                }
            ),
            "unknown select-fn 'best'",
            "children[0].select-fn",
        ),
        (
            score(
                {
                    "step": "filter",
                    "sort-by-fn": "cumulative-return",
                    "sort-by-window-days": 5,
                    "select-fn": "top",
                    "select-n": "two",
                }
            ),
            "positive whole number, got 'two'",
            "children[0].select-n",
        ),
        (
            score(
                {
                    "step": "wt-cash-equal",
                    "children": [asset("SPY"), {"step": "group", "children": [{"step": "nope"}]}],
                }
            ),
            "unknown step 'nope'",
            "children[0].children[1].children[0].step",
        ),
    ],
)
def test_errors_name_the_json_path(data: object, match: str, where: str) -> None:
    fails(data, match, where)


def test_malformed_json_is_located_by_line_and_column() -> None:
    with pytest.raises(StrategyError, match=r"^s\.json:2:9: invalid JSON") as caught:
        parse_score('{"step": "root",\n "name" "S"}', SOURCE)
    assert caught.value.location == "s.json:2:9"
    with pytest.raises(StrategyError, match=r"^s\.json:1:5: invalid JSON: expected"):
        _decode_deep("[1, ]", SOURCE)


def test_deep_documents_are_read_and_written_without_recursion() -> None:
    depth = 5000
    text = "[" * depth + '{"a": [1.5, "x", true, null]}' + "]" * depth
    value = decode(text, SOURCE)
    for _ in range(depth):
        assert isinstance(value, list)
        (value,) = value
    assert value == {"a": [1.5, "x", True, None]}
    written = encode(decode(text, SOURCE), indent=0).replace("\n", "").replace(": ", ":")
    assert written == text.replace(" ", "")
    with pytest.raises(StrategyError, match=r"s\.json:1:5001: invalid JSON"):
        decode("[" * depth + "}", SOURCE)


def test_decoder_agrees_with_the_standard_one() -> None:
    documents = [
        '{"a": [1, 2.5, -3e2, "x\\u00e9\\n", true, false, null, {}, []], "b": {"c": "d"}}',
        "[]",
        "3",
        ' {"a" : [ ] } ',
    ]
    for document in documents:
        assert _decode_deep(document, SOURCE) == json.loads(document)
        value = json.loads(document)
        assert encode(value) == json.dumps(value, indent=2, ensure_ascii=False)
    for bad in ("{", '{"a" 1}', "[1 2]", '{"a":1,}', "[1] x", "", "{1:2}", '"abc', "[tru]"):
        with pytest.raises(StrategyError, match=r"^s\.json:1:\d+: invalid JSON"):
            _decode_deep(bad, SOURCE)


def test_a_deep_score_reads_back() -> None:
    tree: dict[str, Any] = asset("SPY")
    for _ in range(1500):
        tree = if_(RSI_ABOVE_70, [asset("UVXY")], [tree])
    text = encode(score(tree))
    symphony = parse_score(text, SOURCE)
    assert parse_score(encode(to_score(symphony)), SOURCE).name == "S"
    assert parse_symphony(to_text(symphony), "deep.clj").name == "S"


def test_looks_like_score() -> None:
    assert looks_like_score("(defsymphony", "a.JSON")
    assert looks_like_score('  \n{"step": "root"}', "a.clj")
    assert not looks_like_score("(defsymphony", "a.clj")


# ---- writers ----


def test_writers_spell_each_field() -> None:
    text = """(defsymphony "W" {:rebalance-frequency :none :rebalance-threshold 0.05}
      (weight-specified 0.5
        (if (< 30 (rsi "BRK/B" {:window 10})) [(asset "SPY" "SPDR")] [])
        0.5 (filter (max-drawdown {:window 5}) (select-bottom 1)
              [(asset "TLT") (group "g" [(weight-inverse-volatility 3 [(asset "GLD")])])])))"""
    symphony = parse_symphony(text, "w.clj")
    written = to_score(symphony)
    assert written["rebalance"] == "none"
    assert written["rebalance-corridor-width"] == 0.05
    top = written["children"][0]  # type: ignore[index]
    assert top["step"] == "wt-cash-specified"
    first, second = top["children"]
    assert first["weight"] == {"num": 50, "den": 100}
    # A number on the left is written on the right, the comparator mirrored.
    condition = first["children"][0]
    assert condition["comparator"] == "gt"
    assert condition["lhs-val"] == "BRK/B"
    assert condition["rhs-val"] == 30
    assert first["children"][1]["children"][0]["step"] == "empty"
    assert second["sort-by-fn"] == "max-drawdown"
    assert second["select-fn"] == "bottom"
    again = read_score(json.loads(encode(written)), SOURCE)
    assert again.rebalance == symphony.rebalance
    assert to_score(again) == to_score(read_score(written, SOURCE))
    assert parse_symphony(to_text(again), "again.clj").rebalance == symphony.rebalance


def test_what_a_score_cannot_say_is_refused() -> None:
    weekly = parse_symphony(
        '(defsymphony "C" {:rebalance-frequency :weekly :rebalance-threshold 0.1} (asset "SPY"))',
        "c.clj",
    )
    with pytest.raises(StrategyError, match="no JSON score form"):
        to_score(weekly)
    numbers = parse_symphony('(defsymphony "N" {} (if (> 1 2) [(asset "SPY")] []))', "n.clj")
    with pytest.raises(StrategyError, match=r"n\.clj:1:\d+: a condition comparing two numbers"):
        to_score(numbers)


def test_percentage_price_oscillators_write_their_options() -> None:
    ppo = {**RSI_ABOVE_70, "lhs-fn": "percentage-price-oscillator-signal", "lhs-window-days": None}
    symphony = read_score(score(if_(ppo, [asset("SPY")], [])), SOURCE)
    written = to_score(symphony)
    assert read_score(written, SOURCE).body == read_score(written, SOURCE).body
    condition = written["children"][0]["children"][0]["children"][0]  # type: ignore[index]
    assert condition["lhs-fn-params"] == {"long-window": 26, "short-window": 12, "smooth-window": 9}
    assert "{:long-window 26 :short-window 12 :smooth-window 9}" in to_text(symphony)


# ---- round trips: the same weights on every date ----


def assert_same_weights(first: Symphony, second: Symphony) -> None:
    history = FilePriceStore.bundled().history(sorted(symbols(first)), AS_OF, ALL_HISTORY)
    assert symbols(first) == symbols(second)
    one, two = evaluate(first, history).root, evaluate(second, history).root
    np.testing.assert_array_equal(one.valid, two.valid)
    assert one.weights.keys() == two.weights.keys()
    for symbol, series in one.weights.items():
        np.testing.assert_array_equal(series, two.weights[symbol])


def generated(seed: int) -> str:
    bench = bench_script("bench_symphony")
    setattr(bench, "MIN_IFS", 60)  # noqa: B010 (a small one for tests)
    setattr(bench, "MIN_FILTERS", 10)  # noqa: B010
    text: str = bench.Generator(seed).symphony()
    return text


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtins_round_trip_both_ways(name: str) -> None:
    text, source = builtin_text(name)
    tree = parse_symphony(text, source)
    from_json = parse_score(encode(to_score(tree)), SOURCE)
    assert_same_weights(tree, from_json)
    assert_same_weights(tree, parse_symphony(to_text(from_json), "back.clj"))
    assert_same_weights(tree, parse_symphony(to_text(tree), "text.clj"))


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_symphonies_round_trip_both_ways(seed: int) -> None:
    tree = parse_symphony(generated(seed), "generated.clj")
    score_text = encode(to_score(tree))
    from_json = parse_score(score_text, SOURCE)
    assert_same_weights(tree, from_json)
    # JSON -> text -> tree: the score's own symphony, through text.
    through_text = parse_symphony(to_text(from_json), "through.clj")
    assert_same_weights(from_json, through_text)
    assert encode(to_score(through_text)) == score_text


# ---- files and the CLI ----


def test_files_are_read_by_their_form(tmp_path: Path) -> None:
    text, _ = builtin_text("tecl")
    clj = tmp_path / "tecl.clj"
    clj.write_text(text)
    as_json = tmp_path / "tecl.json"
    as_json.write_text(encode(to_score(parse_symphony(text, "t"))))
    braced = tmp_path / "tecl.txt"
    braced.write_text(as_json.read_text())
    assert_same_weights(read_symphony_file(clj), read_symphony_file(as_json))
    assert read_symphony_file(braced).name == read_symphony_file(clj).name
    bad = tmp_path / "bad.json"
    bad.write_text('{"step": "root",\n  "name": }')
    with pytest.raises(StrategyError, match=rf"^{bad}:2:11: invalid JSON"):
        read_symphony_file(bad)


def test_convert_both_ways_and_use_the_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", "builtin:nuclear"]) == 0
    written = capsys.readouterr().out
    assert json.loads(written)["step"] == "root"
    score_file = tmp_path / "nuclear.json"
    score_file.write_text(written)
    text_file = tmp_path / "nuclear.clj"
    assert main(["convert", str(score_file), "--out", str(text_file)]) == 0
    assert "written as text" in capsys.readouterr().err
    assert text_file.read_text().startswith('(defsymphony "Nuclear')
    assert main(["convert", str(score_file), "--to", "json"]) == 0
    assert capsys.readouterr().out == written
    assert main(["validate", str(score_file), str(text_file)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{score_file}: ok", f"{text_file}: ok"]
    outputs = []
    for path in (score_file, text_file):
        assert main(["evaluate", str(path), "--as-of", "2026-07-31", "--json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert outputs[0]["weights"]


def test_validate_and_convert_report_a_bad_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(score(asset("CRYPTO::BTC//USD"))))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:children[0].ticker: crypto symphonies are not supported" in out
    assert main(["convert", str(path)]) == 1
    assert "STRATEGY_INVALID" in capsys.readouterr().err


COMPOSER_SPELLINGS = """
(defsymphony "Spellings" {:asset-class "EQUITIES", :rebalance-frequency :daily}
  (weight-equal
    [(if (> (percentage-price-oscillator "SPY" {:short-window 10 :long-window 30})
            (percentage-price-oscillator-signal "SPY" {:smooth-window 5}))
       [(asset "EQUITIES::SPY//USD" "SPDR S&P 500")]
       [(asset "TLT")])
     (if (= (rsi "QQQ" 10) 100)
       [(asset "QQQ")]
       [(filter (standard-deviation-return 20) (select-bottom 1)
          [(asset "GLD") (asset "BIL")])])
     (filter (percentage-price-oscillator {:short-window 5 :long-window 20}) (select-top 1)
       [(asset "XLK") (asset "XLP")])]))
"""


def test_composer_spellings_round_trip_both_ways() -> None:
    tree = parse_symphony(COMPOSER_SPELLINGS, "spellings.clj")
    from_json = parse_score(encode(to_score(tree)), SOURCE)
    assert_same_weights(tree, from_json)
    through_text = parse_symphony(to_text(from_json), "through.clj")
    assert_same_weights(tree, through_text)
    assert encode(to_score(through_text)) == encode(to_score(from_json))
