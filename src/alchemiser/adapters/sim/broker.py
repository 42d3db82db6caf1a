"""The simulated broker: a cash account that fills market orders at once.

Fills happen at submission, at the price of ``session`` the trading window trades at
(its open for a market-open run when the data has opens, else its close), moved
against the trader by ``slippage_bps``. Like Alpaca it refuses a reused client_order_id, an order
beyond buying power, a sell of more than is held, and fractional quantities for
assets that are not fractionable. With a ``state_path`` the account lives in a JSON
file, written atomically after every change, so consecutive runs evolve one account.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from pydantic import BaseModel, ValidationError

from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.market import Quote
from alchemiser.domain.orders import OrderRecord, OrderRequest, OrderStatus, Side, run_of
from alchemiser.domain.prices import PriceHistory, reference_prices
from alchemiser.domain.values import PRICE_STEP, ZERO, Symbol, to_cents, to_decimal_price
from alchemiser.errors import BrokerRejected, ConfigError, DataError, DuplicateOrder
from alchemiser.ports import Clock, MarketData

BPS = Decimal(10_000)
STATE_VERSION = 1
NOTIONAL_QTY_STEP = Decimal("1e-9")
"""Shares a dollar order buys are rounded down to this (Alpaca's fractional precision)."""


_BUY = Side.BUY
_FILLED = OrderStatus.FILLED
_new_position = Position.trusted
_new_quote = Quote.trusted
_new_record = OrderRecord.trusted


class SimPosition(BaseModel):
    qty: Decimal
    avg_entry_price: Decimal


class SimState(BaseModel):
    """The account as its state file holds it."""

    version: int = STATE_VERSION
    cash: Decimal
    positions: dict[Symbol, SimPosition] = {}
    orders: dict[str, OrderRecord] = {}
    last_session: date | None = None


class _Held:
    """One position while the broker runs (``SimPosition`` is its form in the state
    file): plain slots, changed in place by every fill. ``position`` is the last one
    ``snapshot`` built for it and ``price`` the current price that one carries; a fill
    drops it, so a later snapshot at the same price reuses it (Positions are frozen)."""

    __slots__ = ("avg_entry_price", "position", "price", "qty")

    def __init__(self, qty: Decimal, avg_entry_price: Decimal) -> None:
        self.qty = qty
        self.avg_entry_price = avg_entry_price
        self.position: Position | None = None
        self.price: Decimal | None = None


class SimBroker:
    def __init__(
        self,
        *,
        market: MarketData,
        session: date,
        clock: Clock,
        starting_cash: Decimal,
        fill_at_open: bool = False,
        slippage_bps: Decimal = ZERO,
        fee_bps: Decimal = ZERO,
        whole_share_symbols: frozenset[str] = frozenset(),
        state_path: Path | None = None,
    ) -> None:
        self._market = market
        self._session = session
        self._priced: dict[str, Decimal] = {}
        """The session's prices read so far (before slippage), by symbol."""
        self._fills_at: dict[str, tuple[Decimal, Decimal]] = {}
        """What a sell and a buy of each symbol fill at this session (after slippage),
        once computed: the quotes and every order of a symbol share them."""
        self._at_open = fill_at_open
        self._clock = clock
        self._slippage = slippage_bps / BPS
        # What a price is multiplied by for a buy (moved up) and a sell (moved down).
        self._up = 1 + self._slippage
        self._down = 1 - self._slippage
        self._fee = fee_bps / BPS
        self._whole = whole_share_symbols
        self._path = state_path
        state = self._load(starting_cash)
        # The state's parts, kept apart: each fill changes them in place (the pydantic
        # model is what the state file reads and writes, see ``_save``).
        self._cash = state.cash
        self._positions = {
            symbol: _Held(p.qty, p.avg_entry_price) for symbol, p in state.positions.items()
        }
        self._orders = state.orders
        self._last_session = state.last_session
        self._by_run: dict[str | None, list[str]] | None = None
        # The ids of the orders not yet terminal, in placement order: a snapshot lists
        # them without reading every order the account ever placed.
        self._open: dict[str, None] = {
            c: None for c, o in self._orders.items() if not o.status.terminal
        }
        last = self._last_session
        if last is not None and session < last:
            raise ConfigError(
                f"the simulated account last traded on {last.isoformat()}; it cannot trade on "
                f"the earlier session {session.isoformat()} (start over with --reset)",
                field="sim.state",
            )

    def advance_to(self, session: date) -> None:
        """Move the simulated market to a later session (a backtest's next day)."""
        if session < self._session:
            raise ConfigError(f"cannot move the simulated market back to {session.isoformat()}")
        if session != self._session:
            self._priced = {}
            self._fills_at = {}
        self._session = session

    def _load(self, starting_cash: Decimal) -> SimState:
        if self._path is None or not self._path.exists():
            return SimState(cash=to_cents(starting_cash))
        try:
            state = SimState.model_validate_json(self._path.read_text(encoding="utf-8"))
        except (ValidationError, OSError) as error:
            raise ConfigError(
                f"cannot read the simulated account in {self._path}: {error.__class__.__name__} "
                "(start over with --reset)",
                field="sim.state",
            ) from error
        if state.version != STATE_VERSION:
            raise ConfigError(f"unsupported state version {state.version}", field="sim.state")
        return state

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        state = SimState(
            cash=self._cash,
            positions={
                symbol: SimPosition(qty=held.qty, avg_entry_price=held.avg_entry_price)
                for symbol, held in self._positions.items()
            },
            orders=self._orders,
            last_session=self._last_session,
        )
        payload = json.dumps(json.loads(state.model_dump_json()), indent=1)
        handle, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".sim-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        Path(tmp).replace(self._path)

    def snapshot(self, *, with_orders: bool = True) -> AccountSnapshot:
        """The account now; each position's ``current_price`` is its session close (the
        price the simulated market is at), absent when the session has none for it.

        Built without re-validation (``Frozen.trusted``): the state's symbols were
        validated when it was loaded or the orders placed, its quantities and prices
        are Decimals, and a backtest reads the account twice a session. A position
        that did not trade since the last snapshot at the same price is that one's."""
        held = sorted(self._positions.items())
        prices = self._prices([symbol for symbol, _ in held])
        positions = []
        for symbol, h in held:
            price = prices.get(symbol)
            position = h.position
            if position is None or h.price is not price:
                position = h.position = _new_position(
                    {
                        "symbol": symbol,
                        "qty": h.qty,
                        "avg_entry_price": h.avg_entry_price,
                        "market_value": None,
                        "current_price": price,
                    }
                )
                h.price = price
            positions.append(position)
        return AccountSnapshot.trusted(
            {
                "cash": self._cash,
                "buying_power": self._cash,
                "positions": tuple(positions),
                "open_orders": tuple(self.working_orders()),
                "unmanaged": (),
                "equity": None,
            }
        )

    def holdings(self) -> tuple[Decimal, list[tuple[str, Decimal]]]:
        """Cash and each position's quantity, by symbol (a snapshot without its prices
        and orders: what a backtest marks at the session's closes)."""
        held = sorted(self._positions.items())
        return self._cash, [(symbol, p.qty) for symbol, p in held]

    def buying_power(self) -> Decimal:
        return self._cash

    def fractionable(self, symbols: Sequence[str]) -> frozenset[str]:
        return frozenset(s for s in symbols if s not in self._whole)

    def _fill_price(self, symbol: str, side: Side) -> Decimal:
        moved = self._fills_at.get(symbol)
        if moved is None:
            price = self._priced.get(symbol)
            if price is None:
                history = self._market.history([symbol], self._session, 1)
                price = self._priced[symbol] = self._session_price(history, symbol)
            moved = self._fills_at[symbol] = self._sides(price)
        return moved[1] if side is _BUY else moved[0]

    def _sides(self, price: Decimal) -> tuple[Decimal, Decimal]:
        """What a sell and a buy fill at when the session's price is ``price``."""
        return self._moved(price, Side.SELL), self._moved(price, Side.BUY)

    def _session_price(self, history: PriceHistory, symbol: str) -> Decimal:
        """What an order fills at before slippage: the session's open for a market-open
        run when the data has one, else its close (validated, fail closed)."""
        close = reference_prices(history, [symbol], self._session)[symbol]
        return self._opened(history, {symbol: close})[symbol]

    def _opened(self, history: PriceHistory, closes: dict[str, Decimal]) -> dict[str, Decimal]:
        """Given the session's validated closes, what orders fill at before slippage: the
        open for a market-open run where the data has one, else the close."""
        if not self._at_open or history.opens is None:
            return closes
        row = history.opens[history.row_index(self._session)].tolist()
        count = len(history.symbols)
        # Each symbol's first column (assigned last to first, so the first one stays).
        columns = dict(zip(reversed(history.symbols), range(count - 1, -1, -1), strict=True))
        prices: dict[str, Decimal] = {}
        for symbol, close in closes.items():
            opened = row[columns[symbol]]
            prices[symbol] = to_decimal_price(opened) if 0 < opened < math.inf else close
        return prices

    def _moved(self, close: Decimal, side: Side) -> Decimal:
        return (close * (self._up if side is _BUY else self._down)).quantize(PRICE_STEP)

    def latest_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Implements ports.Quotes with the prices orders fill at now: a sell gets the
        bid, a buy pays the ask, so a simulated run sizes its buys exactly as they fill.
        One read of the session's prices for all of them (a backtest asks every
        session); a symbol the market cannot price this session is left out (its orders
        are denied, and the run reports the missing quote as a failure). The quotes are
        built without re-validation: validated session prices, moved by ``_moved``."""
        quotes: dict[str, Quote] = {}
        at = self._clock.now()
        fills_at = self._fills_at
        for symbol, price in self._prices(symbols).items():
            moved = fills_at.get(symbol)
            if moved is None:
                moved = fills_at[symbol] = self._sides(price)
            quotes[symbol] = _new_quote(
                {"symbol": symbol, "bid": moved[0], "ask": moved[1], "at": at}
            )
        return quotes

    def _prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """The session's price (what orders fill at, before slippage) of each symbol
        that has one, in one read of them all (none when the session's prices of all
        of them were read before)."""
        wanted = sorted(set(symbols))
        known = self._priced
        unread = [symbol for symbol in wanted if symbol not in known]
        if unread:
            # Only what this session has not priced yet: the rest was read before.
            known.update(self._read_prices(unread))
        return {symbol: known[symbol] for symbol in wanted if symbol in known}

    def _read_prices(self, wanted: list[str]) -> dict[str, Decimal]:
        try:
            history = self._market.history(wanted, self._session, 1)
        except DataError:
            history = None  # one of them has no data at all: price them one by one
        if history is not None:
            try:
                return self._opened(history, reference_prices(history, wanted, self._session))
            except DataError:
                pass  # one of them has no price this session: price them one by one
        prices: dict[str, Decimal] = {}
        for symbol in wanted:
            try:
                own = (
                    history
                    if history is not None
                    else self._market.history([symbol], self._session, 1)
                )
                prices[symbol] = self._session_price(own, symbol)
            except DataError:
                continue
        return prices

    def submit_order(self, request: OrderRequest) -> OrderRecord:
        return self._place(request, whole_shares_only=request.symbol in self._whole)

    def working_orders(self) -> list[OrderRecord]:
        orders = self._orders
        return [orders[c] for c in self._open]

    def close_position(self, symbol: str, qty: Decimal) -> OrderRecord:
        """Like Alpaca's close-position route: any quantity up to what is held, whole or
        not, under an order id the broker chooses."""
        client_order_id = f"sim-close-{len(self._orders) + 1:08d}"
        request = OrderRequest(
            client_order_id=client_order_id, symbol=symbol, side=Side.SELL, qty=qty
        )
        return self._place(request, whole_shares_only=False)

    def _place(self, request: OrderRequest, *, whole_shares_only: bool) -> OrderRecord:
        client_order_id = request.client_order_id
        symbol = request.symbol
        side = request.side
        orders = self._orders
        if client_order_id in orders:
            raise DuplicateOrder(
                f"client_order_id {client_order_id} is already in use",
                broker_code="duplicate_client_order_id",
            )
        qty = request.qty
        notional_asked = request.notional
        if whole_shares_only and (
            notional_asked is not None or (qty is not None and qty != qty.to_integral_value())
        ):
            raise BrokerRejected(
                f"{symbol} is not fractionable", broker_code="fractional_not_allowed"
            )
        price = self._fill_price(symbol, side)
        if qty is None:
            assert notional_asked is not None  # OrderRequest holds exactly one
            qty = (notional_asked / price).quantize(NOTIONAL_QTY_STEP, ROUND_DOWN)
        notional = to_cents(qty * price)
        fee = to_cents(notional * self._fee)
        held = self._positions.get(symbol)
        if side is _BUY:
            cost = notional + fee  # what the account pays, fee included
            if cost > self._cash:
                raise BrokerRejected(
                    f"insufficient buying power (needs ${cost}, has ${self._cash})",
                    broker_code="insufficient_buying_power",
                )
            if held is None:
                self._positions[symbol] = _Held(qty, price)
            else:
                total = held.qty + qty
                held.avg_entry_price = ((held.qty * held.avg_entry_price + cost) / total).quantize(
                    PRICE_STEP
                )
                held.qty = total
                held.position = None
            self._cash -= cost
        else:
            if held is None or qty > held.qty:
                available = held.qty if held else ZERO
                raise BrokerRejected(
                    f"insufficient qty available for order (requested {qty}, "
                    f"available {available})",
                    broker_code="insufficient_qty",
                )
            held.qty -= qty
            held.position = None
            if held.qty == ZERO:
                del self._positions[symbol]
            self._cash += notional - fee  # what the account receives, fee deducted
        # Built without re-validation: every field comes from the validated request or
        # is a Decimal, an id or a time computed here (fields in declaration order).
        # It is filled, so never among the open orders.
        record = orders[client_order_id] = _new_record(
            {
                "client_order_id": client_order_id,
                "symbol": symbol,
                "side": side,
                "qty": qty,
                "status": _FILLED,
                "filled_qty": qty,
                "filled_avg_price": price,
                "notional": notional_asked,
                "broker_order_id": f"sim-{len(orders) + 1:08d}",
                "submitted_at": self._clock.now(),
                "reject_reason": None,
            }
        )
        if self._by_run is not None:
            self._by_run.setdefault(run_of(client_order_id), []).append(client_order_id)
        self._last_session = self._session
        if self._path is not None:
            self._save()
        return record

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        return self._orders.get(client_order_id)

    def orders_of_run(self, run_id: str, *, force: bool = False) -> list[OrderRecord]:
        # Indexed: a backtest asks once per session, over every order it ever placed.
        if self._by_run is None:
            self._by_run = {}
            for client_order_id in self._orders:
                self._by_run.setdefault(run_of(client_order_id), []).append(client_order_id)
        return [self._orders[c] for c in self._by_run.get(run_id, ())]

    def get_orders(self, client_order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        orders = self._orders
        return {c: orders[c] for c in client_order_ids if c in orders}

    def cancel_order(self, order: OrderRecord) -> None:
        record = self._orders.get(order.client_order_id)
        if record is None or record.status.terminal:
            return  # never placed, or finished: nothing to cancel
        cancelled = record.model_copy(update={"status": OrderStatus.CANCELED})
        self._orders[order.client_order_id] = cancelled
        self._open.pop(order.client_order_id, None)
        self._save()
