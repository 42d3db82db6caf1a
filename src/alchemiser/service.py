"""The rebalance use case: the only place that sequences I/O.

ledger (finished already?) -> record the attempt as started -> this run's earlier orders
-> a consistent snapshot (our working orders cancelled first) -> history -> strategies
-> combine -> diff -> quotes -> risk (counting what earlier attempts used) -> execute
-> record. Everything it calls is either pure (strategy/, portfolio/, domain/) or a
port. Any AlchemiserError before execution fails the run closed: no order, the reason
in the report. Every attempt is recorded in the ledger whatever the outcome; a run the
ledger already records as finished is answered from it and never traded again. A dry
run does all of it but execute: it cancels and submits nothing, and reports what it
would have ordered.
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

import numpy as np

from alchemiser.domain.account import (
    AccountSnapshot,
    AccountValuation,
    marks_after,
    value_account,
)
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.market import (
    NEW_YORK,
    NOMINAL_CLOSE,
    MarketStatus,
    Quote,
    TradingWindow,
    close_trigger_skip,
    outside_close_window,
)
from alchemiser.domain.orders import Fill, OrderRecord, assign_legs, is_own_order
from alchemiser.domain.prices import PriceHistory, check_fresh, reference_prices, with_session
from alchemiser.domain.report import (
    ErrorReport,
    Mode,
    RunReport,
    RunStatus,
    SkipReason,
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
from alchemiser.portfolio.risk import RiskLimits, RiskReview, review, usage_of
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
    window: TradingWindow = TradingWindow.OPEN
    """The account's trading window: ``open`` decides on ``as_of``, the session before
    ``trading_date``; ``close`` decides on ``trading_date`` itself (``as_of`` is it),
    with each symbol's latest price standing in for its close."""
    trigger_window: TradingWindow | None = None
    """The window the trigger was scheduled for (None: the account's own). A trigger for
    the other window is recorded as skipped."""
    dry_run: bool = False
    """Read, plan and review as a run does; submit and cancel nothing (``run_id`` is
    the dry run's own, see ``make_run_id``)."""


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


DRY_RUN_SUFFIX = "-dry"


def make_run_id(
    account: str,
    trading_date: date,
    trigger: datetime,
    *,
    exact: bool = False,
    dry_run: bool = False,
) -> str:
    """Same account and trigger instant -> same run id -> same client_order_ids.

    The instant is normalised to UTC whole seconds first, so one moment written two
    ways (``...T13:30:00Z``, ``...T09:30:00-04:00``) is still one run. A run asked for
    by hand (``exact``) is its own instant, to the microsecond: two runs typed in the
    same second are two runs. A dry run's id ends in ``-dry``: a real run of the same
    trigger is never answered from a dry run's ledger row, and never shares its ids.
    """
    instant = trigger.astimezone(UTC)
    if not exact:
        instant = instant.replace(microsecond=0)
    digest = hashlib.sha256(f"{account}|{instant.isoformat()}".encode()).hexdigest()[:10]
    run_id = f"{account}-{trading_date:%Y%m%d}-{digest}"
    return run_id + DRY_RUN_SUFFIX if dry_run else run_id


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
    window: TradingWindow,
    now: datetime | None,
) -> tuple[list[StrategyWeights], dict[str, Decimal]]:
    """Each strategy's weights, and the reference prices of what is held or targeted.

    Prices are required (fail closed) only for symbols the account holds or a strategy
    chose: a symbol a strategy merely watches may lack a close (it did not trade yet),
    and the strategy itself decides whether it can do without it.
    """
    lookback = max(s.strategy.lookback() for s in strategies)
    history = _history(market_data, sorted(universe | held), as_of, lookback, window, now)
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


