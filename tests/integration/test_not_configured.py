"""A stack deployed without a trading config (ALCHEMISER_CONFIG empty, the template's
default): each trigger is recorded as skipped (``not_configured``) with one notice, and
nothing fails: no RunFailed, no error, no retry, no RunMissing."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from alchemiser.domain.report import RunStatus, SkipReason
from alchemiser.handlers import orchestrator, watchdog, worker
from tests.integration.aws_stack import (
    ACCOUNT,
    Output,
    Stack,
    event,
    lambda_context,
    output,
    sqs_record,
    stack,
)

pytestmark = pytest.mark.integration

__all__ = ["output", "stack"]  # fixtures

FAILURE_METRICS = {"RunFailed", "RunDegraded", "RunMissing", "RunSucceeded"}
"""None of these is emitted by a not-configured run (RunSucceeded: nothing ran)."""


@pytest.fixture(autouse=True)
def not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCHEMISER_CONFIG", "")


def assert_one_not_configured_notice(stack: Stack) -> None:
    (notice,) = stack.notices()
    assert "not configured" in notice.subject
    text = notice.json()["notice"]
    assert "ALCHEMISER_CONFIG" in text
    assert "ConfigPath" in text
    assert "docs/OPERATIONS.md" in text
    assert "builtin:default" in text


def assert_skipped_not_configured(stack: Stack, account: str) -> None:
    (run,) = stack.ledger().last_runs(account, 5)
    assert run.status is RunStatus.SKIPPED
    assert run.skipped is SkipReason.NOT_CONFIGURED
    assert run.trading_date.isoformat() == "2026-07-31"
    assert run.orders == ()
    # Its own run id: a configured run of the same trigger is never mistaken for it.
    assert run.run_id.endswith("-not_configured")


def test_the_orchestrator_records_the_trigger_and_queues_nothing(
    stack: Stack, output: Output
) -> None:
    stack.create_accounts_queue()
    output.read()

    response = orchestrator.handler(event(), lambda_context("Orchestrator"))

    assert response["queued"] == []
    assert (response["status"], response["skipped"]) == ("skipped", "not_configured")
    assert stack.receive_accounts() == []
    assert_skipped_not_configured(stack, "default")
    assert_one_not_configured_notice(stack)
    metrics = output.metrics(output.read())
    assert metrics["RunSkipped"] == [1.0]
    assert metrics["RunNotConfigured"] == [1.0]
    assert not FAILURE_METRICS & metrics.keys()
    assert "AccountsQueued" not in metrics


def test_one_notice_per_trigger(stack: Stack, output: Output) -> None:
    stack.create_accounts_queue()
    days = ("2026-07-29T13:30:00Z", "2026-07-30T13:30:00Z", "2026-07-31T13:30:00Z")
    for scheduled in days:
        orchestrator.handler(event(scheduled), lambda_context("Orchestrator"))
        assert len(stack.notices()) == 1
    runs = stack.ledger().last_runs("default", 10)
    assert sorted(r.trading_date.isoformat() for r in runs) == [d[:10] for d in days]
    assert {r.skipped for r in runs} == {SkipReason.NOT_CONFIGURED}
    assert stack.receive_accounts() == []
    assert "RunFailed" not in output.metrics(output.read())


def test_a_worker_message_while_not_configured_is_a_skip_not_a_failed_item(
    stack: Stack, output: Output
) -> None:
    url = stack.create_accounts_queue()
    assert stack.accounts_queue_arn is not None
    body = json.dumps({"account": ACCOUNT, "scheduled_time": "2026-07-31T13:30:00Z"})
    boto3.client("sqs").send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId=ACCOUNT, MessageDeduplicationId="1"
    )
    (message,) = stack.receive_accounts()
    output.read()

    response = worker.handler(
        {"Records": [sqs_record(message, stack.accounts_queue_arn)]}, lambda_context("Worker")
    )

    assert response == {"batchItemFailures": []}
    assert_skipped_not_configured(stack, ACCOUNT)
    assert_one_not_configured_notice(stack)
    metrics = output.metrics(output.read())
    assert metrics["RunSkipped"] == [1.0]
    assert not FAILURE_METRICS & metrics.keys()


def test_the_direct_handler_records_the_trigger(stack: Stack, output: Output) -> None:
    output.read()
    response: dict[str, Any] = stack.run()
    assert (response["status"], response["skipped"]) == ("skipped", "not_configured")
    assert_skipped_not_configured(stack, "default")
    assert_one_not_configured_notice(stack)
    assert not FAILURE_METRICS & output.metrics(output.read()).keys()


def test_the_watchdog_checks_nothing_and_raises_no_run_missing(
    stack: Stack, output: Output
) -> None:
    output.read()

    result = watchdog.handler({"scheduled_time": "2026-07-31T14:00:00Z"}, lambda_context("W"))

    assert result == {"day": "2026-07-31", "missing": [], "not_configured": True}
    text = output.read()
    assert output.metrics(text)["RunMissing"] == [0.0]  # quiet, as on a day every run ran
    (line,) = [r for r in output.logs(text) if "not configured" in r["message"]]
    assert "ALCHEMISER_CONFIG" in line["message"]
    assert stack.notices() == []
