"""The rebalance use case: the only place that sequences I/O.

ledger (finished already?) -> record the attempt as started -> this run's earlier orders
-> a consistent snapshot (our working orders cancelled first) -> history -> strategies
-> combine -> diff -> quotes -> risk (counting what earlier attempts used) -> execute
-> record. Everything it calls is either pure (strategy/, portfolio/, domain/) or a
port. Any AlchemiserError before execution fails the run closed: no order, the reason
in the report. Every attempt is recorded in the ledger whatever the outcome; a run the
ledger already records as finished is answered from it and never traded again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from alchemiser.domain.account import AccountSnapshot, value_account
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.market import NEW_YORK, MarketStatus, Quote
from alchemiser.domain.orders import OrderRecord, assign_legs, is_own_order
from alchemiser.domain.prices import check_fresh, reference_prices
from alchemiser.domain.report import (
    ErrorReport,
    Mode,
    RunReport,
    RunStatus,
    StrategyReport,
    TargetReport,
    degraded_reasons,
)
from alchemiser.errors import AlchemiserError, DataError, DataErrorKind, EventError, StrategyError
from alchemiser.execution.procedure import (
    ExecutionPolicy,
    ExecutionResult,
    cancel_working,
    execute,
)
from alchemiser.portfolio.diff import DiffPolicy, diff
from alchemiser.portfolio.risk import RiskLimits, review, usage_of
from alchemiser.portfolio.unmanaged import partition_unmanaged
from alchemiser.ports import Broker, Clock, Ledger, MarketClock, MarketData, Quotes
from alchemiser.strategy.allocation import CombinedTargets, StrategyWeights, combine
from alchemiser.strategy.base import Strategy


@dataclass(frozen=True)
class AllocatedStrategy:
    strategy: Strategy
    allocation: float


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    as_of: date
    """The last completed session: strategies see bars up to it; orders are sized at its close."""
    trading_date: date
    """The day the orders are placed."""
    scheduled_time: datetime | None
    """The scheduler's trigger time; None for a run asked for by hand."""
    mode: Mode
    deadline: float | None = None
    """When the run must stop trading, on ``Clock.monotonic``: fixed once when the
    invocation starts (a Lambda's remaining time, less a margin) and shared with the
    broker adapter's retries; waits for fills stop in time to cancel what is open and
    write the report."""
    account: str = "default"
    """The account's name (config ``account``): part of the run id, and of the ledger's keys."""


@dataclass(frozen=True)
class Dependencies:
    broker: Broker
    market_data: MarketData
    ledger: Ledger
    clock: Clock
    strategies: Sequence[AllocatedStrategy]
    policy: DiffPolicy
    limits: RiskLimits
    trading_state: TradingState
    execution: ExecutionPolicy
    max_staleness_days: int
    market_clock: MarketClock | None = None
    """The broker's clock (real brokers): the run trades only on the day it was
    triggered for, and only while the market is open there."""
    quotes: Quotes | None = None
    """Live quotes: the price collar in risk, and share-quantity buys sized at the ask.
    None only where no live price exists (then risk checks no collar)."""


def make_run_id(account: str, trading_date: date, trigger: datetime, *, exact: bool = False) -> str:
    """Same account and trigger instant -> same run id -> same client_order_ids.

    The instant is normalised to UTC whole seconds first, so one moment written two
    ways (``...T13:30:00Z``, ``...T09:30:00-04:00``) is still one run. A run asked for
    by hand (``exact``) is its own instant, to the microsecond: two runs typed in the
    same second are two runs.
    """
    instant = trigger.astimezone(UTC)
    if not exact:
        instant = instant.replace(microsecond=0)
    digest = hashlib.sha256(f"{account}|{instant.isoformat()}".encode()).hexdigest()[:10]
    return f"{account}-{trading_date:%Y%m%d}-{digest}"


