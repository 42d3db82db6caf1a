"""The decision path ``explain`` prints: values on both sides of each ``if``, filter scores
and picks, inverse-volatility shares, and a final line that agrees with ``weights_at``."""

from __future__ import annotations

import re
import statistics
from datetime import date, timedelta

import numpy as np
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import builtin_symphony
from alchemiser.domain.prices import PriceHistory
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.ast import (
    Asset,
    Comparator,
    Condition,
    Filter,
    If,
    Indicator,
    IndicatorFn,
    Location,
    Number,
    Selection,
    Symphony,
)
from alchemiser.strategy.symphony.evaluator import Evaluation, evaluate
from alchemiser.strategy.symphony.explain import explain
from alchemiser.strategy.symphony.parser import parse_symphony, symbols

FIRST = date(2026, 1, 5)

#   A:  10   11   12   11      day 2: 12 > avg(11, 12) = 11.5 -> then; day 3: 11 < 11.5 -> else
#   B: 100  101  110  108.9
#   C: 100  102  105  103
PRICES = PriceHistory(
    dates=np.datetime64(FIRST, "D") + np.arange(4),
    symbols=("A", "B", "C"),
    closes=np.array(
        [
            [10.0, 100.0, 100.0],
            [11.0, 101.0, 102.0],
            [12.0, 110.0, 105.0],
            [11.0, 108.9, 103.0],
        ]
    ),
)
TEXT = """(defsymphony "E" {}
  (if (> (current-price "A") (moving-average-price "A" {:window 2}))
    [(group "up" [(filter (cumulative-return {:window 1}) (select-top 1)
                          [(asset "C") (asset "B")])])]
    [(weight-inverse-volatility 2 [(asset "B") (asset "C")])]))
"""
ASSET_LINE = re.compile(r"^\s+([A-Z][A-Z0-9.]*) (\d+\.\d+)%$")


def day(index: int) -> date:
    return FIRST + timedelta(days=index)


def evaluation(text: str = TEXT, prices: PriceHistory = PRICES) -> Evaluation:
    return evaluate(parse_symphony(text, "e.clj"), prices)


def final_line(weights: dict[str, float]) -> str:
    return "weights: " + (", ".join(f"{s} {w:.2%}" for s, w in weights.items()) or "all cash")


def held(lines: list[str]) -> dict[str, float]:
    """The asset lines of a path, added up per ticker, as fractions."""
    total: dict[str, float] = {}
    for line in lines[1:-1]:
        match = ASSET_LINE.match(line)
        if match:
            total[match[1]] = total.get(match[1], 0.0) + float(match[2]) / 100
    return total


def test_the_then_branch_with_a_filter() -> None:
    result = evaluation()
    lines = explain(result, 2)
    assert lines[0] == "E on 2026-01-07"
    condition = lines[1]
    assert condition.startswith("  if current-price(A, 1) = 12.0000 > ")
    assert "moving-average-price(A, 2) = 11.5000" in condition
    assert ": true -> then" in condition
    assert condition.endswith("[e.clj:2:3]")
    assert lines[2].strip() == "group 'up'  [e.clj:3:6]"
    # Scores: B 100 * (110 / 101 - 1) = 8.9109, C 100 * (105 / 102 - 1) = 2.9412;
    # candidates are listed by name, and the pick is starred.
    assert lines[3].strip() == (
        "filter cumulative-return(1) select-top 1: B 8.9109 *, C 2.9412  [e.clj:3:19]"
    )
    assert lines[4].strip() == "B 100.00%"
    assert lines[-1] == "weights: B 100.00%" == final_line(result.weights_at(day(2)))
    assert not any("inverse volatility" in line for line in lines)  # the untaken branch
    # Each step is indented one level deeper than the one that led to it.
    indents = [len(line) - len(line.lstrip()) for line in lines[1:-1]]
    assert indents == [2, 4, 6, 8]


def test_the_else_branch_with_inverse_volatility() -> None:
    result = evaluation()
    lines = explain(result, 3)
    assert lines[0] == "E on 2026-01-08"
    assert "current-price(A, 1) = 11.0000" in lines[1]
    assert "moving-average-price(A, 2) = 11.5000" in lines[1]
    assert ": false -> else" in lines[1]
    vol_b = statistics.stdev([100 * (110 / 101 - 1), 100 * (108.9 / 110 - 1)])
    vol_c = statistics.stdev([100 * (105 / 102 - 1), 100 * (103 / 105 - 1)])
    share_b = (1 / vol_b) / (1 / vol_b + 1 / vol_c)
    assert lines[2].strip() == (
        f"inverse volatility (2): B vol {vol_b:.4f} -> {share_b:.2%}, "
        f"C vol {vol_c:.4f} -> {1 - share_b:.2%}  [e.clj:5:6]"
    )
    assert [line.strip() for line in lines[3:5]] == [f"B {share_b:.2%}", f"C {1 - share_b:.2%}"]
    weights = result.weights_at(day(3))
    assert weights == pytest.approx({"B": share_b, "C": 1 - share_b})
    assert lines[-1] == final_line(weights)
    assert not any("filter" in line for line in lines)


