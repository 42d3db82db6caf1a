"""One account's run inside Lambda: shared by the direct handler and the SQS worker.

idempotency (account + scheduled time, DynamoDB)     a repeated delivery is answered
  -> trading state (config, then the SSM kill switch)  from the first run's result
  -> a dry run when the config or ALCHEMISER_DRY_RUN says so
  -> adapters (simulated, or Alpaca with the secret; re-read once on an auth failure)
  -> service.rebalance -> ledger
  -> metrics (EMF), the report to SNS
  -> raise RunFailed when the run did not succeed (so Lambda, the scheduler and SQS
     retry it, and the idempotency record is released for that retry)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser import bootstrap
from alchemiser.adapters.clock import SystemClock
from alchemiser.config import AppConfig
from alchemiser.domain.decisions import Verdict
from alchemiser.domain.report import RunReport, RunStatus, failure_reason
from alchemiser.errors import AlchemiserError
from alchemiser.handlers.events import HandlerSettings, ScheduledEvent
from alchemiser.observability import logger, metrics
from alchemiser.ports import Ledger
from alchemiser.preflight import cold_start
from alchemiser.service import RunRequest, rebalance

TIDY_UP_SECONDS = 30.0
"""Kept back from the Lambda's remaining time: cancel what is open, snapshot, record."""
IDEMPOTENCY_EXPIRY_SECONDS = 3 * 24 * 3600
"""How long a run's result answers repeats of its trigger (longer than any retry)."""
AUTH_FAILURE = "BROKER_AUTH"
ROTATED = "the broker refused the credentials once; the secret was read again (rotated keys)"


class RunFailed(AlchemiserError):
    """Raised after a failed or incomplete run is logged, so Lambda counts it an error."""

    code = "RUN_FAILED"


@dataclass
class Outcome:
    """What one account's run produced, and what it cost at the broker."""

    report: RunReport
    requests: int = 0
    retries: int = 0


def emit_metrics(outcome: Outcome) -> None:
    report = outcome.report
    submitted = sum(1 for o in report.orders if o.broker_order_id is not None)
    rejected = sum(1 for o in report.orders if o.broker_order_id is None)
    denied = sum(1 for d in report.decisions if d.verdict is Verdict.DENIED)
    unfilled = sum(1 for o in report.orders if o.unfilled)
    count = MetricUnit.Count
    metrics.add_metric(name="OrdersSubmitted", unit=count, value=submitted)
    metrics.add_metric(name="OrdersFilled", unit=count, value=len(report.fills))
    metrics.add_metric(name="OrdersRejected", unit=count, value=rejected)
    metrics.add_metric(name="OrdersDenied", unit=count, value=denied)
    metrics.add_metric(name="OrdersUnfilled", unit=count, value=unfilled)
    metrics.add_metric(name="Turnover", unit=MetricUnit.NoUnit, value=float(report.turnover))
    succeeded = report.status.succeeded
    metrics.add_metric(name="RunSucceeded", unit=count, value=1 if succeeded else 0)
    metrics.add_metric(name="RunFailed", unit=count, value=0 if succeeded else 1)
    skipped = 1 if report.status is RunStatus.SKIPPED else 0
    metrics.add_metric(name="RunSkipped", unit=count, value=skipped)
    # A dry run submits nothing (OrdersSubmitted 0) and succeeds when it planned: this
    # tells its metrics from a real run's.
    metrics.add_metric(name="DryRun", unit=count, value=1 if report.dry_run else 0)
    if not skipped:
        # A run that did less than its targets asked still "succeeds"; this is what the
        # consecutive-sessions alarm counts. Skipped (holiday) runs emit nothing, so a
        # market holiday neither counts nor breaks a streak of degraded sessions.
        degraded = bool(report.degraded) or report.status is RunStatus.BLOCKED
        metrics.add_metric(name="RunDegraded", unit=count, value=1 if degraded else 0)
    metrics.add_metric(
        name="RunDurationMs",
        unit=MetricUnit.Milliseconds,
        value=report.timings_ms.get("total", 0.0),
    )
    valuation = report.account_after or report.account_before
    if valuation is not None:
        metrics.add_metric(name="Equity", unit=MetricUnit.NoUnit, value=float(valuation.equity))
    if report.as_of is not None:
        staleness = (report.trading_date - report.as_of).days
        metrics.add_metric(name="DataStalenessDays", unit=count, value=staleness)
    metrics.add_metric(name="BrokerRequests", unit=count, value=outcome.requests)
    metrics.add_metric(name="BrokerRetries", unit=count, value=outcome.retries)


