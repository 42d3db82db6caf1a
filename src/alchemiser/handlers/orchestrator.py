"""The scheduler's target in the production stack: one SQS message per account.

The queue is FIFO with the account as message group: one account never runs twice at
once, and different accounts run side by side (the worker's reserved concurrency).
The deduplication id is the account and the scheduled time, so a retried schedule
within SQS's five-minute window queues nothing new (and past it, the worker's
idempotency answers the repeat).

A stack without a trading config (ALCHEMISER_CONFIG empty) queues nothing: the trigger
is recorded as skipped (``not_configured``) and one notice is published
(handlers/not_configured.py).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser.errors import AlchemiserError, ConfigError
from alchemiser.handlers.events import (
    AccountMessage,
    HandlerSettings,
    load_handler_config,
    parse_event,
)
from alchemiser.observability import logger, metrics, tracer


class QueueUnavailable(AlchemiserError):
    code = "QUEUE_UNAVAILABLE"


def messages(accounts: list[str], event: dict[str, Any]) -> list[dict[str, str]]:
    """The SQS entries for one trigger: body, group (account), deduplication id."""
    trigger = parse_event(event)
    instant = trigger.scheduled_time.astimezone(UTC).replace(microsecond=0)
    entries = []
    for index, account in enumerate(accounts):
        body = AccountMessage(
            account=account,
            scheduled_time=instant,
            execution_id=trigger.execution_id,
            attempt=trigger.attempt,
            window=trigger.window,
        ).model_dump_json()
        dedup = hashlib.sha256(f"{account}|{instant.isoformat()}".encode()).hexdigest()
        entries.append(
            {
                "Id": str(index),
                "MessageBody": body,
                "MessageGroupId": account,
                "MessageDeduplicationId": dedup,
            }
        )
    return entries


def send(queue_url: str, entries: list[dict[str, str]], client: Any | None = None) -> None:
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    sqs = client or boto3.client("sqs")
    for start in range(0, len(entries), 10):  # SQS takes ten entries a batch
        batch = entries[start : start + 10]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailable(f"cannot queue the accounts: {type(error).__name__}") from None
        failed = response.get("Failed") or []
        if failed:
            ids = ", ".join(f"{f.get('Id')}: {f.get('Code')}" for f in failed)
            raise QueueUnavailable(f"SQS refused {len(failed)} account message(s): {ids}")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        settings = HandlerSettings.from_env(os.environ)
        if settings.accounts_queue_url is None:
            raise ConfigError("ALCHEMISER_ACCOUNTS_QUEUE_URL is not set", field="environment")
        config = load_handler_config(settings)
        if config is None:
            from alchemiser.handlers.not_configured import (  # noqa: PLC0415
                record_not_configured,
            )

            report = record_not_configured(settings, parse_event(event))
            return {
                "queued": [],
                "status": report.status.value,
                "skipped": report.skipped,
                "run_id": report.run_id,
                "notes": list(report.notes),
            }
        accounts = config.account_names()
        send(settings.accounts_queue_url, messages(accounts, event))
    except Exception:
        # The one broad catch of this handler: log with context, count, re-raise (the
        # scheduler retries, then the DeadLetterQueue holds the trigger).
        logger.exception("accounts not queued")
        metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="AccountsQueued", unit=MetricUnit.Count, value=len(accounts))
    logger.info("accounts queued", extra={"accounts": accounts})
    return {"queued": accounts}