class _Recorder:
    """Collects report fields as the run goes, and how long each phase took."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.fields: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self.clock.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round((self.clock.monotonic() - start) * 1000, 3)


def _evaluate(
    strategies: Sequence[AllocatedStrategy],
    market_data: MarketData,
    universe: set[str],
    held: set[str],
    as_of: date,
) -> tuple[list[StrategyWeights], dict[str, Decimal]]:
    """Each strategy's weights, and the reference prices of what is held or targeted.

    Prices are required (fail closed) only for symbols the account holds or a strategy
    chose: a symbol a strategy merely watches may lack a close (it did not trade yet),
    and the strategy itself decides whether it can do without it.
    """
    lookback = max(s.strategy.lookback() for s in strategies)
    history = market_data.history(sorted(universe | held), as_of, lookback)
    evaluated = []
    for allocated in strategies:
        table = allocated.strategy.evaluate_all(history)
        weights = table.weights_at(as_of)
        unknown = sorted(set(weights) - universe)
        if unknown:
            raise StrategyError(
                f"strategy {allocated.strategy.name!r} chose symbols it did not declare: "
                + ", ".join(unknown)
            )
        evaluated.append(
            StrategyWeights(
                allocated.strategy.name,
                allocated.allocation,
                weights,
                table.rebalance_note(as_of),
            )
        )
    chosen = {symbol for s in evaluated for symbol, w in s.weights.items() if w > 0}
    return evaluated, reference_prices(history, chosen | held, as_of)


def _targets_report(combined: CombinedTargets) -> dict[str, TargetReport]:
    return {
        symbol: TargetReport(weight=weight, attribution=combined.attribution[symbol])
        for symbol, weight in combined.weights.items()
    }


def _own_open_orders(snapshot: AccountSnapshot, account: str) -> list[OrderRecord]:
    """Orders still working at the broker would fill on top of this plan. Ours (this
    run's earlier attempt, or an earlier run's, for this account) are cancelled before
    planning; anybody else's make the run refuse: the plan cannot account for them."""
    foreign = sorted(
        o.client_order_id
        for o in snapshot.open_orders
        if not is_own_order(o.client_order_id, account)
    )
    if foreign:
        raise DataError(
            f"{len(foreign)} open order(s) at the broker that this product did not place "
            f"({', '.join(foreign[:5])}): the plan cannot account for them; let them finish "
            "or cancel them, then run again",
            kind=DataErrorKind.OPEN_ORDERS,
        )
    return [o for o in snapshot.open_orders if is_own_order(o.client_order_id, account)]


def _with_unplanned(
    after: AccountSnapshot, prices: dict[str, Decimal], rec: _Recorder
) -> dict[str, Decimal]:
    """A position the plan never priced (an order of somebody else's, or a trade by
    hand, filled during the run) is valued at its average entry price, and said so."""
    unplanned = [p for p in after.positions if p.symbol not in prices and p.qty != 0]
    if not unplanned:
        return prices
    extended = dict(prices)
    for position in unplanned:
        extended[position.symbol] = position.avg_entry_price or Decimal(0)
        rec.fields["notes"] = (
            *rec.fields.get("notes", ()),
            f"{position.symbol} appeared during the run (not in the plan); valued at its "
            "average entry price",
        )
    return extended


def _check_trigger_day(request: RunRequest, market: MarketStatus) -> None:
    """Replay protection: a trigger for another day than the broker's today (a stale
    retry, a delayed redelivery, a wrong clock) is refused before anything is read."""
    today = market.at.astimezone(NEW_YORK).date()
    if today != request.trading_date:
        raise EventError(
            f"this run is for {request.trading_date.isoformat()} but the broker's clock says "
            f"{today.isoformat()}: refusing a stale or early trigger"
        )


def _status(
    intents: int, approved: int, result: ExecutionResult, errors: Sequence[AlchemiserError]
) -> RunStatus:
    if errors:
        return RunStatus.FAILED
    if not intents:
        return RunStatus.NOOP
    if not approved:
        return RunStatus.BLOCKED
    if any(o.unfilled for o in result.orders):
        return RunStatus.INCOMPLETE
    return RunStatus.COMPLETED


def _quiet_account(
    request: RunRequest, deps: Dependencies, rec: _Recorder
) -> tuple[list[OrderRecord], AccountSnapshot]:
    """This run's earlier orders, then a consistent snapshot, read in that order so a
    fill in between cannot be missed. Our own working orders (an earlier run's, or an
    attempt of this one that died) are cancelled first, and both are read again: the
    plan starts from an account where nothing of ours can still fill."""
    earlier = deps.broker.orders_of_run(request.run_id)
    snapshot = deps.broker.snapshot()
    own_open = _own_open_orders(snapshot, request.account)
    if not own_open:
        if any(not o.status.terminal for o in earlier):
            # It finished between the two reads (a dead attempt's last fill): read both
            # again, in order, so the plan starts from what it became. Anything else
            # new in between is another attempt trading.
            again = deps.broker.orders_of_run(request.run_id)
            snapshot = deps.broker.snapshot()
            _settled(earlier, again, snapshot, request.account)
            earlier = again
        return earlier, snapshot
    cancelled = cancel_working(own_open, deps.broker, deps.clock, deps.execution, request.deadline)
    rec.fields["notes"] = (*rec.fields.get("notes", ()), *cancelled.notes)
    if cancelled.errors:
        rec.fields["errors"] = tuple(ErrorReport.of(e) for e in cancelled.errors[1:])
        raise cancelled.errors[0]
    earlier = deps.broker.orders_of_run(request.run_id)
    snapshot = deps.broker.snapshot()
    if _own_open_orders(snapshot, request.account):
        raise DataError(
            "an order of ours appeared while our earlier ones were cancelled: another "
            "attempt is trading; nothing was planned",
            kind=DataErrorKind.OPEN_ORDERS,
        )
    return earlier, snapshot


