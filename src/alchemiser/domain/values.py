"""Scalar value types: symbols, money and quantities, and their one rounding policy.

Money and share quantities are Decimal everywhere in the domain. Indicator maths is
float; the conversion happens once, in ``to_decimal_price`` / ``to_decimal_weights``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

# Defined without pydantic (symphony and price files use them without a model), and
# re-exported: "X as X" is what makes them this module's names too.
from alchemiser.domain.scalars import MAX_PRICE as MAX_PRICE  # noqa: PLC0414
from alchemiser.domain.scalars import PRICE_STEP as PRICE_STEP  # noqa: PLC0414
from alchemiser.domain.scalars import normalise_symbol as normalise_symbol  # noqa: PLC0414
from alchemiser.domain.scalars import to_decimal_price as to_decimal_price  # noqa: PLC0414

CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)

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
        return _builder(cls, cls.__all_fields__)(values)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__all_fields__ = set(cls.__pydantic_fields__)
        # Each class gets its own ``trusted``, its class and field names bound in: the
        # hot loops call it hundreds of times a session, and the classmethod would
        # look both up again on every call.
        cls.trusted = staticmethod(_builder(cls, cls.__all_fields__))  # type: ignore[method-assign,assignment]

    __all_fields__: ClassVar[set[str]] = set()


_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
# The slot setters of every pydantic model, called directly: ``object.__setattr__`` would
# look each name up on the class again for every instance.
_slots = BaseModel.__dict__
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__


def _builder(cls: type[_M], fields: set[str]) -> Callable[[dict[str, Any]], _M]:
    """What ``Frozen.trusted`` does for ``cls``, as one function."""

    def trusted(values: dict[str, Any]) -> _M:
        instance = _new(cls)
        _set_dict(instance, values)
        _set_fields_set(instance, fields)
        _set_extra(instance, None)
        _set_private(instance, None)
        return instance

    return trusted


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
    if quantizes_to_step(step):
        # Rounding passed positionally: the keyword form costs twice as much in C.
        return value.quantize(step, ROUND_DOWN)
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def quantizes_to_step(step: Decimal) -> bool:
    """True when ``step`` is written 1, 0.0...01 or 1E+-n, so quantizing to it floors to
    a multiple of it. Read from the text, not cached by value: 0.10 equals 0.1 (and hashes
    alike) but has two decimal places, and quantizing to it keeps 2.77."""
    text = str(step)
    return text.lstrip("0.") == "1" or text.startswith("1E")
