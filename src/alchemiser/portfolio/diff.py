"""Targets versus holdings: the pure function that plans a rebalance.

``diff`` turns target weights, an account snapshot and reference prices into ordered
order intents (sells before buys), each with its reason and a deterministic
client_order_id, plus a note for every symbol it decided to leave alone. It does no
I/O, reads no clock and logs nothing: the same inputs always give the same plan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from pydantic import Field

from alchemiser.domain.account import AccountSnapshot, market_value
from alchemiser.domain.decisions import Hold, HoldReason
from alchemiser.domain.orders import IntentKind, OrderIntent, Side, client_order_id
from alchemiser.domain.targets import validate_targets
from alchemiser.domain.values import (
    ONE,
    ZERO,
    Frozen,
    Symbol,
    floor_to_step,
    to_decimal_weight,
)
from alchemiser.errors import DataError, DataErrorKind

WHOLE_SHARE = Decimal(1)


class DiffPolicy(Frozen):
    """How close is close enough, and how orders are sized and rounded."""

    drift_abs: Decimal = Field(default=Decimal("0.01"), ge=0, le=1)
    drift_rel: Decimal = Field(default=Decimal("0.10"), ge=0, le=10)
    min_trade_notional: Decimal = Field(default=Decimal("1.00"), ge=0)
    cash_buffer: Decimal = Field(default=Decimal("0.01"), ge=0, lt=1)
    fractional: bool = True
    whole_share_symbols: frozenset[Symbol] = frozenset()
    qty_step: Decimal = Field(default=Decimal("0.000001"), gt=0, le=1)

    def step_for(self, symbol: str, fractionable: Collection[str] | None) -> Decimal:
        """The share increment for ``symbol``: ``qty_step`` if fractional, else one share."""
        if not self.fractional or symbol in self.whole_share_symbols:
            return WHOLE_SHARE
        if fractionable is not None and symbol not in fractionable:
            return WHOLE_SHARE
        return self.qty_step


class DiffResult(Frozen):
    equity: Decimal
    intents: tuple[OrderIntent, ...]
    holds: tuple[Hold, ...]

    @property
    def sells(self) -> tuple[OrderIntent, ...]:
        return tuple(i for i in self.intents if i.side is Side.SELL)

    @property
    def buys(self) -> tuple[OrderIntent, ...]:
        return tuple(i for i in self.intents if i.side is Side.BUY)


def _check_snapshot(snapshot: AccountSnapshot) -> None:
    for position in snapshot.positions:
        if position.qty < ZERO:
            raise DataError(
                f"{position.symbol}: short position of {position.qty} is not supported",
                kind=DataErrorKind.UNSUPPORTED,
            )


def _missing_prices(symbols: Iterable[str], prices: Mapping[str, Decimal]) -> list[str]:
    return sorted(s for s in symbols if s not in prices or prices[s] <= ZERO)


def diff(
    targets: Mapping[str, float],
    snapshot: AccountSnapshot,
    prices: Mapping[str, Decimal],
    policy: DiffPolicy,
    run_id: str,
    fractionable: Collection[str] | None = None,
) -> DiffResult:
    """Plan the orders that move ``snapshot`` to ``targets`` at ``prices``.

    Fails closed with DataError when a held or targeted symbol has no usable price, a
    position is short, or equity is not positive.
    """
    validate_targets(targets)
    _check_snapshot(snapshot)
    held = snapshot.quantities()
    universe = set(held) | {s for s, w in targets.items() if w > 0}
    missing = _missing_prices(universe, prices)
    if missing:
        raise DataError(f"no usable price for {', '.join(missing)}", kind=DataErrorKind.MISSING)
    equity = snapshot.cash + market_value(snapshot, prices)
    if equity <= ZERO:
        raise DataError(
            f"account equity is {equity}: nothing to rebalance", kind=DataErrorKind.UNSUPPORTED
        )
    investable = equity * (ONE - policy.cash_buffer)

    sells: list[OrderIntent] = []
    buys: list[OrderIntent] = []
    holds: list[Hold] = []
    for symbol in sorted(universe):
        line = _Line(
            symbol=symbol,
            price=prices[symbol],
            qty_held=held.get(symbol, ZERO),
            equity=equity,
            target_value=to_decimal_weight(targets.get(symbol, 0.0)) * investable,
            step=policy.step_for(symbol, fractionable),
        )
        planned = _plan_line(line, policy, run_id)
        if isinstance(planned, Hold):
            holds.append(planned)
        elif planned is not None:
            (sells if planned.side is Side.SELL else buys).append(planned)

    proceeds = sum((s.notional for s in sells), ZERO)
    available = snapshot.cash + proceeds - policy.cash_buffer * equity
    buys, limited = fit_buys_to_cash(buys, available, policy.min_trade_notional)
    for intent_ in limited:
        holds.append(
            Hold.model_construct(
                symbol=intent_.symbol,
                current_weight=intent_.current_weight,
                target_weight=intent_.target_weight,
                reason=HoldReason.CASH_LIMITED,
                detail=(
                    f"buy scaled below ${policy.min_trade_notional} to fit ${available:.2f} of cash"
                ),
            )
        )
    return DiffResult.model_construct(
        equity=equity,
        intents=tuple(sells) + tuple(buys),
        holds=tuple(sorted(holds, key=lambda h: h.symbol)),
    )


@dataclass(frozen=True, slots=True)
class _Line:
    """One symbol's numbers while planning."""

    symbol: str
    price: Decimal
    qty_held: Decimal
    equity: Decimal
    target_value: Decimal
    step: Decimal

    @property
    def current_value(self) -> Decimal:
        return self.qty_held * self.price

    @property
    def current_weight(self) -> Decimal:
        return self.current_value / self.equity

    @property
    def target_weight(self) -> Decimal:
        return self.target_value / self.equity

    def intent(
        self, side: Side, qty: Decimal, kind: IntentKind, reason: str, run_id: str
    ) -> OrderIntent:
        return OrderIntent.model_construct(
            client_order_id=client_order_id(run_id, self.symbol, side),
            symbol=self.symbol,
            side=side,
            qty=qty,
            ref_price=self.price,
            qty_step=self.step,
            kind=kind,
            current_weight=self.current_weight,
            target_weight=self.target_weight,
            reason=reason,
        )

    def hold(self, reason: HoldReason, detail: str) -> Hold:
        return Hold.model_construct(
            symbol=self.symbol,
            current_weight=self.current_weight,
            target_weight=self.target_weight,
            reason=reason,
            detail=detail,
        )