def _settled(
    first: Sequence[OrderRecord],
    again: Sequence[OrderRecord],
    snapshot: AccountSnapshot,
    account: str,
) -> None:
    """After a second read: the run's orders must be the ones first seen, all finished,
    with nothing of ours working; else another attempt is placing orders."""
    seen = {o.client_order_id for o in first}
    moved = sorted(
        o.client_order_id for o in again if o.client_order_id not in seen or not o.status.terminal
    )
    if moved or _own_open_orders(snapshot, account):
        which = ", ".join(moved[:5]) or "orders of ours are working"
        raise AlchemiserError(
            f"another attempt of this run is trading ({which}): nothing was planned",
            code="CONCURRENT_ATTEMPT",
        )


def _live_quotes(deps: Dependencies, symbols: Sequence[str]) -> dict[str, Quote] | None:
    """One batched read of the live quotes of the symbols the plan trades: the price
    collar checks them, share-quantity buys are sized at their asks. A symbol without
    a usable quote is absent: risk denies its orders (``LIVE_PRICE_MISSING``)."""
    if deps.quotes is None:
        return None
    if not symbols:
        return {}
    return deps.quotes.latest_quotes(sorted(set(symbols)))


def _unquoted(symbols: Sequence[str], quotes: dict[str, Quote] | None) -> list[AlchemiserError]:
    """A plan the live market could not price in part is not finished: the orders it
    could not confirm were denied, and the run says so as a failure, so that it is
    retried (and the retry, counting what this attempt placed, completes it) instead of
    being answered from the ledger as done."""
    if quotes is None:
        return []
    missing = sorted({s for s in symbols if s not in quotes})
    if not missing:
        return []
    return [
        DataError(
            f"no usable live quote for {', '.join(missing[:10])}: their orders were not "
            "placed; a retry places them once quotes are back",
            kind=DataErrorKind.MISSING,
        )
    ]


def _trade(request: RunRequest, deps: Dependencies, rec: _Recorder) -> RunStatus:
    """Everything from the account snapshot to the account after; fills ``rec.fields``."""
    with rec.phase("snapshot"):
        earlier, snapshot = _quiet_account(request, deps, rec)
    universe = {s for a in deps.strategies for s in a.strategy.symbols()}
    # After the broker's figures were checked to add up: from here on, the plan sees
    # only what the product manages.
    snapshot, unmanaged = partition_unmanaged(snapshot, universe, deps.policy)
    rec.fields["earlier_orders"] = tuple(earlier)
    rec.fields["unmanaged"] = unmanaged
    held = set(snapshot.quantities())
    with rec.phase("strategies"):
        evaluated, prices = _evaluate(
            deps.strategies, deps.market_data, universe, held, request.as_of
        )
        combined = combine(evaluated)
    rec.fields["account_before"] = value_account(snapshot, prices)
    rec.fields["strategies"] = tuple(
        StrategyReport(
            name=s.name, allocation=s.allocation, weights=dict(s.weights), rebalance=s.rebalance
        )
        for s in evaluated
    )
    rec.fields["targets"] = _targets_report(combined)
    with rec.phase("plan"):
        fractionable = deps.broker.fractionable(sorted(universe | held))
        plan = diff(combined.weights, snapshot, prices, deps.policy, request.run_id, fractionable)
        quotes = _live_quotes(deps, [i.symbol for i in plan.intents])
        verdicts = review(
            plan.intents,
            snapshot,
            prices,
            deps.limits,
            deps.trading_state,
            live_prices=None if quotes is None else {s: q.mid for s, q in quotes.items()},
            used=usage_of(earlier, prices),
        )
        approved, too_many = assign_legs(verdicts.approved, {o.client_order_id for o in earlier})
    rec.fields.update(intents=plan.intents, holds=plan.holds, decisions=verdicts.decisions)
    planned = {(i.symbol, i.side): i.client_order_id for i in verdicts.approved}
    rec.fields["notes"] = (
        *rec.fields.get("notes", ()),
        *(
            f"{planned[i.symbol, i.side]} was taken by an earlier attempt of this run; "
            f"placing {i.client_order_id} for what is still missing"
            for i in approved
            if i.client_order_id != planned[i.symbol, i.side]
        ),
    )
    with rec.phase("execute"):
        result = execute(
            approved,
            deps.broker,
            deps.clock,
            deps.execution,
            run_id=request.run_id,
            cash_reserve=deps.policy.cash_buffer * plan.equity,
            min_trade_notional=deps.policy.min_trade_notional,
            deadline=request.deadline,
            earlier_attempts=earlier,
            asks=None if quotes is None else {s: q.ask for s, q in quotes.items()},
        )
    unquoted = _unquoted([i.symbol for i in plan.intents], quotes)
    errors = [*unquoted, *too_many, *result.errors]
    rec.fields.update(
        notes=(*rec.fields.get("notes", ()), *result.notes),
        orders=tuple(result.orders),
        fills=tuple(result.fills),
        adjustments=tuple(result.adjustments),
        errors=(*rec.fields.get("errors", ()), *(ErrorReport.of(e) for e in errors)),
    )
    rec.fields["degraded"] = degraded_reasons(
        len(plan.intents), verdicts.decisions, result.adjustments
    )
    with rec.phase("snapshot_after"):
        after, _ = partition_unmanaged(
            deps.broker.snapshot(with_orders=False), universe, deps.policy
        )
        rec.fields["account_after"] = value_account(after, _with_unplanned(after, prices, rec))
    return _status(len(plan.intents), len(verdicts.approved), result, errors)


