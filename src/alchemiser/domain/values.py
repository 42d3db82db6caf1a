"""Scalar value types: symbols, money and quantities, and their one rounding policy.

Money and share quantities are Decimal everywhere in the domain. Indicator maths is
float; the conversion happens once, in ``to_decimal_price`` / ``to_decimal_weight``.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")
WEIGHT_STEP = Decimal("0.0000000001")
ZERO = Decimal(0)
ONE = Decimal(1)

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,9}(\.[A-Z]{1,2})?$")


def normalise_symbol(raw: str) -> str:
    """Upper-case a ticker and spell class shares the Alpaca way (``BRK/B`` -> ``BRK.B``)."""
    symbol = raw.strip().upper().replace("/", ".")
    if not _SYMBOL.match(symbol):
        raise ValueError(f"not a ticker symbol: {raw!r}")
    return symbol


Symbol = Annotated[str, AfterValidator(normalise_symbol)]


class Frozen(BaseModel):
    """Base of every domain value: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def to_decimal_price(value: float) -> Decimal:
    """A float close as a Decimal price rounded to 1/100 of a cent."""
    if not math.isfinite(value):
        raise ValueError(f"price is not finite: {value!r}")
    return Decimal(repr(value)).quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN)


def to_decimal_weight(value: float) -> Decimal:
    """A float weight as a Decimal rounded to 1e-10 (far below one share of anything)."""
    if not math.isfinite(value):
        raise ValueError(f"weight is not finite: {value!r}")
    return Decimal(repr(value)).quantize(WEIGHT_STEP, rounding=ROUND_HALF_EVEN)


def to_cents(amount: Decimal) -> Decimal:
    """Round a money amount to cents, half to even (the broker's ledger precision)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round a non-negative quantity down to a multiple of ``step`` (never up)."""
    if value <= ZERO:
        return ZERO
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step
