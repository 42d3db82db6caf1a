"""No successful run after a trading window on a trading day: an alarm and a notice.

Scheduled after each window, Monday to Friday (10:00 New York after the open, 16:15
after the close; the event's ``window`` says which, and only accounts trading in that
window are checked). For each account it asks the ledger for today's runs: the day is
accounted for when a run completed, had nothing to do or was blocked by risk, or when
it was skipped because the day is not a session (a market holiday); a dry run's row
counts only while the account runs dry (``DryRun``, or the account's ``dry_run``).
Anything else (no run at all, only failures, or only skips that do not make a holiday:
the other window's trigger, the other close trigger, a market closed at the trigger)
emits ``RunMissing`` = 1 (the NoSuccessfulRunAlarm) and publishes a notice.

A stack without a trading config (ALCHEMISER_CONFIG empty) has no account to miss a
run: the watchdog checks nothing, raises no alarm (``RunMissing`` = 0, as on a quiet
day) and says why in its log (each trigger's not-configured notice already went out).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser.domain.market import NEW_YORK
from alchemiser.domain.report import RunReport, RunStatus, SkipReason
from alchemiser.errors import ConfigError
from alchemiser.handlers.events import HandlerSettings, load_handler_config, parse_event
from alchemiser.observability import logger, metrics, tracer


def day_accounted_for(runs: Sequence[RunReport], *, dry_run: bool = False) -> bool:
    """A day's runs of one account leave nothing missing: one finished (completed, had
    nothing to do, blocked by risk), or one was skipped because the day is no session.
    A skip recorded without a reason (by an older version) counts as a holiday, as it
    did then. A dry run's row counts only while the account runs dry (``dry_run``):
    once it trades for real, a dry run of the morning is not the day's run."""
    return any(
        r.status.finished
        or (r.status is RunStatus.SKIPPED and r.skipped in (SkipReason.HOLIDAY, None))
        for r in runs
        if dry_run or not r.dry_run
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from alchemiser.adapters.aws.ledger import DynamoLedger  # noqa: PLC0415

    settings = HandlerSettings.from_env(os.environ)
    if settings.ledger_table is None:
        raise ConfigError("ALCHEMISER_LEDGER_TABLE is not set", field="environment")
    trigger = parse_event(event)
    at = trigger.scheduled_time.astimezone(NEW_YORK)
    today = at.date()
    config = load_handler_config(settings)
    if config is None:
        logger.info(
            "not configured: no account to check (ALCHEMISER_CONFIG is empty, the "
            "template's ConfigPath default; each trigger was recorded as not_configured)",
            extra={"day": str(today)},
        )
        metrics.add_metric(name="RunMissing", unit=MetricUnit.Count, value=0)
        return {"day": today.isoformat(), "missing": [], "not_configured": True}
    ledger = DynamoLedger(settings.ledger_table)
    missing = []
    deployed = settings.trading_windows
    for account in config.account_names():
        window = config.for_account(account).trading_window
        scheduled = deployed is None or window in deployed
        if trigger.window is not None and trigger.window is not window and scheduled:
            continue  # checked after its own window
        if not scheduled:
            missing.append(
                f"{account} (its trading window {window.value!r} is not scheduled by the "
                f"stack: set the template's TradingWindow to {window.value!r} or 'both')"
            )
            continue
        runs = ledger.run_on(account, today)
        dry = settings.dry_run or config.for_account(account).dry_run
        if not day_accounted_for(runs, dry_run=dry):
            seen = ", ".join(sorted({r.status.value for r in runs})) or "no run at all"
            missing.append(f"{account} ({seen})")
    metrics.add_metric(name="RunMissing", unit=MetricUnit.Count, value=1 if missing else 0)
    if missing:
        logger.error("no successful run today", extra={"accounts": missing, "day": str(today)})
        if settings.reports_topic_arn is not None:
            from alchemiser.adapters.aws.notifier import SnsNotifier  # noqa: PLC0415

            SnsNotifier(settings.reports_topic_arn).publish_notice(
                f"[alchemiser] no successful run on {today.isoformat()}",
                f"By {at:%H:%M} New York time on {today.isoformat()}, these accounts had no "
                f"successful run (nor a market holiday): {'; '.join(missing)}.\n"
                "See docs/OPERATIONS.md, NoSuccessfulRunAlarm.",
            )
    return {"day": today.isoformat(), "missing": missing}