def new_attempt_id(clock: Clock) -> str:
    """Text order is start order; the random part keeps two attempts started in the
    same microsecond apart."""
    return f"{clock.now().astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def rebalance(request: RunRequest, deps: Dependencies) -> RunReport:
    """Run one attempt of a rebalance and return its report; never raises an
    AlchemiserError from the run itself (a ledger that cannot record does raise).

    A run the ledger records as finished is answered from the ledger: nothing is read
    from the broker, nothing recorded. Otherwise the attempt is recorded as started
    once the broker's clock agrees it is the run's day (a refused trigger is recorded
    apart), and its report recorded again, whatever the outcome, before it is returned.
    """
    prior = deps.ledger.finished(request.run_id)
    if prior is not None:
        answered = (
            f"answered from the ledger: this run finished {prior.status.value} in attempt "
            f"{prior.attempt_id or '(first)'}; nothing was read or placed"
        )
        return prior.model_copy(update={"notes": (*prior.notes, answered)})
    rec = _Recorder(deps.clock)
    started = deps.clock.monotonic()
    attempt_id = new_attempt_id(deps.clock)
    run_id = request.run_id

    def report(status: RunStatus) -> RunReport:
        return RunReport(
            run_id=run_id,
            attempt_id=attempt_id,
            account=request.account,
            as_of=request.as_of,
            trading_date=request.trading_date,
            scheduled_time=request.scheduled_time,
            mode=request.mode,
            trading_state=deps.trading_state,
            status=status,
            cash_buffer=deps.policy.cash_buffer,
            timings_ms=rec.timings,
            **rec.fields,
        )

    try:
        market = None if deps.market_clock is None else deps.market_clock.market_status()
        if market is not None:
            try:
                _check_trigger_day(request, market)
            except EventError:
                # Recorded apart: a replayed trigger must not add an attempt to the run
                # it names (which may well have completed, days ago).
                run_id = f"{request.run_id}-refused-{market.at:%Y%m%dT%H%M%S}"
                raise
        deps.ledger.record(report(RunStatus.STARTED))
        check_fresh(request.as_of, request.trading_date, deps.max_staleness_days)
        if market is not None and not market.is_open:
            rec.fields["notes"] = (market.describe() + "; nothing was traded",)
            status = RunStatus.SKIPPED
        elif (
            market is None  # an open market at the broker is a session by definition
            and request.scheduled_time is not None
            and not deps.market_data.is_session(request.trading_date)
        ):
            rec.fields["notes"] = (f"{request.trading_date.isoformat()} is not a trading session",)
            status = RunStatus.SKIPPED
        else:
            status = _trade(request, deps, rec)
    except AlchemiserError as error:
        rec.fields["errors"] = (*rec.fields.get("errors", ()), ErrorReport.of(error))
        status = RunStatus.FAILED
    rec.timings["total"] = round((deps.clock.monotonic() - started) * 1000, 3)
    final = report(status)
    deps.ledger.record(final)
    return final
