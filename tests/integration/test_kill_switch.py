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

from alchemiser import cli
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


def _run(
    tmp_path: Path, config: Path, env: dict[str, str], *extra: str, scheduled: str = SCHEDULED
) -> Any:
    args = ["run", "--config", str(config), "--state-dir", str(tmp_path / "state"), *extra]
    result = run_cli([*args, "--scheduled-time", scheduled], env, cwd=tmp_path)
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
    # The halted trigger is a finished (blocked) run: asked again, it is answered from
    # the ledger and trades nothing. A later trigger trades.
    again = _run(tmp_path, config, env, "--json")
    assert again.returncode == 0, again.stderr
    assert "answered from the ledger" in again.stdout
    assert exchange.count("POST", ORDERS) == 0
    later = SCHEDULED.replace("13:30:00", "13:45:00")
    active = _run(tmp_path, config, env, "--json", scheduled=later)

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


# -- alchemiser halt / resume ------------------------------------------------------------


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """This process's AWS settings: the moto server, fake keys, one region."""
    for name in cli_env(moto_server):
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, cli_env(moto_server)[name])
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.delenv("ALCHEMISER_TRADING_STATE_PARAMETER", raising=False)
    return moto_server


def _value(moto: str, name: str, region: str = REGION) -> str | None:
    client = boto3.client(
        "ssm",
        endpoint_url=moto,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        return str(client.get_parameter(Name=name)["Parameter"]["Value"])
    except client.exceptions.ParameterNotFound:
        return None


def test_halt_and_resume_print_the_parameter_and_the_state_read_back(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _parameter(aws_env, "ACTIVE")
    arn = f"arn:aws:ssm:{REGION}:"

    assert cli.main(["halt", "--parameter", name]) == 0
    out = capsys.readouterr().out
    assert _value(aws_env, name) == "HALTED"
    assert arn in out
    assert f"parameter{name} = HALTED" in out

    assert cli.main(["halt", "--reduce", "--parameter", name]) == 0
    assert _value(aws_env, name) == "REDUCING"
    assert f"parameter{name} = REDUCING" in capsys.readouterr().out

    assert cli.main(["resume", "--parameter", name]) == 0
    assert _value(aws_env, name) == "ACTIVE"
    assert f"parameter{name} = ACTIVE" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["halt"], ["halt", "--reduce"], ["resume"]])
def test_a_parameter_that_does_not_exist_is_not_created(
    aws_env: str, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    name = _parameter(aws_env, None)  # a typo, say

    assert cli.main([*command, "--parameter", name]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert name in captured.err
    assert "does not exist" in captured.err
    assert _value(aws_env, name) is None


def test_halt_in_the_wrong_region_creates_nothing_there(
    aws_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _parameter(aws_env, "ACTIVE")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    assert cli.main(["halt", "--parameter", name]) == 2

    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "eu-west-1" in err
    assert _value(aws_env, name, region="eu-west-1") is None
    assert _value(aws_env, name) == "ACTIVE"


def test_halt_without_a_region_is_a_configuration_error(
    aws_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _parameter(aws_env, "ACTIVE")
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    assert cli.main(["halt", "--parameter", name]) == 2

    err = capsys.readouterr().err
    assert err.startswith("alchemiser: configuration error:")
    assert "region" in err
    assert _value(aws_env, name) == "ACTIVE"
