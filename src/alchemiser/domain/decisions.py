"""Decisions the pure core makes about each symbol and order, with stable codes."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from alchemiser.domain.orders import Side
from alchemiser.domain.values import Frozen, Symbol


class HoldReason(StrEnum):
    WITHIN_BAND = "within_band"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    ROUNDS_TO_ZERO = "rounds_to_zero"
    CASH_LIMITED = "cash_limited"


class Hold(Frozen):
    """A symbol the diff looked at and chose not to trade, and why."""

    symbol: Symbol
    current_weight: Decimal
    target_weight: Decimal
    reason: HoldReason
    detail: str


class TradingState(StrEnum):
    """The kill switch: ACTIVE trades, REDUCING only sells, HALTED trades nothing."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class RiskCode(StrEnum):
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING_ONLY = "TRADING_REDUCING_ONLY"
    INVALID_ORDER = "INVALID_ORDER"
    PRICE_MISSING = "PRICE_MISSING"
    SYMBOL_DENIED = "SYMBOL_DENIED"
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"
    MAX_ORDERS_EXCEEDED = "MAX_ORDERS_EXCEEDED"
    SELL_EXCEEDS_POSITION = "SELL_EXCEEDS_POSITION"
    ORDER_NOTIONAL_EXCEEDS_MAX = "ORDER_NOTIONAL_EXCEEDS_MAX"
    TURNOVER_EXCEEDS_MAX = "TURNOVER_EXCEEDS_MAX"
    INSUFFICIENT_BUYING_POWER = "INSUFFICIENT_BUYING_POWER"
    POSITION_WEIGHT_EXCEEDS_MAX = "POSITION_WEIGHT_EXCEEDS_MAX"
    GROSS_EXPOSURE_EXCEEDS_MAX = "GROSS_EXPOSURE_EXCEEDS_MAX"
    LIVE_PRICE_MISSING = "LIVE_PRICE_MISSING"
    PRICE_DEVIATION = "PRICE_DEVIATION"


class Adjustment(Frozen):
    """An approved order that execution placed smaller, or not at all, and why."""

    client_order_id: str
    symbol: Symbol
    side: Side
    approved_qty: Decimal
    placed_qty: Decimal
    reason: str


class Verdict(StrEnum):
    APPROVED = "approved"
    SHRUNK = "shrunk"
    DENIED = "denied"


class RiskDecision(Frozen):
    client_order_id: str
    symbol: Symbol
    side: Side
    requested_qty: Decimal
    approved_qty: Decimal
    ref_price: Decimal
    verdict: Verdict
    codes: tuple[RiskCode, ...]
    reason: str
