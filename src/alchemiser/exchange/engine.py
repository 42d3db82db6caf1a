"""The simulated exchange behind the local Alpaca-compatible server.

State (clock, account, positions, orders) lives here behind one lock; every public
method first brings the order book up to the exchange's ``now`` (fills, expiries), so
no background thread is needed. The JSON produced by the ``*_json`` methods is what
Alpaca's Trading API v2 and Market Data API v2 send, field for field where the product
uses them; errors are :class:`ApiError` carrying Alpaca's ``{code, message}``.

Documented simplifications:

- Prices are the product's daily closes (already split/dividend adjusted, so the
  ``adjustment`` parameter is accepted and ignored). A daily bar is o=h=l=c=close,
  vw=close, with a fixed volume and trade count.
- Bars are served only for sessions strictly before the current session (its bar is
  not complete), but fills, quotes and valuations use the current session's close: a
  market order placed at the open fills at that day's close, moved against the trader
  by ``slippage_bps``.
- The calendar is the price data's sessions (the reference ticker's dates); after the
  data ends, every weekday is a session (as ``FilePriceStore.is_session``), and orders
  on such days never fill (there is no close to fill at).
- Regular hours 09:30-16:00 New York; 13:00 closes on July 3, the day after US
  Thanksgiving and December 24 when they are sessions. No extended hours.
- Only market day orders, in a cash account (no margin, no shorting). Unfilled day
  orders expire at the session close, keeping any partial fill. Closing a position
  (``close_position``) places such a sell, fractional even for a whole-share asset.
- Only ``us_equity`` trades. Crypto and option holdings exist only when a test seeds
  them (``set_position(..., asset_class=..., price=...)``); they are valued at the
  price given (an option at qty x price x 100) and count in the account's equity.

Test controls: ``set_position`` (any quantity, a fractional residue of a whole-share
asset included), ``set_price`` (one session's price: fills, quotes, latest trades,
valuations; never bars), ``fill_open_orders`` (the market moves on),
``advance``/``set_now`` (the clock) and ``configure`` (settings, ``account_number``
and ``stale_trades_seconds`` included). The account's equity is always cash plus the
positions' ``market_value`` as GET /v2/positions shows them.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Decimal,
    InvalidOperation,
)
from importlib.resources.abc import Traversable
from pathlib import Path
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from alchemiser.adapters.files.prices import FilePriceStore, bundled_prices_dir

NEW_YORK = ZoneInfo("America/New_York")
JSON = dict[str, Any]

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
T_PLUS_ONE_FROM = date(2024, 5, 28)
SATURDAY = 5
THURSDAY = 3

CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")
QTY_STEP = Decimal("0.000000001")
AVG_STEP = Decimal("0.0000000001")
WHOLE = Decimal(1)
RATIO_STEP = Decimal("0.000001")
BPS = Decimal(10_000)
MIN_NOTIONAL = Decimal(1)

BAR_VOLUME = 1_000_000
BAR_TRADES = 1_000
QUOTE_SIZE = 100
TRADE_SIZE = 100
DEFAULT_BARS_LIMIT = 1_000
MAX_BARS_LIMIT = 10_000
DEFAULT_ORDERS_LIMIT = 50
MAX_ORDERS_LIMIT = 500
MAX_CLIENT_ORDER_ID = 128
ASSET_EXCHANGE = "ARCA"
ASSET_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://alchemiser.local/exchange/assets")

OPEN_STATUSES = frozenset({"accepted", "new", "partially_filled"})
EQUITY = "us_equity"
CRYPTO = "crypto"
OPTION = "us_option"
ASSET_CLASSES = frozenset({EQUITY, CRYPTO, OPTION})
OPTION_MULTIPLIER = Decimal(100)
"""An option position's value is qty x price x 100, as Alpaca values contracts."""
POSITION_EXCHANGES = {EQUITY: ASSET_EXCHANGE, CRYPTO: "CRYPTO", OPTION: ""}
TIMEFRAMES = frozenset({"1Day", "1D", "1day"})
ADJUSTMENTS = frozenset({"raw", "split", "dividend", "spin-off", "all"})

_FRACTION = re.compile(r"\.(\d+)")
_OCC_SYMBOL = re.compile(r"[A-Z]{1,6}\d{6}[CP]\d{8}")
_CRYPTO_SYMBOL = re.compile(r"[A-Z0-9]{2,10}/?[A-Z]{3,4}")


class ApiError(Exception):
    """An Alpaca-style error response: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> JSON:
        return {"code": self.code, "message": self.message}


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, 40010001, message)


def _forbidden(message: str) -> ApiError:
    return ApiError(403, 40310000, message)


def _not_found(message: str) -> ApiError:
    return ApiError(404, 40410000, message)


def _bad_data_request(message: str) -> ApiError:
    return ApiError(422, 42210000, message)


# -- settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeSettings:
    """Everything scriptable about the exchange. Frozen: change it with
    ``LocalExchange.configure(**changes)`` (or ``POST /_control/settings``)."""

    session: date | None = None
    """The session the clock starts in (default: the last session in the price data)."""
    now: datetime | None = None
    """The clock's start instant (default: ``session`` at 09:30:01 New York). Setting it
    later moves the exchange clock there; it then runs on in real time."""
    cash: Decimal = Decimal(100_000)
    slippage_bps: Decimal = Decimal(5)
    quote_half_spread_bps: Decimal = Decimal(1)
    fill_delay_seconds: float = 0.0
    partial_fills: Mapping[str, float] = field(default_factory=dict)
    """Per symbol, the fraction of an order's quantity filled at first fill."""
    late_fill_seconds: float | None = None
    """When the rest of a partial fill fills, after the first fill (None: never)."""
    stale_bars_sessions: int = 0
    stale_trades_seconds: float = 0.0
    """How long before ``now`` the latest trades are stamped (0: at ``now``)."""
    latency_ms: int = 0
    rate_limit_per_minute: int = 200
    key_id: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    whole_share_symbols: frozenset[str] = frozenset()
    max_bars_per_page: int = MAX_BARS_LIMIT
    """A server-side cap on bars per page (Alpaca "may return less" than ``limit``)."""
    account_number: str | None = field(default=None, repr=False)
    """The account number GET /v2/account shows (a fake one; default: generated)."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "cash", Decimal(str(self.cash)))
        set_(self, "slippage_bps", Decimal(str(self.slippage_bps)))
        set_(self, "quote_half_spread_bps", Decimal(str(self.quote_half_spread_bps)))
        set_(self, "partial_fills", {s.upper(): float(r) for s, r in self.partial_fills.items()})
        set_(self, "whole_share_symbols", frozenset(s.upper() for s in self.whole_share_symbols))
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("settings.now must be timezone-aware")
        if self.cash < 0:
            raise ValueError("cash must be >= 0")
        if self.slippage_bps < 0 or self.quote_half_spread_bps < 0:
            raise ValueError("slippage_bps and quote_half_spread_bps must be >= 0")
        if self.fill_delay_seconds < 0:
            raise ValueError("fill_delay_seconds must be >= 0")
        if self.late_fill_seconds is not None and self.late_fill_seconds < 0:
            raise ValueError("late_fill_seconds must be >= 0")
        if any(not 0 < r <= 1 for r in self.partial_fills.values()):
            raise ValueError("partial_fills ratios must be in (0, 1]")
        if self.stale_bars_sessions < 0 or self.latency_ms < 0:
            raise ValueError("stale_bars_sessions and latency_ms must be >= 0")
        if not self.stale_trades_seconds >= 0:  # NaN included
            raise ValueError("stale_trades_seconds must be >= 0")
        if self.rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be >= 1")
        if not 1 <= self.max_bars_per_page <= MAX_BARS_LIMIT:
            raise ValueError(f"max_bars_per_page must be in 1..{MAX_BARS_LIMIT}")
        if (self.key_id is None) != (self.secret_key is None):
            raise ValueError("key_id and secret_key go together")
        if self.account_number is not None and not self.account_number.strip():
            raise ValueError("account_number must not be empty")

    def public_json(self) -> JSON:
        """The settings as JSON, without the secret."""
        return {
            "session": self.session.isoformat() if self.session else None,
            "now": self.now.isoformat() if self.now else None,
            "cash": _fmt(self.cash),
            "slippage_bps": _fmt(self.slippage_bps),
            "quote_half_spread_bps": _fmt(self.quote_half_spread_bps),
            "fill_delay_seconds": self.fill_delay_seconds,
            "partial_fills": dict(self.partial_fills),
            "late_fill_seconds": self.late_fill_seconds,
            "stale_bars_sessions": self.stale_bars_sessions,
            "stale_trades_seconds": self.stale_trades_seconds,
            "latency_ms": self.latency_ms,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "key_id": self.key_id,
            "secret_key": None if self.secret_key is None else "***",
            "whole_share_symbols": sorted(self.whole_share_symbols),
            "max_bars_per_page": self.max_bars_per_page,
            # Account numbers stay out of logs and listings, even fake ones.
            "account_number": None if self.account_number is None else "***",
        }


SETTINGS_JSON_FIELDS = frozenset(
    {
        "session",
        "now",
        "advance_seconds",
        "cash",
        "slippage_bps",
        "quote_half_spread_bps",
        "fill_delay_seconds",
        "partial_fills",
        "late_fill_seconds",
        "stale_bars_sessions",
        "stale_trades_seconds",
        "latency_ms",
        "rate_limit_per_minute",
        "key_id",
        "secret_key",
        "whole_share_symbols",
        "max_bars_per_page",
        "account_number",
    }
)


def settings_changes_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /_control/settings`` fields as ``configure`` keyword arguments."""
    unknown = sorted(set(data) - SETTINGS_JSON_FIELDS)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    changes = dict(data)
    if isinstance(changes.get("session"), str):
        changes["session"] = date.fromisoformat(changes["session"])
    if isinstance(changes.get("now"), str):
        changes["now"] = parse_instant(changes["now"], NEW_YORK)
    for name in ("cash", "slippage_bps", "quote_half_spread_bps"):
        if name in changes:
            changes[name] = Decimal(str(changes[name]))
    if "whole_share_symbols" in changes:
        changes["whole_share_symbols"] = frozenset(changes["whole_share_symbols"])
    if changes.get("partial_fills") is None and "partial_fills" in changes:
        changes["partial_fills"] = {}
    return changes


