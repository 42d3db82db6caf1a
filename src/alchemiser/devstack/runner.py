"""One invocation of one function in a fresh process (``run_child``). The process runs
``child.py`` by its file path (standard library only, then the handler): with the
repository's ``src`` and this environment's packages, or (``layer`` given) isolated,
``python -I -S -B`` with only the function's built directory and the layer on
``sys.path``, as in Lambda.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

from alchemiser.devstack import child
from alchemiser.devstack.child import LocalContext
from alchemiser.devstack.functions import FunctionSpec
from alchemiser.devstack.output import emf_metrics
from alchemiser.devstack.template import EXAMPLE_ACCOUNT

__all__ = ["Invocation", "LocalContext", "child_command", "run_child"]

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


def child_command(
    handler: str, event_path: Path, result_path: Path, code_root: Path, layer: Path | None
) -> list[str]:
    """The child's command line. Without ``layer``: ``-P`` (the script's folder stays off
    ``sys.path``), the code from ``PYTHONPATH`` and the packages from this environment.
    With it: isolated (no environment variables, no site-packages, no bytecode written,
    as Lambda's read-only code), ``code_root`` then ``layer`` on ``sys.path``."""
    script = str(Path(child.__file__).resolve())
    flags = ["-P"] if layer is None else ["-I", "-S", "-B"]
    paths = [] if layer is None else ["--path", str(code_root), "--path", str(layer)]
    return [
        sys.executable,
        *flags,
        script,
        handler,
        str(event_path),
        str(result_path),
        *paths,
        "--account",
        EXAMPLE_ACCOUNT,
    ]


def run_child(
    spec: FunctionSpec,
    event: Any,
    env: Mapping[str, str],
    code_root: Path,
    scratch: Path,
    delivery: int = 1,
    layer: Path | None = None,
) -> Invocation:
    """Run the function on ``event`` in a fresh process with exactly ``env`` (and, with
    ``layer``, nothing on ``sys.path`` but ``code_root``, ``layer`` and the stdlib)."""
    tag = uuid.uuid4().hex[:8]
    event_path = scratch / f"event-{tag}.json"
    result_path = scratch / f"result-{tag}.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    started = monotonic()
    try:
        completed = subprocess.run(
            child_command(spec.handler, event_path, result_path, code_root, layer),
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
