"""Targets versus holdings: the pure function that plans a rebalance.

``diff`` turns target weights, an account snapshot and reference prices into ordered
order intents (sells before buys), each with its reason and a deterministic
client_order_id, plus a note for every symbol it decided to leave alone. It does no
I/O, reads no clock and logs nothing: the same inputs always give the same plan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from pydantic import Field

from alchemiser.domain.account import AccountSnapshot, market_value
from alchemiser.domain.decisions import Hold, HoldReason
from alchemiser.domain.orders import FIRST_LEG, IntentKind, OrderIntent, Side, id_stem
from alchemiser.domain.targets import validate_targets
from alchemiser.domain.values import (
    ONE,
    ZERO,
    Frozen,
    Symbol,
    floor_to_step,
    quantizes_to_step,
    to_decimal_weights,
)
from alchemiser.errors import DataError, DataErrorKind

WHOLE_SHARE = Decimal(1)

# Bound once for the per-symbol loop. Attributes of an enum or pydantic model *class*
# (``Side.SELL``, ``OrderIntent.trusted``) are looked up through their metaclass's
# __getattr__ hook, about 0.1 us each on Python 3.11; a module global costs nanoseconds.
_new_intent = OrderIntent.trusted
_new_hold = Hold.trusted
_SELL, _BUY = Side.SELL, Side.BUY
_OPEN, _INCREASE, _DECREASE, _EXIT = (
    IntentKind.OPEN,
    IntentKind.INCREASE,
    IntentKind.DECREASE,
    IntentKind.EXIT,
)
_WITHIN_BAND, _BELOW_MIN_NOTIONAL, _ROUNDS_TO_ZERO = (
    HoldReason.WITHIN_BAND,
    HoldReason.BELOW_MIN_NOTIONAL,
    HoldReason.ROUNDS_TO_ZERO,
)


class DiffPolicy(Frozen):
    """How close is close enough, and how orders are sized and rounded."""

    drift_abs: Decimal = Field(default=Decimal("0.01"), ge=0, le=1)
    drift_rel: Decimal = Field(default=Decimal("0.10"), ge=0, le=10)
    min_trade_notional: Decimal = Field(default=Decimal("1.00"), ge=0, le=Decimal(10**9))
    cash_buffer: Decimal = Field(default=Decimal("0.01"), ge=0, lt=1)
    fractional: bool = True
    whole_share_symbols: frozenset[Symbol] = frozenset()
    qty_step: Decimal = Field(default=Decimal("0.000001"), ge=Decimal("1e-9"), le=1)
    """Fractional share increment; brokers accept at most 9 decimal places."""
    unmanaged_positions: Literal["sell", "keep"] = "sell"
    """An equity position no strategy holds or watches: ``sell`` it (its target is 0), or
    ``keep`` it out of the plan altogether (``partition_unmanaged``)."""

    def step_for(self, symbol: str, fractionable: Collection[str] | None = None) -> Decimal:
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
    positive = {s: w for s, w in targets.items() if w > 0}
    universe = set(held)
    universe.update(positive)
    missing = _missing_prices(universe, prices)
    if missing:
        raise DataError(f"no usable price for {', '.join(missing)}", kind=DataErrorKind.MISSING)
    equity = snapshot.cash + market_value(snapshot, prices)
    if equity <= ZERO:
        raise DataError(
            f"account equity is {equity}: nothing to rebalance", kind=DataErrorKind.UNSUPPORTED
        )
    investable = equity * (ONE - policy.cash_buffer)

    whole = _whole_share_symbols(universe, policy, fractionable)
    target_weights = to_decimal_weights(positive)
    sells, buys, holds = _plan(
        sorted(universe), prices, held, target_weights, equity, investable, whole, policy, run_id
    )
    # The planning loop added up each side's notionals in order, as sum() over the
    # intents would: the same additions, so the same totals.
    proceeds, wanted = sells.total, buys.total
    available = snapshot.cash + proceeds - policy.cash_buffer * equity
    if wanted <= available:
        fitted: list[OrderIntent] = buys.intents
        limited: list[OrderIntent] = []
    else:
        fitted, limited = _scale_buys(buys.intents, available, wanted, policy.min_trade_notional)
    for intent_ in limited:
        holds.append(
            _new_hold(
                {
                    "symbol": intent_.symbol,
                    "current_weight": intent_.current_weight,
                    "target_weight": intent_.target_weight,
                    "reason": HoldReason.CASH_LIMITED,
                    "detail": (
                        f"buy scaled below ${policy.min_trade_notional} "
                        f"to fit ${available:.2f} of cash"
                    ),
                }
            )
        )
    # The plan's holds come in symbol order; only cash-limited ones join out of order.
    return DiffResult.trusted(
        {
            "equity": equity,
            "intents": (*sells.intents, *fitted),
            "holds": tuple(sorted(holds, key=_symbol_of) if limited else holds),
        }
    )


def _symbol_of(hold: Hold) -> str:
    return hold.symbol


class _Side:
    """One side's intents, in plan order, and the running sum of their notionals."""

    __slots__ = ("intents", "total")

    def __init__(self) -> None:
        self.intents: list[OrderIntent] = []
        self.total = ZERO