def _history(
    market_data: MarketData,
    symbols: list[str],
    as_of: date,
    lookback: int,
    window: TradingWindow,
    now: datetime | None,
) -> PriceHistory:
    """The history strategies decide on. At the open: the daily closes up to ``as_of``.
    At the close: the daily closes up to the session before, and a row for ``as_of``
    (today) of each symbol's latest price, read in one batched request. Every symbol
    that traded the session before must have a fresh latest price (fail closed); one
    with no history at all has none today either."""
    if window is TradingWindow.OPEN:
        return market_data.history(symbols, as_of, lookback)
    previous = market_data.latest_session(before=as_of)
    daily = market_data.history(symbols, previous, max(lookback - 1, 1))
    last = daily.closes[-1] if len(daily.dates) else np.full(len(daily.symbols), np.nan)
    trading = [s for s, close in zip(daily.symbols, last.tolist(), strict=True) if close > 0]
    latest = market_data.latest_prices(trading, as_of, now) if trading else {}
    return with_session(daily, as_of, latest)


def _targets_report(combined: CombinedTargets) -> dict[str, TargetReport]:
    """Each target's report, built without re-validation: ``combine`` made every weight
    and part a float (rounded), and each report gets its own copy of the parts."""
    new = TargetReport.trusted
    attribution = combined.attribution
    return {
        symbol: new({"weight": weight, "attribution": dict(attribution[symbol])})
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


def _marked_after(
    after: AccountSnapshot, fills: Sequence[Fill], prices: dict[str, Decimal], rec: _Recorder
) -> AccountValuation:
    """The account after the run as the broker sees it: at the broker's own prices, or
    where it gives none, at the fill prices (else the plan's). A position the plan
    never priced (an order of somebody else's, or a trade by hand, filled during the
    run) is said so."""
    marks, unplanned = marks_after(after, fills, prices)
    rec.fields["notes"] = (
        *rec.fields.get("notes", ()),
        *(
            f"{symbol} appeared during the run (not in the plan); valued at {how}"
            for symbol, how in unplanned.items()
        ),
    )
    return value_account(after, marks)


def _check_trigger_day(request: RunRequest, market: MarketStatus) -> None:
    """Replay protection: a trigger for another day than the broker's today (a stale
    retry, a delayed redelivery, a wrong clock) is refused before anything is read."""
    today = market.at.astimezone(NEW_YORK).date()
    if today != request.trading_date:
        raise EventError(
            f"this run is for {request.trading_date.isoformat()} but the broker's clock says "
            f"{today.isoformat()}: refusing a stale or early trigger"
        )


def _not_this_trigger(
    request: RunRequest, market: MarketStatus | None
) -> tuple[SkipReason, str] | None:
    """Why this trigger is not the account's to trade on (None when it is): it was
    scheduled for the other trading window; or, at the close, it is the trigger for
    another kind of day (the stack schedules one for normal days and one for early
    closes; the broker's clock says which is within reach of today's close, the
    simulator's close is always 16:00), or the broker's time now is not within the
    close window (a run by hand at 10:00, a trigger delivered early)."""
    window = request.window
    if request.trigger_window is not None and request.trigger_window is not window:
        return SkipReason.OTHER_WINDOW, (
            f"this trigger is for the {request.trigger_window.value} window; account "
            f"{request.account!r} trades at the {window.value}"
        )
    if window is not TradingWindow.CLOSE:
        return None
    scheduled = request.scheduled_time
    if market is None:
        if scheduled is None:
            return None
        local = scheduled.astimezone(NEW_YORK)
        close = datetime.combine(local.date(), NOMINAL_CLOSE, tzinfo=NEW_YORK)
        why = close_trigger_skip(scheduled, close)
        return None if why is None else (SkipReason.OTHER_TRIGGER, why)
    if not market.is_open:
        return None  # the session's own rule: skipped as closed (or a holiday)
    if scheduled is not None:
        why = close_trigger_skip(scheduled, market.next_close)
        if why is not None:
            return SkipReason.OTHER_TRIGGER, why
    why = outside_close_window(market)
    return None if why is None else (SkipReason.OUTSIDE_WINDOW, why)


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
    plan starts from an account where nothing of ours can still fill. A dry run
    cancels nothing: it plans from the account as it is, and says what is working."""
    earlier = deps.broker.orders_of_run(request.run_id)
    snapshot = deps.broker.snapshot()
    own_open = _own_open_orders(snapshot, request.account)
    if request.dry_run:
        rec.fields["notes"] = (
            *rec.fields.get("notes", ()),
            *(
                f"dry run: {o.client_order_id} ({o.side.value} {o.symbol}, {o.status.value}) "
                "is working at the broker; a real run would cancel it first"
                for o in own_open
            ),
        )
        return earlier, snapshot
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


def _trade(
    request: RunRequest, deps: Dependencies, rec: _Recorder, market: MarketStatus | None
) -> RunStatus:
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
            deps.strategies,
            deps.market_data,
            universe,
            held,
            request.as_of,
            request.window,
            None if market is None else market.at,
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
    if request.dry_run:
        return _dry_run_ends(
            rec,
            len(plan.intents),
            verdicts,
            [*_unquoted([i.symbol for i in plan.intents], quotes), *too_many],
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
    fills = tuple(result.fills)
    rec.fields.update(
        notes=(*rec.fields.get("notes", ()), *result.notes),
        orders=tuple(result.orders),
        fills=fills,
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
        rec.fields["account_after"] = _marked_after(after, fills, prices, rec)
    return _status(len(plan.intents), len(verdicts.approved), result, errors)


def _dry_run_ends(
    rec: _Recorder, intents: int, verdicts: RiskReview, errors: Sequence[AlchemiserError]
) -> RunStatus:
    """Where a dry run stops: after the risk review, with nothing submitted or cancelled.
    The account after is the account before."""
    approved = len(verdicts.approved)
    rec.fields.update(
        notes=(
            *rec.fields.get("notes", ()),
            f"dry run: {approved} order(s) approved by risk; nothing was submitted or cancelled",
        ),
        errors=(*rec.fields.get("errors", ()), *(ErrorReport.of(e) for e in errors)),
        degraded=degraded_reasons(intents, verdicts.decisions, ()),
        account_after=rec.fields["account_before"],
    )
    if errors:
        return RunStatus.FAILED
    if not intents:
        return RunStatus.NOOP
    return RunStatus.DRY_RUN if approved else RunStatus.BLOCKED


def _session(
    request: RunRequest, deps: Dependencies, rec: _Recorder, market: MarketStatus | None
) -> RunStatus:
    """A trigger that is the account's: trade, unless the data is stale (fail) or the
    market does not trade now (skip)."""
    check_fresh(request.as_of, request.trading_date, deps.max_staleness_days)
    if market is not None and not market.is_open:
        # A session closed at the trigger (after an early close) is not a holiday: a
        # watchdog must still find the day's run.
        try:
            session = deps.market_data.is_session(request.trading_date)
        except AlchemiserError:
            session = True  # unknown: not a holiday, so a missing run is still found
        rec.fields.update(
            notes=(market.describe() + "; nothing was traded",),
            skipped=SkipReason.MARKET_CLOSED if session else SkipReason.HOLIDAY,
        )
        return RunStatus.SKIPPED
    if (
        market is None  # an open market at the broker is a session by definition
        and request.scheduled_time is not None
        and not deps.market_data.is_session(request.trading_date)
    ):
        rec.fields.update(
            notes=(f"{request.trading_date.isoformat()} is not a trading session",),
            skipped=SkipReason.HOLIDAY,
        )
        return RunStatus.SKIPPED
    return _trade(request, deps, rec, market)


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
            dry_run=request.dry_run,
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
        skip = _not_this_trigger(request, market)
        if skip is not None:
            reason, why = skip
            rec.fields.update(notes=(why + "; nothing was read or traded",), skipped=reason)
            status = RunStatus.SKIPPED
        else:
            status = _session(request, deps, rec, market)
    except AlchemiserError as error:
        rec.fields["errors"] = (*rec.fields.get("errors", ()), ErrorReport.of(error))
        status = RunStatus.FAILED
    rec.timings["total"] = round((deps.clock.monotonic() - started) * 1000, 3)
    final = report(status)
    deps.ledger.record(final)
    return final
