"""A sub-portfolio's compounded value (``context.price_series``) wherever returns are
missing: before a ticker's history starts, in gaps inside it, everywhere or nowhere."""

from __future__ import annotations

import numpy as np
import pytest

from alchemiser.domain.prices import PriceHistory
from alchemiser.strategy.symphony.context import Context, Result, Series, price_series

LENGTH = 12
LAYOUTS = {
    "complete": [],
    "late-start": [0, 1, 2, 3],
    "gap": [5, 6],
    "late-start-and-gap": [0, 1, 7],
    "last-day": [LENGTH - 1],
    "none-priced": list(range(LENGTH)),
}


def context(missing: dict[str, list[int]]) -> Context:
    """Closes rising 1% a day, NaN on the given days of each ticker."""
    symbols = tuple(missing)
    closes = np.array([[100.0 * 1.01**day] * len(symbols) for day in range(LENGTH)])
    for column, days in enumerate(missing.values()):
        closes[days, column] = np.nan
    dates = np.datetime64("2026-07-01") + np.arange(LENGTH)
    history = PriceHistory(dates, symbols, closes)
    by_symbol = np.ascontiguousarray(closes.T)
    returns = np.full_like(by_symbol, np.nan)
    returns[:, 1:] = by_symbol[:, 1:] / by_symbol[:, :-1] - 1.0
    no_return = np.isnan(returns)
    known = np.where(no_return, 0.0, returns)
    ctx = Context(history, {s: i for i, s in enumerate(symbols)}, by_symbol, known, no_return)
    ctx.ones = np.ones(LENGTH)
    return ctx


def reference(ctx: Context, result: Result) -> Series:
    """The value by its definition: a masked sum of held weight where returns are
    missing, whatever their layout."""
    decided_before = np.zeros(ctx.length, dtype=bool)
    decided_before[1:] = result.valid[:-1]
    daily = np.zeros(ctx.length)
    known = result.valid.copy()
    unpriced = np.zeros(ctx.length - 1)
    for symbol, series in result.weights.items():
        column = ctx.columns[symbol]
        held = series[:-1]
        daily[1:] += held * ctx.known_returns[column, 1:]
        np.add(unpriced, held, out=unpriced, where=ctx.no_return[column, 1:])
    known[1:] &= ~(decided_before[1:] & (unpriced > 0))
    daily[~(known & decided_before)] = 0.0
    value: Series = np.cumprod(1.0 + daily)
    value[~known] = np.nan
    return value


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("whole", [False, True], ids=["weighted", "held-whole"])
def test_price_series_wherever_returns_are_missing(layout: str, whole: bool) -> None:
    ctx = context({"AAA": [], "BBB": LAYOUTS[layout]})
    rng = np.random.default_rng(7)
    half = rng.uniform(0.0, 1.0, LENGTH)
    weights = {"BBB": ctx.ones} if whole else {"AAA": 1.0 - half, "BBB": half}
    result = Result(weights, np.ones(LENGTH, dtype=bool))
    got = price_series(ctx, result)
    expected = reference(ctx, result)
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_missing_returns_by_column(layout: str) -> None:
    ctx = context({"AAA": LAYOUTS[layout]})
    absent = ctx.absent_returns(0)
    where = np.zeros(LENGTH - 1, dtype=bool)
    where[absent] = True
    assert where.tolist() == ctx.no_return[0, 1:].tolist()
    contiguous = layout in ("complete", "late-start", "none-priced")
    assert isinstance(absent, slice) == contiguous
    assert ctx.absent_returns(0) is absent  # computed once


def test_a_single_day_has_no_returns_to_miss() -> None:
    ctx = context({"AAA": []})
    ctx.no_return = ctx.no_return[:, :1]
    assert ctx.absent_returns(0) == slice(0, 0)
