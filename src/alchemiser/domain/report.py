"""The RunReport: the one record of what a run saw, decided and did.

It is the service's return value, the CLI's output (``--json``), the Lambda response,
the ledger row and, in a backtest, one step. Its JSON field names are a contract.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from alchemiser.domain.account import AccountValuation
from alchemiser.domain.decisions import Adjustment, Hold, RiskDecision, TradingState
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
    FAILED = "failed"
    """Something went wrong; ``errors`` says what. Failures before execution place no order."""

    @property
    def succeeded(self) -> bool:
        """False for the outcomes that need a person: the CLI exits 1, Lambda errors."""
        return self not in (RunStatus.FAILED, RunStatus.INCOMPLETE)


class Mode(StrEnum):
    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"
    BACKTEST = "backtest"


class StrategyReport(Frozen):
    name: str
    allocation: float
    weights: dict[Symbol, float]


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
    account: str = "default"
    as_of: date | None
    trading_date: date
    scheduled_time: datetime | None
    mode: Mode
    trading_state: TradingState
    status: RunStatus
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
    fills: tuple[Fill, ...] = ()
    errors: tuple[ErrorReport, ...] = ()
    notes: tuple[str, ...] = ()
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
