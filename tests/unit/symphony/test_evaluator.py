"""The symphony evaluator on hand-built price histories whose answers are worked out by hand.

Covers every node kind and each decision of the evaluator's module docstring: cash,
path-based validity, filter exclusions and ties, sub-portfolio return series, inverse
volatility, and the errors ``weights_at`` raises.
"""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import date, timedelta

import numpy as np
import pytest

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import DataError, DataErrorKind, StrategyError
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
from alchemiser.strategy.symphony.parser import parse_symphony
from alchemiser.strategy.symphony.strategy import SymphonyStrategy

NAN = math.nan
FIRST = date(2026, 1, 5)
SOURCE = "s.clj"


def day(index: int) -> date:
    return FIRST + timedelta(days=index)


def history(**closes: list[float]) -> PriceHistory:
    """One column per keyword (the ticker), one row per consecutive day from FIRST."""
    symbols = tuple(sorted(closes))
    length = len(closes[symbols[0]])
    dates = np.datetime64(FIRST, "D") + np.arange(length)
    matrix = np.column_stack([np.asarray(closes[s], dtype=np.float64) for s in symbols])
    return PriceHistory(dates=dates, symbols=symbols, closes=matrix)


def wrap(body: str) -> str:
    """``body`` as the node of a symphony named S, on line 2 from column 1."""
    return f'(defsymphony "S" {{}}\n{body})'


def find(body: str, needle: str) -> str:
    """file:line:col of the first ``needle`` in ``body`` once wrapped (it sits on line 2+)."""
    text = wrap(body)
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return f"{SOURCE}:{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def run(body: str, prices: PriceHistory) -> Evaluation:
    return evaluate(parse_symphony(wrap(body), SOURCE), prices)


def weights(body: str, prices: PriceHistory, index: int) -> dict[str, float]:
    return run(body, prices).weights_at(day(index))


def refusal(body: str, prices: PriceHistory, index: int) -> StrategyError:
    with pytest.raises(StrategyError) as caught:
        weights(body, prices, index)
    return caught.value


FLAT = history(A=[10.0, 11.0, 12.0], B=[20.0, 20.0, 20.0], C=[5.0, 6.0, 7.0])


# ------------------------------------------------------------------ plain nodes


def test_asset_takes_the_whole_weight() -> None:
    assert weights('(asset "A")', FLAT, 2) == {"A": 1.0}
    assert weights('(asset "A" "a description")', FLAT, 0) == {"A": 1.0}


@pytest.mark.parametrize(
    "body",
    [
        "nil",
        "[]",
        '(if (> 1 2) [(asset "A")])',  # no else branch
        '(if (> 1 2) [(asset "A")] [nil])',
        '(if (> 1 2) [(asset "A")] [])',
        '(group "empty" [nil])',
    ],
)
def test_empty_branches_stay_in_cash(body: str) -> None:
    assert weights(body, FLAT, 2) == {}


def test_weight_equal_counts_nil_children_as_shares_of_cash() -> None:
    three = weights('(weight-equal [(asset "A") nil (asset "B")])', FLAT, 1)
    assert three == pytest.approx({"A": 1 / 3, "B": 1 / 3})
    assert weights('(weight-equal [(asset "A") []])', FLAT, 1) == pytest.approx({"A": 0.5})


def test_weight_equal_adds_up_a_symbol_reached_twice() -> None:
    body = '(weight-equal [(asset "A") (weight-equal [(asset "A") (asset "B")])])'
    assert weights(body, FLAT, 1) == pytest.approx({"A": 0.75, "B": 0.25})


def test_a_vector_of_several_nodes_is_weight_equal() -> None:
    body = '(group "g" [(asset "A") (asset "B") (asset "C") (asset "A")])'
    assert weights(body, FLAT, 1) == pytest.approx({"A": 0.5, "B": 0.25, "C": 0.25})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('(weight-specified 0.6 (asset "A") 0.3 (asset "B"))', {"A": 0.6, "B": 0.3}),
        ('(weight-specified 60 (asset "A") 40 (asset "B"))', {"A": 0.6, "B": 0.4}),
        ('(weight-specified 1 (asset "C"))', {"C": 1.0}),
        ('(weight-specified 100 (asset "C"))', {"C": 1.0}),
        ('(weight-specified 0.5 (asset "A") 0.5 nil)', {"A": 0.5}),
        ('(weight-specified 0 (asset "A") 0.25 (asset "B"))', {"B": 0.25}),
        (
            '(weight-specified 0.5 (weight-equal [(asset "A") (asset "B")]) 0.5 (asset "A"))',
            {"A": 0.75, "B": 0.25},
        ),
    ],
)
def test_weight_specified_fractions_and_percents(body: str, expected: dict[str, float]) -> None:
    assert weights(body, FLAT, 2) == pytest.approx(expected)


