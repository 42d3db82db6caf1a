"""The child side of one local invocation, as a script run by its file path:
``python -P child.py HANDLER EVENT RESULT [--path DIR]... [--account ID]``.

It imports only the standard library, then the handler: so it runs the same with the
repository's ``src`` (``PYTHONPATH``, the development environment) as with
``python -I -S`` and only a built function's directory and the layer on ``sys.path``
(``--path``, first to last), which is all Lambda gives a function. It sets up logging as
the Lambda runtime does, builds a Lambda-like context (``LocalContext``), calls the
handler and writes its response, or Lambda's error shape, to RESULT as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
import uuid
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from time import monotonic

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


class LocalContext:
    """The attributes and method of the Lambda context object that handlers use."""

    def __init__(
        self,
        function_name: str,
        memory_mb: int,
        timeout_seconds: int,
        *,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self._deadline = monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - monotonic()) * 1000))


def runtime_logging() -> None:
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


def invoke(handler_path: str, event_path: str, result_path: str, account: str) -> int:
    """Call the handler on the event; write the response (or the error) to the result."""
    runtime_logging()
    module_name, _, function_name = handler_path.rpartition(".")
    function = getattr(import_module(module_name), function_name)
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    context = LocalContext(
        os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
        int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]),
        region=os.environ.get("AWS_REGION", DEFAULT_REGION),
        account=account,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="child.py")
    parser.add_argument("handler")
    parser.add_argument("event")
    parser.add_argument("result")
    parser.add_argument("--path", action="append", default=[], help="prepend to sys.path")
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    args = parser.parse_args(argv)
    sys.path[:0] = args.path
    return invoke(args.handler, args.event, args.result, args.account)


if __name__ == "__main__":
    sys.exit(main())