def _ledger(settings: HandlerSettings) -> Ledger | None:
    if settings.ledger_table is None:
        return None
    from alchemiser.adapters.aws.ledger import DynamoLedger  # noqa: PLC0415

    return DynamoLedger(settings.ledger_table)


def _with_kill_switch(config: AppConfig, settings: HandlerSettings) -> AppConfig:
    """The stricter of the account's state and the switch: the function's environment
    names it (the stack's parameter), or else the account's config."""
    name = settings.trading_state_parameter or config.trading_state_parameter
    if name is None:
        return config
    from alchemiser.adapters.aws.trading_state import (  # noqa: PLC0415
        read_trading_state,
        strictest,
    )

    switch = read_trading_state(name)
    state = strictest(config.trading_state, switch)
    if state is not config.trading_state:
        logger.warning("trading state from the kill switch", extra={"trading_state": state})
    return config.model_copy(update={"trading_state": state})


def _auth_failed_before_orders(report: RunReport) -> bool:
    return not report.orders and any(e.code == AUTH_FAILURE for e in report.errors)


def execute_account(
    config: AppConfig,
    trigger: ScheduledEvent,
    deadline: float,
    settings: HandlerSettings,
    clock: SystemClock | None = None,
) -> Outcome:
    """Build the adapters for ``config`` (one account) and run it once; with Alpaca, an
    authentication failure before any order re-reads the secret (force_fetch: the keys
    were rotated) and runs again, once. The run id is the same, so nothing doubles."""
    clock = clock or SystemClock()
    if settings.dry_run and not config.dry_run:
        config = config.model_copy(update={"dry_run": True})
    ledger = _ledger(settings)
    if config.broker != "alpaca":
        market = bootstrap.market_data(config)
        request = bootstrap.scheduled_request(
            config, market, trigger.scheduled_time, deadline, trigger.window
        )
        deps = bootstrap.build_run(
            config, market, request, clock=clock, state_dir=settings.state_dir, ledger=ledger
        )
        _log_start(request, trigger)
        return Outcome(rebalance(request, deps))

    from alchemiser.errors import BrokerAuthError  # noqa: PLC0415

    notes: list[str] = []
    requests = retries = 0
    for attempt in (1, 2):
        rotated = attempt == 2
        wiring = bootstrap.alpaca(
            config, clock=clock, live=settings.live, deadline=deadline, force_fetch=rotated
        )
        try:
            request = bootstrap.alpaca_request(
                config,
                wiring.market,
                wiring.broker,
                trigger.scheduled_time,
                deadline,
                trigger.window,
            )
        except BrokerAuthError:
            if rotated:
                raise
            requests += wiring.transport.requests_sent
            logger.warning("broker refused the credentials: reading the secret again")
            notes.append(ROTATED)
            continue
        deps = bootstrap.build_alpaca(
            config, wiring, clock=clock, state_dir=settings.state_dir, ledger=ledger
        )
        _log_start(request, trigger)
        report = rebalance(request, deps)
        requests += wiring.transport.requests_sent
        retries += wiring.transport.retries
        if rotated or not _auth_failed_before_orders(report):
            if notes:
                # Said in the report itself (and so in the ledger and the email).
                report = report.model_copy(update={"notes": (*notes, *report.notes)})
                deps.ledger.record(report)
            return Outcome(report, requests, retries)
        logger.warning("broker refused the credentials: reading the secret again")
        notes.append(ROTATED)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _log_start(request: RunRequest, trigger: ScheduledEvent) -> None:
    logger.set_correlation_id(request.run_id)
    logger.append_keys(account=request.account, as_of=str(request.as_of))
    logger.info("run started", extra={"attempt": trigger.attempt, "mode": request.mode.value})


def _publish(settings: HandlerSettings, report: RunReport) -> None:
    if settings.reports_topic_arn is None:
        return
    from alchemiser.adapters.aws.notifier import SnsNotifier  # noqa: PLC0415

    try:
        SnsNotifier(settings.reports_topic_arn).publish(report)
    except AlchemiserError as error:
        # The run itself is recorded in the ledger; a lost email must not fail it.
        logger.error("report not published", extra={"error": str(error)})
        metrics.add_metric(name="ReportNotPublished", unit=MetricUnit.Count, value=1)


