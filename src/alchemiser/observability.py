"""Powertools Logger, Metrics and Tracer, created once and imported where needed.

This is the one deliberate module-level state in the package: Powertools designs
these as process-wide facades configured from the environment
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL).
Nothing here ever logs a secret: reports carry no keys and no broker account id, the
AWS libraries never log at DEBUG and the handlers mask credentials (logsafety.py).

The tracer is built only when tracing is active: Powertools' Tracer imports the X-Ray
SDK (and with it botocore's session machinery) and patches botocore and requests even
when tracing is off, most of a second of a cold start outside a traced Lambda.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

from alchemiser.logsafety import secure_logging

SERVICE = "alchemiser"
NAMESPACE = "Alchemiser"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_active() -> bool:
    """Powertools' own rule (``Tracer._is_tracer_disabled``): tracing is on in Lambda
    (LAMBDA_TASK_ROOT set, as with ``Tracing: Active``), unless POWERTOOLS_TRACE_DISABLED
    says otherwise or the function runs under SAM local or Chalice."""
    if resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false")):
        return False
    if not os.getenv(constants.LAMBDA_TASK_ROOT_ENV):
        return False
    return not (os.getenv(constants.SAM_LOCAL_ENV) or os.getenv(constants.CHALICE_LOCAL_ENV))


class LazyTracer:
    """The handlers' tracer. When tracing is active, Powertools' Tracer (built on first
    use) wraps the handler exactly as ``Tracer().capture_lambda_handler`` does; when it
    is not, the handler is left as it is and the X-Ray SDK is never imported."""

    def __init__(self) -> None:
        self._tracer: Tracer | None = None

    @property
    def active(self) -> bool:
        return tracing_active()

    @property
    def tracer(self) -> Tracer:
        """Powertools' Tracer; building it imports the X-Ray SDK and patches botocore."""
        if self._tracer is None:
            self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(
        self, *, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[Handler], Handler]:
        """Decided when the handler module is imported (a cold start's environment
        does not change afterwards)."""
        if not self.active:
            return lambda handler: handler
        decorator: Callable[[Handler], Handler] = self.tracer.capture_lambda_handler(
            capture_response=capture_response, capture_error=capture_error
        )
        return decorator


logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE))
tracer = LazyTracer()
secure_logging(logger.registered_handler)
