"""The holdings model of strategy/rebalancing.py on real SPY and TLT closes (bundled):
drift worked out independently from the closes, the corridor's crossing, branch
switches, period starts across holidays, the anchor, and daily == today's targets."""

from __future__ import annotations

import itertools
import math
import random
from datetime import date

import numpy as np
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import StrategyError
from alchemiser.strategy.base import ALL_HISTORY, FixedStrategy
from alchemiser.strategy.rebalancing import hold, next_period_start
from alchemiser.strategy.symphony.ast import RebalanceFrequency, RebalanceRule
from alchemiser.strategy.symphony.parser import parse_symphony
from alchemiser.strategy.symphony.strategy import SymphonyStrategy, SymphonyTable

PAIR = '(weight-equal [(asset "SPY") (asset "TLT")])'
SWITCH = """(if (> (current-price "SPY") (moving-average-price "SPY" {:window 50}))
  [(weight-equal [(asset "SPY") (asset "TLT")])]
  [(weight-specified 0.7 (asset "TLT") 0.3 (asset "SPY") )])"""
TREND = """(if (> (current-price "SPY") (moving-average-price "SPY" {:window 100}))
  [(weight-equal [(asset "SPY") (asset "TLT")])]
  [(asset "TLT")])"""


@pytest.fixture(scope="module")
def prices() -> PriceHistory:
    return FilePriceStore.bundled().history(["SPY", "TLT"], date(2026, 7, 31), ALL_HISTORY)


def table(
    options: str, body: str, prices: PriceHistory, anchor: date | None = None
) -> SymphonyTable:
    symphony = parse_symphony(f'(defsymphony "Pair" {options}\n{body})', "pair.clj")
    return SymphonyStrategy("pair", symphony, anchor).evaluate_all(prices)


def sessions(prices: PriceHistory, start: date, end: date) -> list[date]:
    days = (prices.session(i) for i in range(len(prices.dates)))
    return [d for d in days if start <= d <= end]


def rebalanced(result: SymphonyTable, days: list[date]) -> list[date]:
    return [d for d in days if (result.rebalance_note(d) or "").startswith("rebalanced")]


# ------------------------------------------------------------------ the corridor


def test_a_corridor_keeps_drifted_weights_until_a_holding_is_5_points_off(
    prices: PriceHistory,
) -> None:
    anchor = date(2012, 1, 3)
    result = table("{:rebalance-threshold 0.05}", PAIR, prices, anchor)
    spy, tlt = prices.column("SPY"), prices.column("TLT")
    start = prices.row_index(anchor)
    # Independently: bought 50/50 at the anchor's close and left alone, SPY's weight is
    # its value over the pair's; the corridor is crossed when it is 5 points off 50%.
    crossing = None
    for t in range(start + 1, len(prices.dates)):
        spy_value = 0.5 * spy[t] / spy[start]
        tlt_value = 0.5 * tlt[t] / tlt[start]
        weight = spy_value / (spy_value + tlt_value)
        day = prices.session(t)
        if abs(weight - 0.5) > 0.05:
            crossing = t
            break
        assert result.weights_at(day) == pytest.approx({"SPY": weight, "TLT": 1 - weight}, rel=1e-9)
        note = result.rebalance_note(day)
        points = abs(weight - 0.5) * 100
        assert note is not None
        assert note.startswith("within corridor: largest drift ")
        shown = float(note.removeprefix("within corridor: largest drift ").split()[0])
        assert shown == pytest.approx(points, abs=0.05)
        assert " points < 5; " in note
        assert note.endswith("; keeping drifted weights")
    assert crossing is not None
    assert crossing - start > 20  # inside for weeks first
    day = prices.session(crossing)
    assert day == date(2013, 2, 13)
    assert result.weights_at(day) == pytest.approx({"SPY": 0.5, "TLT": 0.5})
    assert result.targets_at(day) == pytest.approx({"SPY": 0.5, "TLT": 0.5})
    assert result.rebalance_note(day) == "rebalanced: drift 5.1 points > 5"
    # The next session drifts from the fresh 50/50 bought at the crossing's close.
    nxt = crossing + 1
    spy_value = 0.5 * spy[nxt] / spy[crossing]
    tlt_value = 0.5 * tlt[nxt] / tlt[crossing]
    expected = spy_value / (spy_value + tlt_value)
    assert result.weights_at(prices.session(nxt))["SPY"] == pytest.approx(expected, rel=1e-12)
    assert result.rebalance_note(anchor) == (
        "rebalanced: the anchor session (holdings start at the targets)"
    )


