"""The real ``alchemiser check`` in a fresh process: moto holds the secret and the kill
switch, the local exchange plays Alpaca. Every run is checked for leaked keys, and
the exchange for anything but reads. Then the cold-start gate in the handler."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from alchemiser.devstack.runner import LocalContext
from alchemiser.errors import ConfigError
from alchemiser.exchange import LocalExchange
from tests.conftest import SESSIONS, write_prices
from tests.integration.alpaca_fixtures import (
    REGION,
    assert_no_secrets,
    cli_env,
    create_secret,
    run_cli,
    secret_document,
    unique_secret_name,
    write_config,
)

pytestmark = pytest.mark.integration
EVENTS = Path(__file__).resolve().parents[2] / "events"
PIN = "PA9TESTPIN77"
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def check(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(["check", *args], env, cwd=tmp_path)
    assert_no_secrets(result.stdout, result.stderr)
    assert PIN not in result.stdout + result.stderr
    return result


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each check's first line, by name: ``{"secret": "FAIL ..."}``."""
    named: dict[str, str] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("ok", "FAIL", "skip"):
            named.setdefault(parts[1], line)
    return named


def no_writes(exchange: LocalExchange) -> None:
    assert [r.endpoint for r in exchange.requests if r.method in WRITES] == []


def paper(tmp_path: Path, moto: str, exchange: LocalExchange, **config: Any) -> Path:
    secret = create_secret(moto, unique_secret_name(), secret_document("paper"))
    return write_config(tmp_path, exchange.url, secret_id=secret, **config)


def pinned(path: Path, number: str) -> Path:
    text = path.read_text().replace("[alpaca]\n", f'[alpaca]\naccount_number = "{number}"\n', 1)
    path.write_text(text)
    return path