def _whole_share_symbols(
    universe: set[str], policy: DiffPolicy, fractionable: Collection[str] | None
) -> set[str]:
    """The symbols of ``universe`` that ``policy.step_for`` gives a one-share step.

    The same rule as ``step_for``, applied with set operations rather than one method
    call per symbol of the book.
    """
    if not policy.fractional or policy.qty_step == WHOLE_SHARE:
        return universe
    whole = universe & policy.whole_share_symbols
    if fractionable is not None:
        whole |= universe.difference(fractionable)
    return whole


def _plan(  # noqa: PLR0915 (one hot loop, kept flat)
    symbols: list[str],
    prices: Mapping[str, Decimal],
    held: Mapping[str, Decimal],
    target_weights: Mapping[str, Decimal],
    equity: Decimal,
    investable: Decimal,
    whole: set[str],
    policy: DiffPolicy,
    run_id: str,
) -> tuple[_Side, _Side, list[Hold]]:
    """The order for each symbol, or the reason there is none: sells, buys and holds, in
    symbol order. One loop over the whole book, so it reads the policy once and builds
    its results without re-validating what is already valid."""
    sells, buys = _Side(), _Side()
    holds: list[Hold] = []
    drift_abs, drift_rel = policy.drift_abs, policy.drift_rel
    min_notional = policy.min_trade_notional
    qty_step = policy.qty_step
    # floor_to_step quantizes to a power-of-ten step and divides by any other: which
    # one is read from the step's text, here once per step rather than once per order.
    qty_step_quantizes = quantizes_to_step(qty_step)
    stems = {_SELL: id_stem(run_id, _SELL), _BUY: id_stem(run_id, _BUY)}
    sell_stem = stems[_SELL]
    # Formatted once: the texts of values many symbols share (no holding, a band of
    # drift_abs).
    zero_text, abs_text = f"{ZERO:.3%}", f"{drift_abs:.3%}"
    for symbol in symbols:
        price = prices[symbol]
        qty_held = held.get(symbol, ZERO)
        target = target_weights.get(symbol, ZERO)
        if symbol in whole:
            step, quantizes = WHOLE_SHARE, True
        else:
            step, quantizes = qty_step, qty_step_quantizes
        current_value = qty_held * price
        current_weight = current_value / equity if qty_held else ZERO
        # A weight that rounds to nothing (below 1e-10) is no target at all: exit in
        # full, rather than leave a residue no order can reach.
        if target == ZERO:
            if qty_held <= ZERO:
                continue
            sells.intents.append(
                _new_intent(
                    {
                        "client_order_id": sell_stem + symbol + FIRST_LEG,
                        "symbol": symbol,
                        "side": _SELL,
                        "qty": qty_held,
                        "ref_price": price,
                        "qty_step": step,
                        "kind": _EXIT,
                        "current_weight": current_weight,
                        "target_weight": ZERO,
                        "reason": "not in target: sell all",
                    }
                )
            )
            sells.total += current_value
            continue
        target_value = target * investable
        target_weight = target_value / equity
        drift = target_weight - current_weight
        # min(drift_abs, relative), spelled out: the same choice, without a builtin call.
        relative = drift_rel * target_weight
        band = relative if relative < drift_abs else drift_abs
        if abs(drift) <= band:
            holds.append(
                _new_hold(
                    {
                        "symbol": symbol,
                        "current_weight": current_weight,
                        "target_weight": target_weight,
                        "reason": _WITHIN_BAND,
                        "detail": f"drift {drift:+.3%} within band "
                        f"{abs_text if band is drift_abs else f'{band:.3%}'}",
                    }
                )
            )
            continue
        held_text = zero_text if current_weight is ZERO else f"{current_weight:.3%}"
        describe = f"weight {held_text} -> {target_weight:.3%}"
        if drift < ZERO:
            shares = (current_value - target_value) / price
            side, kind, book = _SELL, _DECREASE, sells
        else:
            shares = (target_value - current_value) / price
            side, book = _BUY, buys
            kind = _OPEN if qty_held == ZERO else _INCREASE
        # floor_to_step(shares, step), its choice made above.
        if shares <= ZERO:
            qty = ZERO
        elif quantizes:
            qty = shares.quantize(step, ROUND_DOWN)
        else:
            qty = floor_to_step(shares, step)
        # A sell never exceeds the holding: min(qty_held, qty), spelled out.
        if side is _SELL and not qty < qty_held:
            qty = qty_held
        notional = qty * price
        if qty == ZERO:
            reason, detail = _ROUNDS_TO_ZERO, f"{describe}: under one {step}-share step"
        elif notional < min_notional:
            reason = _BELOW_MIN_NOTIONAL
            detail = f"{describe}: ${notional:.2f} is below the ${min_notional} minimum"
        else:
            book.intents.append(
                _new_intent(
                    {
                        "client_order_id": stems[side] + symbol + FIRST_LEG,
                        "symbol": symbol,
                        "side": side,
                        "qty": qty,
                        "ref_price": price,
                        "qty_step": step,
                        "kind": kind,
                        "current_weight": current_weight,
                        "target_weight": target_weight,
                        "reason": describe,
                    }
                )
            )
            book.total += notional
            continue
        holds.append(
            _new_hold(
                {
                    "symbol": symbol,
                    "current_weight": current_weight,
                    "target_weight": target_weight,
                    "reason": reason,
                    "detail": detail,
                }
            )
        )
    return sells, buys, holds


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
    return _scale_buys(buys, available, wanted, min_trade_notional)


def _scale_buys(
    buys: list[OrderIntent], available: Decimal, wanted: Decimal, min_trade_notional: Decimal
) -> tuple[list[OrderIntent], list[OrderIntent]]:
    """``fit_buys_to_cash`` once the buys (worth ``wanted``) are known not to fit."""
    budget = max(available, ZERO)
    kept: list[OrderIntent] = []
    dropped: list[OrderIntent] = []
    for buy in buys:
        # Multiply before dividing: qty * budget / wanted is exact when the buy fits
        # exactly (3 shares x $25 / $75 = 1 share), where a rounded factor is not.
        qty = floor_to_step(buy.qty * budget / wanted, buy.qty_step)
        if qty > ZERO and qty * buy.ref_price >= min_trade_notional:
            kept.append(buy.with_qty(qty))
        else:
            dropped.append(buy)
    return kept, dropped