def test_group_passes_its_child_through() -> None:
    inner = '(weight-specified 0.7 (asset "A") 0.2 (asset "B"))'
    grouped = weights(f'(group "outer" [(group "inner" [{inner}])])', FLAT, 2)
    assert grouped == weights(inner, FLAT, 2) == pytest.approx({"A": 0.7, "B": 0.2})


# ------------------------------------------------------------------------- if

IF_PRICES = history(A=[10.0, 11.0], B=[11.0, 11.0], T=[1.0, 1.0], E=[1.0, 1.0])
PRICE_A = '(current-price "A")'  # 11 on day 1
PRICE_B = '(current-price "B")'  # 11 on day 1


@pytest.mark.parametrize(
    ("op", "left", "right", "holds"),
    [
        (">", PRICE_A, "11", False),
        (">=", PRICE_A, "11", True),
        ("<", PRICE_A, "11", False),
        ("<=", PRICE_A, "11", True),
        (">", PRICE_A, "10.5", True),
        ("<", PRICE_A, "11.5", True),
        (">", "12", PRICE_A, True),
        ("<", "12", PRICE_A, False),
        (">=", "11", PRICE_A, True),
        ("<=", "10", PRICE_A, True),
        ("<", "11", PRICE_A, False),
        (">", "2", "1", True),
        ("<", "2", "1", False),
        (">=", "-1", "-1", True),
        ("<=", "-1.5", "-2", False),
        (">", PRICE_A, PRICE_B, False),
        (">=", PRICE_A, PRICE_B, True),
        ("<", '(current-price "E")', PRICE_B, True),
    ],
)
def test_if_compares_both_sides_and_takes_a_branch(
    op: str, left: str, right: str, holds: bool
) -> None:
    body = f'(if ({op} {left} {right}) [(asset "T")] [(asset "E")])'
    assert weights(body, IF_PRICES, 1) == ({"T": 1.0} if holds else {"E": 1.0})


def test_if_decides_each_date_on_its_own_values() -> None:
    prices = history(A=[10.0, 12.0, 9.0, 13.0], T=[1.0] * 4, E=[1.0] * 4)
    body = '(if (> (current-price "A") 10) [(asset "T")] [(asset "E")])'
    evaluation = run(body, prices)
    assert [evaluation.weights_at(day(i)) for i in range(4)] == [
        {"E": 1.0},
        {"T": 1.0},
        {"E": 1.0},
        {"T": 1.0},
    ]


def test_indicator_conditions_use_the_documented_values() -> None:
    # A: 10, 11, 12, 13; on day 3 the 3-day average is 12 and the 2-day return 13/11 - 1.
    prices = history(A=[10.0, 11.0, 12.0, 13.0], T=[1.0] * 4, E=[1.0] * 4)
    above = '(if (> (current-price "A") (moving-average-price "A" {:window 3})) [(asset "T")] [])'
    assert weights(above, prices, 3) == {"T": 1.0}
    ret = 100 * (13 / 11 - 1)  # 18.18...
    over = f'(if (> (cumulative-return "A" {{:window 2}}) {ret - 0.01}) [(asset "T")] [])'
    under = f'(if (> (cumulative-return "A" {{:window 2}}) {ret + 0.01}) [(asset "T")] [])'
    assert weights(over, prices, 3) == {"T": 1.0}
    assert weights(under, prices, 3) == {}


# ------------------------------------------------------- path-based validity

GAPPY = history(A=[10.0, 11.0, 12.0, 13.0], M=[NAN, NAN, NAN, 5.0])


def test_an_untaken_branch_with_missing_data_does_not_matter() -> None:
    assert weights('(if (> 1 0) [(asset "A")] [(asset "M")])', GAPPY, 2) == {"A": 1.0}
    deep = (
        '(if (< 1 0) [(if (> (rsi "M" {:window 50}) 50) [(asset "M")] [(asset "M")])] '
        '[(asset "A")])'
    )
    assert weights(deep, GAPPY, 2) == {"A": 1.0}