# -- time and the calendar ---------------------------------------------------------------


def parse_instant(text: str, date_zone: tzinfo = NEW_YORK) -> datetime:
    """RFC 3339 (nanoseconds and ``Z`` allowed) or ``YYYY-MM-DD`` (midnight in
    ``date_zone``); a naive date-time is taken as UTC."""
    value = text.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime.combine(day, time(0), tzinfo=date_zone)
    value = value.replace("z", "Z").replace("Z", "+00:00").replace(" ", "+", 1)
    value = value.replace("t", "T")
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def utc_text(instant: datetime) -> str:
    """Alpaca's order timestamps: UTC with a ``Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_date(value: np.datetime64) -> date:
    return date.fromisoformat(str(value.astype("datetime64[D]")))


def _thanksgiving(year: int) -> date:
    first = date(year, 11, 1)
    offset = (THURSDAY - first.weekday()) % 7
    return first + timedelta(days=offset + 21)


class MarketCalendar:
    """Sessions from the price data, every weekday after it ends; hours per session."""

    def __init__(self, sessions: Sequence[date]) -> None:
        if not sessions:
            raise ValueError("the price data has no sessions")
        self._sessions = list(sessions)
        self._set = set(sessions)
        self.first = self._sessions[0]
        self.last_data = self._sessions[-1]

    def is_session(self, day: date) -> bool:
        if day <= self.last_data:
            return day in self._set
        return day.weekday() < SATURDAY

    def next_session(self, day: date) -> date:
        """The first session strictly after ``day``."""
        index = bisect_right(self._sessions, day)
        if index < len(self._sessions):
            return self._sessions[index]
        candidate = max(day, self.last_data) + timedelta(days=1)
        while candidate.weekday() >= SATURDAY:
            candidate += timedelta(days=1)
        return candidate

    def previous_session(self, day: date) -> date | None:
        """The last session strictly before ``day``."""
        candidate = day - timedelta(days=1)
        while candidate > self.last_data:
            if candidate.weekday() < SATURDAY:
                return candidate
            candidate -= timedelta(days=1)
        index = bisect_right(self._sessions, candidate)
        return self._sessions[index - 1] if index > 0 else None

    def sessions_between(self, start: date, end: date) -> list[date]:
        low = bisect_left(self._sessions, start)
        high = bisect_right(self._sessions, end)
        days = self._sessions[low:high]
        day = max(start, self.last_data + timedelta(days=1))
        while day <= end:
            if day.weekday() < SATURDAY:
                days.append(day)
            day += timedelta(days=1)
        return days

    def data_sessions_before(self, day: date) -> list[date]:
        return self._sessions[: bisect_left(self._sessions, day)]

    @staticmethod
    def close_time(day: date) -> time:
        early = (
            (day.month == 7 and day.day == 3)
            or (day.month == 12 and day.day == 24)
            or day == _thanksgiving(day.year) + timedelta(days=1)
        )
        return EARLY_CLOSE if early else REGULAR_CLOSE

    def hours(self, day: date) -> tuple[datetime, datetime]:
        opens = datetime.combine(day, REGULAR_OPEN, tzinfo=NEW_YORK)
        closes = datetime.combine(day, self.close_time(day), tzinfo=NEW_YORK)
        return opens, closes

    def settlement(self, day: date) -> date:
        settles = self.next_session(day)
        if day < T_PLUS_ONE_FROM:
            settles = self.next_session(settles)
        return settles

    def day_json(self, day: date) -> JSON:
        closes = self.close_time(day)
        return {
            "date": day.isoformat(),
            "open": REGULAR_OPEN.strftime("%H:%M"),
            "close": closes.strftime("%H:%M"),
            "session_open": "0400",
            "session_close": "1700" if closes == EARLY_CLOSE else "2000",
            "settlement_date": self.settlement(day).isoformat(),
        }


# -- prices -------------------------------------------------------------------------------


class PriceBook:
    """Every symbol's daily closes, indexed for range and as-of lookups."""

    def __init__(self, directory: Path | Traversable) -> None:
        store = FilePriceStore(directory)
        symbols = sorted(
            {
                entry.name.split(".", 1)[0]
                for entry in directory.iterdir()
                if entry.name.endswith((".csv", ".csv.gz"))
            }
        )
        sessions = store.sessions()
        history = store.history(symbols, end=_to_date(sessions[-1]), sessions=len(sessions))
        self.sessions = [_to_date(d) for d in history.dates]
        self.symbols: tuple[str, ...] = history.symbols
        self._dates: dict[str, npt.NDArray[np.datetime64]] = {}
        self._closes: dict[str, npt.NDArray[np.float64]] = {}
        for column, symbol in enumerate(history.symbols):
            closes = history.closes[:, column]
            valid = ~np.isnan(closes)
            self._dates[symbol] = history.dates[valid]
            self._closes[symbol] = closes[valid]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._dates

    def close_on(self, symbol: str, day: date) -> float | None:
        dates = self._dates.get(symbol)
        if dates is None:
            return None
        index = int(np.searchsorted(dates, np.datetime64(day, "D")))
        if index < len(dates) and _to_date(dates[index]) == day:
            return float(self._closes[symbol][index])
        return None

    def last_close(self, symbol: str, on_or_before: date) -> float | None:
        dates = self._dates.get(symbol)
        if dates is None:
            return None
        index = int(np.searchsorted(dates, np.datetime64(on_or_before, "D"), side="right")) - 1
        return float(self._closes[symbol][index]) if index >= 0 else None

    def series(self, symbol: str, first: date, last: date) -> tuple[list[date], list[float]]:
        """The symbol's sessions and closes from ``first`` to ``last``, inclusive."""
        dates = self._dates.get(symbol)
        if dates is None or first > last:
            return [], []
        low = int(np.searchsorted(dates, np.datetime64(first, "D")))
        high = int(np.searchsorted(dates, np.datetime64(last, "D"), side="right"))
        days: list[date] = dates[low:high].astype("datetime64[D]").tolist()
        closes: list[float] = self._closes[symbol][low:high].tolist()
        return days, closes


