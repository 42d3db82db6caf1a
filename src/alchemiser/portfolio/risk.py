"""Pre-trade risk: the pure filter between the plan and the broker.

``review`` takes the diff's order intents and returns a verdict for each: approved,
shrunk or denied, with stable reason codes (docs/RISK.md lists them all). It can only
lower a quantity or refuse an order; it never creates one, flips a side or enlarges a
quantity. Sells are reviewed before buys, so exposure-reducing orders are never
crowded out by buys, and buys are checked against cash that includes planned sells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import Field

from alchemiser.domain.account import AccountSnapshot
from alchemiser.domain.decisions import RiskCode, RiskDecision, TradingState, Verdict
from alchemiser.domain.orders import OrderIntent, Side
from alchemiser.domain.values import ZERO, Frozen, Symbol, floor_to_step


class RiskLimits(Frozen):
    """Per-run limits. Weights and exposure are fractions of equity before the run."""

    max_order_notional: Decimal = Field(default=Decimal(50_000), gt=0)
    max_position_weight: Decimal = Field(default=Decimal("0.60"), gt=0, le=1)
    max_gross_exposure: Decimal = Field(default=Decimal("1.00"), gt=0, le=4)
    max_turnover: Decimal = Field(default=Decimal("2.00"), gt=0)
    max_orders: int = Field(default=50, ge=0)
    allow_symbols: frozenset[Symbol] | None = None
    deny_symbols: frozenset[Symbol] = frozenset()


class RiskReview(Frozen):
    decisions: tuple[RiskDecision, ...]
    approved: tuple[OrderIntent, ...]

    @property
    def denied(self) -> tuple[RiskDecision, ...]:
        return tuple(d for d in self.decisions if d.verdict is Verdict.DENIED)


@dataclass
class _Book:
    """Running totals as if every order approved so far had filled at its ref price."""

    cash: Decimal
    equity: Decimal
    values: dict[str, Decimal]
    quantities: dict[str, Decimal]
    gross: Decimal
    turnover: Decimal = ZERO
    orders: int = 0

    def apply(self, intent: OrderIntent, qty: Decimal) -> None:
        notional = qty * intent.ref_price
        sign = 1 if intent.side is Side.BUY else -1
        self.cash -= sign * notional
        self.values[intent.symbol] = self.values.get(intent.symbol, ZERO) + sign * notional
        self.quantities[intent.symbol] = self.quantities.get(intent.symbol, ZERO) + sign * qty
        self.gross += sign * notional
        self.turnover += notional
        self.orders += 1


@dataclass
class _Sizing:
    """One order's quantity as checks lower it, and the codes that lowered it."""

    intent: OrderIntent
    qty: Decimal
    codes: list[RiskCode] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def cap(self, allowance: Decimal, code: RiskCode, what: str) -> None:
        """Lower the quantity so its notional fits ``allowance`` dollars."""
        if self.qty * self.intent.ref_price <= allowance:
            return
        self.qty = floor_to_step(allowance / self.intent.ref_price, self.intent.qty_step)
        self.codes.append(code)
        self.notes.append(f"{what} leaves ${max(allowance, ZERO):.2f}")


def _refusal(
    intent: OrderIntent, limits: RiskLimits, state: TradingState, book: _Book
) -> tuple[RiskCode, str] | None:
    """The first rule that refuses ``intent`` outright, if any."""
    if intent.qty <= ZERO or intent.ref_price <= ZERO:
        return (
            RiskCode.INVALID_ORDER,
            f"quantity {intent.qty} at ${intent.ref_price} is not an order",
        )
    if state is TradingState.HALTED:
        return RiskCode.TRADING_HALTED, "trading is halted"
    if intent.symbol in limits.deny_symbols:
        return RiskCode.SYMBOL_DENIED, f"{intent.symbol} is on the deny list"
    if limits.allow_symbols is not None and intent.symbol not in limits.allow_symbols:
        return RiskCode.SYMBOL_NOT_ALLOWED, f"{intent.symbol} is not on the allow list"
    if state is TradingState.REDUCING and intent.side is Side.BUY:
        return RiskCode.TRADING_REDUCING_ONLY, "trading state is REDUCING: buys are not allowed"
    if book.orders >= limits.max_orders:
        return RiskCode.MAX_ORDERS_EXCEEDED, f"already {limits.max_orders} orders this run"
    if intent.side is Side.SELL and intent.qty > book.quantities.get(intent.symbol, ZERO):
        held = book.quantities.get(intent.symbol, ZERO)
        return RiskCode.SELL_EXCEEDS_POSITION, f"sell of {intent.qty} exceeds the {held} held"
    return None


