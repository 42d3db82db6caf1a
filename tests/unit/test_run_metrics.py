"""The metrics one run emits (EMF), read back from Powertools' own serialisation:
RunDegraded says a run did less than its targets asked, so an alarm can count sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from alchemiser.domain.decisions import TradingState
from alchemiser.domain.report import Mode, RunReport, RunStatus
from alchemiser.handlers.runtime import Outcome, emit_metrics
from alchemiser.observability import metrics


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def _report(status: RunStatus, degraded: tuple[str, ...] = ()) -> RunReport:
    return RunReport(
        run_id="20260731T133000Z-default",
        as_of=date(2026, 7, 30),
        trading_date=date(2026, 7, 31),
        scheduled_time=None,
        mode=Mode.PAPER,
        trading_state=TradingState.ACTIVE,
        status=status,
        degraded=degraded,
    )


def _emitted(report: RunReport) -> dict[str, float]:
    emit_metrics(Outcome(report))
    document = metrics.serialize_metric_set()
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return {name: document[name][0] for name in names}


@pytest.mark.parametrize(
    ("status", "degraded", "expected"),
    [
        (RunStatus.COMPLETED, (), 0),
        (RunStatus.NOOP, (), 0),
        (RunStatus.COMPLETED, ("buy SPY shrunk by risk: max_position_weight",), 1),
        (RunStatus.INCOMPLETE, ("buy TLT scaled down at execution",), 1),
        (RunStatus.BLOCKED, (), 1),
        (RunStatus.FAILED, (), 0),
    ],
)
def test_run_degraded_is_one_when_the_run_did_less_than_its_targets(
    status: RunStatus, degraded: tuple[str, ...], expected: int
) -> None:
    emitted = _emitted(_report(status, degraded))
    assert emitted["RunDegraded"] == expected
    assert emitted["RunFailed"] == (0 if status.succeeded else 1)


def test_a_skipped_session_says_nothing_about_degradation() -> None:
    # A market holiday is not a session: a 0 would break a run of degraded sessions.
    emitted = _emitted(_report(RunStatus.SKIPPED))
    assert "RunDegraded" not in emitted
    assert emitted["RunSkipped"] == 1


def test_a_dry_run_is_counted_apart_and_is_no_failure() -> None:
    dry = _report(RunStatus.DRY_RUN).model_copy(update={"dry_run": True})
    emitted = _emitted(dry)
    assert emitted["DryRun"] == 1
    assert emitted["RunFailed"] == 0
    assert emitted["RunSucceeded"] == 1
    assert emitted["OrdersSubmitted"] == 0
    metrics.clear_metrics()
    assert _emitted(_report(RunStatus.COMPLETED))["DryRun"] == 0
