"""The report's run table with the longest run ids an account name allows: a run id
moved below its row is never cut, and one long run id does not widen later rows."""

from __future__ import annotations

from alchemiser.cli import ledger as cli_ledger
from alchemiser.domain.report import ErrorReport, RunStatus

from .test_report_history import FIRST, SECOND, report, valued

# Account names may be 64 characters (config.py): the longest run id they make.
LONG_ACCOUNT = "a" * 64


def test_a_run_id_moved_below_is_whole_even_before_a_reason() -> None:
    run_id = f"{LONG_ACCOUNT}-20260731-aaaaaaaaaa-dry"
    unfinished = report(
        run_id,
        FIRST,
        RunStatus.STARTED,
        account_before=valued("1000"),
        account_after=valued("1001"),
    )
    lines = cli_ledger.run_table([unfinished], {(run_id, FIRST)})
    below = [line for line in lines if "-- run " in line]
    assert len(below) == 1
    assert f"-- run {run_id}" in below[0], below[0]


def test_a_later_row_s_reason_still_stays_within_the_width() -> None:
    long_run = report(f"{LONG_ACCOUNT}-20260731-aaaaaaaaaa", FIRST, RunStatus.COMPLETED)
    failed = report(
        "demo-20260730-bbbbbbbbbb",
        SECOND,
        RunStatus.FAILED,
        errors=(ErrorReport(type="DataError", code="DATA_STALE", message="stale bars " * 20),),
    )
    alone = cli_ledger.run_table([failed], set())
    assert all(len(line) <= cli_ledger.WIDTH for line in alone), alone
    lines = cli_ledger.run_table([long_run, failed], set())
    reason_line = next(line for line in lines if "DATA_STALE" in line)
    assert len(reason_line) <= cli_ledger.WIDTH, (len(reason_line), reason_line)
