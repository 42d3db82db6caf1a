"""Pre-trade risk: the pure filter between the plan and the broker.

``review`` takes the diff's order intents and returns a verdict for each: approved,
shrunk or denied, with stable reason codes (docs/RISK.md lists them all). It can only
lower a quantity or refuse an order; it never creates one, flips a side or enlarges a
quantity. Sells are reviewed before buys, so exposure-reducing orders are never
crowded out by buys, and buys are checked against cash that includes planned sells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from pydantic import Field

from alchemiser.domain.account import AccountSnapshot
from alchemiser.domain.decisions import RiskCode, RiskDecision, TradingState, Verdict
from alchemiser.domain.orders import OrderIntent, Side
from alchemiser.domain.values import ZERO, Frozen, Symbol, floor_to_step

# Bound once for the per-order loop. Attributes of an enum or pydantic model *class*
# (``Side.SELL``, ``RiskDecision.trusted``) are looked up through their metaclass's
# __getattr__ hook, about 0.1 us each on Python 3.11; a module global costs nanoseconds.
_new_decision = RiskDecision.trusted
_SELL, _BUY = Side.SELL, Side.BUY
_APPROVED, _SHRUNK, _DENIED = Verdict.APPROVED, Verdict.SHRUNK, Verdict.DENIED
_HALTED, _REDUCING = TradingState.HALTED, TradingState.REDUCING


class RiskLimits(Frozen):
    """Per-run limits. Weights and exposure are fractions of equity before the run."""

    max_order_notional: Decimal = Field(default=Decimal(50_000), gt=0, le=Decimal(10**12))
    max_position_weight: Decimal = Field(default=Decimal("0.60"), gt=0, le=1)
    max_gross_exposure: Decimal = Field(default=Decimal("1.00"), gt=0, le=4)
    max_turnover: Decimal = Field(default=Decimal("2.00"), gt=0, le=100)
    max_orders: int = Field(default=50, ge=0)
    allow_symbols: frozenset[Symbol] | None = None
    deny_symbols: frozenset[Symbol] = frozenset()


class RiskReview(Frozen):
    decisions: tuple[RiskDecision, ...]
    approved: tuple[OrderIntent, ...]

    @property
    def denied(self) -> tuple[RiskDecision, ...]:
        return tuple(d for d in self.decisions if d.verdict is _DENIED)


class _Book:
    """Running totals as if every order approved so far had filled at its ref price."""

    __slots__ = ("cash", "gross", "orders", "quantities", "turnover", "values")

    def __init__(self, snapshot: AccountSnapshot, prices: Mapping[str, Decimal]) -> None:
        self.quantities = snapshot.quantities()
        self.values = {symbol: qty * prices[symbol] for symbol, qty in self.quantities.items()}
        self.cash = snapshot.cash
        self.gross = sum(map(abs, self.values.values()), ZERO)
        self.turnover = ZERO
        self.orders = 0

    def apply(self, intent: OrderIntent, qty: Decimal, notional: Decimal) -> None:
        """Book ``qty`` of ``intent`` (worth ``notional`` at its reference price)."""
        symbol = intent.symbol
        if intent.side is _BUY:
            self.cash -= notional
            self.gross += notional
            self.values[symbol] = self.values.get(symbol, ZERO) + notional
            self.quantities[symbol] = self.quantities.get(symbol, ZERO) + qty
        else:
            self.cash += notional
            self.gross -= notional
            self.values[symbol] = self.values.get(symbol, ZERO) - notional
            self.quantities[symbol] = self.quantities.get(symbol, ZERO) - qty
        self.turnover += notional
        self.orders += 1


class _Caps:
    """The dollar ceilings of one run, fixed by the equity before it."""

    __slots__ = ("gross", "order", "position", "turnover")

    def __init__(self, limits: RiskLimits, equity: Decimal) -> None:
        self.order = limits.max_order_notional
        self.turnover = limits.max_turnover * equity
        self.position = limits.max_position_weight * equity
        self.gross = limits.max_gross_exposure * equity


class _Sizing:
    """One order's quantity as checks lower it, and the codes that lowered it."""

    __slots__ = ("codes", "intent", "notes", "qty")

    def __init__(self, intent: OrderIntent, qty: Decimal) -> None:
        self.intent = intent
        self.qty = qty
        self.codes: list[RiskCode] = []
        self.notes: list[str] = []

    def cap(self, allowance: Decimal, code: RiskCode, what: str) -> None:
        """Lower the quantity so its notional fits ``allowance`` dollars."""
        if self.qty * self.intent.ref_price <= allowance:
            return
        self.qty = floor_to_step(allowance / self.intent.ref_price, self.intent.qty_step)
        self.codes.append(code)
        self.notes.append(f"{what} leaves ${max(allowance, ZERO):.2f}")