def already_running(error: BaseException) -> bool:
    """A concurrent delivery of the same trigger, refused by idempotency: not a failure
    (the first delivery is trading); the caller lets it be retried later."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
        IdempotencyAlreadyInProgressError,
    )

    if not isinstance(error, IdempotencyAlreadyInProgressError):
        return False
    logger.info("another delivery of this trigger is running: nothing placed, retry later")
    metrics.add_metric(name="IdempotentInProgress", unit=MetricUnit.Count, value=1)
    return True


def publish_failure(settings: HandlerSettings, account: str, error: BaseException) -> None:
    """A run that failed before it could make a report still reaches the topic."""
    if settings.reports_topic_arn is None:
        return
    from alchemiser.adapters.aws.notifier import SnsNotifier  # noqa: PLC0415

    try:
        SnsNotifier(settings.reports_topic_arn).publish_failure(account, "the run", error)
    except AlchemiserError as failure:
        logger.error("failure notice not published", extra={"error": str(failure)})


def finish(outcome: Outcome, settings: HandlerSettings) -> dict[str, Any]:
    """Metrics and the report to SNS; raise RunFailed for a run that did not succeed."""
    report = outcome.report
    emit_metrics(outcome)
    _publish(settings, report)
    summary = {
        "account": report.account,
        "status": report.status.value,
        "dry_run": report.dry_run,
        "orders": len(report.orders),
        "fills": len(report.fills),
        "errors": [e.model_dump() for e in report.errors],
        "broker_requests": outcome.requests,
        "broker_retries": outcome.retries,
    }
    if not report.status.succeeded:
        logger.error(f"run {report.status.value}", extra={"report": report.model_dump(mode="json")})
        raise RunFailed(f"run {report.run_id} {report.status.value}: {failure_reason(report)}")
    logger.info("run finished", extra=summary)
    return report.model_dump(mode="json")


def run_account(
    config: AppConfig,
    account: str,
    trigger: ScheduledEvent,
    context: LambdaContext,
    settings: HandlerSettings,
) -> dict[str, Any]:
    """One account's run, at most once per scheduled time: with an idempotency table, a
    repeated delivery returns the first run's report (and says so), a concurrent one
    raises IdempotencyAlreadyInProgressError and places nothing. The account's offline
    preflight (once per container) fails it closed first: a ConfigError, before any
    secret, parameter or broker is read."""
    cold_start(config.for_account(account))
    # One absolute deadline from the invocation's start, shared by the broker adapter's
    # retries and the service, and kept across a re-read of rotated keys.
    clock = SystemClock()
    deadline = clock.monotonic() + context.get_remaining_time_in_millis() / 1000 - TIDY_UP_SECONDS

    def once(payload: dict[str, Any]) -> dict[str, Any]:
        account_config = _with_kill_switch(config.for_account(account), settings)
        outcome = execute_account(account_config, trigger, deadline, settings, clock)
        return finish(outcome, settings)

    payload: dict[str, Any] = {
        "account": account,
        # Whole UTC seconds, as in the run id: one instant written two ways is one run.
        "scheduled_time": trigger.scheduled_time.astimezone(UTC).replace(microsecond=0).isoformat(),
    }
    keys = "[account, scheduled_time]"
    if _dry_run(config, account, settings):
        # Its own idempotency record: a real run of the same trigger is never answered
        # from a dry run's result (a real run's key is unchanged).
        payload["dry_run"] = True
        keys = "[account, scheduled_time, dry_run]"
    if settings.idempotency_table is None:
        return once(payload)
    return _idempotent(settings.idempotency_table, context, once, payload, keys)


def _dry_run(config: AppConfig, account: str, settings: HandlerSettings) -> bool:
    if settings.dry_run:
        return True
    try:
        return config.for_account(account).dry_run
    except AlchemiserError:
        return False  # the run itself raises it, as for any account it cannot run


def _idempotent(
    table: str,
    context: LambdaContext,
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    payload: dict[str, Any],
    keys: str,
) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    config = IdempotencyConfig(
        event_key_jmespath=keys,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
    )
    config.register_lambda_context(context)
    ran = False

    @idempotent_function(  # type: ignore[untyped-decorator]  # Powertools: untyped
        data_keyword_argument="payload",
        persistence_store=DynamoDBPersistenceLayer(table_name=table),
        config=config,
    )
    def guarded(payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal ran
        ran = True
        return fn(payload)

    result: dict[str, Any] = guarded(payload=payload)
    if not ran:
        logger.info(
            "answered from idempotency: this trigger already ran for this account",
            extra={"account": payload["account"], "scheduled_time": payload["scheduled_time"]},
        )
        metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
    return result
