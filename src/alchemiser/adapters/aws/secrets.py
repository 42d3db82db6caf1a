"""Broker credentials, read only from AWS Secrets Manager.

The secret is JSON ``{"api_key_id": ..., "api_secret_key": ..., "endpoint": "paper" |
"live"}``. It is fetched through Powertools parameters (cached for ``max_age``
seconds; boto3 honours ``AWS_ENDPOINT_URL``, so a local moto server stands in for AWS
offline). There is deliberately no fallback to environment variables or files: a
missing or malformed secret is a SecretError and the run places no order. Errors name
the secret and the fields at fault, never a value.

Secrets Manager out of reach (connection refused or timed out, throttled, a 5xx) is
SecretUnavailable: the reader's client has already retried it (3 attempts, a 5 s connect
and 10 s read timeout each, so an unreachable service is given up on in well under a
minute), and the run fails before any broker request so that Lambda, the scheduler
or SQS runs it again.
"""

from __future__ import annotations

import json
from typing import Literal

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoRegionError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from pydantic import SecretStr, ValidationError

from alchemiser.domain.values import Frozen
from alchemiser.errors import SecretError, SecretUnavailable

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
"""Secrets Manager's answers that say "later", not "no"."""
_SERVER_ERROR = 500
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
ATTEMPTS = 3
"""The reader's client gives up on an unreachable Secrets Manager in well under a
minute (botocore's defaults, a 60 s connect timeout per attempt, would hold a run for
three), and the run fails as SECRET_UNAVAILABLE, to be retried."""


def _provider() -> None:
    """Powertools' secrets provider, created (once per process, or again after a reset)
    with a bounded client: the one ``parameters.get_secret`` then uses."""
    if "secrets" in DEFAULT_PROVIDERS:
        return
    bounded = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
    )
    DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto_config=bounded)


class AlpacaCredentials(Frozen):
    api_key_id: SecretStr
    api_secret_key: SecretStr
    endpoint: Literal["paper", "live"]


def _problem(error: ValidationError) -> str:
    fields = sorted({".".join(str(p) for p in e["loc"]) or "secret" for e in error.errors()})
    return "missing or invalid field(s): " + ", ".join(fields)


def read_alpaca_credentials(
    secret_id: str, *, max_age: int = 300, force_fetch: bool = False
) -> AlpacaCredentials:
    try:
        _provider()
        value = parameters.get_secret(secret_id, max_age=max_age, force_fetch=force_fetch)
    except (GetParameterError, TransformParameterError) as error:
        what = f"cannot read secret {secret_id!r} from Secrets Manager: {_first_line(error)}"
        if _transient(error):
            raise SecretUnavailable(
                f"{what} (unreachable or busy: a transient failure, retried)"
            ) from None
        raise SecretError(what) from None
    except NoRegionError:
        raise SecretError(
            f"cannot read secret {secret_id!r}: no AWS region configured (set AWS_REGION "
            "or AWS_DEFAULT_REGION, or a profile with a region)"
        ) from None
    except BotoCoreError as error:  # the SDK refused before any request was sent
        raise SecretError(f"cannot read secret {secret_id!r}: {_first_line(error)}") from None
    if not isinstance(value, str):
        raise SecretError(f"secret {secret_id!r} is binary; expected a JSON string")
    try:
        document = json.loads(value)
    except ValueError:
        raise SecretError(f"secret {secret_id!r} is not JSON") from None
    if not isinstance(document, dict):
        raise SecretError(f"secret {secret_id!r} is not a JSON object")
    try:
        credentials = AlpacaCredentials.model_validate(document)
    except ValidationError as error:
        raise SecretError(f"secret {secret_id!r}: {_problem(error)}") from None
    if (
        not credentials.api_key_id.get_secret_value()
        or not credentials.api_secret_key.get_secret_value()
    ):
        raise SecretError(f"secret {secret_id!r}: empty api_key_id or api_secret_key")
    return credentials


def _transient(error: Exception) -> bool:
    """Whether the SDK error Powertools wrapped (it raises its own error while handling
    the SDK's, so that one is the context) is a failure to reach Secrets Manager."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, BotocoreConnectionError | HTTPClientError):
        return True
    if isinstance(cause, ClientError):
        code = str(cause.response.get("Error", {}).get("Code", ""))
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in TRANSIENT_CODES or status >= _SERVER_ERROR
    return False


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
