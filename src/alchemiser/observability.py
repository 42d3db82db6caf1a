"""Powertools Logger, Metrics and Tracer, created once and imported where needed.

This is the one deliberate module-level state in the package: Powertools designs
these as process-wide facades configured from the environment
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL).
Nothing here ever logs a secret: reports carry no keys and no broker account id, the
AWS libraries never log at DEBUG and the handlers mask credentials (logsafety.py).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

from alchemiser.logsafety import secure_logging

SERVICE = "alchemiser"
NAMESPACE = "Alchemiser"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE))
tracer = Tracer()
secure_logging(logger.registered_handler)