def test_a_fixed_pair_with_a_corridor_holds_what_the_symphony_holds(
    prices: PriceHistory,
) -> None:
    rule = RebalanceRule(RebalanceFrequency.NONE, 0.05)
    fixed = FixedStrategy("pair", {"SPY": 0.5, "TLT": 0.5}, rule, date(2012, 1, 3))
    fixed_table = fixed.evaluate_all(prices)
    symphony = table("{:rebalance-threshold 0.05}", PAIR, prices, date(2012, 1, 3))
    assert fixed.lookback() == ALL_HISTORY
    for day in sessions(prices, date(2012, 1, 3), date(2026, 7, 31))[::37]:
        assert fixed_table.weights_at(day) == pytest.approx(symphony.weights_at(day))
        assert fixed_table.rebalance_note(day) == symphony.rebalance_note(day)
        assert fixed.evaluate(prices, day) == pytest.approx(symphony.weights_at(day))


def test_a_branch_switch_rebalances_at_once(prices: PriceHistory) -> None:
    result = table("{:rebalance-threshold 0.2}", TREND, prices)
    days = sessions(prices, date(2006, 1, 1), date(2026, 7, 31))
    switches = 0
    for before, day in itertools.pairwise(days):
        if set(result.targets_at(day)) != set(result.targets_at(before)):
            switches += 1
            assert result.rebalance_note(day) == "rebalanced: the held set changed"
            assert result.weights_at(day) == pytest.approx(result.targets_at(day))
    assert switches > 20


def test_new_target_weights_on_the_same_symbols_wait_for_the_corridor(
    prices: PriceHistory,
) -> None:
    # Both branches hold SPY and TLT: a switch changes targets by 20 points, which a
    # 5-point corridor sees as drift, not as a change of the held set.
    result = table("{:rebalance-threshold 0.05}", SWITCH, prices)
    notes = {result.rebalance_note(d) for d in sessions(prices, date(2010, 1, 1), date(2012, 1, 1))}
    assert "rebalanced: the held set changed" not in notes
    assert any(n and n.startswith("rebalanced: drift") for n in notes)


# ------------------------------------------------------------------ frequencies


def test_monthly_rebalances_on_the_first_session_of_each_month(prices: PriceHistory) -> None:
    result = table("{:rebalance-frequency :monthly}", PAIR, prices)
    days = sessions(prices, date(2024, 1, 1), date(2024, 12, 31))
    assert rebalanced(result, days) == [
        date(2024, 1, 2),  # New Year's Day
        date(2024, 2, 1),
        date(2024, 3, 1),
        date(2024, 4, 1),
        date(2024, 5, 1),
        date(2024, 6, 3),  # the 1st was a Saturday
        date(2024, 7, 1),
        date(2024, 8, 1),
        date(2024, 9, 3),  # Sunday, then Labor Day
        date(2024, 10, 1),
        date(2024, 11, 1),
        date(2024, 12, 2),
    ]
    assert result.rebalance_note(date(2024, 9, 3)) == "rebalanced: first session of the month"
    assert result.rebalance_note(date(2024, 8, 30)) == (
        "monthly: next rebalance 2024-09-01; keeping drifted weights"
    )
    drifted = result.weights_at(date(2024, 8, 30))
    assert drifted != pytest.approx({"SPY": 0.5, "TLT": 0.5})
    assert math.fsum(drifted.values()) == pytest.approx(1.0)


def test_quarterly_and_yearly_first_sessions(prices: PriceHistory) -> None:
    quarterly = table("{:rebalance-frequency :quarterly}", PAIR, prices)
    assert rebalanced(quarterly, sessions(prices, date(2023, 1, 1), date(2023, 12, 31))) == [
        date(2023, 1, 3),  # New Year's Day observed on Monday the 2nd
        date(2023, 4, 3),
        date(2023, 7, 3),  # the 1st was a Saturday
        date(2023, 10, 2),
    ]
    assert quarterly.rebalance_note(date(2023, 7, 3)) == "rebalanced: first session of the quarter"
    assert quarterly.rebalance_note(date(2023, 5, 15)) == (
        "quarterly: next rebalance 2023-07-01; keeping drifted weights"
    )
    yearly = table("{:rebalance-frequency :yearly}", PAIR, prices)
    assert rebalanced(yearly, sessions(prices, date(2020, 1, 1), date(2025, 12, 31))) == [
        date(2020, 1, 2),
        date(2021, 1, 4),
        date(2022, 1, 3),
        date(2023, 1, 3),
        date(2024, 1, 2),
        date(2025, 1, 2),
    ]
    assert yearly.rebalance_note(date(2025, 1, 2)) == "rebalanced: first session of the year"