# -- orders and positions ---------------------------------------------------------------------


@dataclass
class SimOrder:
    """An order as the exchange holds it (``engine.orders()`` returns copies)."""

    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    qty: Decimal | None
    notional: Decimal | None
    submitted_at: datetime
    trade_session: date
    expires_at: datetime
    fill_delay_seconds: float
    partial_ratio: Decimal | None
    late_fill_seconds: float | None
    whole_shares: bool
    status: str = "accepted"
    updated_at: datetime | None = None
    filled_qty: Decimal = Decimal(0)
    filled_value: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    target_qty: Decimal | None = None
    first_fill_done: bool = False
    remainder_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": utc_text(self.submitted_at),
            "updated_at": utc_text(self.updated_at or self.submitted_at),
            "submitted_at": utc_text(self.submitted_at),
            "filled_at": utc_text(self.filled_at) if self.filled_at else None,
            "expired_at": utc_text(self.expired_at) if self.expired_at else None,
            "expires_at": utc_text(self.expires_at),
            "canceled_at": utc_text(self.canceled_at) if self.canceled_at else None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": self.asset_id,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": _fmt(self.notional) if self.notional is not None else None,
            "qty": _fmt(self.qty) if self.qty is not None else None,
            "filled_qty": _fmt(self.filled_qty),
            "filled_avg_price": (
                _fmt(self.filled_avg_price) if self.filled_avg_price is not None else None
            ),
            "order_class": "",
            "order_type": "market",
            "type": "market",
            "side": self.side,
            "position_intent": "buy_to_open" if self.side == "buy" else "sell_to_close",
            "time_in_force": "day",
            "limit_price": None,
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "subtag": None,
            "source": None,
        }


def _multiplier(asset_class: str) -> Decimal:
    return OPTION_MULTIPLIER if asset_class == OPTION else WHOLE


