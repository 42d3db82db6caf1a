"""The rebalance worker: one SQS message, one account's run (batch size 1).

Partial batch failure reporting: a run that fails (or a concurrent duplicate that
idempotency refuses) marks its message failed, so SQS delivers it again after the
visibility timeout and, after the queue's maximum receives, moves it to the DLQ.

A record the worker cannot read (no body, a body that is no account message, a receive
count that is not a positive integer) is a failed item too, its reason logged. An event
that is not an SQS batch at all (no or an empty ``Records`` list, a record that is not
an object or has no ``messageId`` to report it by) is an invalid event: logged, and
raised as an ``EventError`` before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser.config import load_config
from alchemiser.errors import EventError
from alchemiser.handlers.events import AccountMessage, HandlerSettings, parse_account_message
from alchemiser.handlers.runtime import RunFailed, already_running, publish_failure, run_account
from alchemiser.observability import logger, metrics, tracer


def check_batch(event: Any) -> None:
    """EventError unless ``event`` is an SQS batch: a non-empty ``Records`` list of
    objects, each with a ``messageId`` (what a failed item is reported by)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise EventError(f"not an SQS batch: no Records list in the {type(event).__name__}")
    if not records:
        raise EventError("not an SQS batch: no records (SQS sends at least one)")
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise EventError(f"not an SQS batch: record {index} is a {type(record).__name__}")
        message_id = record.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise EventError(f"not an SQS batch: record {index} has no messageId")


def read_record(record: SQSRecord) -> tuple[AccountMessage, int]:
    """The record's account message and which delivery this is (its receive count; 1
    when SQS did not say). EventError if either cannot be read."""
    raw = record.raw_event
    body = raw.get("body")
    if not isinstance(body, str):
        raise EventError("the SQS record has no body")
    message = parse_account_message(body)
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, Mapping):
        raise EventError("the SQS record's attributes are not an object")
    count = attributes.get("ApproximateReceiveCount", "1")
    if not isinstance(count, str) or not count.isdecimal() or len(count) > 9 or int(count) < 1:
        shown = repr(count) if len(repr(count)) <= 40 else f"{repr(count)[:40]}..."
        raise EventError(f"ApproximateReceiveCount {shown} is not a positive integer")
    return message, int(count)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        check_batch(event)
    except EventError as error:
        logger.exception("invalid worker event", extra={"code": error.code})
        raise
    settings = HandlerSettings.from_env(os.environ)
    config = load_config(settings.config_path)

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        try:
            message, received = read_record(record)
        except EventError as error:
            logger.error(
                "unreadable account message",
                extra={"message_id": record.message_id, "code": error.code, "reason": str(error)},
            )
            raise  # a failed item: SQS delivers it again, then moves it to the DLQ
        trigger = message.trigger()
        if received > trigger.attempt:  # SQS redelivered it: say which delivery this is
            trigger = trigger.model_copy(update={"attempt": received})
        try:
            return run_account(config, message.account, trigger, context, settings)
        except RunFailed:
            raise
        except Exception as error:
            if already_running(error):
                raise  # the item fails: SQS delivers it again after the visibility timeout
            # Logged, counted and published here; re-raised so the message is retried.
            logger.exception("run failed before a report could be made")
            metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=1)
            publish_failure(settings, message.account, error)
            raise

    # A failed run is reported as a failed item (SQS retries it, then the DLQ), not as
    # a Lambda error: RunFailedAlarm counts failed runs, HandlerErrorsAlarm crashes.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    result = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(result)
