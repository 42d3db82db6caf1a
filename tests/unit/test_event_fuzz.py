"""Mutated trigger events, account messages and SQS batches: the four handlers' event
parsing, and the handlers themselves, either succeed or raise one of the product's typed
errors (``AlchemiserError``), never anything else, never slowly.

Every case comes from a seeded ``random.Random``: a failure names its case, and the
same seed and index reproduce it.
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from alchemiser.adapters.aws import ledger as dynamo_ledger
from alchemiser.devstack.runner import LocalContext
from alchemiser.domain.market import NEW_YORK
from alchemiser.errors import EventError
from alchemiser.handlers import events, orchestrator, rebalance, watchdog, worker
from alchemiser.handlers.events import parse_account_message, parse_event
from alchemiser.observability import logger
from tests.unit.fuzzing import HANDLER_ENVIRONMENT, each_case, junk, mutate_text

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:No application metrics")]

CASES = 3000
"""Cases of each parsing function."""
HANDLER_CASES = 1000
"""Cases of each handler: a whole invocation, Powertools' logging and metrics included."""


# ---- generated values --------------------------------------------------------------------

OFFSETS = ["Z", "z", "+00:00", "+14:00", "-14:00", "+23:59", "-23:59", "+05:30", "", "+24:00"]
YEARS = [1, 2, 999, 1969, 1970, 1999, 2000, 2026, 2200, 2201, 9998, 9999]