@dataclass(frozen=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    asset_class: str = EQUITY

    @property
    def cost_basis(self) -> Decimal:
        return _money(self.qty * self.avg_entry_price * _multiplier(self.asset_class))


@dataclass
class _Position:
    """Quantity and average entry price (unchanged by sells, as at Alpaca). Only
    ``us_equity`` positions trade here; the other classes are holdings seeded by tests."""

    qty: Decimal
    avg_price: Decimal
    asset_class: str = EQUITY

    @property
    def multiplier(self) -> Decimal:
        return _multiplier(self.asset_class)

    @property
    def cost_basis(self) -> Decimal:
        return _money(self.qty * self.avg_price * self.multiplier)


def _fmt(value: Decimal) -> str:
    """A Decimal as Alpaca writes numbers in strings: "10", "123.45", "100000"."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _price(close: float) -> Decimal:
    """A float close as a Decimal price, to 1/100 of a cent (as the product reads it)."""
    return Decimal(repr(close)).quantize(PRICE_STEP, ROUND_HALF_EVEN)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_EVEN)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    if denominator == 0:
        return Decimal(0)
    return (numerator / denominator).quantize(RATIO_STEP, ROUND_HALF_EVEN)


def _decimal_field(name: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise _unprocessable(f"invalid {name}")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as error:
        raise _unprocessable(f"invalid {name}") from error
    if not value.is_finite():
        raise _unprocessable(f"invalid {name}")
    return value


def _qty_and_notional(payload: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    raw_qty, raw_notional = payload.get("qty"), payload.get("notional")
    if raw_qty is None and raw_notional is None:
        raise _unprocessable("qty or notional is required")
    if raw_qty is not None and raw_notional is not None:
        raise _unprocessable("only one of qty or notional can be specified")
    name, raw = ("qty", raw_qty) if raw_qty is not None else ("notional", raw_notional)
    value = _decimal_field(name, raw)
    if value <= 0:
        raise _unprocessable(f"{name} must be > 0")
    if value != value.quantize(QTY_STEP, ROUND_DOWN):
        raise _unprocessable(f"{name} must have at most 9 decimal places")
    return (value, None) if name == "qty" else (None, value)


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int_param(query: Mapping[str, Sequence[str]], name: str, default: int) -> int:
    text = _one(query, name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError as error:
        raise _bad_data_request(f"invalid {name}: {text!r}") from error


def _symbols_param(query: Mapping[str, Sequence[str]]) -> list[str]:
    text = _one(query, "symbols") or ""
    symbols = sorted({s.strip().upper() for s in text.split(",") if s.strip()})
    if not symbols:
        raise ApiError(400, 40010001, "missing symbols")
    return symbols


def _bars_params(
    query: Mapping[str, Sequence[str]],
) -> tuple[list[str], int, str, tuple[str, date] | None]:
    symbols = _symbols_param(query)
    timeframe = _one(query, "timeframe")
    if timeframe not in TIMEFRAMES:
        raise _bad_data_request(
            f"invalid timeframe: {timeframe!r} (the local exchange serves 1Day bars only)"
        )
    limit = _int_param(query, "limit", DEFAULT_BARS_LIMIT)
    if not 1 <= limit <= MAX_BARS_LIMIT:
        raise _bad_data_request(f"invalid limit: must be between 1 and {MAX_BARS_LIMIT}")
    adjustment = _one(query, "adjustment") or "raw"
    if any(part.strip() not in ADJUSTMENTS for part in adjustment.split(",")):
        raise _bad_data_request(f"invalid adjustment: {adjustment!r}")
    sort = _one(query, "sort") or "asc"
    if sort not in ("asc", "desc"):
        raise _bad_data_request(f"invalid sort: {sort!r}")
    token = _one(query, "page_token")
    return symbols, limit, sort, _read_page_token(token) if token else None


def _page_token(symbol: str, day: date) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{day.isoformat()}".encode()).decode()


def _read_page_token(token: str) -> tuple[str, date]:
    try:
        symbol, _, day = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return symbol, date.fromisoformat(day)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ApiError(400, 40010001, "invalid page_token") from error


# -- the engine ------------------------------------------------------------------------------


class Engine:
    """The exchange state. Thread-safe: every public method holds the one lock."""

    def __init__(
        self,
        prices: Path | Traversable | None = None,
        settings: ExchangeSettings | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.prices = PriceBook(prices if prices is not None else bundled_prices_dir())
        self.calendar = MarketCalendar(self.prices.sessions)
        settings = settings or ExchangeSettings()
        session = settings.session or self.calendar.last_data
        if not self.calendar.is_session(session):
            raise ValueError(f"{session.isoformat()} is not a session in the price data")
        self._start_session = session
        self._settings = settings
        start = settings.now or self.calendar.hours(session)[0] + timedelta(seconds=1)
        self._anchor = start
        self._anchor_mono = monotonic()
        self.account_id = str(uuid.uuid4())
        self.account_number = settings.account_number or (
            "PA" + self.account_id.replace("-", "")[:10].upper()
        )
        self._created_at = start - timedelta(days=365)
        self._cash = settings.cash
        self._positions: dict[str, _Position] = {}
        self._orders: list[SimOrder] = []
        self._by_id: dict[str, SimOrder] = {}
        self._by_client_id: dict[str, SimOrder] = {}
        self._bar_times: dict[date, str] = {}
        self._price_overrides: dict[str, tuple[date, Decimal]] = {}
        """Per symbol in the price data: a price for one session (``set_price``)."""
        self._other_prices: dict[str, Decimal] = {}
        self._trade_ids = 0
        """The last latest-trade id handed out."""
        """Prices of symbols not in the price data (crypto, options), any day."""

    # -- settings and the clock ----------------------------------------------------------

    @property
    def settings(self) -> ExchangeSettings:
        with self._lock:
            return self._settings

    def configure(self, **changes: Any) -> ExchangeSettings:
        """Replace some settings at once. ``now=`` moves the clock, ``advance_seconds=``
        moves it forward; ``cash=`` resets the cash balance."""
        advance = changes.pop("advance_seconds", None)
        with self._lock:
            self._settle()
            updated = replace(self._settings, **changes)
            if "session" in changes and updated.session is not None and "now" not in changes:
                if not self.calendar.is_session(updated.session):
                    raise ValueError(f"{updated.session.isoformat()} is not a session")
                self._anchor = self.calendar.hours(updated.session)[0] + timedelta(seconds=1)
                self._anchor_mono = monotonic()
            if "now" in changes and updated.now is not None:
                self._anchor = updated.now
                self._anchor_mono = monotonic()
            if "cash" in changes:
                self._cash = updated.cash
            if "account_number" in changes and updated.account_number is not None:
                self.account_number = updated.account_number
            self._settings = updated
            if advance:
                self._anchor += timedelta(seconds=float(advance))
            self._settle()
            return updated

    def set_now(self, instant: datetime) -> None:
        self.configure(now=instant)

    def advance(self, seconds: float) -> None:
        """Move the exchange clock forward (tests: delayed fills without waiting)."""
        self.configure(advance_seconds=seconds)

    def now(self) -> datetime:
        with self._lock:
            return self._now()

    def _now(self) -> datetime:
        return self._anchor + timedelta(seconds=monotonic() - self._anchor_mono)

    def current_session(self) -> date | None:
        """The New York date of now, when it is a session."""
        with self._lock:
            today = self._now().astimezone(NEW_YORK).date()
            return today if self.calendar.is_session(today) else None

    def is_open(self, at: datetime | None = None) -> bool:
        with self._lock:
            instant = at or self._now()
            today = instant.astimezone(NEW_YORK).date()
            if not self.calendar.is_session(today):
                return False
            opens, closes = self.calendar.hours(today)
            return opens <= instant < closes

    # -- assertions (copies) -----------------------------------------------------------------

    def orders(self) -> list[SimOrder]:
        with self._lock:
            self._settle()
            return [replace(o) for o in self._orders]

    def accepted_orders(self) -> list[SimOrder]:
        """Every order the exchange accepted, in submission order (same as ``orders``)."""
        return self.orders()

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders() if o.is_open]

    def order(self, order_id: str) -> SimOrder | None:
        with self._lock:
            self._settle()
            found = self._by_id.get(order_id)
            return replace(found) if found else None

    def order_by_client_id(self, client_order_id: str) -> SimOrder | None:
        with self._lock:
            self._settle()
            found = self._by_client_id.get(client_order_id)
            return replace(found) if found else None

    def positions(self) -> dict[str, PositionView]:
        with self._lock:
            self._settle()
            return {
                s: PositionView(s, p.qty, p.avg_price, p.asset_class)
                for s, p in sorted(self._positions.items())
            }

    def cash(self) -> Decimal:
        with self._lock:
            self._settle()
            return self._cash

    def set_position(
        self,
        symbol: str,
        qty: Decimal,
        avg_entry_price: Decimal,
        *,
        asset_class: str = EQUITY,
        price: Decimal | None = None,
    ) -> None:
        """Seed a holding (tests): ``qty`` shares bought at ``avg_entry_price``; 0 removes
        the holding, whatever its class.

        Any quantity goes, a fractional one of a non-fractionable asset included (a
        residue the product must still be able to exit). ``asset_class`` ``"crypto"``
        (``BTC/USD`` or ``BTCUSD``) or ``"us_option"`` (an OCC symbol such as
        ``SPY260918C00500000``, valued at qty x price x 100) makes a holding the product
        cannot trade; those need ``price`` (they are not in the price data). For a
        ``us_equity`` symbol ``price`` overrides today's price (see ``set_price``)."""
        with self._lock:
            self._settle()
            symbol = symbol.upper()
            if qty <= 0:
                self._positions.pop(symbol, None)
                return
            if asset_class not in ASSET_CLASSES:
                raise ValueError(f"asset_class must be one of {sorted(ASSET_CLASSES)}")
            if asset_class == EQUITY:
                if symbol not in self.prices:
                    raise ValueError(f"{symbol}: not in the price data")
            else:
                if symbol in self.prices:
                    raise ValueError(f"{symbol}: a us_equity symbol in the price data")
                pattern = _OCC_SYMBOL if asset_class == OPTION else _CRYPTO_SYMBOL
                if pattern.fullmatch(symbol) is None:
                    raise ValueError(f"{symbol}: not a {asset_class} symbol")
                if price is None and symbol not in self._other_prices:
                    raise ValueError(f"{symbol}: a {asset_class} position needs a price")
            if price is not None:
                self._set_price(symbol, price, None)
            self._positions[symbol] = _Position(qty, avg_entry_price, asset_class)

    def set_price(self, symbol: str, price: Decimal | None, session: date | None = None) -> None:
        """Override a symbol's price for one session (default: today, the New York date
        of the exchange clock): fills in that session, quotes and position valuations
        use it; bars never do (the session's own bar is not served while it is today,
        and bars of earlier sessions stay the price data's). ``None`` removes the
        override. A symbol not in the price data (crypto, options) gets this price for
        every day."""
        with self._lock:
            # Orders due to fill before the change fill at the old price.
            self._settle()
            self._set_price(symbol.upper(), price, session)

    def _set_price(self, symbol: str, price: Decimal | None, session: date | None) -> None:
        if price is not None and (not price.is_finite() or price <= 0):
            raise ValueError(f"{symbol}: a price must be > 0, got {price}")
        if symbol not in self.prices:
            if session is not None:
                raise ValueError(f"{symbol}: not in the price data, its price has no session")
            if price is None:
                self._other_prices.pop(symbol, None)
            else:
                self._other_prices[symbol] = price
            return
        if price is None:
            self._price_overrides.pop(symbol, None)
        else:
            self._price_overrides[symbol] = (session or self._today(), price)

    def fill_open_orders(self, client_order_id: str | None = None) -> list[str]:
        """Fill every open order (or the one with ``client_order_id``) in full now, at
        the price it would fill at (its session's close, else today's, with slippage),
        as if the market moved on. The ids of the orders filled."""
        with self._lock:
            self._settle()
            now = self._now()
            filled: list[str] = []
            for order in self._orders:
                if not order.is_open:
                    continue
                if client_order_id is not None and order.client_order_id != client_order_id:
                    continue
                if self._fill_in_full(order, now):
                    filled.append(order.id)
            return filled

    def _fill_in_full(self, order: SimOrder, at: datetime) -> bool:
        close = self._session_close(order.symbol, order.trade_session)
        if close is None:
            close = self._reference_price(order.symbol)
        if close is None:
            return False
        price = self._slipped(close, order.side)
        target = order.target_qty
        if target is None:
            if order.qty is not None:
                target = order.qty
            else:
                assert order.notional is not None
                target = (order.notional / price).quantize(QTY_STEP, ROUND_DOWN)
        rest = target - order.filled_qty
        if order.side == "sell":
            held = self._positions.get(order.symbol)
            rest = min(rest, held.qty if held else Decimal(0))
        if rest <= 0 and order.filled_qty == 0:
            return False  # a sell of nothing held: it stays open
        order.first_fill_done = True
        order.target_qty = order.filled_qty + max(rest, Decimal(0))
        order.remainder_at = None
        self._fill(order, rest, price, at)
        order.status = "filled"
        order.updated_at = at
        return True

    # -- pricing ---------------------------------------------------------------------------

    def _today(self) -> date:
        return self._now().astimezone(NEW_YORK).date()

    def _session_close(self, symbol: str, day: date) -> Decimal | None:
        """What an order of ``symbol`` fills at in session ``day`` (before slippage)."""
        override = self._price_overrides.get(symbol)
        if override is not None and override[0] == day:
            return override[1]
        close = self.prices.close_on(symbol, day)
        return _price(close) if close is not None else None

    def _reference_price(self, symbol: str) -> Decimal | None:
        """Today's override, else the latest close on or before today (today's close on
        a session day); for a symbol not in the price data, the price it was given."""
        today = self._today()
        override = self._price_overrides.get(symbol)
        if override is not None and override[0] == today:
            return override[1]
        if symbol not in self.prices:
            return self._other_prices.get(symbol)
        close = self.prices.last_close(symbol, today)
        return _price(close) if close is not None else None

    def _previous_price(self, symbol: str) -> Decimal | None:
        if symbol not in self.prices:
            return self._other_prices.get(symbol)  # no history: yesterday is today
        previous = self.calendar.previous_session(self._today())
        if previous is None:
            return None
        close = self.prices.last_close(symbol, previous)
        return _price(close) if close is not None else None

    def _slipped(self, close: Decimal, side: str) -> Decimal:
        move = self._settings.slippage_bps / BPS
        price = close * (1 + move) if side == "buy" else close * (1 - move)
        step = CENT if price >= 1 else PRICE_STEP
        return price.quantize(step, ROUND_HALF_EVEN)

    def _estimated_price(self, symbol: str, side: str) -> Decimal | None:
        reference = self._reference_price(symbol)
        return self._slipped(reference, side) if reference is not None else None

    # -- the order book over time --------------------------------------------------------------

    def _settle(self) -> None:
        now = self._now()
        for order in self._orders:
            if order.is_open:
                self._settle_order(order, now)

    def _settle_order(self, order: SimOrder, now: datetime) -> None:
        opens, closes = self.calendar.hours(order.trade_session)
        routed = max(order.submitted_at, opens)
        if order.status == "accepted" and routed <= now and routed < closes:
            order.status = "new"
            order.updated_at = routed
        first_at = routed + timedelta(seconds=order.fill_delay_seconds)
        if not order.first_fill_done and first_at <= now and first_at < closes:
            self._first_fill(order, first_at)
        remainder_at = order.remainder_at
        if (
            order.first_fill_done
            and order.is_open
            and remainder_at is not None
            and remainder_at <= now
            and remainder_at < closes
        ):
            assert order.target_qty is not None
            close = self._session_close(order.symbol, order.trade_session)
            if close is not None:
                price = self._slipped(close, order.side)
                self._fill(order, order.target_qty - order.filled_qty, price, remainder_at)
            order.status = "filled"
            order.updated_at = remainder_at
        if order.is_open and now >= closes:
            order.status = "expired"
            order.expired_at = closes
            order.updated_at = closes

    def _first_fill(self, order: SimOrder, at: datetime) -> None:
        close = self._session_close(order.symbol, order.trade_session)
        if close is None:
            return  # no close that session: the order cannot fill, and expires
        order.first_fill_done = True
        price = self._slipped(close, order.side)
        step = WHOLE if order.whole_shares else QTY_STEP
        if order.qty is not None:
            target = order.qty
        else:
            assert order.notional is not None
            target = (order.notional / price).quantize(QTY_STEP, ROUND_DOWN)
        if order.side == "sell":
            held = self._positions.get(order.symbol)
            target = min(target, held.qty if held else Decimal(0))
        order.target_qty = target
        part = target
        if order.partial_ratio is not None and order.partial_ratio < 1:
            part = (target * order.partial_ratio).quantize(step, ROUND_DOWN)
        if part > 0:
            self._fill(order, part, price, at)
            order.status = "filled" if part >= target else "partially_filled"
        if part < target and order.late_fill_seconds is not None:
            order.remainder_at = at + timedelta(seconds=order.late_fill_seconds)
        order.updated_at = at

    def _fill(self, order: SimOrder, qty: Decimal, price: Decimal, at: datetime) -> None:
        if qty <= 0:
            return
        value = _money(qty * price)
        if order.side == "buy":
            self._cash -= value
            held = self._positions.setdefault(order.symbol, _Position(Decimal(0), Decimal(0)))
            total = held.qty + qty
            held.avg_price = ((held.qty * held.avg_price + qty * price) / total).quantize(
                AVG_STEP, ROUND_HALF_EVEN
            )
            held.qty = total
        else:
            held = self._positions[order.symbol]
            held.qty -= qty
            self._cash += value
            if held.qty == 0:
                del self._positions[order.symbol]
        order.filled_qty += qty
        order.filled_value += qty * price
        order.filled_avg_price = (order.filled_value / order.filled_qty).quantize(
            PRICE_STEP, ROUND_HALF_EVEN
        )
        order.filled_at = at
        order.updated_at = at

    def _trade_session(self, at: datetime) -> date:
        today = at.astimezone(NEW_YORK).date()
        if self.calendar.is_session(today) and at < self.calendar.hours(today)[1]:
            return today
        return self.calendar.next_session(today)

    # -- reservations ------------------------------------------------------------------------

    def _remaining_qty(self, order: SimOrder) -> Decimal:
        if order.target_qty is not None:
            return order.target_qty - order.filled_qty
        if order.qty is not None:
            return order.qty - order.filled_qty
        assert order.notional is not None
        price = self._estimated_price(order.symbol, order.side)
        if price is None or price == 0:
            return Decimal(0)
        return (order.notional / price).quantize(QTY_STEP, ROUND_DOWN)

    def _remaining_cost(self, order: SimOrder) -> Decimal:
        if order.target_qty is None and order.notional is not None:
            return order.notional
        price = self._estimated_price(order.symbol, order.side) or Decimal(0)
        return _money(self._remaining_qty(order) * price)

    def _buying_power(self) -> Decimal:
        reserved = sum(
            (self._remaining_cost(o) for o in self._orders if o.is_open and o.side == "buy"),
            Decimal(0),
        )
        return max(self._cash - reserved, Decimal(0))

    def _qty_available(self, symbol: str) -> Decimal:
        held = self._positions.get(symbol)
        reserved = sum(
            (
                self._remaining_qty(o)
                for o in self._orders
                if o.is_open and o.side == "sell" and o.symbol == symbol
            ),
            Decimal(0),
        )
        return max((held.qty if held else Decimal(0)) - reserved, Decimal(0))

    # -- trading API: clock, calendar, assets ------------------------------------------------

    def clock_json(self) -> JSON:
        with self._lock:
            self._settle()
            now = self._now().astimezone(NEW_YORK)
            today = now.date()
            is_open = False
            if self.calendar.is_session(today):
                opens, closes = self.calendar.hours(today)
                if now < opens:
                    next_open, next_close = opens, closes
                elif now < closes:
                    is_open = True
                    next_open = self.calendar.hours(self.calendar.next_session(today))[0]
                    next_close = closes
                else:
                    next_open, next_close = self.calendar.hours(self.calendar.next_session(today))
            else:
                next_open, next_close = self.calendar.hours(self.calendar.next_session(today))
            return {
                "timestamp": now.isoformat(timespec="microseconds"),
                "is_open": is_open,
                "next_open": next_open.isoformat(timespec="seconds"),
                "next_close": next_close.isoformat(timespec="seconds"),
            }

    def calendar_json(self, query: Mapping[str, Sequence[str]]) -> list[JSON]:
        def day(name: str, default: date) -> date:
            text = _one(query, name)
            if not text:
                return default
            try:
                return date.fromisoformat(text.strip()[:10])
            except ValueError as error:
                raise ApiError(400, 40010001, f"invalid {name}: {text!r}") from error

        with self._lock:
            start = day("start", self.calendar.first)
            end = day("end", max(date(2029, 12, 31), self.calendar.last_data))
            return [self.calendar.day_json(d) for d in self.calendar.sessions_between(start, end)]

    def _asset_json(self, symbol: str) -> JSON:
        return {
            "id": str(uuid.uuid5(ASSET_NAMESPACE, symbol)),
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
            "fractionable": symbol not in self._settings.whole_share_symbols,
            "attributes": [],
        }

    def assets_json(self, query: Mapping[str, Sequence[str]]) -> list[JSON]:
        with self._lock:
            status = _one(query, "status")
            asset_class = _one(query, "asset_class") or "us_equity"
            exchange = _one(query, "exchange")
            if status not in (None, "", "active") or asset_class != "us_equity":
                return []
            if exchange and exchange != ASSET_EXCHANGE:
                return []
            return [self._asset_json(s) for s in self.prices.symbols]

    def _resolve_symbol(self, symbol_or_id: str) -> str | None:
        symbol = symbol_or_id.upper()
        if symbol in self.prices:
            return symbol
        for candidate in self.prices.symbols:
            if str(uuid.uuid5(ASSET_NAMESPACE, candidate)) == symbol_or_id.lower():
                return candidate
        return None

    def asset_json(self, symbol_or_id: str) -> JSON:
        with self._lock:
            symbol = self._resolve_symbol(symbol_or_id)
            if symbol is None:
                raise _not_found("asset not found")
            return self._asset_json(symbol)

    # -- trading API: account and positions ---------------------------------------------------

    def _held_symbol(self, symbol_or_id: str) -> str | None:
        """The symbol of a held position named by symbol or asset id."""
        symbol = symbol_or_id.upper()
        if symbol in self._positions:
            return symbol
        for candidate in self._positions:
            if str(uuid.uuid5(ASSET_NAMESPACE, candidate)) == symbol_or_id.lower():
                return candidate
        return None

    def _current_price(self, symbol: str, held: _Position) -> Decimal:
        return self._reference_price(symbol) or held.avg_price

    def _position_value(self, held: _Position, price: Decimal) -> Decimal:
        """What GET /v2/positions shows as market_value, and the account adds up."""
        return _money(held.qty * price * held.multiplier)

    def _position_json(self, symbol: str, held: _Position) -> JSON:
        current = self._current_price(symbol, held)
        lastday = self._previous_price(symbol) or current
        market_value = self._position_value(held, current)
        lastday_value = self._position_value(held, lastday)
        unrealized = market_value - held.cost_basis
        intraday = market_value - lastday_value
        return {
            "asset_id": str(uuid.uuid5(ASSET_NAMESPACE, symbol)),
            "symbol": symbol,
            "exchange": POSITION_EXCHANGES[held.asset_class],
            "asset_class": held.asset_class,
            "asset_marginable": held.asset_class == EQUITY,
            "qty": _fmt(held.qty),
            "qty_available": _fmt(self._qty_available(symbol)),
            "avg_entry_price": _fmt(held.avg_price.quantize(PRICE_STEP, ROUND_HALF_EVEN)),
            "side": "long",
            "market_value": _fmt(market_value),
            "cost_basis": _fmt(held.cost_basis),
            "unrealized_pl": _fmt(unrealized),
            "unrealized_plpc": _fmt(_ratio(unrealized, held.cost_basis)),
            "unrealized_intraday_pl": _fmt(intraday),
            "unrealized_intraday_plpc": _fmt(_ratio(intraday, lastday_value)),
            "current_price": _fmt(current),
            "lastday_price": _fmt(lastday),
            "change_today": _fmt(_ratio(current - lastday, lastday)),
        }

    def positions_json(self) -> list[JSON]:
        with self._lock:
            self._settle()
            return [self._position_json(s, p) for s, p in sorted(self._positions.items())]

    def position_json(self, symbol_or_id: str) -> JSON:
        with self._lock:
            self._settle()
            symbol = self._held_symbol(symbol_or_id)
            held = self._positions.get(symbol) if symbol else None
            if symbol is None or held is None:
                raise _not_found("position does not exist")
            return self._position_json(symbol, held)

    def _market_value(self, previous: bool) -> Decimal:
        total = Decimal(0)
        for symbol, held in self._positions.items():
            if previous:
                price = self._previous_price(symbol) or held.avg_price
            else:
                price = self._current_price(symbol, held)
            total += self._position_value(held, price)
        return total

    def account_json(self) -> JSON:
        with self._lock:
            self._settle()
            long_value = self._market_value(previous=False)
            equity = self._cash + long_value
            buying_power = _fmt(self._buying_power())
            previous = self.calendar.previous_session(self._today())
            return {
                "id": self.account_id,
                "account_number": self.account_number,
                "status": "ACTIVE",
                "crypto_status": "INACTIVE",
                "currency": "USD",
                "buying_power": buying_power,
                "regt_buying_power": buying_power,
                "daytrading_buying_power": "0",
                "effective_buying_power": buying_power,
                "non_marginable_buying_power": buying_power,
                "options_buying_power": buying_power,
                "cash": _fmt(self._cash),
                "accrued_fees": "0",
                "pending_transfer_in": "0",
                "pending_transfer_out": "0",
                "portfolio_value": _fmt(equity),
                "pattern_day_trader": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "created_at": utc_text(self._created_at),
                "trade_suspended_by_user": False,
                "multiplier": "1",
                "shorting_enabled": False,
                "equity": _fmt(equity),
                "last_equity": _fmt(self._cash + self._market_value(previous=True)),
                "long_market_value": _fmt(long_value),
                "short_market_value": "0",
                "position_market_value": _fmt(long_value),
                "initial_margin": "0",
                "maintenance_margin": "0",
                "last_maintenance_margin": "0",
                "sma": "0",
                "daytrade_count": 0,
                "balance_asof": (previous or self._today()).isoformat(),
                "options_approved_level": 0,
                "options_trading_level": 0,
                "intraday_adjustments": "0",
                "pending_reg_taf_fees": "0",
            }

    # -- trading API: orders ------------------------------------------------------------------

    def submit_order(self, payload: Any) -> JSON:
        """Validate and accept a market day order, or raise the ApiError Alpaca sends."""
        if not isinstance(payload, Mapping):
            raise ApiError(400, 40010000, "request body format is invalid")
        with self._lock:
            self._settle()
            return self._accept(self._validate_order(payload))

    def _validate_order(self, payload: Mapping[str, Any]) -> SimOrder:
        client_order_id = self._client_order_id(payload)
        symbol, side = self._symbol_and_side(payload)
        qty, notional = _qty_and_notional(payload)
        whole = symbol in self._settings.whole_share_symbols
        self._check_order(symbol, side, qty, notional, whole)
        return self._new_order(client_order_id, symbol, side, qty, notional, whole)

    def _new_order(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: Decimal | None,
        notional: Decimal | None,
        whole: bool,
    ) -> SimOrder:
        now = self._now()
        session = self._trade_session(now)
        settings = self._settings
        ratio = settings.partial_fills.get(symbol)
        return SimOrder(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            symbol=symbol,
            asset_id=str(uuid.uuid5(ASSET_NAMESPACE, symbol)),
            side=side,
            qty=qty,
            notional=notional,
            submitted_at=now,
            updated_at=now,
            trade_session=session,
            expires_at=self.calendar.hours(session)[1],
            fill_delay_seconds=settings.fill_delay_seconds,
            partial_ratio=Decimal(repr(ratio)).quantize(RATIO_STEP, ROUND_FLOOR) if ratio else None,
            late_fill_seconds=settings.late_fill_seconds,
            whole_shares=whole,
        )

    def _accept(self, order: SimOrder) -> JSON:
        self._orders.append(order)
        self._by_id[order.id] = order
        self._by_client_id[order.client_order_id] = order
        return order.to_json()

    def close_position(self, symbol_or_id: str, query: Mapping[str, Sequence[str]]) -> JSON:
        """DELETE /v2/positions/{symbol}: a market day sell of ``qty`` shares, or of
        ``percentage`` of the position, or of all of it; the order, under a
        client_order_id the exchange makes up. A fractional quantity goes even for an
        asset that is not fractionable: this is how a fractional residue is exited."""
        qty_text = _one(query, "qty") or None
        percentage_text = _one(query, "percentage") or None
        if qty_text is not None and percentage_text is not None:
            raise _unprocessable("only one of qty or percentage can be specified")
        with self._lock:
            self._settle()
            symbol = self._held_symbol(symbol_or_id)
            held = self._positions.get(symbol) if symbol is not None else None
            if symbol is None or held is None:
                raise _not_found(f"position not found: {symbol_or_id}")
            if held.asset_class != EQUITY:
                raise _unprocessable(
                    f"only us_equity positions can be closed on the local exchange, "
                    f"not {held.asset_class}"
                )
            if qty_text is not None:
                qty = _decimal_field("qty", qty_text)
                if qty <= 0:
                    raise _unprocessable("qty must be > 0")
                if qty != qty.quantize(QTY_STEP, ROUND_DOWN):
                    raise _unprocessable("qty must have at most 9 decimal places")
            elif percentage_text is not None:
                percentage = _decimal_field("percentage", percentage_text)
                if not 0 < percentage <= 100:
                    raise _unprocessable("percentage must be > 0 and <= 100")
                # Alpaca sells a fraction only when the position is fractional.
                step = WHOLE if held.qty == held.qty.to_integral_value() else QTY_STEP
                qty = (held.qty * percentage / 100).quantize(step, ROUND_DOWN)
                if qty <= 0:
                    raise _unprocessable("qty must be > 0")
            else:
                qty = held.qty
            available = self._qty_available(symbol)
            if qty > available:
                raise _unprocessable(
                    f"insufficient qty available for order (requested: {_fmt(qty)}, "
                    f"available: {_fmt(available)})"
                )
            if any(o.is_open and o.symbol == symbol and o.side == "buy" for o in self._orders):
                raise _forbidden("potential wash trade detected. use complex orders")
            order = self._new_order(str(uuid.uuid4()), symbol, "sell", qty, None, whole=False)
            return self._accept(order)

    def _client_order_id(self, payload: Mapping[str, Any]) -> str:
        client_order_id = payload.get("client_order_id")
        if client_order_id is None or client_order_id == "":
            return str(uuid.uuid4())
        if not isinstance(client_order_id, str):
            raise _unprocessable("invalid client_order_id")
        if len(client_order_id) > MAX_CLIENT_ORDER_ID:
            raise _unprocessable(
                f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters"
            )
        if client_order_id in self._by_client_id:
            raise _unprocessable("client_order_id must be unique")
        return client_order_id

    def _symbol_and_side(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        raw_symbol = payload.get("symbol")
        if not isinstance(raw_symbol, str) or not raw_symbol.strip():
            raise _unprocessable("symbol is required")
        symbol = self._resolve_symbol(raw_symbol.strip())
        if symbol is None:
            raise _unprocessable(f'asset "{raw_symbol.strip()}" not found')
        side = payload.get("side")
        if side not in ("buy", "sell"):
            raise _unprocessable("side must be buy or sell")
        if payload.get("type", payload.get("order_type")) != "market":
            raise _unprocessable("only market orders are supported by the local exchange")
        if payload.get("time_in_force") != "day":
            raise _unprocessable("only day orders are supported by the local exchange")
        if payload.get("order_class") not in (None, "", "simple"):
            raise _unprocessable("only simple orders are supported by the local exchange")
        if payload.get("extended_hours"):
            raise _unprocessable("extended hours orders must be DAY limit orders")
        return symbol, str(side)

    def _check_order(
        self, symbol: str, side: str, qty: Decimal | None, notional: Decimal | None, whole: bool
    ) -> None:
        fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
        if whole and fractional:
            raise _forbidden(f'asset "{symbol}" is not fractionable')
        if notional is not None and notional < MIN_NOTIONAL:
            raise _forbidden("cost basis must be >= 1")
        if any(o.is_open and o.symbol == symbol and o.side != side for o in self._orders):
            raise _forbidden("potential wash trade detected. use complex orders")
        price = self._estimated_price(symbol, side)
        if price is None:
            raise _forbidden(f'asset "{symbol}" has no price to trade at')
        if side == "buy":
            cost = notional if notional is not None else _money((qty or Decimal(0)) * price)
            if cost > self._buying_power():
                raise _forbidden("insufficient buying power")
            return
        wanted = qty if qty is not None else (notional or Decimal(0)) / price
        available = self._qty_available(symbol)
        if wanted > available:
            requested = wanted if qty is not None else wanted.quantize(QTY_STEP, ROUND_CEILING)
            raise _forbidden(
                f"insufficient qty available for order (requested: {_fmt(requested)}, "
                f"available: {_fmt(available)})"
            )

    def orders_json(self, query: Mapping[str, Sequence[str]]) -> list[JSON]:
        status = _one(query, "status") or "open"
        if status not in ("open", "closed", "all"):
            raise _unprocessable(f"invalid status: {status!r}")
        direction = _one(query, "direction") or "desc"
        if direction not in ("asc", "desc"):
            raise _unprocessable(f"invalid direction: {direction!r}")
        try:
            limit = int(_one(query, "limit") or DEFAULT_ORDERS_LIMIT)
        except ValueError as error:
            raise _unprocessable("invalid limit") from error
        if limit < 1:
            raise _unprocessable("invalid limit")
        limit = min(limit, MAX_ORDERS_LIMIT)
        bounds: dict[str, datetime] = {}
        for name in ("after", "until"):
            text = _one(query, name)
            if text:
                try:
                    bounds[name] = parse_instant(text, UTC)
                except ValueError as error:
                    raise _unprocessable(f"invalid {name}: {text!r}") from error
        symbols = {s.strip().upper() for s in (_one(query, "symbols") or "").split(",") if s}
        side = _one(query, "side")
        with self._lock:
            self._settle()
            selected = [
                o
                for o in self._orders
                if (status == "all" or (status == "open") == o.is_open)
                and ("after" not in bounds or o.submitted_at > bounds["after"])
                and ("until" not in bounds or o.submitted_at < bounds["until"])
                and (not symbols or o.symbol in symbols)
                and (not side or o.side == side)
            ]
            if direction == "desc":
                selected.reverse()
            return [o.to_json() for o in selected[:limit]]

    def _find_order(self, order_id: str) -> SimOrder:
        order = self._by_id.get(order_id.lower())
        if order is None:
            raise _not_found("order not found")
        return order

    def order_json(self, order_id: str) -> JSON:
        with self._lock:
            self._settle()
            return self._find_order(order_id).to_json()

    def order_by_client_id_json(self, client_order_id: str | None) -> JSON:
        if not client_order_id:
            raise _unprocessable("client_order_id is missing")
        with self._lock:
            self._settle()
            order = self._by_client_id.get(client_order_id)
            if order is None:
                raise _not_found("order not found")
            return order.to_json()

    def cancel_order(self, order_id: str) -> None:
        with self._lock:
            self._settle()
            order = self._find_order(order_id)
            if not order.is_open:
                raise ApiError(422, 42210000, "order is not cancelable")
            now = self._now()
            order.status = "canceled"
            order.canceled_at = now
            order.updated_at = now

    def cancel_all_json(self) -> list[JSON]:
        with self._lock:
            self._settle()
            results: list[JSON] = []
            for order in self._orders:
                if order.is_open:
                    self.cancel_order(order.id)
                    results.append({"id": order.id, "status": 200, "body": order.to_json()})
            return results

    # -- market data ------------------------------------------------------------------------

    def _bar_time(self, day: date) -> str:
        text = self._bar_times.get(day)
        if text is None:
            midnight = datetime.combine(day, time(0), tzinfo=NEW_YORK)
            text = midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._bar_times[day] = text
        return text

    def _visible_last_session(self) -> date | None:
        """The last session whose bar is served: before today, less the stale ones."""
        before = self.calendar.data_sessions_before(self._today())
        hidden = self._settings.stale_bars_sessions
        if len(before) <= hidden:
            return None
        return before[len(before) - 1 - hidden]

    def bars_json(self, query: Mapping[str, Sequence[str]]) -> JSON:
        symbols, limit, sort, after = _bars_params(query)
        with self._lock:
            now = self._now()
            bounds: list[datetime] = []
            for name, default in (
                ("start", datetime.combine(self._today(), time(0), tzinfo=NEW_YORK)),
                ("end", now),
            ):
                text = _one(query, name)
                try:
                    bounds.append(parse_instant(text) if text else default)
                except ValueError as error:
                    raise _bad_data_request(f"invalid {name}: {text!r}") from error
            start, end = bounds
            first = start.astimezone(NEW_YORK).date()
            if datetime.combine(first, time(0), tzinfo=NEW_YORK) < start:
                first += timedelta(days=1)
            last = end.astimezone(NEW_YORK).date()
            visible = self._visible_last_session()
            if visible is None:
                return {"bars": {}, "next_page_token": None}
            last = min(last, visible)
            page_size = min(limit, self._settings.max_bars_per_page)
            bars: dict[str, list[JSON]] = {}
            count = 0
            next_token: str | None = None
            for symbol in symbols:
                if after is not None and symbol < after[0]:
                    continue
                dates, closes = self.prices.series(symbol, first, last)
                rows = range(len(dates) - 1, -1, -1) if sort == "desc" else range(len(dates))
                for row in rows:
                    day = dates[row]
                    if (
                        after is not None
                        and symbol == after[0]
                        and (day <= after[1] if sort == "asc" else day >= after[1])
                    ):
                        continue
                    if count == page_size:
                        last_symbol = next(reversed(bars))
                        next_token = _page_token(last_symbol, _last_day(bars[last_symbol]))
                        break
                    close = closes[row]
                    bars.setdefault(symbol, []).append(
                        {
                            "t": self._bar_time(day),
                            "o": close,
                            "h": close,
                            "l": close,
                            "c": close,
                            "v": BAR_VOLUME,
                            "n": BAR_TRADES,
                            "vw": close,
                        }
                    )
                    count += 1
                if next_token is not None:
                    break
            return {"bars": bars, "next_page_token": next_token}

    def latest_quotes_json(self, query: Mapping[str, Sequence[str]]) -> JSON:
        symbols = _symbols_param(query)
        with self._lock:
            self._settle()
            stamp = utc_text(self._now())
            half = self._settings.quote_half_spread_bps / BPS
            quotes: dict[str, JSON] = {}
            for symbol in symbols:
                # Stock quotes only: a crypto or option price given by a test is not one.
                reference = self._reference_price(symbol) if symbol in self.prices else None
                if reference is None:
                    continue
                step = CENT if reference >= 1 else PRICE_STEP
                ask = (reference * (1 + half)).quantize(step, ROUND_CEILING)
                bid = (reference * (1 - half)).quantize(step, ROUND_FLOOR)
                quotes[symbol] = {
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
            return {"quotes": quotes}

    def latest_trades_json(self, query: Mapping[str, Sequence[str]]) -> JSON:
        """Each symbol's latest trade: at its current price (as quotes are), stamped
        ``stale_trades_seconds`` before now; a symbol without a price is left out."""
        symbols = _symbols_param(query)
        with self._lock:
            self._settle()
            at = self._now() - timedelta(seconds=self._settings.stale_trades_seconds)
            stamp = utc_text(at)
            trades: dict[str, JSON] = {}
            for symbol in symbols:
                # Stock trades only, as for quotes.
                price = self._reference_price(symbol) if symbol in self.prices else None
                if price is None:
                    continue
                self._trade_ids += 1
                trades[symbol] = {
                    "t": stamp,
                    "x": "V",
                    "p": float(price),
                    "s": TRADE_SIZE,
                    "c": ["@"],
                    "i": self._trade_ids,
                    "z": "C",
                }
            return {"trades": trades}

    # -- the control plane -----------------------------------------------------------------

    def state_json(self) -> JSON:
        with self._lock:
            return {
                "now": self._now().astimezone(NEW_YORK).isoformat(timespec="microseconds"),
                "session": (self.current_session() or self._today()).isoformat(),
                "market_open": self.is_open(),
                "account": self.account_json(),
                "positions": self.positions_json(),
                "orders": [o.to_json() for o in self._orders],
                "settings": self._settings.public_json(),
                "prices": {
                    **{s: _fmt(p) for s, p in sorted(self._other_prices.items())},
                    **{
                        s: {"session": day.isoformat(), "price": _fmt(p)}
                        for s, (day, p) in sorted(self._price_overrides.items())
                    },
                },
            }


def _last_day(bars: list[JSON]) -> date:
    stamp = parse_instant(bars[-1]["t"])
    return stamp.astimezone(NEW_YORK).date()
