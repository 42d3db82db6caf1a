"""The direct handler: a scheduled event in, every account of the config run in turn.

The production stack (template.yaml) fans out instead: the orchestrator queues one
message per account and the worker runs each (handlers/orchestrator.py, worker.py).
Both paths run ``runtime.run_account``: the same idempotency, kill switch, ledger,
metrics and report. A stack without a trading config (ALCHEMISER_CONFIG empty) runs
nothing: the trigger is recorded as skipped (``not_configured``) for the account
``default``, with one notice (handlers/not_configured.py).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser.handlers.events import HandlerSettings, load_handler_config, parse_event
from alchemiser.handlers.runtime import (
    TIDY_UP_SECONDS,
    RunFailed,
    already_running,
    publish_failure,
    run_account,
)
from alchemiser.observability import logger, metrics, tracer

__all__ = ["TIDY_UP_SECONDS", "RunFailed", "handler"]


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = HandlerSettings.from_env(os.environ)
    try:
        trigger = parse_event(event)
        config = load_handler_config(settings)
    except Exception as error:
        # The one broad catch of this handler: log with context, count, re-raise.
        logger.exception("run failed before a report could be made")
        metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=1)
        publish_failure(settings, "(config)", error)
        raise
    if config is None:
        from alchemiser.handlers.not_configured import record_not_configured  # noqa: PLC0415

        return record_not_configured(settings, trigger).model_dump(mode="json")
    results: dict[str, Any] = {}
    failures: list[tuple[str, BaseException]] = []
    running: BaseException | None = None
    for account in config.account_names():
        # Accounts are independent: one account's failure never stops the next one.
        try:
            results[account] = run_account(config, account, trigger, context, settings)
        except RunFailed as error:
            failures.append((account, error))
        except Exception as error:  # noqa: BLE001 - logged, counted, published, raised below
            if already_running(error):
                running = error
                continue
            logger.exception("run failed before a report could be made", extra={"account": account})
            metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=1)
            publish_failure(settings, account, error)
            failures.append((account, error))
    if len(failures) == 1 and not results and running is None:
        raise failures[0][1]  # one account: Lambda shows its own error type
    if failures:
        raise RunFailed(
            "; ".join(
                f"{account}: {getattr(error, 'code', type(error).__name__)}: {error}"
                for account, error in failures
            )
        )
    if running is not None:
        raise running  # retried later, then answered from idempotency
    if len(results) == 1:
        return next(iter(results.values()))
    return {"accounts": results}
