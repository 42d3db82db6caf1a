"""The local exchange's scriptable settings: prices, fills, faults of data, keys.

Frozen: change them with ``LocalExchange.configure(**changes)`` (or
``POST /_control/settings``, whose JSON ``settings_changes_from_json`` reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from alchemiser.exchange.params import MAX_BARS_LIMIT
from alchemiser.exchange.sessions import NEW_YORK, parse_instant
from alchemiser.exchange.shapes import JSON, fmt


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
    partial_bars: bool = False
    """Serve the current session's bar once the market has opened (as Alpaca does,
    a bar still under way); off: only sessions before today."""
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
            "cash": fmt(self.cash),
            "slippage_bps": fmt(self.slippage_bps),
            "quote_half_spread_bps": fmt(self.quote_half_spread_bps),
            "fill_delay_seconds": self.fill_delay_seconds,
            "partial_fills": dict(self.partial_fills),
            "late_fill_seconds": self.late_fill_seconds,
            "stale_bars_sessions": self.stale_bars_sessions,
            "partial_bars": self.partial_bars,
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
        "partial_bars",
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
