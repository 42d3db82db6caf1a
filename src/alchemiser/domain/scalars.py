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


_NORMALISED: dict[str, str] = {}
"""Texts already normalised, and what they became: every model with a Symbol field checks
its symbol again, and a backtest builds thousands of them each session, over the same
few dozen tickers. Only valid symbols are kept, at most ``_NORMALISED_MAX`` of them."""
_NORMALISED_MAX = 20_000


def normalise_symbol(raw: str) -> str:
    """Upper-case a ticker and spell class shares the Alpaca way (``BRK/B`` -> ``BRK.B``)."""
    known = _NORMALISED.get(raw)
    if known is not None:
        return known
    symbol = raw.strip().upper().replace("/", ".")
    if not _SYMBOL.match(symbol):
        raise ValueError(f"not a ticker symbol: {raw!r}")
    if len(_NORMALISED) < _NORMALISED_MAX:
        _NORMALISED[raw] = symbol
    return symbol


_PRICES: dict[float, Decimal] = {}
"""Positive floats already converted by ``to_decimal_price``: a backtest converts each
session's closes more than once (the plan's prices one session, the broker's checks of
the session before). Two equal positive floats have one text, hence one Decimal; zero
(which has a sign) and NaN are never kept. Emptied when it reaches ``_PRICES_MAX``."""
_PRICES_MAX = 50_000


def to_decimal_price(value: float) -> Decimal:
    """A float close as a Decimal price rounded to 1/100 of a cent."""
    if type(value) is float:
        known = _PRICES.get(value)
        if known is not None:
            return known
    if not math.isfinite(value) or abs(value) >= MAX_PRICE:
        raise ValueError(f"price is not finite or not plausible: {value!r}")
    price = Decimal(repr(value)).quantize(PRICE_STEP, ROUND_HALF_EVEN)
    if value > 0 and type(value) is float:
        if len(_PRICES) >= _PRICES_MAX:
            _PRICES.clear()
        _PRICES[value] = price
    return price