def _plan_line(line: _Line, policy: DiffPolicy, run_id: str) -> OrderIntent | Hold | None:
    """The order (or the reason for none) for one symbol."""
    if line.target_value == ZERO:
        if line.qty_held > ZERO:
            return line.intent(
                Side.SELL, line.qty_held, IntentKind.EXIT, "not in target: sell all", run_id
            )
        return None
    drift = line.target_weight - line.current_weight
    band = min(policy.drift_abs, policy.drift_rel * line.target_weight)
    if abs(drift) <= band:
        return line.hold(HoldReason.WITHIN_BAND, f"drift {drift:+.3%} within band {band:.3%}")
    describe = f"weight {line.current_weight:.3%} -> {line.target_weight:.3%} (drift {drift:+.3%})"
    if drift < ZERO:
        excess = (line.current_value - line.target_value) / line.price
        qty = min(line.qty_held, floor_to_step(excess, line.step))
        side, kind = Side.SELL, IntentKind.DECREASE
    else:
        qty = floor_to_step((line.target_value - line.current_value) / line.price, line.step)
        side = Side.BUY
        kind = IntentKind.OPEN if line.qty_held == ZERO else IntentKind.INCREASE
    if qty == ZERO:
        return line.hold(
            HoldReason.ROUNDS_TO_ZERO, f"{describe}: less than one step of {line.step} shares"
        )
    notional = qty * line.price
    if notional < policy.min_trade_notional:
        return line.hold(
            HoldReason.BELOW_MIN_NOTIONAL,
            f"{describe}: ${notional:.2f} is below the ${policy.min_trade_notional} minimum",
        )
    return line.intent(side, qty, kind, describe, run_id)


def fit_buys_to_cash(
    buys: Iterable[OrderIntent], available: Decimal, min_trade_notional: Decimal
) -> tuple[list[OrderIntent], list[OrderIntent]]:
    """Scale buys down pro rata so their notional fits ``available``; never scale up.

    Returns the buys that remain worth placing and the ones scaling made too small.
    """
    buys = list(buys)
    wanted = sum((b.notional for b in buys), ZERO)
    if wanted <= available:
        return buys, []
    factor = available / wanted if available > ZERO else ZERO
    kept: list[OrderIntent] = []
    dropped: list[OrderIntent] = []
    for buy in buys:
        qty = floor_to_step(buy.qty * factor, buy.qty_step)
        if qty > ZERO and qty * buy.ref_price >= min_trade_notional:
            kept.append(buy.with_qty(qty))
        else:
            dropped.append(buy)
    return kept, dropped
