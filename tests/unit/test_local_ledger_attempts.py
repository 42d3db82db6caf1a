"""The local ledgers (a JSON-lines file, and memory) keep every attempt of a run, in the
order recorded, and answer ``finished`` with the latest finished attempt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from alchemiser.adapters.ledger import FileLedger, InMemoryLedger
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.report import ErrorReport, Mode, RunReport, RunStatus

RUN = "20260731-0123456789"
FIRST = "20260731T133000000001Z-aaaaaa"
SECOND = "20260731T134500000002Z-bbbbbb"
THIRD = "20260731T140000000003Z-cccccc"

LocalLedger = FileLedger | InMemoryLedger


def attempt(attempt_id: str, status: RunStatus, run_id: str = RUN) -> RunReport:
    errors = (
        (ErrorReport(type="DataError", code="DATA_STALE", message="SPY has no close"),)
        if status is RunStatus.FAILED
        else ()
    )
    return RunReport(
        run_id=run_id,
        attempt_id=attempt_id,
        account="demo",
        as_of=date(2026, 7, 30),
        trading_date=date(2026, 7, 31),
        scheduled_time=datetime(2026, 7, 31, 13, 30, tzinfo=UTC),
        mode=Mode.SIM,
        trading_state=TradingState.ACTIVE,
        status=status,
        errors=errors,
    )


def recorded(ledger: LocalLedger) -> list[RunReport]:
    return ledger.reports() if isinstance(ledger, FileLedger) else ledger.reports


@pytest.fixture(params=["file", "memory"])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], LocalLedger]:
    def make() -> LocalLedger:
        if request.param == "file":
            return FileLedger(tmp_path / "state" / "ledger.jsonl")
        return InMemoryLedger()

    return make


def test_a_started_attempt_then_its_final_report(make_ledger: Callable[[], LocalLedger]) -> None:
    ledger = make_ledger()
    begun = attempt(FIRST, RunStatus.STARTED)
    ledger.record(begun)
    assert ledger.finished(RUN) is None
    done = attempt(FIRST, RunStatus.COMPLETED)
    ledger.record(done)
    assert recorded(ledger) == [begun, done]  # appended, nothing rewritten
    assert ledger.finished(RUN) == done


def test_two_attempts_are_both_kept(make_ledger: Callable[[], LocalLedger]) -> None:
    ledger = make_ledger()
    killed = attempt(FIRST, RunStatus.STARTED)
    failed = attempt(SECOND, RunStatus.FAILED)
    other_run = attempt(FIRST, RunStatus.COMPLETED, run_id="20260731-9999999999")
    for report in (killed, attempt(SECOND, RunStatus.STARTED), failed, other_run):
        ledger.record(report)
    assert [r.attempt_id for r in recorded(ledger) if r.run_id == RUN] == [FIRST, SECOND, SECOND]
    assert ledger.finished(RUN) is None  # a STARTED and a FAILED attempt: not finished
    assert ledger.finished(other_run.run_id) == other_run


def test_finished_is_the_latest_finished_attempt(make_ledger: Callable[[], LocalLedger]) -> None:
    ledger = make_ledger()
    completed = attempt(FIRST, RunStatus.COMPLETED)
    noop = attempt(SECOND, RunStatus.NOOP)
    for report in (completed, noop, attempt(THIRD, RunStatus.FAILED)):
        ledger.record(report)
    assert ledger.finished(RUN) == noop
    blocked = attempt(THIRD, RunStatus.BLOCKED)
    ledger.record(blocked)
    assert ledger.finished(RUN) == blocked


def test_finished_goes_by_attempt_not_by_when_the_report_arrived(
    make_ledger: Callable[[], LocalLedger],
) -> None:
    ledger = make_ledger()
    later = attempt(SECOND, RunStatus.NOOP)
    earlier = attempt(FIRST, RunStatus.COMPLETED)
    ledger.record(later)
    ledger.record(earlier)  # a slow attempt's final report, recorded last
    assert ledger.finished(RUN) == later


def test_the_file_ledger_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    FileLedger(path).record(attempt(FIRST, RunStatus.STARTED))
    FileLedger(path).record(attempt(FIRST, RunStatus.COMPLETED))
    reopened = FileLedger(path)
    assert [r.status for r in reopened.reports()] == [RunStatus.STARTED, RunStatus.COMPLETED]
    assert reopened.finished(RUN) == attempt(FIRST, RunStatus.COMPLETED)
