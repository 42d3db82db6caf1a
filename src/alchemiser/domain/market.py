"""The market's state as the broker tells it: what time it is there, and whether it is open."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from alchemiser.domain.values import Frozen, Symbol

NEW_YORK = ZoneInfo("America/New_York")


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
