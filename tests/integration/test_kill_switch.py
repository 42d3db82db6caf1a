"""The kill switch everywhere a run can start, and the commands that set it.

- ``alchemiser run`` (paper or live) reads the config's ``trading_state_parameter`` and
  trades under the stricter state; a switch it cannot read fails the run before any
  broker request (a moto server plays SSM, the local exchange plays Alpaca, the CLI runs
  in a fresh process: Powertools caches parameters in-process).
- The Lambda uses the config's parameter when its environment names none.
- ``halt`` / ``resume`` only change a parameter that exists, then read it back.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from alchemiser.exchange import LocalExchange
from tests.integration.alpaca_fixtures import (
    REGION,
    SCHEDULED,
    assert_no_secrets,
    cli_env,
    create_secret,
    run_cli,
    secret_document,
    unique_secret_name,
    write_config,
)
from tests.integration.aws_stack import (
    PARAMETER,
    AccountSpec,
    Output,
    Stack,
    config_text,
    output,
    stack,
)

pytestmark = pytest.mark.integration

__all__ = ["output", "stack"]  # fixtures

ORDERS = "/v2/orders"


def _ssm(moto: str) -> Any:
    return boto3.client(
        "ssm",
        endpoint_url=moto,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _parameter(moto: str, value: str | None) -> str:
    """A fresh parameter name in the moto server, holding ``value`` (None: not created)."""
    name = f"/alchemiser/test-{uuid.uuid4().hex[:10]}/trading-state"
    if value is not None:
        _ssm(moto).put_parameter(Name=name, Value=value, Type="String")
    return name


def _paper_config(
    tmp_path: Path, moto: str, exchange: LocalExchange, parameter: str, **kw: Any
) -> Path:
    secret = create_secret(moto, unique_secret_name(), secret_document("paper"))
    path = write_config(tmp_path, exchange.url, secret_id=secret, **kw)
    path.write_text(
        f'trading_state_parameter = "{parameter}"\n' + path.read_text(), encoding="utf-8"
    )
    return path


def _run(tmp_path: Path, config: Path, env: dict[str, str], *extra: str) -> Any:
    args = ["run", "--config", str(config), "--state-dir", str(tmp_path / "state"), *extra]
    result = run_cli([*args, "--scheduled-time", SCHEDULED], env, cwd=tmp_path)
    assert_no_secrets(result.stdout, result.stderr)
    return result


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- alchemiser run --------------------------------------------------------------------


def test_a_paper_run_obeys_the_switch_in_ssm(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    parameter = _parameter(moto_server, "HALTED")
    config = _paper_config(tmp_path, moto_server, exchange, parameter)
    env = cli_env(moto_server)

    halted = _run(tmp_path, config, env, "--json")

    assert halted.returncode == 0, halted.stderr
    assert '"trading_state": "HALTED"' in halted.stdout
    assert '"status": "blocked"' in halted.stdout
    assert exchange.count("POST", ORDERS) == 0
    assert exchange.engine.accepted_orders() == []

    _ssm(moto_server).put_parameter(Name=parameter, Value="ACTIVE", Overwrite=True, Type="String")
    active = _run(tmp_path, config, env, "--json")

    assert active.returncode == 0, active.stderr
    assert '"trading_state": "ACTIVE"' in active.stdout
    assert exchange.count("POST", ORDERS) == 3


UNREADABLE = {
    "missing": ({}, None),
    "not-a-state": ({}, "PAUSED"),
    "no-region": ({"AWS_DEFAULT_REGION": "", "AWS_CONFIG_FILE": "/nonexistent"}, "HALTED"),
    "unreachable": ({"AWS_ENDPOINT_URL": "closed", "AWS_MAX_ATTEMPTS": "1"}, "HALTED"),
}


@pytest.mark.parametrize(("env_changes", "value"), UNREADABLE.values(), ids=list(UNREADABLE))
def test_an_unreadable_switch_fails_closed_before_any_broker_request(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    env_changes: dict[str, str],
    value: str | None,
) -> None:
    parameter = _parameter(moto_server, value)
    config = _paper_config(tmp_path, moto_server, exchange, parameter)
    env = cli_env(moto_server, **env_changes)
    if env.get("AWS_ENDPOINT_URL") == "closed":
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in env.items() if v != ""}

    result = _run(tmp_path, config, env)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "TRADING_STATE_UNAVAILABLE" in result.stderr
    assert "Traceback" not in result.stderr
    assert exchange.requests == []


def test_an_account_may_name_its_own_switch(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    top = _parameter(moto_server, "ACTIVE")
    own = _parameter(moto_server, "HALTED")
    config = _paper_config(tmp_path, moto_server, exchange, top)
    secret = create_secret(moto_server, unique_secret_name(), secret_document("paper"))
    config.write_text(
        config.read_text()
        + f'\n[[accounts]]\naccount = "ira"\ntrading_state_parameter = "{own}"\n'
        + f'alpaca = {{ secret_id = "{secret}" }}\n',
        encoding="utf-8",
    )

    result = _run(tmp_path, config, cli_env(moto_server), "--account", "ira", "--json")

    assert result.returncode == 0, result.stderr
    assert '"trading_state": "HALTED"' in result.stdout
    assert exchange.count("POST", ORDERS) == 0


# -- the Lambda ------------------------------------------------------------------------


def _lambda_config(stack: Stack, parameter: str) -> None:
    exchange, secret_id = stack.single()
    path = stack.tmp / "switch.toml"
    text = config_text([AccountSpec("paper-test", secret_id, exchange.url)])
    path.write_text(f'trading_state_parameter = "{parameter}"\n' + text, encoding="utf-8")
    stack.use_config(path)


def test_the_lambda_reads_the_configs_switch_when_its_environment_names_none(
    stack: Stack, output: Output
) -> None:
    stack.monkeypatch.delenv("ALCHEMISER_TRADING_STATE_PARAMETER")
    boto3.client("ssm").put_parameter(Name="/from/config", Value="HALTED", Type="String")
    _lambda_config(stack, "/from/config")

    result = stack.run()
    output.read()

    assert result["trading_state"] == "HALTED"
    assert result["orders"] == []


def test_the_lambdas_environment_names_the_switch_first(stack: Stack, output: Output) -> None:
    boto3.client("ssm").put_parameter(Name="/from/config", Value="HALTED", Type="String")
    _lambda_config(stack, "/from/config")  # the environment's PARAMETER says ACTIVE

    result = stack.run()
    output.read()

    assert stack.trading_state() == "ACTIVE"
    assert PARAMETER != "/from/config"
    assert result["trading_state"] == "ACTIVE"