def instant(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.15:  # the edges of a year, of datetime's range and of the accepted range
        year = rng.choice(YEARS)
        first = rng.random() < 0.5
        clock = f"{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}:00"
        day = "01-01" if first else "12-31"
        return f"{year:04d}-{day}T{clock}{rng.choice(OFFSETS)}"
    if roll < 0.6:
        year = rng.choice(YEARS) if rng.random() < 0.7 else rng.randrange(1, 10000)
        month, day = rng.randrange(0, 14), rng.randrange(0, 33)
        hour, minute, second = rng.randrange(0, 26), rng.randrange(0, 61), rng.randrange(0, 61)
        fraction = rng.choice(["", ".5", ".123456", ".1234567891"])
        separator = rng.choice(["T", "T", " ", "t"])
        return (
            f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
            f"{fraction}{rng.choice(OFFSETS)}"
        )
    if roll < 0.75:
        return rng.choice(
            [0, -1, 1785504600, -62135596800, 253402300799, 2**63, 1e20, -1e20, 1785504600.5]
        )
    if roll < 0.85:
        return "2026-07-31T13:30:00Z"
    return junk(rng)


def field(rng: random.Random, key: str) -> Any:
    """A value for one of the trigger's optional fields, mostly wrong."""
    if key == "execution_id":
        return rng.choice(["e-1", "x" * rng.randrange(0, 300), junk(rng)])
    if key == "schedule_arn":
        return rng.choice(["arn:aws:scheduler:::schedule/a", junk(rng)])
    if key == "attempt":
        return rng.choice([1, 2, 0, -1, 200, 201, 2**70, "1", "3", 1.0, 1.5, junk(rng)])
    return rng.choice(["open", "close", "OPEN", "both", "", junk(rng)])


def scheduled_event(rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return junk(rng)
    event: dict[str, Any] = {"scheduled_time": instant(rng)}
    for key in ("execution_id", "schedule_arn", "attempt", "window"):
        if rng.random() < 0.4:
            event[key] = field(rng, key)
    if rng.random() < 0.1:
        event[junk_key(rng)] = junk(rng)
    if rng.random() < 0.1:
        del event["scheduled_time"]
    return event


def junk_key(rng: random.Random) -> str:
    return rng.choice(["extra", "Scheduled_Time", "", "account", "\x00"])


def message_body(rng: random.Random) -> str:
    message: dict[str, Any] = {"account": "demo", "scheduled_time": "2026-07-31T13:30:00Z"}
    if rng.random() < 0.5:
        message["scheduled_time"] = instant(rng)
    if rng.random() < 0.3:
        message["account"] = rng.choice(["demo", "a" * 65, "a b", "", "../x", junk(rng)])
    for key in ("execution_id", "attempt", "window"):
        if rng.random() < 0.2:
            message[key] = field(rng, key)
    if rng.random() < 0.1:
        message[junk_key(rng)] = junk(rng)
    if rng.random() < 0.1:
        del message[rng.choice(list(message))]
    try:
        body = json.dumps(message, allow_nan=rng.random() < 0.5)
    except ValueError:
        body = "{}"
    if rng.random() < 0.3:
        body = mutate_text(rng, body)
    return body


def sqs_record(rng: random.Random, index: int) -> Any:
    if rng.random() < 0.03:
        return junk(rng)
    record: dict[str, Any] = {
        "messageId": f"m{index}",
        "receiptHandle": "handle",
        "body": message_body(rng),
        "attributes": {"ApproximateReceiveCount": rng.choice(["1", "2", "3"])},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:accounts.fifo",
        "awsRegion": "us-east-1",
    }
    for key in ("messageId", "body", "attributes"):
        roll = rng.random()
        if roll < 0.05:
            del record[key]
        elif roll < 0.1:
            record[key] = junk(rng)
    if isinstance(record.get("attributes"), dict) and rng.random() < 0.2:
        count = rng.choice(["abc", "0", "-1", "", " 2", "1.5", "٣", "9" * 5000, 3, None])
        record["attributes"]["ApproximateReceiveCount"] = count
    return record


def sqs_event(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return junk(rng)
    if roll < 0.1:
        return {"Records": junk(rng)}
    return {"Records": [sqs_record(rng, i) for i in range(rng.randrange(0, 4))]}


# ---- the handlers' parsing ----------------------------------------------------------------


def test_scheduled_events_parse_or_are_invalid() -> None:
    def check(rng: random.Random) -> None:
        event = scheduled_event(rng)
        trigger = parse_event(event)
        # What the handlers do with a parsed trigger must not fail either.
        trigger.scheduled_time.astimezone(NEW_YORK)
        trigger.scheduled_time.astimezone(UTC)
        (entry,) = orchestrator.messages(["demo"], event)
        message = parse_account_message(entry["MessageBody"])
        assert message.scheduled_time == trigger.scheduled_time.replace(microsecond=0)

    each_case(1, CASES, check)


def test_account_messages_parse_or_are_invalid() -> None:
    def check(rng: random.Random) -> None:
        message = parse_account_message(message_body(rng))
        trigger = message.trigger()
        trigger.scheduled_time.astimezone(NEW_YORK)
        trigger.scheduled_time.astimezone(UTC)

    each_case(2, CASES, check)


def test_sqs_records_are_read_or_are_invalid() -> None:
    def check(rng: random.Random) -> None:
        event = sqs_event(rng)
        events.check_batch(event)
        for raw in event["Records"]:
            try:
                message, received = events.read_record(SQSRecord(raw))
            except EventError:
                continue
            assert received >= 1
            message.trigger().model_copy(update={"attempt": received})

    each_case(3, CASES, check)


# ---- the handlers themselves, with stand-ins for AWS and the run --------------------------


@pytest.fixture
def quiet() -> Iterator[None]:
    """The Powertools logger writes somewhere harmless during the test."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(io.StringIO())
    try:
        yield
    finally:
        if previous is not None:
            handler.setStream(previous)


@pytest.fixture(params=["builtin:default", ""], ids=["demo-config", "not-configured"])
def nowhere(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, quiet: None
) -> None:
    """The embedded demo config (or none: a stack not configured yet), state in a
    temporary directory, and every AWS resource pointing nowhere: the calls that would
    reach one are stand-ins."""
    for name in HANDLER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALCHEMISER_CONFIG", request.param)
    monkeypatch.setenv("ALCHEMISER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("ALCHEMISER_LEDGER_TABLE", "nowhere-ledger")
    monkeypatch.setenv("ALCHEMISER_ACCOUNTS_QUEUE_URL", "https://127.0.0.1:9/nowhere")

    def run_account(*args: object) -> dict[str, Any]:
        return {"status": "completed"}

    class NoLedger:
        def __init__(self, table: str) -> None:
            self.table = table

        def run_on(self, account: str, day: date) -> list[Any]:
            return []

        def record(self, report: object) -> None:
            """A not-configured trigger's record: kept nowhere."""

    monkeypatch.setattr(worker, "run_account", run_account)
    monkeypatch.setattr(rebalance, "run_account", run_account)
    monkeypatch.setattr(orchestrator, "send", lambda url, entries: None)
    monkeypatch.setattr(dynamo_ledger, "DynamoLedger", NoLedger)


@pytest.mark.usefixtures("nowhere")
@pytest.mark.parametrize("name", ["orchestrator", "rebalance", "watchdog"])
def test_scheduled_handlers_answer_or_raise_typed_errors(name: str) -> None:
    handler = {
        "orchestrator": orchestrator.handler,
        "rebalance": rebalance.handler,
        "watchdog": watchdog.handler,
    }[name]
    context = LocalContext(name, 1024, 300)
    each_case(4, HANDLER_CASES, lambda rng: handler(scheduled_event(rng), context))


@pytest.mark.usefixtures("nowhere")
def test_the_worker_answers_with_failed_items_or_raises_typed_errors() -> None:
    context = LocalContext("Worker", 1024, 300)

    def check(rng: random.Random) -> None:
        event = sqs_event(rng)
        response = worker.handler(event, context)
        ids = {record["messageId"] for record in event["Records"]}
        assert {item["itemIdentifier"] for item in response["batchItemFailures"]} <= ids

    each_case(5, HANDLER_CASES, check)
