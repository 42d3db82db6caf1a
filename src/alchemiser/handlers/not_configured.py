"""A trigger of a stack that has no trading config yet: recorded, announced, not failed.

Until ALCHEMISER_CONFIG names a config (a TOML file in the package, or
``builtin:default`` for the demo), a scheduled run has nothing to run. It is recorded
in the ledger as a skipped run (``not_configured``), one notice goes to the reports
topic saying how to configure the stack, and it emits ``RunSkipped`` and
``RunNotConfigured``: no ``RunFailed``, no ``RunDegraded``, no error, so neither a
retry, nor the dead-letter queue, nor an alarm.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from alchemiser.domain.decisions import TradingState
from alchemiser.domain.market import NEW_YORK
from alchemiser.domain.report import Mode, RunReport, RunStatus, SkipReason
from alchemiser.errors import AlchemiserError
from alchemiser.handlers.events import BUILTIN_DEFAULT, HandlerSettings, ScheduledEvent
from alchemiser.observability import logger, metrics
from alchemiser.ports import Ledger
from alchemiser.service import make_run_id

DEFAULT_ACCOUNT = "default"
"""The account a not-configured trigger is recorded under (a config's default name)."""
WHY = (
    "the stack has no trading config (ALCHEMISER_CONFIG is empty: the template's "
    "ConfigPath default); nothing was read or traded"
)
HOW = (
    "To configure it, put your config in the package (src/deploy/alchemiser.toml), "
    "check it with `alchemiser check --config src/deploy/alchemiser.toml --broker`, set "
    'ConfigPath="deploy/alchemiser.toml" in samconfig.toml\'s parameter_overrides and '
    f"run `make build && sam deploy`. ConfigPath={BUILTIN_DEFAULT} runs the demo instead "
    '(a simulated account). See docs/OPERATIONS.md, "First deploy".'
)


def skipped_report(account: str, trigger: ScheduledEvent, now: datetime) -> RunReport:
    """The ledger's record of ``trigger`` for ``account``: skipped, not configured. With
    no config there is no mode nor trading state to report: it says ``sim`` (nothing
    reached a broker) and ``HALTED`` (nothing could trade)."""
    instant = trigger.scheduled_time.astimezone(UTC).replace(microsecond=0)
    trading_date = instant.astimezone(NEW_YORK).date()
    return RunReport(
        # Its own id: never the id a configured run of this trigger would have.
        run_id=f"{make_run_id(account, trading_date, instant)}-{SkipReason.NOT_CONFIGURED.value}",
        attempt_id=f"{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}",
        account=account,
        as_of=None,
        trading_date=trading_date,
        scheduled_time=instant,
        mode=Mode.SIM,
        trading_state=TradingState.HALTED,
        status=RunStatus.SKIPPED,
        skipped=SkipReason.NOT_CONFIGURED,
        notes=(WHY,),
    )


def _ledger(settings: HandlerSettings) -> Ledger:
    if settings.ledger_table is not None:
        from alchemiser.adapters.aws.ledger import DynamoLedger  # noqa: PLC0415

        return DynamoLedger(settings.ledger_table)
    from alchemiser.adapters.ledger import FileLedger  # noqa: PLC0415
    from alchemiser.bootstrap import LEDGER_FILE  # noqa: PLC0415

    return FileLedger(settings.state_dir / LEDGER_FILE)


def record_not_configured(
    settings: HandlerSettings,
    trigger: ScheduledEvent,
    account: str = DEFAULT_ACCOUNT,
    now: datetime | None = None,
) -> RunReport:
    """Record ``trigger`` as skipped (not configured), publish the one notice, count it.
    Raises nothing for a ledger or topic that cannot be written: logged and counted,
    since a retry could not configure the stack either."""
    report = skipped_report(account, trigger, now or datetime.now(UTC))
    logger.warning(
        "not configured: nothing run (set ALCHEMISER_CONFIG, the template's ConfigPath)",
        extra={"account": account, "run_id": report.run_id, "skipped": report.skipped},
    )
    try:
        _ledger(settings).record(report)
    except AlchemiserError as error:
        logger.error("not-configured run not recorded", extra={"error": str(error)})
        metrics.add_metric(name="LedgerNotRecorded", unit=MetricUnit.Count, value=1)
    _notify(settings, report)
    metrics.add_metric(name="RunSkipped", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RunNotConfigured", unit=MetricUnit.Count, value=1)
    return report


def _notify(settings: HandlerSettings, report: RunReport) -> None:
    if settings.reports_topic_arn is None:
        return
    from alchemiser.adapters.aws.notifier import SnsNotifier  # noqa: PLC0415

    when = f"{report.scheduled_time:%Y-%m-%d %H:%M} UTC" if report.scheduled_time else "?"
    text = (
        f"The scheduled run of {when} (trading date {report.trading_date.isoformat()}) "
        f"did nothing: {WHY}. It is recorded in the ledger as skipped (not_configured, "
        f"run {report.run_id}); no order was placed and no alarm was raised. Each scheduled "
        f"trigger sends this notice until the stack is configured.\n\n{HOW}"
    )
    try:
        SnsNotifier(settings.reports_topic_arn).publish_notice(
            f"[alchemiser] not configured: the {report.trading_date.isoformat()} run did nothing",
            text,
        )
    except AlchemiserError as error:
        logger.error("not-configured notice not published", extra={"error": str(error)})
        metrics.add_metric(name="ReportNotPublished", unit=MetricUnit.Count, value=1)