def test_weekly_rebalances_on_the_first_session_of_each_week(prices: PriceHistory) -> None:
    weekly = table("{:rebalance-frequency :weekly}", PAIR, prices)
    days = sessions(prices, date(2024, 1, 8), date(2024, 1, 26))
    assert rebalanced(weekly, days) == [date(2024, 1, 8), date(2024, 1, 16), date(2024, 1, 22)]
    assert weekly.rebalance_note(date(2024, 1, 12)) == (
        "weekly: next rebalance 2024-01-15; keeping drifted weights"
    )


def test_a_frequency_and_a_corridor_both_apply(prices: PriceHistory) -> None:
    both = table("{:rebalance-frequency :yearly :rebalance-threshold 0.05}", PAIR, prices)
    days = sessions(prices, date(2020, 1, 1), date(2020, 12, 31))
    notes = [both.rebalance_note(d) or "" for d in days]
    assert notes[0] == "rebalanced: first session of the year"
    assert any(n.startswith("rebalanced: drift") for n in notes)  # March 2020
    kept = next(n for n in notes if n.endswith("keeping drifted weights"))
    assert "yearly: next rebalance 2021-01-01" in kept
    assert kept.startswith("within corridor: largest drift")


def test_none_without_a_corridor_only_follows_the_held_set(prices: PriceHistory) -> None:
    result = table("{:rebalance-frequency :none}", PAIR, prices)
    days = sessions(prices, date(2005, 1, 1), date(2026, 7, 31))
    assert rebalanced(result, days) == [days[0]]
    assert result.rebalance_note(days[-1]) == "no scheduled rebalance; keeping drifted weights"


@pytest.mark.parametrize(
    ("day", "frequency", "expected"),
    [
        (date(2024, 12, 31), RebalanceFrequency.MONTHLY, date(2025, 1, 1)),
        (date(2024, 11, 15), RebalanceFrequency.QUARTERLY, date(2025, 1, 1)),
        (date(2024, 2, 29), RebalanceFrequency.QUARTERLY, date(2024, 4, 1)),
        (date(2024, 2, 29), RebalanceFrequency.YEARLY, date(2025, 1, 1)),
        (date(2024, 1, 14), RebalanceFrequency.WEEKLY, date(2024, 1, 15)),
        (date(2024, 1, 15), RebalanceFrequency.WEEKLY, date(2024, 1, 22)),
        (date(2024, 1, 15), RebalanceFrequency.NONE, None),
    ],
)
def test_next_period_start(day: date, frequency: RebalanceFrequency, expected: date) -> None:
    assert next_period_start(day, frequency) == expected


# ------------------------------------------------------------------ anchor, undecided


def test_before_the_anchor_there_is_no_decision(prices: PriceHistory) -> None:
    result = table("{:rebalance-frequency :monthly}", PAIR, prices, date(2020, 1, 1))
    with pytest.raises(StrategyError, match="anchor session 2020-01-02") as caught:
        result.weights_at(date(2019, 12, 31))
    assert caught.value.location == "pair.clj:1:1"
    assert result.weights_at(date(2020, 1, 2)) == pytest.approx({"SPY": 0.5, "TLT": 0.5})
    late = table("{:rebalance-frequency :monthly}", PAIR, prices, date(2030, 1, 1))
    with pytest.raises(StrategyError, match="no session on or after the strategy's anchor"):
        late.weights_at(date(2026, 7, 31))


