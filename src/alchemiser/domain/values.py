"""Scalar value types: symbols, money and quantities, and their one rounding policy.

Money and share quantities are Decimal everywhere in the domain. Indicator maths is
float; the conversion happens once, in ``to_decimal_price`` / ``to_decimal_weights``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict

CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")
ZERO = Decimal(0)
ONE = Decimal(1)

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


Symbol = Annotated[str, AfterValidator(normalise_symbol)]


class Frozen(BaseModel):
    """Base of every domain value: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """Build without validation, for the pure core's hot loops only.

        ``values`` must hold every field, each already of its field's exact type (the
        callers build them from validated inputs). This sets what ``model_construct``
        sets, without its per-field default handling, which dominates the diff of a
        5,000-symbol book; tests check it stays equal to a validated instance.

        Every instance shares one set of field names as its ``model_fields_set``. That
        is safe because the models are frozen: pydantic only adds to that set on
        attribute assignment, which frozen models refuse, and ``model_copy`` copies it
        before changing it. One set per class also spares the garbage collector one
        tracked object per instance.
        """
        instance = _new(cls)
        _set_dict(instance, values)
        _set_fields_set(instance, cls.__all_fields__)
        _set_extra(instance, None)
        _set_private(instance, None)
        return instance

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__all_fields__ = set(cls.__pydantic_fields__)

    __all_fields__: ClassVar[set[str]] = set()


_new = object.__new__
# The slot setters of every pydantic model, called directly: ``object.__setattr__`` would
# look each name up on the class again for every instance.
_slots = BaseModel.__dict__
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__


MAX_PRICE = 1e12


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


def to_decimal_weight(value: float) -> Decimal:
    """A float weight, exactly converted, rounded half-even to 1e-10 of the account: far
    below one share of anything, and the same weight always gives the same order."""
    if not math.isfinite(value):
        raise ValueError(f"weight is not finite: {value!r}")
    # Same digits and exponent as Decimal(value).quantize(Decimal('1e-10'), ROUND_HALF_EVEN):
    # float formatting also rounds the exact binary value half-even (ties included),
    # at half the cost of building the exact ~50-digit Decimal first.
    return Decimal(f"{value:.10f}")


def to_decimal_weights(weights: Mapping[str, float]) -> dict[str, Decimal]:
    """``to_decimal_weight`` of every value, in one pass (the diff converts a whole
    book of targets at once)."""
    if not all(map(math.isfinite, weights.values())):
        bad = {k: v for k, v in weights.items() if not math.isfinite(v)}
        raise ValueError(f"weights are not finite: {bad!r}")
    return {symbol: Decimal(f"{weight:.10f}") for symbol, weight in weights.items()}


def to_cents(amount: Decimal) -> Decimal:
    """Round a money amount to cents, half to even (the broker's ledger precision)."""
    # Rounding passed positionally: the keyword form costs twice as much in C.
    return amount.quantize(CENT, ROUND_HALF_EVEN)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round a non-negative quantity down to a multiple of ``step`` (never up)."""
    if value <= ZERO:
        return ZERO
    if _is_power_of_ten(step):
        # Rounding passed positionally: the keyword form costs twice as much in C.
        return value.quantize(step, ROUND_DOWN)
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def _is_power_of_ten(step: Decimal) -> bool:
    """True when ``step`` is written 1, 0.0...01 or 1E+-n, so quantizing to it floors to
    a multiple of it. Read from the text, not cached by value: 0.10 equals 0.1 (and hashes
    alike) but has two decimal places, and quantizing to it keeps 2.77."""
    text = str(step)
    return text.lstrip("0.") == "1" or text.startswith("1E")