def test_a_taken_branch_with_missing_data_has_no_decision() -> None:
    body = '(if (< 1 0) [(asset "A")] [(asset "M")])'
    error = refusal(body, GAPPY, 2)
    where = find(body, '(asset "M")')
    assert "no decision on 2026-01-07" in error.message
    assert f"M at {where} has no close on that date" in error.message
    assert weights(body, GAPPY, 3) == {"M": 1.0}


def test_a_condition_without_enough_history_has_no_decision() -> None:
    body = '(if (> (current-price "A") (moving-average-price "A" {:window 3})) [(asset "A")] [])'
    error = refusal(body, GAPPY, 1)
    where = find(body, "(moving-average-price")
    assert error.location == f"{SOURCE}:1:1"  # the symphony; the indicator is in the message
    assert "S: no decision on 2026-01-06" in error.message
    assert f"(moving-average-price A window 3) at {where} has no value" in error.message
    assert "current-price" not in error.message  # the side that has a value is not blamed
    assert "\n" not in str(error)
    assert weights(body, GAPPY, 2) == {"A": 1.0}


def test_a_failed_condition_fails_even_when_both_branches_are_cash() -> None:
    error = refusal('(if (> (rsi "M" {:window 2}) 50) [nil] [nil])', GAPPY, 3)
    assert "(relative-strength-index M window 2)" in error.message


def test_weight_equal_needs_every_child() -> None:
    body = '(weight-equal [(asset "A") (asset "M")])'
    error = refusal(body, GAPPY, 1)
    where = find(body, '(asset "M")')
    assert f"M at {where} has no close on that date" in error.message
    assert weights(body, GAPPY, 3) == pytest.approx({"A": 0.5, "M": 0.5})


def test_a_ticker_without_any_price_history_is_an_error_at_its_location() -> None:
    body = '(weight-equal [(asset "A") (asset "ZZZ")])'
    with pytest.raises(StrategyError) as caught:
        run(body, GAPPY)
    assert caught.value.location == find(body, '(asset "ZZZ")')
    assert "ZZZ: no price history" in caught.value.message


# --------------------------------------------------------------------- filter

# Day 1 cumulative-return(1) scores: A 3, B 1, C 2; D has one bar only (no score);
# E has no bar on day 1 at all.
SCORED = history(
    A=[100.0, 103.0],
    B=[100.0, 101.0],
    C=[100.0, 102.0],
    D=[NAN, 500.0],
    E=[100.0, NAN],
)
RETURN_1 = "(cumulative-return {:window 1})"


def pick(selection: str, candidates: str, prices: PriceHistory = SCORED) -> dict[str, float]:
    return weights(f"(filter {RETURN_1} ({selection}) [{candidates}])", prices, 1)


ABC = '(asset "A") (asset "B") (asset "C")'


def test_filter_select_top_and_bottom_equal_weight_the_picks() -> None:
    assert pick("select-top 1", ABC) == {"A": 1.0}
    assert pick("select-top 2", ABC) == pytest.approx({"A": 0.5, "C": 0.5})
    assert pick("select-bottom 1", ABC) == {"B": 1.0}
    assert pick("select-bottom 2", ABC) == pytest.approx({"B": 0.5, "C": 0.5})


def test_filter_with_more_picks_than_candidates_takes_them_all() -> None:
    assert pick("select-top 5", ABC) == pytest.approx({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})
    assert pick("select-bottom 4", '(asset "C") (asset "A")') == pytest.approx({"A": 0.5, "C": 0.5})


