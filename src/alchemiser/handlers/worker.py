"""The rebalance worker: one SQS message, one account's run (batch size 1).

Partial batch failure reporting: a run that fails (or a concurrent duplicate that
idempotency refuses) marks its message failed, so SQS delivers it again after the
visibility timeout and, after the queue's maximum receives, moves it to the DLQ.

A record the worker cannot read (no body, a body that is no account message, a receive
count that is not a positive integer) is a failed item too, its reason logged. An event
that is not an SQS batch at all (no or an empty ``Records`` list, a record that is not
an object or has no ``messageId`` to report it by) is an invalid event: logged, and
raised as an ``EventError`` before anything runs.

A message that arrives while the stack has no trading config (ALCHEMISER_CONFIG empty:
queued before the config was removed, or sent by hand) is recorded as skipped
(``not_configured``) for its account, with one notice, and the item succeeds: a retry
could not configure the stack.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser.errors import EventError
from alchemiser.handlers.events import (
    HandlerSettings,
    check_batch,
    load_handler_config,
    read_record,
)
from alchemiser.handlers.runtime import RunFailed, already_running, publish_failure, run_account
from alchemiser.observability import logger, metrics, tracer


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
    config = load_handler_config(settings)

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
        if config is None:
            from alchemiser.handlers.not_configured import (  # noqa: PLC0415
                record_not_configured,
            )

            report = record_not_configured(settings, trigger, message.account)
            return report.model_dump(mode="json")
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
