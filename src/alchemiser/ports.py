"""The ports: what the service needs from the outside world, as Protocols.

Adapters implement them (``adapters/``); tests use real fakes (the simulated broker,
the in-memory ledger, the manual clock), never mocks of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from alchemiser.domain.account import AccountSnapshot
from alchemiser.domain.orders import OrderRecord, OrderRequest
from alchemiser.domain.prices import PriceHistory
from alchemiser.domain.report import RunReport


class Broker(Protocol):
    def snapshot(self) -> AccountSnapshot:
        """Cash, positions and open orders, read in one consistent pass."""
        ...

    def fractionable(self, symbols: Sequence[str]) -> frozenset[str]:
        """The subset of ``symbols`` that may be traded in fractional shares."""
        ...

    def submit_order(self, request: OrderRequest) -> OrderRecord:
        """Place a market day order. Raises DuplicateOrder if the client id exists."""
        ...

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client id, or None if the broker has never seen it."""
        ...

    def cancel_order(self, client_order_id: str) -> OrderRecord:
        """Ask the broker to cancel; returns the order's state afterwards."""
        ...


class MarketData(Protocol):
    def latest_session(self, before: date | None = None) -> date:
        """The last completed session strictly before ``before`` (or the latest of all)."""
        ...

    def is_session(self, day: date) -> bool:
        """Whether the market trades on ``day``."""
        ...

    def history(self, symbols: Sequence[str], end: date, sessions: int) -> PriceHistory:
        """Daily adjusted closes of ``symbols`` for the ``sessions`` sessions up to ``end``."""
        ...


class Ledger(Protocol):
    def record(self, report: RunReport) -> None:
        """Persist one run, durably, before the run is reported as done."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards, for timings and deadlines."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait. The only way the package waits, so tests can skip the wait."""
        ...