def test_filter_ties_go_to_the_name_that_sorts_first() -> None:
    same = history(C=[100.0, 101.0], A=[50.0, 50.5], B=[10.0, 10.1], Z=[1.0, 1.01])
    listed = '(asset "Z") (asset "C") (asset "A") (asset "B")'
    assert pick("select-top 1", listed, same) == {"A": 1.0}
    assert pick("select-bottom 1", listed, same) == {"A": 1.0}
    assert pick("select-top 3", listed, same) == pytest.approx({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})
    # Groups tie by label: "alpha" sorts before "zeta" whatever they hold.
    groups = '(group "zeta" [(asset "A")]) (group "alpha" [(asset "Z")])'
    assert pick("select-top 1", groups, same) == {"Z": 1.0}


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_filter_scores_within_floating_point_noise_tie_alphabetically(sign: float) -> None:
    # B's price is above (or below) A's by a relative 1e-13: noise, a tie, so A wins
    # both ways; by a relative 1e-6 it is a real difference and the score decides.
    listed = '(asset "B") (asset "A")'
    noise = history(A=[100.0], B=[100.0 * (1 + sign * 1e-13)])
    assert noise.closes[0, 0] != noise.closes[0, 1]
    for selection in ("select-top 1", "select-bottom 1"):
        chosen = weights(f"(filter (current-price) ({selection}) [{listed}])", noise, 0)
        assert chosen == {"A": 1.0}
    real = history(A=[100.0], B=[100.0 * (1 + sign * 1e-6)])
    higher, lower = ("B", "A") if sign > 0 else ("A", "B")
    assert weights(f"(filter (current-price) (select-top 1) [{listed}])", real, 0) == {higher: 1.0}
    assert weights(f"(filter (current-price) (select-bottom 1) [{listed}])", real, 0) == {
        lower: 1.0
    }


def test_filter_excludes_candidates_without_a_score() -> None:
    # D (too short for a score) and E (no bar that day) would otherwise rank first.
    listed = '(asset "D") (asset "E") (asset "A") (asset "B")'
    assert pick("select-top 2", listed) == pytest.approx({"A": 0.5, "B": 0.5})
    assert pick("select-top 3", listed) == pytest.approx({"A": 0.5, "B": 0.5})
    assert pick("select-bottom 1", listed) == {"B": 1.0}


def test_filter_without_any_scored_candidate_has_no_decision() -> None:
    body = f'(filter {RETURN_1} (select-top 1) [(asset "D") (asset "E")])'
    error = refusal(body, SCORED, 1)
    assert f"the filter at {find(body, '(filter')} has no usable candidate" in error.message
    on_day_0 = f"(filter {RETURN_1} (select-top 1) [{ABC}])"
    assert "filter" in refusal(on_day_0, SCORED, 0).message


# Sub-portfolios. G holds A while S > 1 (days 0-1), then B (days 2-3).
#   A: 100 100 110 110     (+10% on day 2)
#   B: 100 100 100  50     (-50% on day 3)
#   C: 100 100 105 104     (+5% on day 2, -0.95% on day 3)
# G's own return on day 2 is A's (it held A at day 1's close): +10%; on day 3 B's: -50%.
SWITCHED = history(
    S=[2.0, 2.0, 0.5, 0.5],
    A=[100.0, 100.0, 110.0, 110.0],
    B=[100.0, 100.0, 100.0, 50.0],
    C=[100.0, 100.0, 105.0, 104.0],
)
GROUP_G = '(group "G" [(if (> (current-price "S") 1) [(asset "A")] [(asset "B")])])'


def test_filter_scores_a_group_on_its_own_return_series() -> None:
    body = f'(filter {RETURN_1} (select-top 1) [{GROUP_G} (asset "C")])'
    evaluation = run(body, SWITCHED)
    # Day 2: G earned +10% (A, held since day 1) > C's +5%: G wins, and G now holds B.
    # Scoring G by what it holds today (B, flat on day 2) would have picked C.
    assert evaluation.weights_at(day(2)) == {"B": 1.0}
    # Day 3: G earned -50% (B, held since day 2) < C's -0.95%: C wins.
    assert evaluation.weights_at(day(3)) == {"C": 1.0}


@pytest.mark.parametrize(("c_return", "expected"), [(9.99, {"B": 1.0}), (10.01, {"C": 1.0})])
def test_a_group_scores_exactly_the_return_of_what_it_held(
    c_return: float, expected: dict[str, float]
) -> None:
    # G's day-2 return is exactly A's +10%: C just below loses to G, just above beats it.
    prices = history(
        S=[2.0, 2.0, 0.5, 0.5],
        A=[100.0, 100.0, 110.0, 110.0],
        B=[100.0, 100.0, 100.0, 50.0],
        C=[100.0, 100.0, 100.0 * (1 + c_return / 100), 104.0],
    )
    body = f'(filter {RETURN_1} (select-top 1) [{GROUP_G} (asset "C")])'
    assert run(body, prices).weights_at(day(2)) == expected