class _Rules:
    """The per-run refusal rules, looked up once rather than once per order."""

    __slots__ = ("allow", "deny", "max_orders", "screens", "state")

    def __init__(self, limits: RiskLimits, state: TradingState) -> None:
        self.state = state
        self.deny = limits.deny_symbols
        self.allow = limits.allow_symbols
        self.max_orders = limits.max_orders
        self.screens = state is not TradingState.ACTIVE or bool(self.deny) or self.allow is not None


def _screen(intent: OrderIntent, rules: _Rules) -> tuple[RiskCode, str] | None:
    """Trading-state and symbol-list rules, in their order of precedence."""
    if rules.state is _HALTED:
        return RiskCode.TRADING_HALTED, "trading is halted"
    if intent.symbol in rules.deny:
        return RiskCode.SYMBOL_DENIED, f"{intent.symbol} is on the deny list"
    if rules.allow is not None and intent.symbol not in rules.allow:
        return RiskCode.SYMBOL_NOT_ALLOWED, f"{intent.symbol} is not on the allow list"
    if rules.state is _REDUCING and intent.side is _BUY:
        return RiskCode.TRADING_REDUCING_ONLY, "trading state is REDUCING: buys are not allowed"
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
        return RiskCode.MAX_ORDERS_EXCEEDED, f"already {rules.max_orders} orders this run"
    if intent.side is _SELL:
        held = book.quantities.get(intent.symbol, ZERO)
        if qty > held:
            return RiskCode.SELL_EXCEEDS_POSITION, f"sell of {qty} exceeds the {held} held"
    return None


def _fits(intent: OrderIntent, notional: Decimal, caps: _Caps, book: _Book) -> bool:
    """True when the order, worth ``notional``, fits every dollar ceiling as it is."""
    if notional > caps.order or notional > caps.turnover - book.turnover:
        return False
    if intent.side is _SELL:
        return True
    return (
        notional <= book.cash
        and notional <= caps.position - book.values.get(intent.symbol, ZERO)
        and notional <= caps.gross - book.gross
    )


def _shrink(intent: OrderIntent, caps: _Caps, book: _Book) -> _Sizing:
    """Lower the quantity until it fits every dollar ceiling, naming each that bit."""
    sizing = _Sizing(intent=intent, qty=intent.qty)
    sizing.cap(caps.order, RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX, "max order notional")
    sizing.cap(caps.turnover - book.turnover, RiskCode.TURNOVER_EXCEEDS_MAX, "max turnover")
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
) -> RiskReview:
    """Approve, shrink or deny each intent; sells first, then buys, each in given order."""
    ordered = [i for i in intents if i.side is _SELL] + [i for i in intents if i.side is _BUY]
    unpriced = sorted(
        {p.symbol for p in snapshot.positions if p.qty != ZERO and p.symbol not in prices}
    )
    if unpriced:
        reason = f"cannot value the account: no price for {', '.join(unpriced)}"
        refused = tuple(
            _decision(i, ZERO, _DENIED, (RiskCode.PRICE_MISSING,), reason) for i in ordered
        )
        return RiskReview.trusted({"decisions": refused, "approved": ()})
    book = _Book(snapshot, prices)
    caps = _Caps(limits, snapshot.cash + sum(book.values.values(), ZERO))
    rules = _Rules(limits, state)
    decisions: list[RiskDecision] = []
    approved: list[OrderIntent] = []
    for intent in ordered:
        refusal = _refusal(intent, rules, book)
        if refusal is not None:
            decisions.append(_decision(intent, ZERO, _DENIED, (refusal[0],), refusal[1]))
            continue
        notional = intent.qty * intent.ref_price
        if _fits(intent, notional, caps, book):
            decisions.append(_decision(intent, intent.qty, _APPROVED, (), _WITHIN_LIMITS))
            approved.append(intent)
            book.apply(intent, intent.qty, notional)
            continue
        sizing = _shrink(intent, caps, book)
        if sizing.qty <= ZERO:
            reason = "; ".join(sizing.notes) + ": nothing left to trade"
            decisions.append(_decision(intent, ZERO, _DENIED, tuple(sizing.codes), reason))
            continue
        reason = f"shrunk from {intent.qty} to {sizing.qty}: " + "; ".join(sizing.notes)
        decisions.append(_decision(intent, sizing.qty, _SHRUNK, tuple(sizing.codes), reason))
        approved.append(intent.with_qty(sizing.qty))
        book.apply(intent, sizing.qty, sizing.qty * intent.ref_price)
    return RiskReview.trusted({"decisions": tuple(decisions), "approved": tuple(approved)})
