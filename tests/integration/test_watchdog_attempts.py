"""The watchdog reads attempts: a run whose only attempts are STARTED (its Lambda died)
or failed is no success; a later finished attempt of the same run is."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from alchemiser.domain.decisions import TradingState
from alchemiser.domain.report import Mode, RunReport, RunStatus, SkipReason
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


def skip(attempt_id: str, why: SkipReason | None) -> RunReport:
    return attempt(attempt_id, RunStatus.SKIPPED).model_copy(update={"skipped": why})


def close_window_account(stack: Stack) -> None:
    path = stack.write_config([AccountSpec(ACCOUNT, "alchemiser/a", "http://127.0.0.1:9")])
    path.write_text('trading_window = "close"\n' + path.read_text(), encoding="utf-8")


CLOSE_CHECK = {"scheduled_time": "2026-07-31T20:15:00Z", "window": "close"}
OPEN_CHECK = {"scheduled_time": "2026-07-31T14:00:00Z", "window": "open"}


def test_the_other_close_triggers_skip_is_not_the_days_run(stack: Stack, output: Output) -> None:
    """12:45 on a normal day is skipped; if the 15:45 run never came, the day is missing."""
    close_window_account(stack)
    stack.ledger().record(skip("20260731T164500000001Z-aaaaaa", SkipReason.OTHER_TRIGGER))
    output.read()

    result = watchdog.handler(CLOSE_CHECK, lambda_context("Watchdog"))

    assert result == {"day": DAY.isoformat(), "missing": [f"{ACCOUNT} (skipped)"]}
    assert output.metrics(output.read())["RunMissing"] == [1.0]
    (notice,) = stack.notices()
    assert "By 16:15 New York time" in notice.json()["notice"]


def test_a_market_closed_at_the_trigger_is_not_a_holiday(stack: Stack, output: Output) -> None:
    """On an early-close day the 15:45 trigger finds the market closed: only the 12:45
    run could have traded, and without it the day is missing."""
    close_window_account(stack)
    stack.ledger().record(skip("20260731T194500000001Z-aaaaaa", SkipReason.MARKET_CLOSED))
    assert watchdog.handler(CLOSE_CHECK, lambda_context("Watchdog"))["missing"] == [
        f"{ACCOUNT} (skipped)"
    ]


@pytest.mark.parametrize("why", [SkipReason.HOLIDAY, None])
def test_a_holiday_accounts_for_the_day(
    stack: Stack, output: Output, why: SkipReason | None
) -> None:
    close_window_account(stack)
    stack.ledger().record(skip("20260731T194500000001Z-aaaaaa", why))
    assert watchdog.handler(CLOSE_CHECK, lambda_context("Watchdog"))["missing"] == []


def test_an_account_is_checked_after_its_own_window(stack: Stack, output: Output) -> None:
    close_window_account(stack)
    # At 10:00 the close-window account has not traded yet, and is not asked about.
    assert watchdog.handler(OPEN_CHECK, lambda_context("Watchdog"))["missing"] == []
    # At 16:15 it is: nothing ran.
    assert watchdog.handler(CLOSE_CHECK, lambda_context("Watchdog"))["missing"] == [
        f"{ACCOUNT} (no run at all)"
    ]


def test_an_account_whose_window_the_stack_does_not_schedule_is_missing(
    stack: Stack, output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close-window account in a stack deployed with TradingWindow=open only ever gets
    the 09:30 trigger (skipped: the other window). Nothing would check it after the
    close, so the open window's check reports it, saying why."""
    monkeypatch.setenv("ALCHEMISER_TRADING_WINDOWS", "open")
    close_window_account(stack)
    stack.ledger().record(skip("20260731T133000000001Z-aaaaaa", SkipReason.OTHER_WINDOW))
    output.read()

    result = watchdog.handler(OPEN_CHECK, lambda_context("Watchdog"))

    (missing,) = result["missing"]
    assert missing.startswith(f"{ACCOUNT} (")
    assert "its trading window 'close' is not scheduled by the stack" in missing
    assert output.metrics(output.read())["RunMissing"] == [1.0]
