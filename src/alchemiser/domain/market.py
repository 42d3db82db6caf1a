"""The market's state as the broker tells it: what time it is there, and whether it is open."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from alchemiser.domain.values import Frozen, Symbol

NEW_YORK = ZoneInfo("America/New_York")
CLOSE_WINDOW = timedelta(minutes=15)
"""A close-window run trades only when triggered within this long before the close."""
CLOSE_GRACE = timedelta(minutes=2)
"""How much earlier than ``CLOSE_WINDOW`` the broker's clock may read when a
close-window run starts (clocks differ by seconds; a trigger fires on the minute)."""
NOMINAL_CLOSE = time(16, 0)
"""The regular close, New York time: the simulator's, which knows no early closes."""


class TradingWindow(StrEnum):
    """When an account's strategies decide and trade (docs/ARCHITECTURE.md).

    ``open``: decide on the previous session's close, trade at the open (the scheduled
    09:30 run). ``close`` (Composer's way): decide a few minutes before the close with
    each symbol's latest price standing in for today's close, and trade then."""

    OPEN = "open"
    CLOSE = "close"


class MarketStatus(Frozen):
    at: datetime
    """The broker's time now."""
    is_open: bool
    next_open: datetime
    next_close: datetime

    def describe(self) -> str:
        local = self.at.astimezone(NEW_YORK)
        state = "open" if self.is_open else "closed"
        following = self.next_close if self.is_open else self.next_open
        verb = "closes" if self.is_open else "opens"
        return (
            f"the market is {state} at the broker's time {local:%Y-%m-%d %H:%M %Z} "
            f"({verb} {following.astimezone(NEW_YORK):%Y-%m-%d %H:%M %Z})"
        )


class Quote(Frozen):
    """The latest quote for one symbol, as the market-data source gives it: what a
    market order would pay (``ask``) or get (``bid``) now. Adapters only build quotes
    whose prices are finite and positive, with ``bid <= ask``."""

    symbol: Symbol
    bid: Decimal
    ask: Decimal
    at: datetime | None = None

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


def close_trigger_skip(scheduled: datetime, close: datetime) -> str | None:
    """Why a close-window trigger at ``scheduled`` is not the one that trades today
    (None when it is): the stack schedules one for normal days (15:45) and one for
    early-close days (12:45), and only the one within ``CLOSE_WINDOW`` of ``close``
    (the broker's close that day) trades; the other is recorded as skipped."""
    before = close - scheduled
    if timedelta(0) < before <= CLOSE_WINDOW:
        return None
    closes = f"{close.astimezone(NEW_YORK):%H:%M %Z}"
    at = f"{scheduled.astimezone(NEW_YORK):%H:%M}"
    if before > CLOSE_WINDOW:
        minutes = int(CLOSE_WINDOW.total_seconds() // 60)
        return (
            f"the market closes at {closes} today: this {at} trigger is more than "
            f"{minutes} minutes before it; the close-window trigger within {minutes} "
            "minutes of the close trades (on early-close days, the earlier one)"
        )
    return f"this {at} trigger is at or after today's close ({closes})"


def outside_close_window(market: MarketStatus) -> str | None:
    """Why the broker's time now is not a close-window run's moment (None when it is):
    within ``CLOSE_WINDOW`` (and ``CLOSE_GRACE`` for a late start) of today's close.
    Earlier, today's latest prices are not a stand-in for its close."""
    before = market.next_close - market.at
    if timedelta(0) < before <= CLOSE_WINDOW + CLOSE_GRACE:
        return None
    minutes = int(CLOSE_WINDOW.total_seconds() // 60)
    return (
        f"a close-window run trades within {minutes} minutes of the close; the broker's "
        f"time is {market.at.astimezone(NEW_YORK):%H:%M %Z} and the market closes at "
        f"{market.next_close.astimezone(NEW_YORK):%H:%M %Z}"
    )
