"""No successful run by 10:00 New York time on a trading day: an alarm and a notice.

Scheduled at 10:00 New York, Monday to Friday. For each account it asks the ledger for
today's runs: one that completed, had nothing to do, was blocked by risk or was
skipped (a market holiday) is fine. Anything else (no run at all, only failures) emits
``RunMissing`` = 1 (the NoSuccessfulRunAlarm) and publishes a notice.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser.config import load_config
from alchemiser.domain.market import NEW_YORK
from alchemiser.errors import ConfigError
from alchemiser.handlers.events import HandlerSettings, parse_event
from alchemiser.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from alchemiser.adapters.aws.ledger import DynamoLedger  # noqa: PLC0415

    settings = HandlerSettings.from_env(os.environ)
    if settings.ledger_table is None:
        raise ConfigError("ALCHEMISER_LEDGER_TABLE is not set", field="environment")
    trigger = parse_event(event)
    today = trigger.scheduled_time.astimezone(NEW_YORK).date()
    config = load_config(settings.config_path)
    ledger = DynamoLedger(settings.ledger_table)
    missing = []
    for account in config.account_names():
        runs = ledger.run_on(account, today)
        if not any(r.status.succeeded for r in runs):
            seen = ", ".join(sorted({r.status.value for r in runs})) or "no run at all"
            missing.append(f"{account} ({seen})")
    metrics.add_metric(name="RunMissing", unit=MetricUnit.Count, value=1 if missing else 0)
    if missing:
        logger.error("no successful run today", extra={"accounts": missing, "day": str(today)})
        if settings.reports_topic_arn is not None:
            from alchemiser.adapters.aws.notifier import SnsNotifier  # noqa: PLC0415

            SnsNotifier(settings.reports_topic_arn).publish_notice(
                f"[alchemiser] no successful run on {today.isoformat()}",
                f"By 10:00 New York time on {today.isoformat()}, these accounts had no "
                f"successful or skipped run: {'; '.join(missing)}.\n"
                "See docs/OPERATIONS.md, NoSuccessfulRunAlarm.",
            )
    return {"day": today.isoformat(), "missing": missing}
