"""The JSON the local exchange sends: Alpaca's objects, numbers and errors, shaped.

Field for field what Alpaca's Trading API v2 and Market Data API v2 send where the
product uses them: orders, assets, positions, the account, bars, quotes and trades, and
errors as :class:`ApiError` carrying Alpaca's ``{code, message}``. Numbers in strings
are written as Alpaca writes them ("10", "123.45"); timestamps as UTC with a ``Z``.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

JSON = dict[str, Any]

CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")
QTY_STEP = Decimal("0.000000001")
AVG_STEP = Decimal("0.0000000001")
WHOLE = Decimal(1)
RATIO_STEP = Decimal("0.000001")
BPS = Decimal(10_000)

BAR_VOLUME = 1_000_000
BAR_TRADES = 1_000
QUOTE_SIZE = 100
TRADE_SIZE = 100
ASSET_EXCHANGE = "ARCA"
ASSET_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://alchemiser.local/exchange/assets")

EQUITY = "us_equity"
CRYPTO = "crypto"
OPTION = "us_option"
POSITION_EXCHANGES = {EQUITY: ASSET_EXCHANGE, CRYPTO: "CRYPTO", OPTION: ""}


class ApiError(Exception):
    """An Alpaca-style error response: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> JSON:
        return {"code": self.code, "message": self.message}


def unprocessable(message: str) -> ApiError:
    return ApiError(422, 40010001, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, 40310000, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, 40410000, message)


def bad_data_request(message: str) -> ApiError:
    return ApiError(422, 42210000, message)


# -- numbers and timestamps ---------------------------------------------------------------


def fmt(value: Decimal) -> str:
    """A Decimal as Alpaca writes numbers in strings: "10", "123.45", "100000"."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def to_price(close: float) -> Decimal:
    """A float close as a Decimal price, to 1/100 of a cent (as the product reads it)."""
    return Decimal(repr(close)).quantize(PRICE_STEP, ROUND_HALF_EVEN)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_EVEN)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    if denominator == 0:
        return Decimal(0)
    return (numerator / denominator).quantize(RATIO_STEP, ROUND_HALF_EVEN)


def utc_text(instant: datetime) -> str:
    """Alpaca's order timestamps: UTC with a ``Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def asset_id(symbol: str) -> str:
    """A symbol's asset id: stable across runs (a UUID5 of the symbol)."""
    return str(uuid.uuid5(ASSET_NAMESPACE, symbol))


# -- trading API objects --------------------------------------------------------------------


def asset_json(symbol: str, *, fractionable: bool) -> JSON:
    return {
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": ASSET_EXCHANGE,
        "symbol": symbol,
        "name": f"{symbol} (local exchange)",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "maintenance_margin_requirement": 100,
        "margin_requirement_long": "100",
        "margin_requirement_short": "100",
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": fractionable,
        "attributes": [],
    }


def position_json(
    symbol: str,
    asset_class: str,
    qty: Decimal,
    qty_available: Decimal,
    avg_price: Decimal,
    cost_basis: Decimal,
    current: Decimal,
    lastday: Decimal,
    market_value: Decimal,
    lastday_value: Decimal,
) -> JSON:
    unrealized = market_value - cost_basis
    intraday = market_value - lastday_value
    return {
        "asset_id": asset_id(symbol),
        "symbol": symbol,
        "exchange": POSITION_EXCHANGES[asset_class],
        "asset_class": asset_class,
        "asset_marginable": asset_class == EQUITY,
        "qty": fmt(qty),
        "qty_available": fmt(qty_available),
        "avg_entry_price": fmt(avg_price.quantize(PRICE_STEP, ROUND_HALF_EVEN)),
        "side": "long",
        "market_value": fmt(market_value),
        "cost_basis": fmt(cost_basis),
        "unrealized_pl": fmt(unrealized),
        "unrealized_plpc": fmt(ratio(unrealized, cost_basis)),
        "unrealized_intraday_pl": fmt(intraday),
        "unrealized_intraday_plpc": fmt(ratio(intraday, lastday_value)),
        "current_price": fmt(current),
        "lastday_price": fmt(lastday),
        "change_today": fmt(ratio(current - lastday, lastday)),
    }


def account_json(
    *,
    account_id: str,
    account_number: str,
    created_at: datetime,
    cash: Decimal,
    buying_power: Decimal,
    long_value: Decimal,
    last_equity: Decimal,
    balance_asof: str,
) -> JSON:
    equity = cash + long_value
    power = fmt(buying_power)
    return {
        "id": account_id,
        "account_number": account_number,
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": power,
        "regt_buying_power": power,
        "daytrading_buying_power": "0",
        "effective_buying_power": power,
        "non_marginable_buying_power": power,
        "options_buying_power": power,
        "cash": fmt(cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "portfolio_value": fmt(equity),
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": utc_text(created_at),
        "trade_suspended_by_user": False,
        "multiplier": "1",
        "shorting_enabled": False,
        "equity": fmt(equity),
        "last_equity": fmt(last_equity),
        "long_market_value": fmt(long_value),
        "short_market_value": "0",
        "position_market_value": fmt(long_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
        "balance_asof": balance_asof,
        "options_approved_level": 0,
        "options_trading_level": 0,
        "intraday_adjustments": "0",
        "pending_reg_taf_fees": "0",
    }


# -- market data objects ----------------------------------------------------------------------


def bar_json(stamp: str, close: float, open_: float = math.nan) -> JSON:
    """A daily bar: at ``open_`` when it is a price (high and low spanning it and the
    close), else o=h=l=c=close; vw=close, with a fixed volume and trade count."""
    first = open_ if math.isfinite(open_) else close
    return {
        "t": stamp,
        "o": first,
        "h": max(first, close),
        "l": min(first, close),
        "c": close,
        "v": BAR_VOLUME,
        "n": BAR_TRADES,
        "vw": close,
    }


def quote_json(stamp: str, ask: Decimal, bid: Decimal) -> JSON:
    return {
        "t": stamp,
        "ap": float(ask),
        "as": QUOTE_SIZE,
        "ax": "P",
        "bp": float(bid),
        "bs": QUOTE_SIZE,
        "bx": "P",
        "c": ["R"],
        "z": "B",
    }


def trade_json(stamp: str, price: Decimal, trade_id: int) -> JSON:
    return {
        "t": stamp,
        "x": "V",
        "p": float(price),
        "s": TRADE_SIZE,
        "c": ["@"],
        "i": trade_id,
        "z": "C",
    }
