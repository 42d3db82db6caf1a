"""What evaluating a symphony works with: each node's result, the price data laid out
for the indicators, the indicators of closes and of held assets (each computed once,
let go after its last reader), and a sub-portfolio's compounded value."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import StrategyError
from alchemiser.strategy.indicators import Closes, check
from alchemiser.strategy.indicators import compute as compute_indicator
from alchemiser.strategy.symphony.ast import Asset, Group, Indicator, IndicatorFn, Node

Series = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Params = tuple[tuple[str, int], ...]
Key = tuple[str, int, str, Params]


@dataclass
class Result:
    """One node over the whole range: symbol -> weight series, and where it decides."""

    weights: dict[str, Series]
    valid: Mask


@dataclass
class Context:
    """One evaluation's inputs, caches and kept decisions."""

    history: PriceHistory
    columns: dict[str, int]
    by_symbol: Series
    """Every symbol's closes, N x T (one contiguous, read-only row per symbol): what the
    indicators read, without a copy of a strided column each time."""
    known_returns: Series
    """Daily simple returns of every symbol, N x T (one contiguous row per symbol), 0
    where either close is missing."""
    no_return: Mask
    """Where a return is missing (N x T)."""
    trace: bool = False
    """Keep every node's result and every decision's inputs, for explaining (and for
    saying why a date has no decision). Without it a node's result is dropped once
    its parent has used it, and only what routes capital is kept."""
    indicator_cache: dict[Key, Series] = field(default_factory=dict)
    uses: Counter[Key] | None = None
    """Without a trace: how many nodes have still to read each indicator."""
    held_cache: dict[Key, Series] = field(default_factory=dict)
    held_uses: Counter[Key] | None = None
    """The same for indicators of a held asset's value (a group holding one asset)."""
    held_values: dict[str, Series] = field(default_factory=dict)
    """Ticker -> the value of holding it alone (read-only), computed once."""
    results: dict[int, Result] = field(default_factory=dict)
    conditions: dict[int, tuple[Mask, Mask]] = field(default_factory=dict)
    """``if`` node -> (condition holds, condition computable), for explaining."""
    rankings: dict[int, tuple[list[str], Series, Mask]] = field(default_factory=dict)
    """``filter`` node -> (candidate names, scores, chosen), columns in name order."""
    volatilities: dict[int, tuple[list[str], Series, Series]] = field(default_factory=dict)
    """inverse-volatility node -> (child names, volatilities, shares), for explaining."""
    holds: dict[int, Mask] = field(default_factory=dict)
    """``if`` node -> where its condition holds (where it routes capital to ``then``)."""
    picks: dict[int, tuple[list[int], Mask, npt.NDArray[np.integer[Any]]]] = field(
        default_factory=dict
    )
    """``filter`` node -> (child index per column, chosen, how many it picked)."""
    shares: dict[int, Series] = field(default_factory=dict)
    """inverse-volatility node -> each child's share of its capital."""
    needs_weights: set[int] = field(default_factory=set)
    """Nodes whose own weight series are needed: those inside a sub-portfolio that a
    filter or inverse-volatility node scores. Every other node only routes capital."""

    ones: Series = field(default_factory=lambda: np.ones(0))
    """A read-only 1.0 on every date: an asset's own weight series (shared by all)."""
    finite: dict[str, Mask] = field(default_factory=dict)
    """Ticker -> where it has a close (an asset's validity), read-only, computed once."""
    absent: dict[int, slice | Mask] = field(default_factory=dict)
    """Column -> the days after the first where its return is missing (``no_return``
    without its first day), as a slice when they are the first few (a ticker's history
    starting late), computed once."""
    checked: dict[tuple[str, bool], Closes] = field(default_factory=dict)
    """(ticker, held) -> its closes (or held value) checked once for every indicator of
    it; the series itself when it fails the check, so each indicator refuses it."""

    @property
    def length(self) -> int:
        return len(self.history.dates)

    def has_close(self, ticker: str) -> Mask:
        found = self.finite.get(ticker)
        if found is None:
            found = np.isfinite(self.close(ticker))
            found.flags.writeable = False
            self.finite[ticker] = found
        return found

    def absent_returns(self, column: int) -> slice | Mask:
        """Where ``column``'s return is missing, from the second day on."""
        found = self.absent.get(column)
        if found is None:
            missing = self.no_return[column, 1:]
            # The first known return (argmin: the first False), or none known at all.
            first_known = int(missing.argmin()) if len(missing) else 0
            if len(missing) and missing[first_known]:
                found = slice(0, len(missing))
            elif missing[first_known:].any():
                found = missing
            else:
                found = slice(0, first_known)
            self.absent[column] = found
        return found

    def close(self, ticker: str) -> Series:
        column = self.columns.get(ticker)
        if column is None:
            raise StrategyError(f"{ticker}: no price history")
        row: Series = self.by_symbol[column]
        return row

    def indicator(self, spec: Indicator) -> Series:
        if spec.ticker is None:  # the parser only builds these inside filters
            raise StrategyError(
                "a filter's score indicator used outside a filter", location=str(spec.location)
            )
        return self.of_close(spec.fn, spec.ticker, spec.window, spec.params)

    def of_close(self, fn: IndicatorFn, ticker: str, window: int, params: Params) -> Series:
        """An indicator of a ticker's close, computed once; without a trace it is let go
        after the last node that reads it."""
        return cached(
            (fn.value, window, ticker, params),
            self.indicator_cache,
            self.uses,
            lambda: compute(fn, self.checked_series(ticker), window, params),
        )

    def of_holding(self, fn: IndicatorFn, held: Asset, window: int, params: Params) -> Series:
        """An indicator of the value of holding one asset (a group around it), computed
        once, like ``of_close``."""
        return cached(
            (fn.value, window, held.ticker, params),
            self.held_cache,
            self.held_uses,
            lambda: compute(fn, self.checked_series(held.ticker, held), window, params),
        )

    def checked_series(self, ticker: str, held: Asset | None = None) -> Closes:
        """A ticker's closes (with ``held``, its asset: the value of holding it alone),
        checked once."""
        key = (ticker, held is not None)
        found = self.checked.get(key)
        if found is None:
            series = self.close(ticker) if held is None else self.held_value(held)
            try:
                found = check(series)
            except ValueError:
                # Kept unchecked, not accepted: ``compute`` checks it again and refuses
                # it there, as a StrategyError naming the indicator that reads it.
                found = series
            self.checked[key] = found
        return found

    def held_value(self, held: Asset) -> Series:
        value = self.held_values.get(held.ticker)
        if value is None:
            alone = Result({held.ticker: self.ones}, self.has_close(held.ticker))
            value = price_series(self, alone)
            value.flags.writeable = False
            self.held_values[held.ticker] = value
        return value


