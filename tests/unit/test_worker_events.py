"""The worker's SQS batch: a record it cannot read is a failed item with a logged
reason; an event that is not an SQS batch at all is an invalid event (EVENT_INVALID)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alchemiser.adapters.ledger import FileLedger
from alchemiser.devstack.runner import LocalContext
from alchemiser.domain.report import RunStatus, SkipReason
from alchemiser.errors import EventError
from alchemiser.handlers import worker
from alchemiser.handlers.events import BUILTIN_DEFAULT, ScheduledEvent
from alchemiser.observability import logger
from tests.unit.fuzzing import HANDLER_ENVIRONMENT

BODY = json.dumps({"account": "main", "scheduled_time": "2026-07-31T13:30:00Z"})


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the Powertools logger writes during the test."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        if previous is not None:
            handler.setStream(previous)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, ScheduledEvent]]:
    """The embedded default config, and a stand-in for the run that records its calls."""
    for name in HANDLER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALCHEMISER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("ALCHEMISER_CONFIG", BUILTIN_DEFAULT)
    calls: list[tuple[str, ScheduledEvent]] = []

    def run_account(
        config: object, account: str, trigger: ScheduledEvent, *rest: object
    ) -> dict[str, Any]:
        calls.append((account, trigger))
        return {"status": "completed"}

    monkeypatch.setattr(worker, "run_account", run_account)
    return calls


def context() -> LocalContext:
    return LocalContext("Worker", 1024, 300)


def record(message_id: str = "m1", **fields: Any) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "handle",
        "body": BODY,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        **fields,
    }


@pytest.mark.parametrize(
    "event",
    [
        {},
        [],
        "Records",
        {"Records": "x"},
        {"Records": []},
        {"Records": {"0": {}}},
        {"Records": [2]},
        {"Records": [{}]},
        {"Records": [{"messageId": "", "body": BODY}]},
        {"Records": [{"messageId": 7, "body": BODY}]},
        {"Records": [{"messageId": "m1", "body": BODY}, None]},
    ],
)
def test_an_event_that_is_not_an_sqs_batch_is_invalid(
    event: Any, runs: list[Any], logs: io.StringIO
) -> None:
    with pytest.raises(EventError, match="not an SQS batch"):
        worker.handler(event, context())
    assert runs == []
    assert "EVENT_INVALID" in logs.getvalue()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"body": None}, "no body"),
        ({"body": 5}, "no body"),
        ({"body": "{"}, "malformed account message"),
        ({"attributes": {"ApproximateReceiveCount": "abc"}}, "ApproximateReceiveCount"),
        ({"attributes": {"ApproximateReceiveCount": "0"}}, "ApproximateReceiveCount"),
        ({"attributes": {"ApproximateReceiveCount": "9" * 5000}}, "ApproximateReceiveCount"),
        ({"attributes": {"ApproximateReceiveCount": 3}}, "ApproximateReceiveCount"),
        ({"attributes": "x"}, "attributes"),
    ],
)
def test_a_record_that_cannot_be_read_is_a_failed_item(
    fields: dict[str, Any], reason: str, runs: list[Any], logs: io.StringIO
) -> None:
    event = {"Records": [record("bad", **fields), record("good")]}

    response = worker.handler(event, context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert [account for account, _ in runs] == ["main"]  # the readable one still ran
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    unreadable = [line for line in lines if line.get("message") == "unreadable account message"]
    assert len(unreadable) == 1
    assert unreadable[0]["message_id"] == "bad"
    assert unreadable[0]["code"] == "EVENT_INVALID"
    assert reason in unreadable[0]["reason"]


def test_a_record_without_a_body_key_is_a_failed_item(runs: list[Any], logs: io.StringIO) -> None:
    bare = record("bare")
    del bare["body"]
    assert worker.handler({"Records": [bare]}, context()) == {
        "batchItemFailures": [{"itemIdentifier": "bare"}]
    }
    assert runs == []
    assert "no body" in logs.getvalue()


def test_a_record_without_attributes_is_a_first_delivery(runs: list[Any]) -> None:
    bare = record("m1")
    del bare["attributes"]
    assert worker.handler({"Records": [bare]}, context()) == {"batchItemFailures": []}
    assert [(account, trigger.attempt) for account, trigger in runs] == [("main", 1)]


def test_a_redelivered_record_says_which_delivery_it_is(runs: list[Any]) -> None:
    event = {"Records": [record(attributes={"ApproximateReceiveCount": "3"})]}
    assert worker.handler(event, context()) == {"batchItemFailures": []}
    assert [trigger.attempt for _, trigger in runs] == [3]


def test_a_message_while_not_configured_is_recorded_as_skipped(
    runs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ALCHEMISER_CONFIG empty (the template's default): nothing runs, the item succeeds
    (no retry, no dead-letter queue), the skip is in the ledger and counted as skipped."""
    monkeypatch.setenv("ALCHEMISER_CONFIG", "")
    capsys.readouterr()

    assert worker.handler({"Records": [record()]}, context()) == {"batchItemFailures": []}

    assert runs == []
    (row,) = FileLedger(tmp_path / "ledger.jsonl").reports()
    assert (row.account, row.status, row.skipped) == (
        "main",
        RunStatus.SKIPPED,
        SkipReason.NOT_CONFIGURED,
    )
    assert row.orders == ()
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    names = {
        m["Name"] for r in metrics for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"RunSkipped", "RunNotConfigured"} <= names
    assert not names & {"RunFailed", "RunDegraded", "RunSucceeded"}
