"""The RunReport: the one record of what a run saw, decided and did.

It is the service's return value, the CLI's output (``--json``), the Lambda response,
the ledger row and, in a backtest, one step. Its JSON field names are a contract.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from alchemiser.domain.account import AccountValuation, UnmanagedPosition
from alchemiser.domain.decisions import Adjustment, Hold, RiskDecision, TradingState, Verdict
from alchemiser.domain.orders import Fill, OrderIntent, OrderRecord
from alchemiser.domain.values import Frozen, Symbol
from alchemiser.errors import AlchemiserError


class RunStatus(StrEnum):
    COMPLETED = "completed"
    """Every approved order was placed and filled in full."""
    NOOP = "noop"
    """Nothing to trade: holdings are within the drift band of the targets."""
    BLOCKED = "blocked"
    """Orders were planned but risk approved none (see ``decisions``)."""
    INCOMPLETE = "incomplete"
    """Some placed order did not fill in full by the deadline and was cancelled."""
    SKIPPED = "skipped"
    """A scheduled run on a day the market is closed: nothing was read or placed."""
    DRY_RUN = "dry_run"
    """A dry run that planned orders and had risk approve some: nothing was submitted
    or cancelled; ``intents`` and ``decisions`` say what a real run would order."""
    FAILED = "failed"
    """Something went wrong; ``errors`` says what. Failures before execution place no order."""
    STARTED = "started"
    """Only in the ledger: an attempt that began and has not (or never) finished. The
    service records it first and replaces it with the attempt's final report."""

    @property
    def succeeded(self) -> bool:
        """False for the outcomes that need a person: the CLI exits 1, Lambda errors."""
        return self not in (RunStatus.FAILED, RunStatus.INCOMPLETE, RunStatus.STARTED)

    @property
    def finished(self) -> bool:
        """A run in this state is done: a later attempt of it is answered from the ledger
        instead of trading again. A dry run has a run id of its own, so a real run of
        the same trigger is never answered from a dry run."""
        return self in (RunStatus.COMPLETED, RunStatus.NOOP, RunStatus.BLOCKED, RunStatus.DRY_RUN)


class SkipReason(StrEnum):
    """Why a run was skipped: a watchdog tells a market holiday (fine) from a day whose
    run went missing (an alarm)."""

    HOLIDAY = "holiday"
    """The trading date is not a session."""
    MARKET_CLOSED = "market_closed"
    """A session, but the market was closed at the trigger (after an early close, say)."""
    OTHER_WINDOW = "other_window"
    """The trigger was scheduled for the other trading window."""
    OTHER_TRIGGER = "other_trigger"
    """A close-window trigger for another kind of day (12:45 on a normal day)."""
    OUTSIDE_WINDOW = "outside_window"
    """A close-window run while the close is more than 15 minutes away (by hand at 10:00,
    or a trigger delivered early)."""
    NOT_CONFIGURED = "not_configured"
    """The stack has no trading config yet (ALCHEMISER_CONFIG empty): nothing to run."""


class Mode(StrEnum):
    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"
    BACKTEST = "backtest"


class StrategyReport(Frozen):
    name: str
    allocation: float
    weights: dict[Symbol, float]
    """What the strategy holds after this session's decision (its drifted weights on a
    session its rebalance rule does not trade)."""
    rebalance: str | None = None
    """What its rebalance rule did this session; None for a strategy that rebalances
    every session to its targets."""


class TargetReport(Frozen):
    weight: float
    attribution: dict[str, float]
    """strategy name -> its contribution to ``weight``."""


class ErrorReport(Frozen):
    type: str
    code: str
    message: str

    @classmethod
    def of(cls, error: AlchemiserError) -> ErrorReport:
        return cls(type=type(error).__name__, code=error.code, message=error.message)


class RunReport(Frozen):
    run_id: str
    attempt_id: str = ""
    """Unique per attempt of the run (its start instant, UTC, then random hex): the
    ledger keeps one record per attempt, never overwriting another attempt's."""
    account: str = "default"
    as_of: date | None
    trading_date: date
    scheduled_time: datetime | None
    mode: Mode
    trading_state: TradingState
    status: RunStatus
    dry_run: bool = False
    """A dry run: it read and planned as a run does, and submitted and cancelled
    nothing (its run id ends in ``-dry``; ``account_after`` is ``account_before``)."""
    skipped: SkipReason | None = None
    """Why, when ``status`` is ``skipped``."""
    cash_buffer: Decimal = Decimal(0)
    """Fraction of equity held back as cash; target weights apply to the rest."""
    account_before: AccountValuation | None = None
    account_after: AccountValuation | None = None
    strategies: tuple[StrategyReport, ...] = ()
    targets: dict[Symbol, TargetReport] = Field(default_factory=dict)
    intents: tuple[OrderIntent, ...] = ()
    holds: tuple[Hold, ...] = ()
    decisions: tuple[RiskDecision, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    orders: tuple[OrderRecord, ...] = ()
    """This attempt's orders."""
    earlier_orders: tuple[OrderRecord, ...] = ()
    """Orders earlier attempts of the same run placed, as the broker showed them when
    this attempt began: counted against the run's plan, never placed again."""
    fills: tuple[Fill, ...] = ()
    errors: tuple[ErrorReport, ...] = ()
    notes: tuple[str, ...] = ()
    degraded: tuple[str, ...] = ()
    """Why the run did less than its targets asked (buys shrunk by risk or scaled down at
    execution, orders denied, everything blocked): empty when it did all of it."""
    unmanaged: tuple[UnmanagedPosition, ...] = ()
    """Holdings the product cannot trade, left alone (see ``unmanaged_positions``)."""
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def turnover(self) -> Decimal:
        return sum((f.notional for f in self.fills), Decimal(0))


def failure_reason(report: RunReport) -> str:
    """One line saying why a run did not succeed."""
    if report.errors:
        return "; ".join(f"{e.code}: {e.message}" for e in report.errors)
    unfilled = [o for o in report.orders if o.unfilled]
    if unfilled:
        names = ", ".join(f"{o.side.value} {o.symbol} ({o.status.value})" for o in unfilled)
        return f"{len(unfilled)} order(s) not filled in full: {names}"
    return report.status.value


def degraded_reasons(
    intents: int, decisions: Sequence[RiskDecision], adjustments: Sequence[Adjustment]
) -> tuple[str, ...]:
    """Why a run did less than its targets asked, one line per cause (empty: it did
    all of it). A blocked or shrunk run reports success but is not what was planned."""
    reasons: list[str] = []
    limited = [d for d in decisions if d.verdict is not Verdict.APPROVED]
    if intents and len([d for d in decisions if d.verdict is Verdict.DENIED]) == intents:
        reasons.append(f"risk approved none of the {intents} planned order(s)")
    if limited:
        by_code = Counter(f"{d.verdict.value} {code.value}" for d in limited for code in d.codes)
        counted = ", ".join(f"{n} {what}" for what, n in sorted(by_code.items()))
        reasons.append(f"risk limited {len(limited)} order(s): {counted}")
    if adjustments:
        names = ", ".join(f"{a.side.value} {a.symbol}" for a in adjustments[:5])
        more = "" if len(adjustments) <= 5 else f" and {len(adjustments) - 5} more"
        reasons.append(
            f"{len(adjustments)} order(s) placed smaller than approved at execution: {names}{more}"
        )
    return tuple(reasons)
