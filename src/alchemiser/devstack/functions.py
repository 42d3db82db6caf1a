"""The stack's functions as the template declares them: handler, limits, events and
environment (``function_spec``), the environment Lambda would give one
(``lambda_environment``), and which function takes an event (``pick_function``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemiser.devstack.template import (
    REGION,
    STACK_NAME,
    Resolver,
    declared_resources,
    plain_text,
    references,
)
from alchemiser.errors import ConfigError, EventError

PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "TZ")
ORCHESTRATOR = "OrchestratorFunction"
SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")


@dataclass(frozen=True)
class SqsSource:
    """An SQS event of a function: Lambda's event source mapping."""

    queue: str
    """The queue's logical id."""
    batch_size: int
    report_failures: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_uri: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    scheduled: bool = False
    sqs_sources: tuple[SqsSource, ...] = ()


def declared_functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    functions = {
        k: v
        for k, v in declared_resources(template).items()
        if v.get("Type") == "AWS::Serverless::Function"
    }
    if not functions:
        raise ConfigError("the template declares no AWS::Serverless::Function")
    return functions


def _sqs_sources(events: Mapping[str, Any]) -> tuple[SqsSource, ...]:
    sources = []
    for event in events.values():
        if not isinstance(event, dict) or event.get("Type") != "SQS":
            continue
        properties = event.get("Properties") or {}
        queue = properties.get("Queue")
        names = references(queue)
        if len(names) != 1:
            raise ConfigError(f"SQS event on {queue!r}: expected !GetAtt QUEUE.Arn")
        sources.append(
            SqsSource(
                queue=next(iter(names)),
                batch_size=int(properties.get("BatchSize", 10)),
                report_failures="ReportBatchItemFailures"
                in (properties.get("FunctionResponseTypes") or []),
            )
        )
    return tuple(sources)


def function_spec(
    template: Mapping[str, Any],
    logical_id: str | None = None,
    resolver: Resolver | None = None,
    *,
    environment: bool = True,
) -> FunctionSpec:
    """The function's handler, limits, events and environment (Globals and its own, with
    every intrinsic resolved by ``resolver``; without one, parameters only). With
    ``environment=False`` the environment is left out (nothing needs to exist)."""
    functions = declared_functions(template)
    name = logical_id or next(iter(functions))
    if name not in functions:
        raise ConfigError(f"no function {name!r} in the template (has {', '.join(functions)})")
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    own = functions[name].get("Properties") or {}
    properties = {**globals_, **own}
    variables = {
        **(globals_.get("Environment") or {}).get("Variables", {}),
        **(own.get("Environment") or {}).get("Variables", {}),
    }
    resolver = resolver or Resolver(template, STACK_NAME, {})
    resolved = {}
    for key, value in variables.items() if environment else ():
        try:
            resolved[key] = plain_text(resolver.resolve(value))
        except ConfigError as error:
            raise ConfigError(f"{name} environment {key}: {error}") from None
    events = own.get("Events") or {}
    return FunctionSpec(
        logical_id=name,
        handler=str(properties["Handler"]),
        code_uri=str(properties.get("CodeUri", ".")),
        timeout_seconds=int(properties.get("Timeout", 3)),
        memory_mb=int(properties.get("MemorySize", 128)),
        environment=resolved,
        scheduled=any(
            isinstance(e, dict) and e.get("Type") in SCHEDULE_EVENT_TYPES for e in events.values()
        ),
        sqs_sources=_sqs_sources(events),
    )


def lambda_environment(spec: FunctionSpec, code_root: Path) -> dict[str, str]:
    """The environment the Lambda runtime would give the function, plus the template's."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]" + uuid.uuid4().hex,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_SAM_LOCAL": "true",
            "LAMBDA_TASK_ROOT": str(code_root),
            "_HANDLER": spec.handler,
            "PYTHONPATH": str(code_root),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(spec.environment)
    return env


def pick_function(template: Mapping[str, Any], event: Any) -> str:
    """The function that takes ``event``, by its shape: an SQS event goes to the function
    subscribed to a queue, a scheduled event (``scheduled_time``) to the orchestrator
    (or else the template's first scheduled function)."""
    specs = [
        function_spec(template, name, environment=False) for name in declared_functions(template)
    ]
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        sources = [r.get("eventSource") for r in event["Records"] if isinstance(r, dict)] or [None]
        if set(sources) == {"aws:sqs"}:
            workers = [s.logical_id for s in specs if s.sqs_sources]
            if not workers:
                raise ConfigError("an SQS event, but no function has an SQS event source")
            return workers[0]
    if isinstance(event, dict) and "scheduled_time" in event:
        scheduled = [s.logical_id for s in specs if s.scheduled]
        if ORCHESTRATOR in scheduled:
            return ORCHESTRATOR
        if scheduled:
            return scheduled[0]
        raise ConfigError("a scheduled event, but no function has a schedule")
    raise EventError(
        "cannot tell which function takes this event: it is neither a scheduled event "
        "(scheduled_time) nor an SQS event (Records from aws:sqs); pass --function"
    )