def test_a_group_that_starts_deciding_late_has_a_return_the_next_day() -> None:
    """Like an asset first quoted on day 1, a group first deciding on day 1 has a one-day
    return on day 2 (its value series starts on the day it first decides)."""
    prices = history(
        A=[100.0, 100.0, 110.0],
        B=[100.0, 100.0, 105.0],
        S=[NAN, 1.0, 1.0],  # the group's condition has a value from day 1
    )
    late = '(group "G" [(if (> (current-price "S") 0) [(asset "A")] [])])'
    body = f'(filter {RETURN_1} (select-top 1) [{late} (asset "B")])'
    # G held A at day 1's close and earned +10% on day 2; B earned +5%.
    assert run(body, prices).weights_at(day(2)) == {"A": 1.0}


# -------------------------------------------------------- inverse volatility


def pct_returns(closes: list[float]) -> list[float]:
    return [100 * (b / a - 1) for a, b in itertools.pairwise(closes)]


def test_inverse_volatility_shares_are_proportional_to_one_over_stdev() -> None:
    a = [100.0, 101.0, 100.0, 102.0]
    b = [100.0, 103.0, 99.0, 104.0]
    prices = history(A=a, B=b)
    vol_a = statistics.stdev(pct_returns(a)[-2:])
    vol_b = statistics.stdev(pct_returns(b)[-2:])
    share_a = (1 / vol_a) / (1 / vol_a + 1 / vol_b)
    result = weights('(weight-inverse-volatility 2 [(asset "A") (asset "B")])', prices, 3)
    assert result == pytest.approx({"A": share_a, "B": 1 - share_a}, rel=1e-9)
    assert share_a > 0.5  # the calmer asset gets more


def test_inverse_volatility_scales_children_that_are_portfolios() -> None:
    a = [100.0, 101.0, 100.0, 102.0]
    b = [100.0, 103.0, 99.0, 104.0]
    prices = history(A=a, B=b, C=[1.0, 1.1, 1.0, 1.2])
    vol_a = statistics.stdev(pct_returns(a)[-2:])
    vol_b = statistics.stdev(pct_returns(b)[-2:])
    body = (
        '(weight-inverse-volatility 2 [(group "a" [(asset "A")]) '
        '(group "b" [(weight-specified 0.5 (asset "B") 0.5 nil)])])'
    )
    # "b" holds half B, half cash: its returns (and stdev) are half of B's.
    vol_half_b = vol_b / 2
    share_a = (1 / vol_a) / (1 / vol_a + 1 / vol_half_b)
    result = weights(body, prices, 3)
    assert result == pytest.approx({"A": share_a, "B": (1 - share_a) * 0.5}, rel=1e-9)


def test_inverse_volatility_over_a_group_uses_its_own_returns() -> None:
    # G's returns: day 2 +10% (A), day 3 -50% (B); C's: +5%, 104/105 - 1.
    vol_g = statistics.stdev([10.0, -50.0])
    vol_c = statistics.stdev(pct_returns([100.0, 105.0, 104.0]))
    share_g = (1 / vol_g) / (1 / vol_g + 1 / vol_c)
    body = f'(weight-inverse-volatility 2 [{GROUP_G} (asset "C")])'
    result = weights(body, SWITCHED, 3)
    assert result == pytest.approx({"B": share_g, "C": 1 - share_g}, rel=1e-9)


def test_inverse_volatility_needs_a_positive_volatility_for_every_child() -> None:
    prices = history(A=[100.0, 101.0, 100.0, 102.0], K=[5.0, 5.0, 5.0, 5.0])
    body = '(weight-inverse-volatility 2 [(asset "A") (asset "K")])'
    error = refusal(body, prices, 3)
    assert f"weight-inverse-volatility at {find(body, '(weight-inverse')}" in error.message
    short = '(weight-inverse-volatility 3 [(asset "A") (asset "A")])'
    assert "weight-inverse-volatility" in refusal(short, prices, 2).message
    assert weights(short, prices, 3) == pytest.approx({"A": 1.0})


# ----------------------------------------------------------- weights_at errors


def test_weights_at_a_date_not_in_the_data_is_a_data_error() -> None:
    gap = PriceHistory(
        dates=np.array(["2026-01-05", "2026-01-06", "2026-01-08"], dtype="datetime64[D]"),
        symbols=("A",),
        closes=np.array([[1.0], [2.0], [3.0]]),
    )
    evaluation = run('(asset "A")', gap)
    assert evaluation.weights_at(date(2026, 1, 8)) == {"A": 1.0}
    for missing in (date(2026, 1, 7), date(2026, 1, 4), date(2026, 1, 9)):
        with pytest.raises(DataError) as caught:
            evaluation.weights_at(missing)
        assert caught.value.kind is DataErrorKind.MISSING
        assert missing.isoformat() in caught.value.message


