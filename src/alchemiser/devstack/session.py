"""One local invoke session: the moto server and the stack's resources in it, the local
exchange with ``--alpaca``, and each function's invocation in a fresh process
(``Session.invoke``), with the template's environment and, with ``--artifact``, the built
code. ``invoke.run`` drives it; ``delivery`` and ``summary`` work on it.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alchemiser.adapters.files.text import read_capped_text
from alchemiser.devstack.aws import FAKE_AWS_CREDENTIALS, Aws, moto_server
from alchemiser.devstack.functions import (
    FunctionSpec,
    function_spec,
    lambda_environment,
)
from alchemiser.devstack.output import condense, number, pretty_logs, wrap
from alchemiser.devstack.resources import create_stack
from alchemiser.devstack.runner import Invocation, run_child
from alchemiser.devstack.template import STACK_NAME, Resolver, Resource, load_template
from alchemiser.errors import ConfigError
from alchemiser.handlers.events import BUILTIN_DEFAULT

FAKE_KEY_ID = "local-invoke-key-id"
"""The local exchange's key pair under ``--alpaca`` (never printed)."""
FAKE_SECRET_KEY = "local-invoke-secret-key"  # noqa: S105 - a fake, for the local exchange
ALPACA_EXAMPLE = Path("examples") / "local-alpaca.toml"

Emit = Callable[[str], None]


@dataclass
class Sent:
    """A message the session took from a queue, to deliver again on a repeat."""

    queue: str
    body: str
    group_id: str | None
    dedup_id: str | None
    receipt_handle: str
    deleted: bool = False


@dataclass(frozen=True)
class Options:
    event_path: Path
    template_path: Path = Path("template.yaml")
    function: str | None = None
    repeat: int = 1
    alpaca: bool = False
    stack_name: str = STACK_NAME
    overrides: Mapping[str, str] = field(default_factory=dict)
    artifact: Path | None = None