def test_numbers_unknown_values_and_cash() -> None:
    text = """(defsymphony "N" {}
  (if (> (rsi "A" {:window 2}) 50) [(weight-equal [(asset "A") nil])] [nil]))
"""
    result = evaluation(text)
    # Day 3: A went 10 11 12 11. Wilder RSI(2): seeded on day 2 with gain 1, loss 0, then
    # gain (1 + 0) / 2 = 0.5 and loss (0 + 1) / 2 = 0.5: RSI 50, and 50 > 50 is false.
    assert explain(result, 3) == [
        "N on 2026-01-08",
        "  if relative-strength-index(A, 2) = 50.0000 > 50: false -> else  [e.clj:2:3]",
        "    cash 100.00%",
        "weights: all cash",
    ]
    # Day 2: RSI 100 (no losses yet): then, half A and half cash.
    lines = explain(result, 2)
    assert "= 100.0000 > 50: true -> then" in lines[1]
    assert [line.strip() for line in lines[2:4]] == ["A 50.00%", "cash 50.00%"]
    assert lines[-1] == "weights: A 50.00%" == final_line(result.weights_at(day(2)))
    # Day 1: not enough history for RSI(2): the value is n/a and the verdict unknown.
    assert "relative-strength-index(A, 2) = n/a > 50: unknown" in explain(result, 1)[1]


def test_shares_multiply_down_the_path() -> None:
    text = """(defsymphony "M" {}
  (weight-specified 0.5 (filter (cumulative-return {:window 1}) (select-top 2)
                              [(asset "A") (asset "B") (asset "C")])
                    0.5 (group "g" [(weight-specified 60 (asset "C") 40 nil)])))
"""
    result = evaluation(text)
    lines = explain(result, 2)
    # Day 2 returns: A 9.09, B 8.91, C 2.94: A and B picked, 25% each; C 30% via the group.
    assert "A 9.0909 *, B 8.9109 *, C 2.9412  [" in lines[1]
    assert held(lines) == pytest.approx({"A": 0.25, "B": 0.25, "C": 0.30})
    assert lines[-1] == "weights: A 25.00%, B 25.00%, C 30.00%"
    assert result.weights_at(day(2)) == pytest.approx({"A": 0.25, "B": 0.25, "C": 0.30})


def test_builtin_tecl_path_ends_in_its_weights() -> None:
    as_of = date(2026, 7, 31)
    symphony = builtin_symphony("tecl")
    prices = FilePriceStore.bundled().history(sorted(symbols(symphony)), as_of, ALL_HISTORY)
    result = evaluate(symphony, prices)
    weights = result.weights_at(as_of)
    lines = explain(result, result.row(as_of))
    assert lines[0] == "TECL on 2026-07-31"
    assert lines[-1] == final_line(weights)
    assert held(lines) == pytest.approx(weights, abs=1e-4)
    conditions = [line for line in lines if line.lstrip().startswith("if ")]
    assert conditions  # the regime test at least
    for line in conditions:
        assert re.search(r": (true -> then|false -> else)  \[builtin:tecl\.clj:\d+:\d+\]$", line)
        # Every indicator operand shows its value; the regime test has two of them.
        assert "n/a" not in line
    assert conditions[0].count(" = ") == 2
    assert "current-price(SPY, 1)" in conditions[0]
    assert "moving-average-price(SPY, 200)" in conditions[0]


def test_an_oscillator_shows_its_options() -> None:
    here = Location("e.clj", 1, 1)
    options = (("long-window", 3), ("short-window", 2))
    ppo = Indicator(IndicatorFn.PPO, "A", 3, here, options)
    scored = Filter(
        Indicator(IndicatorFn.PPO, None, 3, here, options),
        Selection.TOP,
        1,
        (Asset("B", None, here), Asset("C", None, here)),
        here,
    )
    body = If(
        Condition(Comparator.EQ, ppo, Number(0.0, here), here), Asset("A", None, here), scored, here
    )
    lines = explain(evaluate(Symphony("O", {}, body, here), PRICES), 3)
    # A: PPO(2, 3) on day 3 is 1300/2403 = 0.5410, not 0.
    assert (
        "if percentage-price-oscillator(A, long-window 3, short-window 2) = 0.5410 = 0: false"
        in lines[1]
    )
    assert (
        "filter percentage-price-oscillator(long-window 3, short-window 2) select-top 1" in lines[2]
    )
