"""The watchdog and dry runs: in a stack that trades for real, a dry run's row is not
the day's run."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from alchemiser.domain.decisions import TradingState
from alchemiser.domain.report import Mode, RunReport, RunStatus
from alchemiser.handlers import watchdog
from tests.integration.aws_stack import (
    ACCOUNT,
    AccountSpec,
    Output,
    Stack,
    lambda_context,
    output,
    stack,
)

pytestmark = pytest.mark.integration

__all__ = ["output", "stack"]  # fixtures

DAY = date(2026, 7, 31)


def test_a_dry_run_does_not_account_for_a_real_stacks_day(stack: Stack, output: Output) -> None:
    """The operator ran a dry run this morning (DryRun=true, First deploy step 4) and then
    redeployed with DryRun=false; the real run never came. Nothing alarms."""
    stack.write_config([AccountSpec(ACCOUNT, "alchemiser/a", "http://127.0.0.1:9")])
    stack.ledger().record(
        RunReport(
            run_id="20260731-0123456789-dry",
            attempt_id="20260731T133000000001Z-aaaaaa",
            account=ACCOUNT,
            as_of=date(2026, 7, 30),
            trading_date=DAY,
            scheduled_time=datetime(2026, 7, 31, 13, 30, tzinfo=UTC),
            mode=Mode.PAPER,
            trading_state=TradingState.ACTIVE,
            status=RunStatus.DRY_RUN,
            dry_run=True,
        )
    )
    output.read()

    result = watchdog.handler({"scheduled_time": "2026-07-31T14:00:00Z"}, lambda_context("W"))

    assert result["missing"] != []
    assert output.metrics(output.read())["RunMissing"] == [1.0]
