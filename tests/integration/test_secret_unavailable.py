"""Secrets Manager out of reach is a transient AWS failure, SECRET_UNAVAILABLE (retried),
not a secret to put again (SECRET_INVALID)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from alchemiser.adapters.aws import secrets
from alchemiser.adapters.aws.secrets import read_alpaca_credentials
from alchemiser.errors import SecretError, SecretUnavailable
from tests.integration.aws_stack import ACCOUNT, REGION, Output, Stack, output, stack

__all__ = ["output", "stack"]  # fixtures
pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def unreachable(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """Secrets Manager at a closed port, one attempt per read (botocore's retries are
    bounded: the default three attempts would only make the test slower)."""
    monkeypatch.setenv(variable, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # Powertools keeps its secrets client for the process: a fresh one sees the endpoint.
    monkeypatch.delitem(DEFAULT_PROVIDERS, "secrets", raising=False)


def test_unreachable_secrets_manager_is_secret_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    unreachable(monkeypatch, "AWS_ENDPOINT_URL")
    parameters.clear_caches()

    with pytest.raises(SecretUnavailable) as caught:
        read_alpaca_credentials("alchemiser/unreachable", force_fetch=True)

    assert caught.value.code == "SECRET_UNAVAILABLE"
    assert caught.value.retryable
    assert "alchemiser/unreachable" in str(caught.value)
    assert isinstance(caught.value, SecretError)  # still "no keys": nothing is sent


def _failing_read(error: Exception) -> Any:
    def get_secret(*_: object, **__: object) -> Any:
        try:
            raise error
        except Exception as exc:  # noqa: BLE001 - as Powertools wraps every SDK error
            raise GetParameterError(str(exc))  # noqa: B904 - Powertools chains implicitly

    return get_secret


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("InternalServiceError", 500), ("ServiceUnavailable", 503)],
)
def test_throttling_and_server_errors_are_unavailable(
    monkeypatch: pytest.MonkeyPatch, code: str, status: int
) -> None:
    refused = ClientError(
        {
            "Error": {"Code": code, "Message": "try later"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetSecretValue",
    )
    monkeypatch.setattr(secrets.parameters, "get_secret", _failing_read(refused))

    with pytest.raises(SecretUnavailable):
        read_alpaca_credentials("alchemiser/busy")


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "AccessDeniedException"])
def test_a_missing_or_forbidden_secret_stays_invalid(
    monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    refused = ClientError(
        {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "GetSecretValue",
    )
    monkeypatch.setattr(secrets.parameters, "get_secret", _failing_read(refused))

    with pytest.raises(SecretError) as caught:
        read_alpaca_credentials("alchemiser/absent")

    assert caught.value.code == "SECRET_INVALID"
    assert not isinstance(caught.value, SecretUnavailable)


def test_the_handler_fails_the_run_for_a_retry_without_touching_the_exchange(
    stack: Stack, output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange, _ = stack.single()
    unreachable(monkeypatch, "AWS_ENDPOINT_URL_SECRETS_MANAGER")

    with pytest.raises(SecretUnavailable):
        stack.run()  # the error leaves the handler: Lambda, the scheduler and SQS retry

    assert exchange.requests == []
    (notice,) = stack.notices()
    assert notice.subject == f"[alchemiser] {ACCOUNT}: FAILED before a report"
    assert notice.json()["error"]["code"] == "SECRET_UNAVAILABLE"
    assert stack.ledger().last_runs(ACCOUNT, 5) == []
    assert output.metrics(output.read())["RunFailed"] == [1.0]


@pytest.mark.parametrize("missing", ["region", "credentials"])
def test_no_aws_region_or_credentials_is_a_typed_secret_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, missing: str
) -> None:
    """The SDK refuses before any request (no region configured, no credentials found):
    the run fails closed with a SecretError saying what is missing, never a raw botocore
    exception."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if missing == "credentials":
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        unreachable(monkeypatch, "AWS_ENDPOINT_URL")
    monkeypatch.delitem(DEFAULT_PROVIDERS, "secrets", raising=False)
    with pytest.raises(SecretError) as raised:
        read_alpaca_credentials("alchemiser/none", force_fetch=True)
    assert missing in raised.value.message.lower()


def test_secrets_manager_out_of_reach_is_given_up_on_in_seconds_not_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore's defaults (a 60 s connect timeout, three attempts) would hold a run for
    three minutes when packets are dropped: the reader's client is bounded instead."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    unreachable(monkeypatch, "AWS_ENDPOINT_URL")
    with pytest.raises(SecretUnavailable):
        read_alpaca_credentials("alchemiser/none", force_fetch=True)
    config = DEFAULT_PROVIDERS["secrets"].client.meta.config
    assert config.connect_timeout <= secrets.CONNECT_TIMEOUT_SECONDS
    assert config.read_timeout <= secrets.READ_TIMEOUT_SECONDS
    assert config.retries["total_max_attempts"] <= secrets.ATTEMPTS