def test_weights_sum_to_at_most_one_on_every_decided_date() -> None:
    rng = np.random.default_rng(7)
    walk = 100 * np.cumprod(1 + rng.normal(0, 0.02, size=(60, 4)), axis=0)
    prices = history(**{s: list(walk[:, i]) for i, s in enumerate(("A", "B", "C", "D"))})
    body = (
        '(weight-inverse-volatility 5 [(group "g" [(filter (rsi {:window 3}) (select-top 2) '
        '[(asset "A") (asset "B") (group "h" [(if (> (rsi "C" {:window 4}) 50) [(asset "C")] '
        '[(asset "D")])])])]) (weight-specified 0.7 (asset "D") 0.2 nil)])'
    )
    evaluation = run(body, prices)
    decided = 0
    for i in range(60):
        try:
            result = evaluation.weights_at(day(i))
        except StrategyError:
            continue
        decided += 1
        assert all(w > 0 for w in result.values())
        assert sum(result.values()) <= 1 + 1e-12
        # A live run is the last row: evaluating only the history up to that day agrees.
        truncated = PriceHistory(prices.dates[: i + 1], prices.symbols, prices.closes[: i + 1])
        assert run(body, truncated).weights_at(day(i)) == pytest.approx(result, rel=1e-9)
    assert decided > 40


# -------------------------------------------------------------- end to end


def test_symphony_strategy_end_to_end() -> None:
    text = """; a comment
(defsymphony "Mine" {:rebalance-frequency :daily}
  (if (> (moving-average-price "S" {:window 2}) 1)
    [(weight-specified 60 (asset "A") 40 (asset "B"))]
    [(asset "C")]))
"""
    strategy = SymphonyStrategy("mine", parse_symphony(text, "mine.clj"))
    assert strategy.name == "mine"
    assert strategy.symbols() == frozenset({"S", "A", "B", "C"})
    assert strategy.lookback() == ALL_HISTORY
    # S's 2-day average: day 1 1.25 (> 1), day 2 0.9, day 3 0.3.
    prices = history(S=[1.0, 1.5, 0.3, 0.3], A=[1.0] * 4, B=[1.0] * 4, C=[1.0] * 4)
    assert strategy.evaluate(prices, day(1)) == pytest.approx({"A": 0.6, "B": 0.4})
    assert strategy.evaluate(prices, day(2)) == {"C": 1.0}
    table = strategy.evaluate_all(prices)
    assert table.weights_at(day(3)) == {"C": 1.0}
    with pytest.raises(
        StrategyError, match=r"\(moving-average-price S window 2\) at mine\.clj:3:10 "
    ):
        strategy.evaluate(prices, day(0))


# ------------------------------------------- = and the oscillators (built as trees)

HERE = Location(SOURCE, 2, 1)


def _tree_if(left: Indicator | float, op: Comparator, right: Indicator | float) -> Symphony:
    def side(operand: Indicator | float) -> Indicator | Number:
        return operand if isinstance(operand, Indicator) else Number(operand, HERE)

    condition = Condition(op, side(left), side(right), HERE)
    body = If(condition, Asset("T", None, HERE), Asset("E", None, HERE), HERE)
    return Symphony("S", {}, body, HERE)


def _price(ticker: str) -> Indicator:
    return Indicator(IndicatorFn.CURRENT_PRICE, ticker, 1, HERE)


EQUAL_PRICES = history(
    A=[100.0, 100.0, 7.0, 5.0],
    B=[100.0, 100.0 * (1 + 5e-10), 7.0 * (1 + 2e-9), NAN],
    T=[1.0] * 4,
    E=[1.0] * 4,
)


@pytest.mark.parametrize(
    ("index", "holds"),
    [
        (0, True),  # exactly equal
        (1, True),  # a relative 5e-10 apart: floating-point noise, equal
        (2, False),  # a relative 2e-9 apart: different
    ],
)
def test_equal_holds_within_the_filters_relative_tolerance(index: int, holds: bool) -> None:
    evaluation = evaluate(_tree_if(_price("A"), Comparator.EQ, _price("B")), EQUAL_PRICES)
    assert evaluation.weights_at(day(index)) == ({"T": 1.0} if holds else {"E": 1.0})
    # The same, either way round.
    swapped = evaluate(_tree_if(_price("B"), Comparator.EQ, _price("A")), EQUAL_PRICES)
    assert swapped.weights_at(day(index)) == ({"T": 1.0} if holds else {"E": 1.0})


