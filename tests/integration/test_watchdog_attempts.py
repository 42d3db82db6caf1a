"""The watchdog reads attempts: a run whose only attempts are STARTED (its Lambda died)
or failed is no success; a later finished attempt of the same run is."""

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
WATCHDOG_EVENT = {"scheduled_time": "2026-07-31T14:00:00Z"}
RUN_ID = "20260731-0123456789"


def attempt(attempt_id: str, status: RunStatus) -> RunReport:
    return RunReport(
        run_id=RUN_ID,
        attempt_id=attempt_id,
        account=ACCOUNT,
        as_of=date(2026, 7, 30),
        trading_date=DAY,
        scheduled_time=datetime(2026, 7, 31, 13, 30, tzinfo=UTC),
        mode=Mode.PAPER,
        trading_state=TradingState.ACTIVE,
        status=status,
    )


def test_a_started_attempt_is_not_a_success_until_an_attempt_finishes(
    stack: Stack, output: Output
) -> None:
    stack.write_config([AccountSpec(ACCOUNT, "alchemiser/a", "http://127.0.0.1:9")])
    ledger = stack.ledger()
    ledger.record(attempt("20260731T133000000001Z-aaaaaa", RunStatus.STARTED))
    output.read()

    result = watchdog.handler(WATCHDOG_EVENT, lambda_context("Watchdog"))

    assert result == {"day": DAY.isoformat(), "missing": [f"{ACCOUNT} (started)"]}
    assert output.metrics(output.read())["RunMissing"] == [1.0]
    (notice,) = stack.notices()
    assert ACCOUNT in notice.json()["notice"]

    ledger.record(attempt("20260731T134500000002Z-bbbbbb", RunStatus.COMPLETED))
    assert watchdog.handler(WATCHDOG_EVENT, lambda_context("Watchdog")) == {
        "day": DAY.isoformat(),
        "missing": [],
    }
    assert output.metrics(output.read())["RunMissing"] == [0.0]
    assert stack.notices() == []
