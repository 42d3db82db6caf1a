"""Ticker spelling and price rounding: the scalar rules that need no pydantic.

``values`` builds its validated types on them (and re-exports them); symphony files and
price files use them directly, so evaluating a symphony never loads pydantic.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal

PRICE_STEP = Decimal("0.0001")
MAX_PRICE = 1e12

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,9}(\.[A-Z]{1,2})?$")


def normalise_symbol(raw: str) -> str:
    """Upper-case a ticker and spell class shares the Alpaca way (``BRK/B`` -> ``BRK.B``)."""
    symbol = raw.strip().upper().replace("/", ".")
    if not _SYMBOL.match(symbol):
        raise ValueError(f"not a ticker symbol: {raw!r}")
    return symbol


def to_decimal_price(value: float) -> Decimal:
    """A float close as a Decimal price rounded to 1/100 of a cent."""
    if not math.isfinite(value) or abs(value) >= MAX_PRICE:
        raise ValueError(f"price is not finite or not plausible: {value!r}")
    return Decimal(repr(value)).quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN)