def test_equal_compares_with_numbers() -> None:
    assert evaluate(_tree_if(_price("A"), Comparator.EQ, 5.0), EQUAL_PRICES).weights_at(day(3)) == {
        "T": 1.0
    }
    assert evaluate(_tree_if(5.0 + 1e-6, Comparator.EQ, _price("A")), EQUAL_PRICES).weights_at(
        day(3)
    ) == {"E": 1.0}
    zero = evaluate(_tree_if(0.0, Comparator.EQ, 0.0), EQUAL_PRICES)
    assert zero.weights_at(day(0)) == {"T": 1.0}
    # Relative to 0 nothing but 0 is noise: 1e-300 is not 0.
    tiny = evaluate(_tree_if(1e-300, Comparator.EQ, 0.0), EQUAL_PRICES)
    assert tiny.weights_at(day(0)) == {"E": 1.0}


def test_a_side_without_a_value_is_never_equal() -> None:
    evaluation = evaluate(_tree_if(_price("B"), Comparator.EQ, _price("B")), EQUAL_PRICES)
    assert evaluation.weights_at(day(2)) == {"T": 1.0}
    with pytest.raises(StrategyError, match=r"current-price B window 1\) at s.clj:2:1 has no"):
        evaluation.weights_at(day(3))  # B has no close: no decision, not "unequal"
    holds, known = evaluation.context.conditions[id(evaluation.symphony.body)]
    assert not holds[3]
    assert not known[3]


def test_oscillator_conditions_and_options_in_errors() -> None:
    # A rises 10, 11, 12, 11: PPO(2, 3) is 220/81 on day 2 and 1300/2403 on day 3 (see
    # the indicator tests), its 2-session signal 2/3 * 1300/2403 + 1/3 * 220/81 on day 3.
    prices = history(A=[10.0, 11.0, 12.0, 11.0], T=[1.0] * 4, E=[1.0] * 4)
    options = (("long-window", 3), ("short-window", 2))
    ppo = Indicator(IndicatorFn.PPO, "A", 3, HERE, options)
    signal = Indicator(IndicatorFn.PPO_SIGNAL, "A", 3, HERE, (*options, ("smooth-window", 2)))
    evaluation = evaluate(_tree_if(ppo, Comparator.GT, 2.7), prices)
    assert evaluation.weights_at(day(2)) == {"T": 1.0}  # 2.716 > 2.7
    assert evaluation.weights_at(day(3)) == {"E": 1.0}
    crossing = evaluate(_tree_if(ppo, Comparator.LT, signal), prices)
    assert crossing.weights_at(day(3)) == {"T": 1.0}  # 0.541 < 1.266
    with pytest.raises(StrategyError) as caught:
        crossing.weights_at(day(2))  # the signal's first value is on day 3
    assert (
        "(percentage-price-oscillator-signal A long-window 3, short-window 2, smooth-window 2)"
        in caught.value.message
    )
    # Options are part of the indicator: the same window with other options is another.
    other = Indicator(IndicatorFn.PPO, "A", 3, HERE, (("long-window", 3), ("short-window", 1)))
    both = evaluate(_tree_if(ppo, Comparator.EQ, other), prices)
    assert both.weights_at(day(3)) == {"E": 1.0}
    assert len(both.context.indicator_cache) == 2
    # A filter scores with the options too: A's PPO(2, 3) beats flat B's 0 on day 3.
    flat = history(A=[10.0, 11.0, 12.0, 11.0], B=[5.0] * 4)
    score = Indicator(IndicatorFn.PPO, None, 3, HERE, options)
    top = Filter(score, Selection.TOP, 1, (Asset("A", None, HERE), Asset("B", None, HERE)), HERE)
    assert evaluate(Symphony("S", {}, top, HERE), flat).weights_at(day(3)) == {"A": 1.0}
    bottom = Filter(
        score, Selection.BOTTOM, 1, (Asset("A", None, HERE), Asset("B", None, HERE)), HERE
    )
    assert evaluate(Symphony("S", {}, bottom, HERE), flat).weights_at(day(3)) == {"B": 1.0}
