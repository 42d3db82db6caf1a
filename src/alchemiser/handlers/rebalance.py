"""The scheduled rebalance: EventBridge Scheduler -> this handler -> service.rebalance."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from alchemiser import bootstrap
from alchemiser.adapters.clock import SystemClock
from alchemiser.config import load_config
from alchemiser.domain.decisions import Verdict
from alchemiser.domain.report import RunReport, RunStatus, failure_reason
from alchemiser.errors import AlchemiserError
from alchemiser.handlers.events import HandlerSettings, parse_event
from alchemiser.observability import logger, metrics, tracer
from alchemiser.service import rebalance

TIDY_UP_SECONDS = 30.0
"""Kept back from the Lambda's remaining time: cancel what is open, snapshot, record."""


class RunFailed(AlchemiserError):
    """Raised after a failed or incomplete run is logged, so Lambda counts it an error."""

    code = "RUN_FAILED"


def _emit_metrics(report: RunReport) -> None:
    submitted = sum(1 for o in report.orders if o.broker_order_id is not None)
    rejected = sum(1 for o in report.orders if o.broker_order_id is None)
    denied = sum(1 for d in report.decisions if d.verdict is Verdict.DENIED)
    unfilled = sum(1 for o in report.orders if o.unfilled)
    metrics.add_metric(name="OrdersSubmitted", unit=MetricUnit.Count, value=submitted)
    metrics.add_metric(name="OrdersFilled", unit=MetricUnit.Count, value=len(report.fills))
    metrics.add_metric(name="OrdersRejected", unit=MetricUnit.Count, value=rejected)
    metrics.add_metric(name="OrdersDenied", unit=MetricUnit.Count, value=denied)
    metrics.add_metric(name="OrdersUnfilled", unit=MetricUnit.Count, value=unfilled)
    metrics.add_metric(name="Turnover", unit=MetricUnit.NoUnit, value=float(report.turnover))
    failed = 0 if report.status.succeeded else 1
    skipped = 1 if report.status is RunStatus.SKIPPED else 0
    metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=failed)
    metrics.add_metric(name="RunSkipped", unit=MetricUnit.Count, value=skipped)
    metrics.add_metric(
        name="RunDurationMs",
        unit=MetricUnit.Milliseconds,
        value=report.timings_ms.get("total", 0.0),
    )


def _run(event: dict[str, Any], context: LambdaContext) -> RunReport:
    scheduled = parse_event(event)
    settings = HandlerSettings.from_env(os.environ)
    config = load_config(settings.config_path)
    clock = SystemClock()
    budget = context.get_remaining_time_in_millis() / 1000 - TIDY_UP_SECONDS
    if config.broker == "alpaca":
        wiring = bootstrap.alpaca(
            config, clock=clock, live=settings.live, deadline=clock.monotonic() + budget
        )
        request = bootstrap.alpaca_request(
            config, wiring.market, wiring.broker, scheduled.scheduled_time, budget
        )
        deps = bootstrap.build_alpaca(config, wiring, clock=clock, state_dir=settings.state_dir)
    else:
        market = bootstrap.market_data(config)
        request = bootstrap.scheduled_request(config, market, scheduled.scheduled_time, budget)
        deps = bootstrap.build(
            config, market=market, as_of=request.as_of, clock=clock, state_dir=settings.state_dir
        )
    logger.set_correlation_id(request.run_id)
    logger.append_keys(account=config.account, as_of=request.as_of.isoformat())
    logger.info("run started", extra={"attempt": scheduled.attempt, "mode": request.mode.value})
    return rebalance(request, deps)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        report = _run(event, context)
    except Exception:
        # The one broad catch in the package: log with context, count, re-raise.
        logger.exception("run failed before a report could be made")
        metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=1)
        raise
    _emit_metrics(report)
    summary = {
        "status": report.status.value,
        "intents": len(report.intents),
        "orders": len(report.orders),
        "fills": len(report.fills),
        "denied": sum(1 for d in report.decisions if d.verdict is Verdict.DENIED),
        "errors": [e.model_dump() for e in report.errors],
        "timings_ms": report.timings_ms,
    }
    if not report.status.succeeded:
        logger.error(f"run {report.status.value}", extra={"report": report.model_dump(mode="json")})
        raise RunFailed(f"run {report.run_id} {report.status.value}: {failure_reason(report)}")
    logger.info("run finished", extra=summary)
    return report.model_dump(mode="json")