def _size(intent: OrderIntent, limits: RiskLimits, book: _Book) -> _Sizing:
    sizing = _Sizing(intent=intent, qty=intent.qty)
    sizing.cap(limits.max_order_notional, RiskCode.ORDER_NOTIONAL_EXCEEDS_MAX, "max order notional")
    sizing.cap(
        limits.max_turnover * book.equity - book.turnover,
        RiskCode.TURNOVER_EXCEEDS_MAX,
        "max turnover",
    )
    if intent.side is Side.BUY:
        sizing.cap(book.cash, RiskCode.INSUFFICIENT_BUYING_POWER, "cash after planned sells")
        held_value = book.values.get(intent.symbol, ZERO)
        sizing.cap(
            limits.max_position_weight * book.equity - held_value,
            RiskCode.POSITION_WEIGHT_EXCEEDS_MAX,
            "max position weight",
        )
        sizing.cap(
            limits.max_gross_exposure * book.equity - book.gross,
            RiskCode.GROSS_EXPOSURE_EXCEEDS_MAX,
            "max gross exposure",
        )
    return sizing


def _decision(
    intent: OrderIntent, qty: Decimal, verdict: Verdict, codes: Iterable[RiskCode], reason: str
) -> RiskDecision:
    return RiskDecision.model_construct(
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        requested_qty=intent.qty,
        approved_qty=qty,
        ref_price=intent.ref_price,
        verdict=verdict,
        codes=tuple(codes),
        reason=reason,
    )


def review(
    intents: Sequence[OrderIntent],
    snapshot: AccountSnapshot,
    prices: Mapping[str, Decimal],
    limits: RiskLimits,
    state: TradingState,
) -> RiskReview:
    """Approve, shrink or deny each intent; sells first, then buys, each in given order."""
    ordered = [i for i in intents if i.side is Side.SELL] + [
        i for i in intents if i.side is Side.BUY
    ]
    unpriced = sorted({p.symbol for p in snapshot.positions if p.symbol not in prices})
    if unpriced:
        reason = f"cannot value the account: no price for {', '.join(unpriced)}"
        refused = tuple(
            _decision(i, ZERO, Verdict.DENIED, [RiskCode.PRICE_MISSING], reason) for i in ordered
        )
        return RiskReview.model_construct(decisions=refused, approved=())
    values = {p.symbol: p.qty * prices[p.symbol] for p in snapshot.positions}
    book = _Book(
        cash=snapshot.cash,
        equity=snapshot.cash + sum(values.values(), ZERO),
        values=values,
        quantities=snapshot.quantities(),
        gross=sum((abs(v) for v in values.values()), ZERO),
    )
    decisions: list[RiskDecision] = []
    approved: list[OrderIntent] = []
    for intent in ordered:
        refusal = _refusal(intent, limits, state, book)
        if refusal is not None:
            decisions.append(_decision(intent, ZERO, Verdict.DENIED, [refusal[0]], refusal[1]))
            continue
        sizing = _size(intent, limits, book)
        if sizing.qty <= ZERO:
            reason = "; ".join(sizing.notes) + ": nothing left to trade"
            decisions.append(_decision(intent, ZERO, Verdict.DENIED, sizing.codes, reason))
            continue
        if sizing.codes:
            reason = f"shrunk from {intent.qty} to {sizing.qty}: " + "; ".join(sizing.notes)
            decisions.append(_decision(intent, sizing.qty, Verdict.SHRUNK, sizing.codes, reason))
            approved.append(intent.with_qty(sizing.qty))
        else:
            decisions.append(
                _decision(intent, intent.qty, Verdict.APPROVED, [], "within all limits")
            )
            approved.append(intent)
        book.apply(intent, sizing.qty)
    return RiskReview.model_construct(decisions=tuple(decisions), approved=tuple(approved))
