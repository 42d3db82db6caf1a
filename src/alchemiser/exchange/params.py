"""Reading the local exchange's requests: query parameters, order amounts, page tokens.

Each reader raises the :class:`ApiError` Alpaca sends for the malformed value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from alchemiser.exchange.shapes import QTY_STEP, ApiError, bad_data_request, unprocessable

DEFAULT_BARS_LIMIT = 1_000
MAX_BARS_LIMIT = 10_000
TIMEFRAMES = frozenset({"1Day", "1D", "1day"})
ADJUSTMENTS = frozenset({"raw", "split", "dividend", "spin-off", "all"})

Query = Mapping[str, Sequence[str]]


def one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def int_param(query: Query, name: str, default: int) -> int:
    text = one(query, name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError as error:
        raise bad_data_request(f"invalid {name}: {text!r}") from error


def symbols_param(query: Query) -> list[str]:
    text = one(query, "symbols") or ""
    symbols = sorted({s.strip().upper() for s in text.split(",") if s.strip()})
    if not symbols:
        raise ApiError(400, 40010001, "missing symbols")
    return symbols


def bars_params(query: Query) -> tuple[list[str], int, str, tuple[str, date] | None]:
    symbols = symbols_param(query)
    timeframe = one(query, "timeframe")
    if timeframe not in TIMEFRAMES:
        raise bad_data_request(
            f"invalid timeframe: {timeframe!r} (the local exchange serves 1Day bars only)"
        )
    limit = int_param(query, "limit", DEFAULT_BARS_LIMIT)
    if not 1 <= limit <= MAX_BARS_LIMIT:
        raise bad_data_request(f"invalid limit: must be between 1 and {MAX_BARS_LIMIT}")
    adjustment = one(query, "adjustment") or "raw"
    if any(part.strip() not in ADJUSTMENTS for part in adjustment.split(",")):
        raise bad_data_request(f"invalid adjustment: {adjustment!r}")
    sort = one(query, "sort") or "asc"
    if sort not in ("asc", "desc"):
        raise bad_data_request(f"invalid sort: {sort!r}")
    token = one(query, "page_token")
    return symbols, limit, sort, read_page_token(token) if token else None


def page_token(symbol: str, day: date) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{day.isoformat()}".encode()).decode()


def read_page_token(token: str) -> tuple[str, date]:
    try:
        symbol, _, day = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return symbol, date.fromisoformat(day)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ApiError(400, 40010001, "invalid page_token") from error


def decimal_field(name: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise unprocessable(f"invalid {name}")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as error:
        raise unprocessable(f"invalid {name}") from error
    if not value.is_finite():
        raise unprocessable(f"invalid {name}")
    return value


def qty_and_notional(payload: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    raw_qty, raw_notional = payload.get("qty"), payload.get("notional")
    if raw_qty is None and raw_notional is None:
        raise unprocessable("qty or notional is required")
    if raw_qty is not None and raw_notional is not None:
        raise unprocessable("only one of qty or notional can be specified")
    name, raw = ("qty", raw_qty) if raw_qty is not None else ("notional", raw_notional)
    value = decimal_field(name, raw)
    if value <= 0:
        raise unprocessable(f"{name} must be > 0")
    if value != value.quantize(QTY_STEP, ROUND_DOWN):
        raise unprocessable(f"{name} must have at most 9 decimal places")
    return (value, None) if name == "qty" else (None, value)
