"""One invocation of one function in a fresh process (``run_child``), and that process's
side: ``python -m alchemiser.devstack.runner HANDLER EVENT RESULT`` builds a Lambda-like
context (``LocalContext``), calls the handler and writes its response (or Lambda's error
shape) to RESULT.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from time import monotonic
from typing import Any

from alchemiser.devstack.functions import FunctionSpec
from alchemiser.devstack.output import emf_metrics
from alchemiser.devstack.template import EXAMPLE_ACCOUNT, REGION

REPLAY_LOG = "answered from idempotency"
REPLAY_METRIC = "IdempotentReplay"


@dataclass(frozen=True)
class Invocation:
    """One invocation of one function, in a fresh process."""

    function: str
    delivery: int
    exit_code: int
    response: Any
    error_code: str | None
    logs: str
    seconds: float

    @property
    def metrics(self) -> list[tuple[str, Any]]:
        return [pair for line in self.logs.splitlines() for pair in emf_metrics(line)]

    @property
    def replayed(self) -> bool:
        return REPLAY_LOG in self.logs or any(
            name == REPLAY_METRIC and value for name, value in self.metrics
        )

    @property
    def failed_items(self) -> list[str]:
        if isinstance(self.response, dict) and isinstance(
            self.response.get("batchItemFailures"), list
        ):
            return [str(f.get("itemIdentifier")) for f in self.response["batchItemFailures"]]
        return []

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failed_items


def run_child(
    spec: FunctionSpec,
    event: Any,
    env: Mapping[str, str],
    code_root: Path,
    scratch: Path,
    delivery: int = 1,
) -> Invocation:
    """Run the function on ``event`` in a fresh process with exactly ``env``."""
    tag = uuid.uuid4().hex[:8]
    event_path = scratch / f"event-{tag}.json"
    result_path = scratch / f"result-{tag}.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    started = monotonic()
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "alchemiser.devstack.runner",
                spec.handler,
                str(event_path),
                str(result_path),
            ],
            env=dict(env),
            cwd=code_root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=spec.timeout_seconds + 10,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        output = timeout.stdout if isinstance(timeout.stdout, str) else ""
        return Invocation(
            spec.logical_id,
            delivery,
            1,
            {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {spec.timeout_seconds} seconds",
            },
            None,
            output,
            monotonic() - started,
        )
    seconds = monotonic() - started
    result: dict[str, Any] = {}
    if result_path.exists():
        result = json.loads(result_path.read_text(encoding="utf-8"))
    response = result.get("response")
    if not result:
        response = {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"the process exited with status {completed.returncode}",
        }
    return Invocation(
        spec.logical_id,
        delivery,
        completed.returncode if result else 1,
        response,
        result.get("error_code"),
        completed.stdout,
        seconds,
    )


class LocalContext:
    """The attributes and method of the Lambda context object that handlers use."""

    def __init__(self, function_name: str, memory_mb: int, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{EXAMPLE_ACCOUNT}:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self._deadline = monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - monotonic()) * 1000))


def _runtime_logging() -> None:
    """What the Lambda runtime does with a function's ApplicationLogLevel (it sets
    AWS_LAMBDA_LOG_LEVEL): the root logger at that level, with a handler of its own,
    before the handler's module is imported."""
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").strip().upper()
    if level not in logging.getLevelNamesMapping():
        return
    root = logging.getLogger()
    root.setLevel(level)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
    root.addHandler(handler)


def _child(handler_path: str, event_path: str, result_path: str) -> int:
    _runtime_logging()
    module_name, _, function_name = handler_path.rpartition(".")
    function = getattr(import_module(module_name), function_name)
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    context = LocalContext(
        os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
        int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]),
    )
    code: str | None = None
    try:
        response = function(event, context)
        status = 0
    except Exception as error:  # noqa: BLE001 - reported in Lambda's error shape
        response = {"errorType": type(error).__name__, "errorMessage": str(error)}
        code = getattr(error, "code", None)
        status = 1
        # What the Lambda runtime writes to the function's log for an unhandled error.
        sys.stdout.flush()
        sys.stderr.write(f"[ERROR] {type(error).__name__}: {error}\n")
        sys.stderr.write("Traceback (most recent call last):\n")
        sys.stderr.write("".join(traceback.format_tb(error.__traceback__)))
        sys.stderr.flush()
    document = {"response": response, "error_code": code if isinstance(code, str) else None}
    Path(result_path).write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