def test_a_session_without_a_decision_drifts_and_says_why() -> None:
    closes = np.array([[100.0, 50.0], [110.0, math.nan], [110.0, 55.0], [121.0, 55.0]])
    dates = np.datetime64("2026-01-05", "D") + np.arange(4)
    history = PriceHistory(dates=dates, symbols=("A", "B"), closes=closes)
    symphony = parse_symphony(
        '(defsymphony "S" {:rebalance-threshold 0.3}\n(weight-equal [(asset "A") (asset "B")]))',
        "s.clj",
    )
    result = SymphonyStrategy("s", symphony).evaluate_all(history)
    with pytest.raises(StrategyError, match=r"B at s\.clj:2:28 has no close"):
        result.weights_at(date(2026, 1, 6))
    # Day 1: A +10%, B has no close (no move seen yet): 0.55 / 1.05 in A. Day 2: B's
    # move across the gap counts, from its last close (50 -> 55): back to 50/50. Day 3:
    # A +10% again. The value of each holding is its start times its price ratio.
    a = 0.5 * 1.21 / (0.5 * 1.21 + 0.5 * 1.1)
    assert result.weights_at(date(2026, 1, 8)) == pytest.approx({"A": a, "B": 1 - a})
    assert result.rebalance_note(date(2026, 1, 7)) == (
        "within corridor: largest drift 0.0 points < 30; keeping drifted weights"
    )


def test_a_move_across_missing_closes_is_not_lost() -> None:
    closes = np.array([[100.0, 100.0], [math.nan, 100.0], [200.0, 100.0]])
    dates = np.datetime64("2026-01-05", "D") + np.arange(3)
    history = PriceHistory(dates=dates, symbols=("A", "B"), closes=closes)
    rule = RebalanceRule(RebalanceFrequency.NONE, None)
    valid = np.ones(3, dtype=bool)
    holdings = hold({"A": np.full(3, 0.5), "B": np.full(3, 0.5)}, valid, history, rule)
    assert holdings.weights(2) == pytest.approx({"A": 2 / 3, "B": 1 / 3})


def test_an_anchor_before_the_history_is_refused(prices: PriceHistory) -> None:
    """A live run reads a limited history (alpaca.history_sessions): an anchor before
    its first session cannot be honoured, and silently starting later would give other
    holdings than the backtest's."""
    recent = PriceHistory(
        dates=prices.dates[-300:], symbols=prices.symbols, closes=prices.closes[-300:]
    )
    with pytest.raises(StrategyError, match="history_sessions"):
        table("{:rebalance-threshold 0.05}", PAIR, recent, anchor=date(2012, 1, 3))


def test_cash_in_the_targets_does_not_drift() -> None:
    closes = np.array([[100.0], [200.0], [200.0]])
    dates = np.datetime64("2026-01-05", "D") + np.arange(3)
    history = PriceHistory(dates=dates, symbols=("A",), closes=closes)
    valid = np.ones(3, dtype=bool)
    rule = RebalanceRule(RebalanceFrequency.NONE, None)
    holdings = hold({"A": np.full(3, 0.5)}, valid, history, rule)
    assert holdings.weights(1) == pytest.approx({"A": 1.0 / 1.5})
    assert holdings.weights(2) == pytest.approx({"A": 1.0 / 1.5})


# ------------------------------------------------------------------ daily == today


def test_daily_without_a_corridor_is_exactly_the_targets(prices: PriceHistory) -> None:
    daily = table("{:rebalance-frequency :daily}", TREND, prices)
    assert daily.holdings is None
    rng = random.Random(20260731)
    evaluation = daily.evaluation
    days = sessions(prices, date(2006, 1, 1), date(2026, 7, 31))
    forced = hold(evaluation.root.weights, evaluation.root.valid, prices, RebalanceRule(), None)
    tiny = table("{:rebalance-threshold 1e-12}", TREND, prices)
    for day in rng.sample(days, 200):
        targets = evaluation.weights_at(day)
        assert daily.weights_at(day) == targets
        assert daily.targets_at(day) == targets
        assert daily.rebalance_note(day) is None
        assert forced.weights(prices.row_index(day)) == targets
        assert tiny.weights_at(day) == pytest.approx(targets, abs=1e-12)


def test_an_anchor_on_the_holiday_before_the_first_session_is_that_session(
    prices: PriceHistory,
) -> None:
    first = prices.session(0)  # 2005-01-03, a Monday after New Year's Day
    result = table("{:rebalance-threshold 0.05}", PAIR, prices, anchor=date(2005, 1, 1))
    assert result.holdings.anchor is not None
    assert prices.session(result.holdings.anchor) >= first
