"""Daily bars as the Market Data API sends them, read and checked one by one.

A bar is ``{"t": time, "o": open, "h": high, "l": low, "c": close, "v": volume, ...}``.
Every price must be a finite number above zero, the volume a finite number not below
zero, and the bar consistent with itself: its high at least its open, close and low,
its low at most its open and close (up to ``SANITY_TOLERANCE`` relative, for rounding
in the adjustment). A reply that breaks any of this is a typed DataError: MALFORMED
(not shaped as documented, or not a consistent bar), NON_FINITE or NON_POSITIVE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from alchemiser.adapters.alpaca.transport import as_list, as_mapping, utc
from alchemiser.domain.prices import DailyBar
from alchemiser.errors import DataError, DataErrorKind

NEW_YORK = ZoneInfo("America/New_York")
SANITY_TOLERANCE = 1e-9
"""Relative slack in the high >= ... >= low checks: adjusted prices are rounded."""
PRICE_FIELDS = (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"))


def _number(bar: Mapping[str, Any], key: str, what: str) -> float:
    if key not in bar:
        raise DataError(f"{what}: no {key!r}", kind=DataErrorKind.MALFORMED)
    value = bar[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(
            f"{what}: {key} is not a number: {str(value)[:40]!r}", kind=DataErrorKind.MALFORMED
        )
    number = float(value)
    if not math.isfinite(number):
        raise DataError(f"{what}: {key} is not finite", kind=DataErrorKind.NON_FINITE)
    return number


def daily_bar(symbol: str, raw: object) -> DailyBar:
    """One bar of ``symbol``, checked (see the module docstring)."""
    try:
        bar = as_mapping(raw, f"{symbol} bar")
        stamp = utc(str(bar["t"])) if "t" in bar else None
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{symbol}: malformed bar ({error})", kind=DataErrorKind.MALFORMED
        ) from error
    if stamp is None:
        raise DataError(f"{symbol}: a bar without a time", kind=DataErrorKind.MALFORMED)
    day = stamp.astimezone(NEW_YORK).date()
    what = f"{symbol} {day.isoformat()}"
    prices = {name: _number(bar, key, what) for key, name in PRICE_FIELDS}
    for name, value in prices.items():
        if value <= 0:
            raise DataError(f"{what}: {name} {value!r} <= 0", kind=DataErrorKind.NON_POSITIVE)
    volume = _number(bar, "v", what)
    if volume < 0:
        raise DataError(f"{what}: volume {volume!r} < 0", kind=DataErrorKind.NON_POSITIVE)
    high, low = prices["high"], prices["low"]
    slack = SANITY_TOLERANCE * high
    if high + slack < max(prices["open"], prices["close"], low) or low - slack > min(
        prices["open"], prices["close"]
    ):
        raise DataError(
            f"{what}: not a consistent bar (high {high!r}, low {low!r}, open "
            f"{prices['open']!r}, close {prices['close']!r})",
            kind=DataErrorKind.MALFORMED,
        )
    return DailyBar(day, prices["open"], high, low, prices["close"], volume)


def symbol_bars(symbol: str, rows: object, start: date, end: date) -> list[DailyBar]:
    """A symbol's bars from ``start`` to ``end`` (New York dates, inclusive), in date
    order; a bar outside them (a session still under way, past ``end``) is left out.
    Two bars of one session are malformed."""
    try:
        items = as_list(rows, symbol)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"{symbol}: malformed bars ({error})", kind=DataErrorKind.MALFORMED
        ) from error
    bars = sorted(
        (bar for bar in (daily_bar(symbol, raw) for raw in items) if start <= bar.day <= end),
        key=lambda bar: bar.day,
    )
    for before, after in pairwise(bars):
        if before.day == after.day:
            raise DataError(
                f"{symbol}: two bars for {after.day.isoformat()}", kind=DataErrorKind.MALFORMED
            )
    return bars
