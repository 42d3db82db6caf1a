"""Pre-trade risk: the pure filter between the plan and the broker.

``review`` takes the diff's order intents and returns a verdict for each: approved,
shrunk or denied, with stable reason codes (docs/RISK.md lists them all). It can only
lower a quantity or refuse an order; it never creates one, flips a side or enlarges a
quantity. Sells are reviewed before buys, so exposure-reducing orders are never
crowded out by buys, and buys are checked against cash that includes planned sells.

Two optional inputs tighten a review. ``live_prices`` collars every order: a reference
price too far from the market's price now (a gap, a bad bar, an unadjusted split) means
the plan is wrong, so the order is denied rather than sized on it. ``used`` is what
earlier attempts of the same run already consumed, so a retried run stays within one
run's limits however many times it is attempted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Annotated

from pydantic import Field

from alchemiser.domain.account import AccountSnapshot
from alchemiser.domain.decisions import RiskCode, RiskDecision, TradingState, Verdict
from alchemiser.domain.orders import OrderIntent, OrderRecord, OrderStatus, Side
from alchemiser.domain.values import ZERO, Frozen, Symbol, floor_to_step

# Bound once for the per-order loop. Attributes of an enum or pydantic model *class*
# (``Side.SELL``, ``RiskDecision.trusted``) are looked up through their metaclass's
# __getattr__ hook, about 0.1 us each on Python 3.11; a module global costs nanoseconds.
_new_decision = RiskDecision.trusted
_SELL, _BUY = Side.SELL, Side.BUY
_APPROVED, _SHRUNK, _DENIED = Verdict.APPROVED, Verdict.SHRUNK, Verdict.DENIED
_HALTED, _REDUCING = TradingState.HALTED, TradingState.REDUCING
_symbol_of = attrgetter("symbol")


class RiskLimits(Frozen):
    """Per-run limits. Fractions, weights and exposure are of equity before the run, so
    the limits scale with the account: a strategy that fits them at $10,000 fits them
    at $1,000,000 (a backtest's limits do not bite harder as its equity grows)."""

    max_order_fraction: Decimal = Field(default=Decimal(1), gt=0, le=4)
    """The most one symbol's orders on one side may be worth this run, as a fraction of
    equity (the default 1: a full switch out of one fund and into another passes)."""
    max_order_notional: Decimal | None = Field(default=None, gt=0, le=Decimal(10**12))
    """The same ceiling in dollars (None: none). When both are set the tighter wins."""
    max_position_weight: Decimal = Field(default=Decimal(1), gt=0, le=1)
    max_gross_exposure: Decimal = Field(default=Decimal("1.00"), gt=0, le=4)
    max_turnover: Decimal = Field(default=Decimal("2.00"), gt=0, le=100)
    max_orders: int = Field(default=50, ge=0)
    allow_symbols: frozenset[Symbol] | None = None
    deny_symbols: frozenset[Symbol] = frozenset()
    max_price_deviation: Decimal = Field(default=Decimal("0.25"), gt=0, le=1)
    """How far, as a fraction of the reference price, the live price may be from it."""


Notional = Annotated[Decimal, Field(ge=0)]


class RunUsage(Frozen):
    """What earlier attempts of the same run already consumed of the run's limits.

    ``bought`` and ``sold`` are dollars per symbol: what those attempts ordered, filled
    plus what may still fill, so the per-order ceiling holds per symbol and side for the
    whole run. The empty usage (the default) is a run's first attempt.
    """

    orders: int = Field(default=0, ge=0)
    turnover: Notional = ZERO
    bought: dict[Symbol, Notional] = Field(default_factory=dict)
    sold: dict[Symbol, Notional] = Field(default_factory=dict)

    def ordered(self, symbol: str, side: Side) -> Decimal:
        """Dollars earlier attempts ordered of ``symbol`` on ``side``."""
        return (self.bought if side is Side.BUY else self.sold).get(symbol, ZERO)


_NOTHING_USED = RunUsage()
MIN_SHRUNK_NOTIONAL = Decimal(1)
"""Risk never shrinks an order to less than this many dollars (the least a broker
takes): such a sliver is denied instead."""


def usage_of(orders: Iterable[OrderRecord], prices: Mapping[str, Decimal]) -> RunUsage:
    """What earlier attempts' orders used of the run's limits, in the units risk approved
    them in: every order the broker took counts once (a rejected one does not); a share
    order counts its filled shares, plus the shares that may still fill, at the
    reference price; a dollar order counts its dollar amount unless it ended short of it
    (then what filled, at its fill price). Measured at fill prices instead, slippage
    would leave a sliver of every cap unused for the next attempt to trade."""
    count = 0
    turnover = ZERO
    spent: dict[Side, dict[str, Decimal]] = {_BUY: {}, _SELL: {}}
    for order in orders:
        if order.status is OrderStatus.REJECTED:
            continue
        reference = prices.get(order.symbol, order.filled_avg_price or ZERO)
        shares = order.qty if not order.status.terminal else order.filled_qty
        if order.notional is None:
            amount = max(shares, order.filled_qty) * reference
        elif order.status is OrderStatus.FILLED or not order.status.terminal:
            amount = order.notional
        else:
            amount = order.filled_qty * (order.filled_avg_price or reference)
        count += 1
        turnover += amount
        side = spent[order.side]
        side[order.symbol] = side.get(order.symbol, ZERO) + amount
    if not count:
        return _NOTHING_USED
    return RunUsage(orders=count, turnover=turnover, bought=spent[_BUY], sold=spent[_SELL])


class RiskReview(Frozen):
    decisions: tuple[RiskDecision, ...]
    approved: tuple[OrderIntent, ...]

    @property
    def denied(self) -> tuple[RiskDecision, ...]:
        return tuple(d for d in self.decisions if d.verdict is _DENIED)


class _Book:
    """Running totals as if every order approved so far had filled at its ref price,
    starting from what earlier attempts of the run used."""

    __slots__ = (
        "bought",
        "cash",
        "gross",
        "orders",
        "per_symbol",
        "quantities",
        "sold",
        "turnover",
        "values",
    )

    def __init__(
        self,
        quantities: dict[str, Decimal],
        cash: Decimal,
        prices: Mapping[str, Decimal],
        used: RunUsage,
        per_symbol: bool,
    ) -> None:
        self.quantities = quantities
        self.values = {symbol: qty * prices[symbol] for symbol, qty in quantities.items()}
        self.cash = cash
        self.gross = sum(map(abs, self.values.values()), ZERO)
        self.turnover = used.turnover
        self.orders = used.orders
        # Dollars ordered per symbol on each side this run: the per-order ceiling is
        # per symbol and side across every attempt (copies: the book is mutated). Kept
        # only when it can matter (an earlier attempt ordered something, or a symbol
        # repeats on one side): otherwise each order's ceiling is the whole cap, and
        # the common review skips the bookkeeping.
        self.per_symbol = per_symbol
        self.bought = dict(used.bought)
        self.sold = dict(used.sold)

    def ordered(self, intent: OrderIntent) -> Decimal:
        """Dollars already ordered this run of the intent's symbol on its side."""
        return (self.bought if intent.side is _BUY else self.sold).get(intent.symbol, ZERO)

    def apply(self, intent: OrderIntent, qty: Decimal, notional: Decimal) -> None:
        """Book ``qty`` of ``intent`` (worth ``notional``), as far as a later order reads
        it: a buy's shares never (sells come first), a repeated symbol's (``per_symbol``)."""
        symbol = intent.symbol
        if intent.side is _BUY:
            self.cash -= notional
            self.gross += notional
            if self.per_symbol:
                self.values[symbol] = self.values.get(symbol, ZERO) + notional
                self.bought[symbol] = self.bought.get(symbol, ZERO) + notional
        else:
            self.cash += notional
            self.gross -= notional
            self.values[symbol] = self.values.get(symbol, ZERO) - notional
            if self.per_symbol:
                self.quantities[symbol] = self.quantities.get(symbol, ZERO) - qty
                self.sold[symbol] = self.sold.get(symbol, ZERO) + notional
        self.turnover += notional
        self.orders += 1


class _Caps:
    """The dollar ceilings of one run, fixed by the equity before it."""

    __slots__ = ("by_dollars", "gross", "limits", "order", "position", "turnover")

    def __init__(self, limits: RiskLimits, equity: Decimal) -> None:
        # The per-order ceiling: a fraction of equity, or the dollar cap when that is
        # tighter; ``by_dollars`` says which applies, for the reason text.
        by_fraction = limits.max_order_fraction * equity
        dollars = limits.max_order_notional
        self.limits = limits
        self.by_dollars = dollars is not None and dollars <= by_fraction
        self.order = dollars if dollars is not None and self.by_dollars else by_fraction
        self.turnover = limits.max_turnover * equity
        self.position = limits.max_position_weight * equity
        self.gross = limits.max_gross_exposure * equity

    def order_limit(self) -> str:
        """The per-order ceiling that applies, named when an order meets it."""
        if self.by_dollars:
            return f"max order notional (${self.limits.max_order_notional:.2f})"
        return f"max order fraction ({self.limits.max_order_fraction:.2%} of equity)"


class _Sizing:
    """One order's quantity as checks lower it, and the codes that lowered it."""

    __slots__ = ("codes", "intent", "notes", "qty")

    def __init__(self, intent: OrderIntent, qty: Decimal) -> None:
        self.intent = intent
        self.qty = qty
        self.codes: list[RiskCode] = []
        self.notes: list[str] = []

    def cap(self, allowance: Decimal, code: RiskCode, what: str | Callable[[], str]) -> None:
        """Lower the quantity to fit ``allowance`` dollars; ``what`` names the ceiling."""
        if self.qty * self.intent.ref_price <= allowance:
            return
        self.qty = floor_to_step(allowance / self.intent.ref_price, self.intent.qty_step)
        self.codes.append(code)
        name = what if isinstance(what, str) else what()
        self.notes.append(f"{name} leaves ${max(allowance, ZERO):.2f}")


class _Rules:
    """The per-run refusal rules, looked up once rather than once per order."""

    __slots__ = (
        "allow",
        "deny",
        "live",
        "max_deviation",
        "max_orders",
        "screens",
        "state",
        "used",
    )

    def __init__(
        self,
        limits: RiskLimits,
        state: TradingState,
        live: Mapping[str, Decimal] | None,
        used: RunUsage,
    ) -> None:
        self.state = state
        self.deny = limits.deny_symbols
        self.allow = limits.allow_symbols
        self.max_orders = limits.max_orders
        self.live = live
        # One flag for every per-order screen, so a review with none of them (the usual
        # case) pays for a single test per order.
        self.screens = (
            state is not TradingState.ACTIVE
            or bool(self.deny)
            or self.allow is not None
            or live is not None
        )
        self.max_deviation = limits.max_price_deviation
        self.used = used


def _collar(
    intent: OrderIntent, live_prices: Mapping[str, Decimal], max_deviation: Decimal
) -> tuple[RiskCode, str] | None:
    """The reference price against the market's price now: fail closed without one."""
    ref = intent.ref_price
    live = live_prices.get(intent.symbol)
    if live is None or not live.is_finite() or live <= ZERO:
        shown = "none" if live is None else f"${live}"
        return (
            RiskCode.LIVE_PRICE_MISSING,
            f"no usable live price for {intent.symbol} ({shown}) to check the reference "
            f"price ${ref} against",
        )
    # |live / ref - 1| > max, multiplied out: ref > 0, and no division to round.
    if abs(live - ref) > max_deviation * ref:
        return (
            RiskCode.PRICE_DEVIATION,
            f"live price ${live} is {abs(live / ref - 1):.2%} from the reference price "
            f"${ref} (at most {max_deviation:.2%} allowed): the plan's prices are not "
            "the market's",
        )
    return None


def _screen(intent: OrderIntent, rules: _Rules) -> tuple[RiskCode, str] | None:
    """Trading-state, symbol-list and price-collar rules, in their order of precedence."""
    if rules.state is _HALTED:
        return RiskCode.TRADING_HALTED, "trading is halted"
    if intent.symbol in rules.deny:
        return RiskCode.SYMBOL_DENIED, f"{intent.symbol} is on the deny list"
    if rules.allow is not None and intent.symbol not in rules.allow:
        return RiskCode.SYMBOL_NOT_ALLOWED, f"{intent.symbol} is not on the allow list"
    if rules.state is _REDUCING and intent.side is _BUY:
        return RiskCode.TRADING_REDUCING_ONLY, "trading state is REDUCING: buys are not allowed"
    if rules.live is not None:
        return _collar(intent, rules.live, rules.max_deviation)
    return None


def _refusal(intent: OrderIntent, rules: _Rules, book: _Book) -> tuple[RiskCode, str] | None:
    """The first rule that refuses ``intent`` outright, if any."""
    qty = intent.qty
    if qty <= ZERO or intent.ref_price <= ZERO:
        return RiskCode.INVALID_ORDER, f"quantity {qty} at ${intent.ref_price} is not an order"
    if rules.screens:
        screened = _screen(intent, rules)
        if screened is not None:
            return screened
    if book.orders >= rules.max_orders:
        earlier = rules.used.orders
        if earlier:
            return (
                RiskCode.MAX_ORDERS_EXCEEDED,
                f"already {book.orders} orders this run, {earlier} of them by earlier "
                f"attempts (max {rules.max_orders})",
            )
        return RiskCode.MAX_ORDERS_EXCEEDED, f"already {rules.max_orders} orders this run"
    if intent.side is _SELL:
        held = book.quantities.get(intent.symbol, ZERO)
        if qty > held:
            return RiskCode.SELL_EXCEEDS_POSITION, f"sell of {qty} exceeds the {held} held"
    return None


def _fits(intent: OrderIntent, notional: Decimal, room: Decimal, caps: _Caps, book: _Book) -> bool:
    """True when the order, worth ``notional``, fits every dollar ceiling as it is
    (``room``: what the per-order ceiling leaves for its symbol and side)."""
    if notional > room or notional > caps.turnover - book.turnover:
        return False
    if intent.side is _SELL:
        return True
    return (
        notional <= book.cash
        and notional <= caps.position - book.values.get(intent.symbol, ZERO)
        and notional <= caps.gross - book.gross
    )


def _shrink(
    intent: OrderIntent, room: Decimal, caps: _Caps, book: _Book, used: RunUsage
) -> _Sizing:
    """Lower the quantity until it fits every dollar ceiling, naming each that bit."""
    sizing = _Sizing(intent=intent, qty=intent.qty)
    earlier = used.ordered(intent.symbol, intent.side)
    order_limit = (
        caps.order_limit
        if not earlier
        else lambda: (
            f"{caps.order_limit()} for {intent.symbol} {intent.side.value}s this run, after "
            f"${earlier:.2f} ordered by earlier attempts,"
        )
    )
    sizing.cap(room, RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX, order_limit)
    sizing.cap(
        caps.turnover - book.turnover,
        RiskCode.TURNOVER_EXCEEDS_MAX,
        "max turnover"
        if not used.turnover
        else f"max turnover, after ${used.turnover:.2f} traded by earlier attempts,",
    )
    if intent.side is _BUY:
        sizing.cap(book.cash, RiskCode.INSUFFICIENT_BUYING_POWER, "cash after planned sells")
        sizing.cap(
            caps.position - book.values.get(intent.symbol, ZERO),
            RiskCode.POSITION_WEIGHT_EXCEEDS_MAX,
            "max position weight",
        )
        sizing.cap(
            caps.gross - book.gross, RiskCode.GROSS_EXPOSURE_EXCEEDS_MAX, "max gross exposure"
        )
    return sizing


_WITHIN_LIMITS = "within all limits"


def _decision(
    intent: OrderIntent, qty: Decimal, verdict: Verdict, codes: tuple[RiskCode, ...], reason: str
) -> RiskDecision:
    return _new_decision(
        {
            "client_order_id": intent.client_order_id,
            "symbol": intent.symbol,
            "side": intent.side,
            "requested_qty": intent.qty,
            "approved_qty": qty,
            "ref_price": intent.ref_price,
            "verdict": verdict,
            "codes": codes,
            "reason": reason,
        }
    )


def review(
    intents: Sequence[OrderIntent],
    snapshot: AccountSnapshot,
    prices: Mapping[str, Decimal],
    limits: RiskLimits,
    state: TradingState,
    *,
    live_prices: Mapping[str, Decimal] | None = None,
    used: RunUsage | None = None,
) -> RiskReview:
    """Approve, shrink or deny each intent; sells first, then buys, each in given order.

    ``live_prices`` (None: no collar) are the market's prices now, by symbol; ``used``
    (None: nothing) is what earlier attempts of the same run consumed of its limits.
    """
    # Sells, then buys, each in given order. A symbol that repeats on one side shares
    # that side's per-order ceiling.
    sells = [intent for intent in intents if intent.side is _SELL]
    buys = [intent for intent in intents if intent.side is not _SELL]
    ordered = sells + buys
    sold, bought = set(map(_symbol_of, sells)), set(map(_symbol_of, buys))
    repeats = len(sold) < len(sells) or len(bought) < len(buys)
    held = snapshot.quantities()
    unpriced = sorted(symbol for symbol in held if symbol not in prices)
    if unpriced:
        reason = f"cannot value the account: no price for {', '.join(unpriced)}"
        refused = tuple(
            _decision(i, ZERO, _DENIED, (RiskCode.PRICE_MISSING,), reason) for i in ordered
        )
        return RiskReview.trusted({"decisions": refused, "approved": ()})
    used = _NOTHING_USED if used is None else used
    per_symbol = bool(used.bought or used.sold) or repeats
    book = _Book(held, snapshot.cash, prices, used, per_symbol)
    caps = _Caps(limits, snapshot.cash + sum(book.values.values(), ZERO))
    rules = _Rules(limits, state, live_prices, used)
    order_cap = caps.order
    decisions: list[RiskDecision] = []
    approved: list[OrderIntent] = []
    for intent in ordered:
        refusal = _refusal(intent, rules, book)
        if refusal is not None:
            decisions.append(_decision(intent, ZERO, _DENIED, (refusal[0],), refusal[1]))
            continue
        qty = intent.qty
        notional = qty * intent.ref_price
        room = order_cap - book.ordered(intent) if per_symbol else order_cap
        if _fits(intent, notional, room, caps, book):
            decisions.append(_decision(intent, qty, _APPROVED, (), _WITHIN_LIMITS))
            approved.append(intent)
            book.apply(intent, qty, notional)
            continue
        sizing = _shrink(intent, room, caps, book, used)
        if sizing.qty * intent.ref_price < MIN_SHRUNK_NOTIONAL:
            # Dust: a cent of an earlier attempt's cap (rounding) is no reason to trade.
            reason = "; ".join(sizing.notes) + ": nothing left worth trading"
            decisions.append(_decision(intent, ZERO, _DENIED, tuple(sizing.codes), reason))
            continue
        reason = f"shrunk from {intent.qty} to {sizing.qty}: " + "; ".join(sizing.notes)
        decisions.append(_decision(intent, sizing.qty, _SHRUNK, tuple(sizing.codes), reason))
        approved.append(intent.with_qty(sizing.qty))
        book.apply(intent, sizing.qty, sizing.qty * intent.ref_price)
    return RiskReview.trusted({"decisions": tuple(decisions), "approved": tuple(approved)})
