"""Docker-free local invoke: the real handler, in a fresh process, as Lambda would run it.

``invoke`` reads template.yaml, takes the function's declared environment (Globals
and its own, with ``!Ref`` resolved to parameter defaults), its timeout and memory,
and runs ``python -m alchemiser.handlers.local`` in a child process with exactly
that environment plus what the Lambda runtime sets. The child builds a Lambda-like
context, calls the handler and writes the response (or Lambda's error shape).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from time import monotonic
from typing import Any

import yaml

from alchemiser.errors import ConfigError, EventError

REGION = "us-east-1"
EXAMPLE_ACCOUNT = "123456789012"
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "TZ")


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form intrinsic tags."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read template {path}: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a CloudFormation template")
    return document


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_uri: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]


def _resolve(value: Any, parameters: dict[str, Any]) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if name == "AWS::Region":
            return REGION
        if name in parameters and "Default" in parameters[name]:
            return str(parameters[name]["Default"])
        raise ConfigError(f"environment value !Ref {name} has no default to use locally")
    if isinstance(value, dict | list):
        raise ConfigError(f"environment value {value!r} cannot be resolved locally")
    return str(value).lower() if isinstance(value, bool) else str(value)


def function_spec(template: dict[str, Any], logical_id: str | None = None) -> FunctionSpec:
    resources = template.get("Resources", {})
    functions = {k: v for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function"}
    if not functions:
        raise ConfigError("the template declares no AWS::Serverless::Function")
    name = logical_id or next(iter(functions))
    if name not in functions:
        raise ConfigError(f"no function {name!r} in the template (has {', '.join(functions)})")
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = {**globals_, **functions[name].get("Properties", {})}
    parameters = template.get("Parameters", {})
    variables = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **functions[name].get("Properties", {}).get("Environment", {}).get("Variables", {}),
    }
    return FunctionSpec(
        logical_id=name,
        handler=str(properties["Handler"]),
        code_uri=str(properties.get("CodeUri", ".")),
        timeout_seconds=int(properties.get("Timeout", 3)),
        memory_mb=int(properties.get("MemorySize", 128)),
        environment={k: _resolve(v, parameters) for k, v in variables.items()},
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


@dataclass(frozen=True)
class InvokeResult:
    exit_code: int
    response: Any
    logs: str


def invoke(
    event_path: Path,
    template_path: Path,
    logical_id: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> InvokeResult:
    """Run the template's function on the event in ``event_path``, in a child process.

    ``overrides`` replace environment values, like ``sam local invoke --env-vars``.
    """
    try:
        json.loads(event_path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read event {event_path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise EventError(f"{event_path} is not JSON: {error}") from error
    spec = function_spec(load_template(template_path), logical_id)
    root = (template_path.resolve().parent / spec.code_uri).resolve()
    env = {**lambda_environment(spec, root), **(overrides or {})}
    with tempfile.TemporaryDirectory(prefix="alchemiser-invoke-") as scratch:
        response_path = Path(scratch) / "response.json"
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "alchemiser.handlers.local",
                spec.handler,
                str(event_path.resolve()),
                str(response_path),
            ],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=spec.timeout_seconds + 30,
            check=False,
        )
        response = json.loads(response_path.read_text()) if response_path.exists() else None
    return InvokeResult(completed.returncode, response, completed.stdout + completed.stderr)


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


def _child(handler_path: str, event_path: str, response_path: str) -> int:
    module_name, _, function_name = handler_path.rpartition(".")
    function = getattr(import_module(module_name), function_name)
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    context = LocalContext(
        os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
        int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]),
    )
    try:
        response = function(event, context)
        code = 0
    except Exception as error:  # noqa: BLE001 - reported in Lambda's error shape
        response = {"errorType": type(error).__name__, "errorMessage": str(error)}
        code = 1
    Path(response_path).write_text(json.dumps(response, indent=2, default=str), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