def test_a_good_paper_config_is_all_ok_at_the_broker(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    exchange.configure(account_number=PIN)
    config = pinned(paper(tmp_path, moto_server, exchange), PIN)
    result = check(tmp_path, cli_env(moto_server), "--config", str(config), "--broker")
    assert result.returncode == 0, result.stdout + result.stderr
    named = lines(result)
    for name in ("config", "data", "region", "secret", "endpoint", "account"):
        assert named[name].startswith("ok"), named[name]
    assert "3 tickers have bars at Alpaca up to 2026-07-30" in named["data"]
    assert "matches the account_number pin" in named["account"]
    assert exchange.count() > 0
    no_writes(exchange)


def test_an_account_pin_mismatch_fails(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    exchange.configure(account_number="PA0THEREAL0")
    config = pinned(paper(tmp_path, moto_server, exchange), PIN)
    result = check(tmp_path, cli_env(moto_server), "--config", str(config), "--broker")
    assert result.returncode == 1
    assert lines(result)["account"].startswith("FAIL")
    assert "PA0THEREAL0" not in result.stdout + result.stderr
    no_writes(exchange)


def test_a_ticker_without_bars_at_the_broker_is_named(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    config = paper(tmp_path, moto_server, exchange, weights={"SPY": 0.5, "ZZZZ": 0.4})
    result = check(tmp_path, cli_env(moto_server), "--config", str(config), "--broker")
    assert result.returncode == 1
    assert lines(result)["data"].startswith("FAIL")
    assert lines(result)["data"].endswith(": ZZZZ")
    no_writes(exchange)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (None, "cannot read secret"),
        ({"api_key_id": "k", "endpoint": "paper"}, "missing or invalid field(s): api_secret_key"),
        ("not json", "is not JSON"),
    ],
)
def test_a_missing_or_misshapen_secret_fails(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    document: dict[str, str] | str | None,
    problem: str,
) -> None:
    name = unique_secret_name()
    if document is not None:
        create_secret(moto_server, name, document)
    config = write_config(tmp_path, exchange.url, secret_id=name)
    result = check(tmp_path, cli_env(moto_server), "--config", str(config), "--broker")
    assert result.returncode == 1
    named = lines(result)
    assert named["secret"].startswith("FAIL")
    assert problem in named["secret"]
    assert named["endpoint"].startswith("skip")
    assert named["account"].startswith("skip")
    assert exchange.count() == 0


def test_paper_and_live_must_agree(tmp_path: Path, moto_server: str) -> None:
    """A live config: no trading_url, so nothing could reach a broker; none is asked."""
    env = cli_env(moto_server)
    paper_secret = create_secret(moto_server, unique_secret_name(), secret_document("paper"))
    live_secret = create_secret(moto_server, unique_secret_name(), secret_document("live"))
    for secret, flags, expected in (
        (paper_secret, ["--live"], "the secret's endpoint is 'paper'"),
        (live_secret, [], "confirm with --live"),
    ):
        config = tmp_path / "live.toml"
        config.write_text(
            f'broker = "alpaca"\nmode = "live"\n[alpaca]\nsecret_id = "{secret}"\n'
            '[[strategies]]\nname = "s"\nallocation = 1.0\nweights = {SPY = 1.0}\n'
        )
        result = check(tmp_path, env, "--config", str(config), "--broker", *flags)
        assert result.returncode == 1
        named = lines(result)
        assert named["endpoint"].startswith("FAIL")
        assert expected in named["endpoint"]
        assert named["account"].startswith("skip")


def test_the_kill_switch_parameter_must_exist(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    config = paper(tmp_path, moto_server, exchange)
    missing = f"/alchemiser/{unique_secret_name('gone')}"
    result = check(
        tmp_path,
        cli_env(moto_server, ALCHEMISER_TRADING_STATE_PARAMETER=missing),
        "--config",
        str(config),
    )
    assert result.returncode == 1
    assert lines(result)["kill-switch"].startswith("FAIL")
    present = f"/alchemiser/{unique_secret_name('state')}"
    ssm = boto3.client(
        "ssm",
        endpoint_url=moto_server,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ssm.put_parameter(Name=present, Value="ACTIVE", Type="String")
    result = check(
        tmp_path,
        cli_env(moto_server, ALCHEMISER_TRADING_STATE_PARAMETER=present),
        "--config",
        str(config),
    )
    assert result.returncode == 0, result.stdout
    assert lines(result)["kill-switch"] == f"ok   kill-switch  {present} holds ACTIVE"
    assert exchange.count() == 0  # without --broker, the broker is not asked


def test_no_region_is_said_not_raised(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    config = paper(tmp_path, moto_server, exchange)
    env = cli_env(moto_server, AWS_CONFIG_FILE=str(tmp_path / "none"))
    del env["AWS_DEFAULT_REGION"]
    result = check(tmp_path, env, "--config", str(config), "--broker")
    assert result.returncode == 1
    named = lines(result)
    assert named["region"].startswith("FAIL")
    assert "no AWS region" in named["region"]
    assert named["secret"].startswith("skip")
    assert "Traceback" not in result.stderr
    assert exchange.count() == 0


def test_local_checks_of_a_simulated_config(tmp_path: Path, moto_server: str) -> None:
    prices = write_prices(tmp_path / "prices", {"SPY": dict.fromkeys(SESSIONS, 500.0)})
    config = tmp_path / "sim.toml"
    config.write_text(
        '[[strategies]]\nname = "s"\nallocation = 0.5\nweights = {SPY = 1.0}\n'
        '[[strategies]]\nname = "n"\nkind = "symphony"\nallocation = 0.5\nfile = "n.clj"\n'
    )
    env = cli_env(moto_server)
    args = ["--config", str(config), "--prices", str(prices), "--as-of", "2026-08-03"]
    missing = check(tmp_path, env, *args)
    assert missing.returncode == 1
    assert lines(missing)["symphony"] == (
        f"FAIL symphony     strategies[1] (n.clj): file not found: {tmp_path / 'n.clj'}"
    )
    (tmp_path / "n.clj").write_text('(defsymphony "n" {} (weight-equal [(asset "TLT")]))\n')
    no_data = check(tmp_path, env, *args)
    assert no_data.returncode == 1
    assert lines(no_data)["data"] == f"FAIL data         no price file for TLT in {prices}"
    write_prices(prices, {"TLT": dict.fromkeys(SESSIONS, 90.0)})
    good = check(tmp_path, env, *args)
    assert good.returncode == 0, good.stdout
    assert (
        good.stdout.splitlines()[0] == f"ok   config       loaded {config}: 1 account, 2 strategies"
    )
    stale = check(
        tmp_path, env, "--config", str(config), "--prices", str(prices), "--as-of", "2026-09-01"
    )
    assert stale.returncode == 1
    assert lines(stale)["freshness"].startswith("FAIL")


def test_a_config_that_does_not_load_lists_every_problem(tmp_path: Path, moto_server: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        'mode = "paper"\nacount = "x"\n'
        '[[strategies]]\nname = "s"\nallocation = 2\nweights = {SPY = 1.0}\n'
    )
    result = check(tmp_path, cli_env(moto_server), "--config", str(config))
    assert result.returncode == 2
    assert result.stdout.startswith("FAIL config ")
    assert "acount" in result.stdout
    assert "strategies[0].allocation" in result.stdout


def test_the_handler_fails_closed_at_cold_start(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alchemiser.adapters.aws import secrets  # noqa: PLC0415
    from alchemiser.handlers.rebalance import handler  # noqa: PLC0415

    def never(*args: object, **kwargs: object) -> object:
        raise AssertionError("the secret was read")

    monkeypatch.setattr(secrets, "read_alpaca_credentials", never)
    config = paper(tmp_path, moto_server, exchange)
    text = config.read_text().replace("allocation = 1.0", "allocation = 0.9") + (
        '\n[[strategies]]\nname = "n"\nkind = "symphony"\nallocation = 0.01\nfile = "gone.clj"\n'
    )
    config.write_text(text)
    for key, value in cli_env(moto_server).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("ALCHEMISER_CONFIG", str(config))
    monkeypatch.setenv("ALCHEMISER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    event = json.loads((EVENTS / "market_open.json").read_text())
    with pytest.raises(ConfigError) as raised:
        handler(event, LocalContext("RebalanceFunction", 1024, 300))
    assert f"symphony: strategies[1] (gone.clj): file not found: {tmp_path / 'gone.clj'}" in str(
        raised.value
    )
    assert exchange.count() == 0
