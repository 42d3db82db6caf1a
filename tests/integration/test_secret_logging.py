"""With the root logger at DEBUG (what the Lambda runtime sets for ApplicationLogLevel
DEBUG with JSON logs), no key reaches any log record, stdout or stderr: not the
secret's key pair read through the product's reader, not the session token botocore
signs with, not on the whole handler path."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from alchemiser import observability
from alchemiser.adapters.aws.secrets import read_alpaca_credentials
from alchemiser.exchange import LocalExchange
from tests.conftest import SessionLogCapture
from tests.integration import alpaca_fixtures
from tests.integration.aws_stack import (
    FAKE_KEY_ID,
    FAKE_SECRET_KEY,
    REGION,
    Output,
    Stack,
    output,
    secret_document,
    stack,
)

__all__ = ["output", "stack"]  # fixtures
pytestmark = pytest.mark.integration

SESSION_TOKEN = "FakeSessionTokenForDebugLogs0123456789abcdef"
SECRET_VALUES = (FAKE_KEY_ID, FAKE_SECRET_KEY, SESSION_TOKEN)


@contextlib.contextmanager
def debug_logging() -> Iterator[SessionLogCapture]:
    """The root logger and the product's logger at DEBUG; every record they see kept."""
    capture = SessionLogCapture()
    root = logging.getLogger()
    product = logging.getLogger(observability.logger.name)
    levels = (root.level, product.level)
    root.setLevel(logging.DEBUG)
    product.setLevel(logging.DEBUG)
    root.addHandler(capture)
    product.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        product.removeHandler(capture)
        root.setLevel(levels[0])
        product.setLevel(levels[1])


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for value in SECRET_VALUES:
            assert value not in text, f"{value!r} reached the logs: {text[:300]!r}"


def test_reading_the_secret_at_debug_logs_no_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    parameters.clear_caches()
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="alchemiser/debug", SecretString=json.dumps(secret_document())
        )
        with debug_logging() as capture:
            logging.getLogger("alchemiser.tests").debug("capture canary")
            credentials = read_alpaca_credentials("alchemiser/debug", force_fetch=True)
    parameters.clear_caches()

    assert credentials.api_key_id.get_secret_value() == FAKE_KEY_ID
    assert any("capture canary" in text for text in capture.texts)
    captured = capsys.readouterr()
    assert_no_secret(*capture.texts, captured.out, captured.err)


def test_the_handler_at_debug_logs_no_key(
    stack: Stack, output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange, _ = stack.single()
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")

    with debug_logging() as capture:
        result = stack.run()

    assert result["status"] == "completed"
    assert exchange.requests, "the run reached the broker"
    assert any("run finished" in text for text in capture.texts)
    assert_no_secret(*capture.texts, output.read())


DEBUG_CLI = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG)\n"
    "logging.getLogger('canary').debug('the root is at DEBUG')\n"
    "from alchemiser.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
"""The real CLI in a process whose root logger is at DEBUG with a handler on stderr (as
in a user's script or notebook that turns on logging before calling it)."""


def test_the_cli_with_the_root_at_debug_prints_no_key(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    secret = alpaca_fixtures.create_secret(
        moto_server, alpaca_fixtures.unique_secret_name(), alpaca_fixtures.secret_document()
    )
    config = alpaca_fixtures.write_config(tmp_path, exchange.url, secret_id=secret)
    env = alpaca_fixtures.cli_env(moto_server, AWS_SESSION_TOKEN=SESSION_TOKEN)
    args = ["run", "--config", str(config), "--state-dir", str(tmp_path / "state")]

    result = subprocess.run(
        [sys.executable, "-c", DEBUG_CLI, *args, "--scheduled-time", alpaca_fixtures.SCHEDULED],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "DEBUG:canary:the root is at DEBUG" in result.stderr
    assert exchange.requests, "the run reached the broker"
    alpaca_fixtures.assert_no_secrets(
        result.stdout, result.stderr, values=(*alpaca_fixtures.SECRET_VALUES, SESSION_TOKEN)
    )
