"""Shared fixtures and helpers for running the real CLI against Alpaca's API offline.

A moto server stands in for Secrets Manager and the local exchange for Alpaca. Nothing
here changes this process's environment: each CLI run gets the environment it needs
explicitly (see :func:`cli_env`), so Powertools' in-process secret cache and the
caller's AWS settings never leak between runs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from alchemiser.exchange import ExchangeSettings, LocalExchange

FAKE_KEY_ID = "test-key-id"
FAKE_SECRET_KEY = "test-secret-value"
SECRET_VALUES = (FAKE_KEY_ID, FAKE_SECRET_KEY)
"""What must never appear in any output, report or ledger."""

SCHEDULED = "2026-07-31T13:30:00Z"
"""The exchange's clock starts on 2026-07-31 at 09:30:01 New York: this trigger is the
broker's today and the market is open."""

REGION = "us-east-1"
DEFAULT_WEIGHTS = {"SPY": 0.5, "TLT": 0.3, "GLD": 0.19}
_DROPPED_ENV_PREFIXES = ("AWS_", "ALPACA_", "APCA_", "POWERTOOLS_", "ALCHEMISER_")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port); yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _secrets_client(endpoint: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def secret_document(
    endpoint: str = "paper",
    key_id: str = FAKE_KEY_ID,
    secret_key: str = FAKE_SECRET_KEY,
) -> dict[str, str]:
    return {"api_key_id": key_id, "api_secret_key": secret_key, "endpoint": endpoint}


def create_secret(endpoint: str, name: str, document: Mapping[str, Any] | str) -> str:
    """Store ``document`` (JSON-encoded unless already a string) as secret ``name``."""
    text = document if isinstance(document, str) else json.dumps(document)
    _secrets_client(endpoint).create_secret(Name=name, SecretString=text)
    return name


def unique_secret_name(prefix: str = "alchemiser/test") -> str:
    """The moto server lives for the session: every test gets its own secret names."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def cli_env(moto_endpoint: str, **extra: str) -> dict[str, str]:
    """This process's environment without any AWS, Alpaca or Powertools settings, plus
    moto's endpoint and fake credentials, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


@pytest.fixture
def exchange() -> Iterator[LocalExchange]:
    """A fresh local exchange on a free port. It demands the fake key pair, so a run that
    gets through proves the secret's keys (and only those) reached the broker."""
    with LocalExchange(settings=exchange_settings()) as running:
        yield running


def exchange_settings(**changes: Any) -> ExchangeSettings:
    return ExchangeSettings(key_id=FAKE_KEY_ID, secret_key=FAKE_SECRET_KEY, **changes)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def write_config(
    tmp_path: Path,
    exchange_url: str,
    *,
    account: str = "paper-test",
    mode: str = "paper",
    secret_id: str = "alchemiser/paper",
    trading_url: str | None = None,
    data_url: str | None = None,
    weights: Mapping[str, float] | None = None,
    name: str = "alpaca.toml",
) -> Path:
    """A real-broker config pointing at ``exchange_url`` (trading and data unless
    overridden), with small backoffs and a fast poll so tests stay quick."""
    text = f"""\
account = {_toml_value(account)}
broker = "alpaca"
mode = {_toml_value(mode)}

[alpaca]
secret_id = {_toml_value(secret_id)}
trading_url = {_toml_value(trading_url or exchange_url)}
data_url = {_toml_value(data_url or exchange_url)}

[alpaca.retry]
initial_backoff_seconds = 0.01
max_backoff_seconds = 0.05
jitter_seconds = 0.0

[execution]
poll_interval_seconds = 0.05
fill_timeout_seconds = 5
cancel_timeout_seconds = 2

[[strategies]]
name = "core"
allocation = 1.0
weights = {_toml_value(weights if weights is not None else DEFAULT_WEIGHTS)}
"""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cli_command(args: list[str] | tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "alchemiser.cli", *args]


def run_cli(
    args: list[str] | tuple[str, ...],
    env: Mapping[str, str],
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real ``alchemiser`` command in a fresh process (``python -m alchemiser.cli``)."""
    return subprocess.run(
        cli_command(args),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def popen_cli(
    args: list[str] | tuple[str, ...], env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(args),
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_no_secrets(*texts: str, values: tuple[str, ...] = SECRET_VALUES) -> None:
    for text in texts:
        for value in values:
            assert value not in text, f"a secret value leaked: {text[:500]!r}"


def assert_state_clean(state_dir: Path, values: tuple[str, ...] = SECRET_VALUES) -> None:
    """No file under ``state_dir`` (the ledger) holds a secret value."""
    for path in state_dir.rglob("*"):
        if path.is_file():
            assert_no_secrets(path.read_text(encoding="utf-8", errors="replace"), values=values)
