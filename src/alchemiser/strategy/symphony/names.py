"""The spellings symphony text uses: indicator and comparator names, the oscillators'
options, asset classes and tickers, with the aliases real Composer exports contain.

Kept apart from the parser so that every reader of Composer's formats agrees on them.
"""

from __future__ import annotations

from alchemiser.domain.scalars import normalise_symbol
from alchemiser.strategy.indicators import OPTIONS
from alchemiser.strategy.symphony.ast import Comparator, IndicatorFn

INDICATORS: dict[str, IndicatorFn] = {fn.value: fn for fn in IndicatorFn} | {
    "rsi": IndicatorFn.RSI,
    "standard-deviation-return": IndicatorFn.STDEV_RETURN,
    "standard-deviation-price": IndicatorFn.STDEV_PRICE,
}
"""Every accepted spelling of an indicator: the canonical names and Composer's aliases."""

COMPARATORS: dict[str, Comparator] = {op.value: op for op in Comparator}

_OPTION_ORDER = ("short-window", "long-window", "smooth-window")

OSCILLATORS: dict[IndicatorFn, dict[str, int]] = {
    fn: {name: options[name] for name in _OPTION_ORDER if name in options}
    for fn, options in OPTIONS.items()
}
"""The indicators that take named windows instead of ``:window``, with their defaults
(the one table, ``indicators.OPTIONS``)."""


def oscillator_history(params: dict[str, int]) -> int:
    """The sessions of history an oscillator needs, stored as its ``Indicator.window``.

    The PPO needs its long EMA's window (``long-window``, the longer of the two). Its
    signal smooths the PPO series over ``smooth-window`` more sessions, so it needs
    ``long-window + smooth-window`` (one session more than strictly necessary, which
    keeps the rule simple to state)."""
    history = max(params["short-window"], params["long-window"])
    return history + params.get("smooth-window", 0)


EQUITIES = "EQUITIES"
CRYPTO = "CRYPTO"
CRYPTO_REFUSAL = "crypto symphonies are not supported"
"""Start of the refusal of crypto assets: this product trades US stocks and ETFs only."""


class CryptoTicker(ValueError):
    """A ticker written ``CRYPTO::X//USD``."""


def composer_ticker(raw: str) -> str:
    """A ticker as Alpaca spells it, from any spelling Composer writes.

    ``SPY`` and ``EQUITIES::SPY//USD`` are ``SPY``; ``BRK/B`` and
    ``EQUITIES::BRK/B//USD`` are ``BRK.B``. Raises ``CryptoTicker`` for
    ``CRYPTO::BTC//USD`` and ``ValueError`` for anything else that is no ticker."""
    asset_class, qualified, rest = raw.strip().partition("::")
    if not qualified:
        return normalise_symbol(raw)
    if asset_class.upper() == CRYPTO:
        raise CryptoTicker(raw)
    symbol, priced, currency = rest.rpartition("//")
    if asset_class.upper() != EQUITIES or not priced or currency.upper() != "USD":
        raise ValueError(f"not a ticker symbol: {raw!r}")
    return normalise_symbol(symbol)
