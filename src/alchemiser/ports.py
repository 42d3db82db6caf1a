"""The ports: what the service needs from the outside world, as Protocols.

Adapters implement them (``adapters/``); tests use real fakes (the simulated broker,
the in-memory ledger, the manual clock), never mocks of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from alchemiser.domain.account import AccountSnapshot
from alchemiser.domain.market import MarketStatus, Quote
from alchemiser.domain.orders import OrderRecord, OrderRequest
from alchemiser.domain.report import RunReport

if TYPE_CHECKING:
    # Deferred: PriceHistory brings numpy, which the orchestrator and the watchdog
    # (config and ports, never prices) do not need at a cold start.
    from alchemiser.domain.prices import PriceHistory


class Broker(Protocol):
    def snapshot(self, *, with_orders: bool = True) -> AccountSnapshot:
        """Cash, positions and (unless ``with_orders`` is false) open orders."""
        ...

    def buying_power(self) -> Decimal:
        """What may be spent now, without borrowing: one cheap read between the legs."""
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

    def orders_of_run(self, run_id: str, *, force: bool = False) -> list[OrderRecord]:
        """Every order an earlier attempt of this run placed, whatever its state (one
        read): a retry must know which of its ids are taken, and by what. ``force``:
        one attempt that goes out even when the adapter has given up on the broker (a
        run ending with outcomes unknown reads what became of them)."""
        ...

    def get_orders(self, client_order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """The current state of these orders, in as few requests as the broker allows
        (polling must not cost a request per order); ids it has never seen are absent."""
        ...

    def cancel_order(self, order: OrderRecord) -> None:
        """Ask the broker to cancel; the outcome shows in later reads (a broker may take
        a moment, and the order may fill in the meantime)."""
        ...

    def working_orders(self) -> list[OrderRecord]:
        """Every order still able to fill at the broker, in one read that goes out even
        when the adapter has given up on the broker: what a run may have left working
        is found and cancelled before it ends."""
        ...

    def close_position(self, symbol: str, qty: Decimal) -> OrderRecord:
        """Sell ``qty`` of a held ``symbol`` through the broker's close-position route,
        which takes fractional quantities even where orders may not (a fractional
        residue of an asset that is not fractionable). The broker names the order;
        the record it returns is polled like any other."""
        ...


class Quotes(Protocol):
    def latest_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """The latest quote of each symbol, in one batched request. A symbol without a
        usable quote (missing, zero, crossed, not finite) is absent: the caller decides."""
        ...


class MarketClock(Protocol):
    def market_status(self) -> MarketStatus:
        """The broker's own clock: its time, and whether the market is open now."""
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

    def latest_prices(
        self, symbols: Sequence[str], session: date, now: datetime | None = None
    ) -> dict[str, float]:
        """Each symbol's latest price during ``session`` (a close-window run's stand-in
        for the session's close): fresh (measured against ``now``, the broker's time,
        when given), finite and positive for every symbol asked, else a DataError
        naming them (the run fails closed)."""
        ...


class Ledger(Protocol):
    def record(self, report: RunReport) -> None:
        """Persist one attempt of a run, durably. Keyed by (run_id, attempt_id): an
        attempt's first record (status STARTED) is replaced by its final report, and no
        record of another attempt is ever changed or deleted."""
        ...

    def finished(self, run_id: str) -> RunReport | None:
        """The latest attempt of ``run_id`` whose status is finished (completed, noop or
        blocked), or None: such a run is answered from the ledger, never traded again."""
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
