"""What the broker says the account holds, and what it is worth at given prices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from operator import itemgetter

from alchemiser.domain.orders import Fill, OrderRecord
from alchemiser.domain.values import CENT, PRICE_STEP, ZERO, Frozen, Symbol, to_cents


class Position(Frozen):
    symbol: Symbol
    qty: Decimal
    avg_entry_price: Decimal | None = None
    market_value: Decimal | None = None
    """The broker's own valuation of the position, when it gave one."""
    current_price: Decimal | None = None
    """The broker's own price of one share now, when it gave one."""


CONSISTENCY_TOLERANCE = Decimal("0.002")
"""How far (a fraction of equity) the broker's equity may differ from cash plus its
positions' market values: prices move between two reads; a lost holding does not hide."""


class UnmanagedPosition(Frozen):
    """A holding the product cannot trade (crypto, an option, a symbol of a shape it does
    not know): left alone, listed in the report, and kept out of the plan's equity."""

    symbol: str
    qty: Decimal
    asset_class: str
    market_value: Decimal | None = None
    """The broker's own figure, when it gave one."""


class AccountSnapshot(Frozen):
    """Account state at one instant: cash, positions and open orders."""

    cash: Decimal
    buying_power: Decimal
    positions: tuple[Position, ...] = ()
    open_orders: tuple[OrderRecord, ...] = ()
    unmanaged: tuple[UnmanagedPosition, ...] = ()
    equity: Decimal | None = None
    """The broker's own equity figure (cash plus every position at its latest price),
    when it gave one: checked against cash and the positions before anything is planned."""

    def inconsistency(self) -> str | None:
        """Why the broker's figures do not add up, or None. The broker's equity must equal
        cash plus every position's market value (its own figures, read moments apart)
        within ``CONSISTENCY_TOLERANCE`` of equity plus a dollar: a positions reply that
        lost a holding, or one read on either side of a fill, fails this check, and so
        does a reply that leaves a position unvalued (nothing could be checked). A
        holding worth less than the tolerance can still hide: the plan may then buy up
        to that much too much."""
        if self.equity is None:
            return None  # a broker with no figures of its own (the simulator): one state
        values = [p.market_value for p in self.positions if p.qty != ZERO]
        values += [u.market_value for u in self.unmanaged]
        if any(v is None for v in values):
            return "the broker did not value every position, so its figures cannot be checked"
        held = sum((v for v in values if v is not None), ZERO)
        expected = self.cash + held
        tolerance = abs(self.equity) * CONSISTENCY_TOLERANCE + Decimal(1)
        if abs(self.equity - expected) <= tolerance:
            return None
        return (
            f"the broker's equity ${to_cents(self.equity)} is not cash ${to_cents(self.cash)} "
            f"plus the positions' ${to_cents(held)} ({len(values)} position(s))"
        )

    def qty(self, symbol: str) -> Decimal:
        for position in self.positions:
            if position.symbol == symbol:
                return position.qty
        return ZERO

    def quantities(self) -> dict[str, Decimal]:
        return {p.symbol: p.qty for p in self.positions if p.qty != ZERO}


class PositionValue(Frozen):
    symbol: Symbol
    qty: Decimal
    price: Decimal
    market_value: Decimal
    weight: Decimal


class AccountValuation(Frozen):
    """An account marked to market: what the report shows before and after a run."""

    cash: Decimal
    equity: Decimal
    positions: tuple[PositionValue, ...]


def market_value(snapshot: AccountSnapshot, prices: Mapping[str, Decimal]) -> Decimal:
    """Sum of qty x price over held positions (zero quantities need no price)."""
    return sum((p.qty * prices[p.symbol] for p in snapshot.positions if p.qty != ZERO), ZERO)


def value_account(snapshot: AccountSnapshot, prices: Mapping[str, Decimal]) -> AccountValuation:
    """Mark every position to ``prices``; weights are fractions of equity.

    Built without re-validation (``Frozen.trusted``): every field comes from the
    validated snapshot or is a Decimal computed here, of its field's exact type. A
    backtest marks its account twice a session."""
    # (symbol, qty, price, value) of each held position: each price looked up once.
    marked: list[tuple[str, Decimal, Decimal, Decimal]] = []
    for position in snapshot.positions:
        if position.qty != ZERO:
            price = prices[position.symbol]
            marked.append((position.symbol, position.qty, price, position.qty * price))
    equity = snapshot.cash + sum([row[3] for row in marked], ZERO)
    positive = equity > ZERO
    # to_cents inlined (the same rounding): this runs for every position, twice a session.
    rows = [
        _new_position_value(
            {
                "symbol": symbol,
                "qty": qty,
                "price": price,
                "market_value": value.quantize(CENT, ROUND_HALF_EVEN),
                "weight": ((value / equity) if positive else ZERO).quantize(_WEIGHT_STEP),
            }
        )
        for symbol, qty, price, value in sorted(marked, key=_by_symbol)
    ]
    return AccountValuation.trusted(
        {"cash": to_cents(snapshot.cash), "equity": to_cents(equity), "positions": tuple(rows)}
    )


_WEIGHT_STEP = Decimal("0.000001")
_new_position_value = PositionValue.trusted


_by_symbol = itemgetter(0)
"""A marked row's symbol: the key the valuation's rows are sorted by."""


def marks_after(
    snapshot: AccountSnapshot, fills: Iterable[Fill], reference: Mapping[str, Decimal]
) -> tuple[dict[str, Decimal], dict[str, str]]:
    """Each position's price after a run, as the broker sees it: the broker's own
    current price when the snapshot carries one (the account then agrees with what the
    broker shows); else, for a symbol filled in the run, its fills' volume-weighted
    price; else ``reference`` (the plan's prices); else (it appeared during the run,
    outside the plan) its average entry price (0 without one).

    The second value names each position the plan had no price for (it appeared
    during the run), with what it was marked at.
    """
    volume: dict[str, Decimal] = {}
    paid: dict[str, Decimal] = {}
    for fill in fills:
        if fill.qty > ZERO:
            volume[fill.symbol] = volume.get(fill.symbol, ZERO) + fill.qty
            paid[fill.symbol] = paid.get(fill.symbol, ZERO) + fill.qty * fill.price
    prices: dict[str, Decimal] = {}
    unplanned: dict[str, str] = {}
    for position in snapshot.positions:
        if position.qty == ZERO:
            continue
        symbol = position.symbol
        current = position.current_price
        if current is not None and current.is_finite() and current > ZERO:
            prices[symbol] = current
        elif symbol in volume:
            prices[symbol] = (paid[symbol] / volume[symbol]).quantize(PRICE_STEP, ROUND_HALF_EVEN)
        elif symbol in reference:
            prices[symbol] = reference[symbol]
        else:
            prices[symbol] = position.avg_entry_price or ZERO
            unplanned[symbol] = "its average entry price"
            continue
        if symbol not in reference:
            broker = current is not None and current.is_finite() and current > ZERO
            unplanned[symbol] = "the broker's price" if broker else "its fill price"
    return prices, unplanned