def cached(
    key: Key, cache: dict[Key, Series], uses: Counter[Key] | None, make: Callable[[], Series]
) -> Series:
    """``cache[key]``, made when missing; with ``uses``, dropped after its last use."""
    cached = cache.get(key)
    if cached is None:
        cached = make()
        cache[key] = cached
    if uses is not None:
        uses[key] -= 1
        if uses[key] <= 0:
            del cache[key]
    return cached


def held_asset(node: Node) -> Asset | None:
    """The asset a chain of groups holds (its value is that of holding the asset alone)."""
    while isinstance(node, Group):
        node = node.child
    return node if isinstance(node, Asset) else None


def compute(fn: IndicatorFn, series: Closes, window: int, params: Params = ()) -> Series:
    """An indicator, with its refusals (non-positive values, bad windows) as StrategyError."""
    try:
        result: Series = compute_indicator(fn, series, window, params)
    except ValueError as error:
        raise StrategyError(
            f"{fn.value} with {describe_window(window, params)}: {error}"
        ) from error
    return result


def describe_window(window: int, params: Params) -> str:
    """``window 14``, or an indicator's options: ``long-window 26, short-window 12``."""
    if params:
        return ", ".join(f"{name} {value}" for name, value in params)
    return f"window {window}"


def price_series(ctx: Context, result: Result) -> Series:
    """The compounded value of a sub-portfolio (``result`` is its evaluation)."""
    # Day t earns what the weights chosen at close t-1 return over day t; a day after one
    # without a decision earns nothing (a fresh start). The value exists on the days the
    # node decides, unless a held symbol's return is missing; across a gap it carries.
    if ctx.length == 0:  # no session on or before the decision: nothing compounds
        return np.empty(0)
    decided_before = np.zeros(ctx.length, dtype=bool)
    decided_before[1:] = result.valid[:-1]
    daily = np.zeros(ctx.length)
    known = result.valid.copy()
    if result.weights:
        # Each held symbol's contribution, added in order. Weights are finite and never
        # negative, and a missing return counts as 0, so a symbol not held adds a zero
        # (of either sign: the day's growth 1 + earned is the same). Weight held where
        # the return is missing adds up to more than 0 exactly where some is held.
        earned, unpriced = daily[1:], np.zeros(ctx.length - 1)
        part = np.empty(ctx.length - 1)
        for symbol, series in result.weights.items():
            column = ctx.columns[symbol]
            absent = ctx.absent_returns(column)
            if series is ctx.ones:  # held whole every day: 1 * return
                earned += ctx.known_returns[column, 1:]
                unpriced[absent] = 1.0
                continue
            held = series[:-1]
            np.multiply(held, ctx.known_returns[column, 1:], out=part)
            earned += part
            if isinstance(absent, slice):  # usually: only the days before its history
                unpriced[absent] += held[absent]
            else:
                np.add(unpriced, held, out=unpriced, where=absent)
        known[1:] &= ~(decided_before[1:] & (unpriced > 0))
    daily[~(known & decided_before)] = 0.0
    value: Series = np.cumprod(1.0 + daily, dtype=np.float64)
    value[~known] = np.nan
    return value
