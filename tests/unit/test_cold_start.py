"""What a cold start imports: the Alpaca path never pandas (nor alpaca-py's trading or
data packages), and the X-Ray SDK only when tracing is active. Each check runs in a
fresh interpreter, since this process has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping

import pytest
from aws_lambda_powertools import Tracer

from alchemiser.observability import tracing_active

HANDLERS = ["orchestrator", "worker", "watchdog"]
LAMBDA_ENV = ("AWS_LAMBDA_", "LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE", "AWS_SAM_LOCAL", "_X_AMZN")
ENV_TRACING = (
    "POWERTOOLS_TRACE_DISABLED",
    "LAMBDA_TASK_ROOT",
    "AWS_SAM_LOCAL",
    "AWS_CHALICE_CLI_MODE",
)


def fresh(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter outside Lambda (plus ``env``); it prints one
    JSON object, returned."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(LAMBDA_ENV)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


LOADED = """
import json, sys
print(json.dumps({{name: name in sys.modules for name in {names!r}}}))
"""

ALPACA_WIRING = """
from alchemiser import bootstrap
from alchemiser.adapters.aws import secrets
from alchemiser.adapters.clock import SystemClock
from alchemiser.config import parse_config
import alchemiser.handlers.worker
import alchemiser.adapters.alpaca.broker, alchemiser.adapters.alpaca.market_data

secrets.read_alpaca_credentials = lambda *a, **k: secrets.AlpacaCredentials(
    api_key_id="key", api_secret_key="secret", endpoint="paper"
)
config = parse_config(
    {
        "broker": "alpaca",
        "mode": "paper",
        "alpaca": {"secret_id": "alchemiser/test"},
        "strategies": [{"name": "s", "allocation": 1.0, "weights": {"SPY": 0.5}}],
    },
    "cold-start",
)
wiring = bootstrap.alpaca(config, clock=SystemClock(), live=False)
assert wiring.broker is not None and wiring.market is not None
"""


def test_the_alpaca_wiring_and_adapters_never_import_pandas() -> None:
    names = ["pandas", "alpaca.trading", "alpaca.data", "alpaca.common.rest"]
    loaded = fresh(ALPACA_WIRING + LOADED.format(names=names))
    assert loaded == {
        "pandas": False,
        "alpaca.trading": False,
        "alpaca.data": False,
        "alpaca.common.rest": True,
    }


@pytest.mark.parametrize("handler", HANDLERS)
def test_without_tracing_no_handler_imports_the_xray_sdk(handler: str) -> None:
    names = ["aws_xray_sdk", "pandas", "alpaca.common.rest", "boto3"]
    loaded = fresh(f"import alchemiser.handlers.{handler}\n" + LOADED.format(names=names))
    assert loaded == dict.fromkeys(names, False)


@pytest.mark.parametrize("handler", HANDLERS)
def test_the_simulated_path_never_imports_alpaca_py(handler: str) -> None:
    """Orchestrator and watchdog load a config and no prices: not even numpy."""
    names = ["alpaca", "numpy"]
    loaded = fresh(f"import alchemiser.handlers.{handler}\n" + LOADED.format(names=names))
    assert loaded["alpaca"] is False
    assert loaded["numpy"] is (handler == "worker")


WRAPPERS = """
import json, sys
from alchemiser.handlers import {handler} as module
from alchemiser.observability import tracer
depth, fn = 0, module.handler
while hasattr(fn, "__wrapped__"):
    depth, fn = depth + 1, fn.__wrapped__
print(json.dumps({{"depth": depth, "xray": "aws_xray_sdk" in sys.modules,
                   "built": tracer._tracer is not None}}))
"""


@pytest.mark.parametrize("handler", HANDLERS)
def test_with_tracing_active_each_handler_is_traced(handler: str) -> None:
    """In Lambda with ``Tracing: Active`` Powertools' Tracer wraps the handler (one
    wrapper more than without: logger, tracer, metrics)."""
    active = fresh(
        WRAPPERS.format(handler=handler),
        AWS_LAMBDA_FUNCTION_NAME=f"alchemiser-{handler}",
        LAMBDA_TASK_ROOT="/var/task",
    )
    assert active == {"depth": 3, "xray": True, "built": True}
    inactive = fresh(WRAPPERS.format(handler=handler))
    assert inactive == {"depth": 2, "xray": False, "built": False}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LAMBDA_TASK_ROOT": "/var/task"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"},
        {"POWERTOOLS_TRACE_DISABLED": "false"},
    ],
)
def test_tracing_active_follows_powertools(
    monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]
) -> None:
    for name in ENV_TRACING:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_active() is not bool(Tracer._is_tracer_disabled())