class Session:
    """One local stack (moto), optionally the local exchange, and the invocations."""

    def __init__(self, options: Options, emit: Emit) -> None:
        self.options = options
        self.emit = emit
        self.template = load_template(options.template_path)
        self.invocations: list[Invocation] = []
        self.stack: dict[str, Resource] = {}
        self.taps: dict[str, str] = {}
        self.exchange: Any = None
        self.session_env: dict[str, str] = {}
        self.taken: list[Sent] = []
        self.delivered: set[tuple[str, str | None]] = set()
        self._stack = ExitStack()
        self._aws: Aws | None = None
        self.scratch = Path()

    @property
    def aws(self) -> Aws:
        assert self._aws is not None, "the session is not started"
        return self._aws

    # -- lifecycle --

    def __enter__(self) -> Session:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.scratch = Path(
            self._stack.enter_context(tempfile.TemporaryDirectory(prefix="alchemiser-invoke-"))
        )
        endpoint = self._stack.enter_context(moto_server())
        self._aws = Aws(endpoint)
        self.stack = create_stack(self.template, self.aws, self.options.stack_name)
        self.emit(
            f"stack {self.options.stack_name} from {self.options.template_path}, "
            f"on a moto server at {endpoint}:"
        )
        for resource in self.stack.values():
            self.emit(f"  {resource.logical_id:<26} {resource.summary}")
        self._tap_topics()
        if self.options.artifact is not None:
            self.emit(
                f"code: {self.options.artifact}/functions/<LogicalId> and "
                f"{self.options.artifact}/layer/python only (python -I -S, as in Lambda)"
            )
        state_dir = self.scratch / "tmp"
        state_dir.mkdir()
        self.session_env = {
            **FAKE_AWS_CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint,
            "NO_PROXY": "127.0.0.1,localhost",
            "ALCHEMISER_STATE_DIR": str(state_dir),
        }
        if self.options.alpaca:
            self._start_exchange()
        if "ALCHEMISER_CONFIG" in self.options.overrides:
            chosen = self.options.overrides["ALCHEMISER_CONFIG"]
            replaces = " (replacing --alpaca's)" if self.options.alpaca else ""
            self.emit(f"config: ALCHEMISER_CONFIG={chosen}{replaces}: {config_meaning(chosen)}")
        elif not self.options.alpaca:
            self.emit(
                "config: ALCHEMISER_CONFIG from the template (its ConfigPath default is "
                f"empty: {config_meaning('')}; --env ALCHEMISER_CONFIG={BUILTIN_DEFAULT} "
                "runs the demo)"
            )
        if "ALCHEMISER_STATE_DIR" in self.options.overrides:
            self.emit(f"ALCHEMISER_STATE_DIR={self.options.overrides['ALCHEMISER_STATE_DIR']}")
        else:
            self.emit(f"ALCHEMISER_STATE_DIR={state_dir} (a fresh /tmp for this session)")

    def _tap_topics(self) -> None:
        """Subscribe an SQS queue to every topic, to show what was published."""
        sqs, sns = self.aws.client("sqs"), self.aws.client("sns")
        for resource in self.stack.values():
            if resource.type != "AWS::SNS::Topic" or resource.name.endswith(".fifo"):
                continue
            url = sqs.create_queue(QueueName=f"local-tap-{resource.logical_id}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            sns.subscribe(
                TopicArn=resource.ref, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
            )
            self.taps[resource.logical_id] = str(url)

    def _start_exchange(self) -> None:
        from alchemiser.config import MAX_CONFIG_BYTES, load_config  # noqa: PLC0415
        from alchemiser.exchange import ExchangeSettings, LocalExchange  # noqa: PLC0415

        secret = next(
            (r for r in self.stack.values() if r.type == "AWS::SecretsManager::Secret"), None
        )
        if secret is None:
            raise ConfigError("--alpaca needs an AWS::SecretsManager::Secret in the template")
        example = self.options.template_path.resolve().parent / ALPACA_EXAMPLE
        text = read_capped_text(
            example,
            MAX_CONFIG_BYTES,
            lambda reason: ConfigError(f"cannot read {example}: {reason}"),
        )
        exchange = LocalExchange(
            settings=ExchangeSettings(key_id=FAKE_KEY_ID, secret_key=FAKE_SECRET_KEY)
        )
        exchange.start()
        self._stack.callback(exchange.stop)
        self.exchange = exchange
        self.aws.client("secretsmanager").put_secret_value(
            SecretId=secret.name,
            SecretString=json.dumps(
                {"api_key_id": FAKE_KEY_ID, "api_secret_key": FAKE_SECRET_KEY, "endpoint": "paper"}
            ),
        )
        config_path = self.scratch / "local-alpaca.toml"
        config_path.write_text(_alpaca_config(text, secret.name, exchange.url), encoding="utf-8")
        config = load_config(config_path)
        if config.alpaca is None or config.alpaca.secret_id != secret.name:
            raise ConfigError(f"{example}: expected an [alpaca] table with secret_id")
        self.session_env["ALCHEMISER_CONFIG"] = str(config_path)
        self.emit(
            f"--alpaca: the local exchange at {exchange.url} (a fake key pair, put into "
            f"secret {secret.name}); ALCHEMISER_CONFIG={config_path} ({ALPACA_EXAMPLE}, "
            f"account {config.account})"
        )

    # -- invoking --

    def spec(self, logical_id: str) -> FunctionSpec:
        resolver = Resolver(self.template, self.options.stack_name, self.stack)
        return function_spec(self.template, logical_id, resolver)

    def code(self, spec: FunctionSpec) -> tuple[Path, Path | None]:
        """The function's code directory, and the layer under ``--artifact`` (else None)."""
        if self.options.artifact is None:
            return (self.options.template_path.resolve().parent / spec.code_uri).resolve(), None
        return artifact_code(self.options.artifact, spec.logical_id)

    def invoke(self, logical_id: str, event: Any, delivery: int, why: str) -> Invocation:
        spec = self.spec(logical_id)
        root, layer = self.code(spec)
        env = {**lambda_environment(spec, root), **self.session_env, **self.options.overrides}
        self.emit("")
        self.emit(f"-- delivery {delivery}: {spec.logical_id} ({spec.handler}) <- {why}")
        invocation = run_child(spec, event, env, root, self.scratch, delivery, layer)
        self.invocations.append(invocation)
        self._show(invocation)
        return invocation

    def _show(self, invocation: Invocation) -> None:
        self.emit("logs:")
        for line in pretty_logs(invocation.logs) or ["(none)"]:
            self.emit("  " + line)
        pairs = [f"{name} = {number(value)}" for name, value in invocation.metrics]
        self.emit("metrics:" if pairs else "metrics: (none)")
        for line in wrap(pairs, 94):
            self.emit("  " + line)
        outcome = "ok" if invocation.ok else "FUNCTION ERROR"
        if invocation.exit_code == 0 and invocation.failed_items:
            outcome = f"{len(invocation.failed_items)} batch item(s) failed"
        self.emit(f"response ({outcome}, {invocation.seconds:.1f} s):")
        response = invocation.response
        if invocation.exit_code != 0 and isinstance(response, dict) and "errorType" in response:
            code = f" ({invocation.error_code})" if invocation.error_code else ""
            message = condense(str(response.get("errorMessage", "")).splitlines()) or [""]
            self.emit(f"  errorType: {response['errorType']}{code}")
            self.emit(f"  errorMessage: {message[0]}")
            for line in message[1:]:
                self.emit("  " + line)
        else:
            for line in json.dumps(response, indent=2, default=str).splitlines():
                self.emit("  " + line)
        if invocation.replayed:
            self.emit(
                f"delivery {invocation.delivery}: answered from idempotency (no new run, no orders)"
            )


def config_meaning(value: str) -> str:
    """What the functions make of ALCHEMISER_CONFIG=``value``."""
    if not value.strip():
        return "not configured, every run is recorded as skipped (not_configured)"
    if value.strip() == BUILTIN_DEFAULT:
        return "the embedded demo config, a simulated account on the bundled prices"
    return "a TOML config"


def artifact_code(artifact: Path, logical_id: str) -> tuple[Path, Path]:
    """``artifact/functions/<logical_id>`` and ``artifact/layer/python``, which must exist."""
    root = (artifact / "functions" / logical_id).resolve()
    layer = (artifact / "layer" / "python").resolve()
    for folder in (root, layer):
        if not folder.is_dir():
            raise ConfigError(
                f"--artifact {artifact}: no {folder} (expected a build: layer/python and "
                "functions/<LogicalId>/, from make build or make build-host)"
            )
    return root, layer


def _alpaca_config(text: str, secret_id: str, url: str) -> str:
    """examples/local-alpaca.toml with the template's secret and the exchange's URL."""
    replaced = text
    for key, value in (("secret_id", secret_id), ("trading_url", url), ("data_url", url)):
        replaced, count = re.subn(
            rf'^{key}\s*=\s*"[^"]*"', f"{key} = {json.dumps(value)}", replaced, flags=re.M
        )
        if count != 1:
            raise ConfigError(f'{ALPACA_EXAMPLE}: expected one {key} = "..." line')
    return replaced
