"""Every order of a backtest session, as one row each: what traded, for which strategies,
and why.

A session's RunReport holds the diff's intents (each with its reason), the risk
review's decisions (a verdict and stable codes), the orders placed, their fills and the
targets with their attribution. ``session_trades`` folds them into rows:

- each fill is a row: its quantity, price and notional, the intent's reason, and the
  risk verdict and codes when the review shrank the order;
- an order that did not trade at all (denied by risk, not placed at execution, or placed
  and not filled) is one row with quantity and notional 0, its reason saying why; so the
  notional of a session's rows sums to its turnover.

``strategy`` names the strategies whose targets hold the symbol after the session's
decision or held it when it was last targeted, joined with ``+`` in config order: a buy
of a symbol two strategies hold serves both; a sale of one a strategy dropped serves the
one that dropped it (even days later, when risk denied the first attempt).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from alchemiser.domain.decisions import RiskDecision, Verdict
from alchemiser.domain.orders import Fill, OrderRecord, Side
from alchemiser.domain.report import RunReport, TargetReport

TRADE_COLUMNS = ("date", "strategy", "symbol", "side", "qty", "price", "notional", "reason")
"""The header of trades.csv, in order."""
ZERO = Decimal(0)


@dataclass(frozen=True)
class Trade:
    """One fill, or one order that did not trade (``qty`` and ``notional`` 0)."""

    session: date
    strategy: str
    """The strategies the symbol's targets serve, ``+``-joined in config order."""
    symbol: str
    side: str
    """``buy`` or ``sell``."""
    qty: Decimal
    price: Decimal
    """The fill price; for an order that did not trade, the price it was sized at."""
    notional: Decimal
    reason: str


def limit_code(decision: RiskDecision) -> str:
    """The key a shrunk or denied order is counted under: its codes, ``+``-joined (an
    order two limits cut counts once, under both names)."""
    return "+".join(decision.codes) if decision.codes else decision.verdict.value


def limited_codes(report: RunReport) -> tuple[str, ...]:
    """One key per order the risk review shrank or denied in the session."""
    return tuple(limit_code(d) for d in report.decisions if d.verdict is not Verdict.APPROVED)


def count_codes(keys: Iterable[str]) -> dict[str, int]:
    """How many orders each key limited: most first, then by name."""
    counted = Counter(keys)
    return dict(sorted(counted.items(), key=lambda item: (-item[1], item[0])))


def _attribution(
    symbol: str,
    before: Mapping[str, TargetReport],
    after: Mapping[str, TargetReport],
    order: Mapping[str, int],
) -> str:
    now, then = after.get(symbol), before.get(symbol)
    # The common case: one strategy, and the same one before (or none): nothing to order.
    parts = now.attribution if now is not None else {}
    if len(parts) == 1 and (then is None or then.attribution.keys() == parts.keys()):
        return next(iter(parts))
    names = set(now.attribution) if now is not None else set()
    if then is not None:
        names |= set(then.attribution)
    if len(names) == 1:
        return next(iter(names))
    return "+".join(sorted(names, key=lambda name: (order.get(name, len(order)), name)))


def _verdict(decision: RiskDecision | None) -> str:
    if decision is None or decision.verdict is Verdict.APPROVED:
        return ""
    codes = "+".join(decision.codes)
    return f"{decision.verdict.value} {codes}" if codes else decision.verdict.value


def _untraded(order: OrderRecord | None, verdict: str, adjusted: str) -> str:
    """Why an order has no fill."""
    if verdict.startswith(Verdict.DENIED):
        return verdict
    if adjusted:
        return adjusted
    if order is None:
        return "not placed"
    return f"not filled ({order.status.value})"


def session_trades(report: RunReport, before: Mapping[str, TargetReport]) -> tuple[Trade, ...]:
    """The session's rows, in the order the diff planned them (sells before buys).
    ``before`` holds each held symbol's targets when it was last targeted (for the
    strategies a sale serves)."""
    order = {s.name: i for i, s in enumerate(report.strategies)}
    decisions = {d.client_order_id: d for d in report.decisions}
    adjustments = {a.client_order_id: a for a in report.adjustments}
    fills: dict[tuple[str, Side], list[Fill]] = {}
    for fill in report.fills:
        fills.setdefault((fill.symbol, fill.side), []).append(fill)
    orders = {(o.symbol, o.side): o for o in report.orders}
    rows: list[Trade] = []
    for intent in report.intents:
        key = (intent.symbol, intent.side)
        strategy = _attribution(intent.symbol, before, report.targets, order)
        decision = decisions.get(intent.client_order_id)
        verdict = _verdict(decision)
        adjustment = adjustments.get(intent.client_order_id)
        adjusted = f"placed smaller: {adjustment.reason}" if adjustment is not None else ""
        parts = [intent.reason, verdict, adjusted]
        notes = "; ".join(p for p in parts if p)
        filled = fills.pop(key, [])
        for fill in filled:
            rows.append(
                Trade(
                    report.trading_date,
                    strategy,
                    fill.symbol,
                    fill.side.value,
                    fill.qty,
                    fill.price,
                    fill.notional,
                    notes,
                )
            )
        if not filled:
            why = _untraded(orders.get(key), verdict, adjusted)
            untraded = notes if why in parts else "; ".join(p for p in (*parts, why) if p)
            rows.append(
                Trade(
                    report.trading_date,
                    strategy,
                    intent.symbol,
                    intent.side.value,
                    ZERO,
                    intent.ref_price,
                    ZERO,
                    untraded,
                )
            )
    for (symbol, _), rest in fills.items():  # a fill no intent planned (never expected)
        strategy = _attribution(symbol, before, report.targets, order)
        for fill in rest:
            rows.append(
                Trade(
                    report.trading_date,
                    strategy,
                    symbol,
                    fill.side.value,
                    fill.qty,
                    fill.price,
                    fill.notional,
                    "",
                )
            )
    return tuple(rows)
