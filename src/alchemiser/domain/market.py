"""The market's state as the broker tells it: what time it is there, and whether it is open."""

from __future__ import annotations

from datetime import datetime

from alchemiser.domain.values import Frozen


class MarketStatus(Frozen):
    now: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime
