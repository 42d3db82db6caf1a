"""The redaction filter on crafted records, and the AWS libraries' loggers pinned above
DEBUG whatever the root level."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from alchemiser import logsafety
from alchemiser.observability import logger

KEY_ID = "AKREDACTIONTESTKEY01"
SECRET = "redaction-test-secret-9f2c"
TOKEN = "redaction-test-session-token-77ab"
SIGNATURE = "5d1f0e2a9b3c4d7e8f60a1b2c3d4e5f6"
VALUES = (KEY_ID, SECRET, TOKEN, SIGNATURE)


def record(msg: object, args: object = None, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("botocore.parsers", logging.DEBUG, __file__, 1, msg, None, None)
    made.args = args  # type: ignore[assignment]  # a tuple or a mapping, as logging allows
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def rendered(made: logging.LogRecord) -> str:
    """Everything a formatter could print from the record: message and extra fields."""
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
    extra = {k: v for k, v in vars(made).items() if k not in standard}
    return made.getMessage() + "\n" + repr(extra)


def filtered(made: logging.LogRecord) -> str:
    assert logsafety.RedactingFilter().filter(made) is True
    text = rendered(made)
    for value in VALUES:
        assert value not in text, text
    return text


def test_secret_string_in_a_botocore_response_body() -> None:
    body = json.dumps(
        {
            "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:acct-a",
            "SecretString": json.dumps({"api_key_id": KEY_ID, "api_secret_key": SECRET}),
            "VersionId": "v-1",
        }
    ).encode()
    text = filtered(record("Response body:\n%s", (body,)))
    assert "arn:aws:secretsmanager" in text
    assert "VersionId" in text


def test_secret_string_escaped_twice() -> None:
    inner = json.dumps({"SecretString": json.dumps({"api_key_id": KEY_ID})})
    text = filtered(record(json.dumps({"body": inner, "after": "kept"})))
    assert "kept" in text


def test_secret_string_in_a_parsed_response_dict() -> None:
    parsed = {"Name": "acct-a", "SecretString": json.dumps({"api_secret_key": SECRET})}
    text = filtered(record("Response: %s", (parsed,)))
    assert "acct-a" in text


def test_signed_request_headers() -> None:
    headers = {
        "X-Amz-Security-Token": TOKEN.encode(),
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=testing/20260731/us-east-1/secretsmanager/"
            f"aws4_request, SignedHeaders=host;x-amz-date, Signature={SIGNATURE}"
        ).encode(),
        "X-Amz-Target": b"secretsmanager.GetSecretValue",
    }
    text = filtered(record("Sending http request: <AWSPreparedRequest headers=%s>", (headers,)))
    assert "secretsmanager.GetSecretValue" in text


def test_alpaca_headers_in_any_form() -> None:
    filtered(record("%(headers)s", {"headers": {"APCA-API-KEY-ID": KEY_ID}}))
    filtered(record(f"APCA-API-SECRET-KEY: {SECRET}\r\nHost: 127.0.0.1"))
    filtered(record(f"apca-api-key-id={KEY_ID}&x=1"))
    filtered(record("request", None, headers={"Apca-Api-Secret-Key": SECRET}))


def test_query_string_token_and_extra_fields() -> None:
    text = filtered(
        record(
            f"GET /?X-Amz-Security-Token={TOKEN}&X-Amz-Date=20260731T000000Z",
            None,
            Authorization=f"Bearer {TOKEN}",
            response=json.dumps({"SecretString": SECRET}),
            nested=[{"authorization": SIGNATURE}, [("APCA-API-KEY-ID", KEY_ID), ("Host", "x")]],
        )
    )
    assert "X-Amz-Date=20260731T000000Z" in text


def test_a_record_with_nothing_to_hide_is_untouched() -> None:
    made = record("bought %s shares of %s", (10, "SPY"), account="acct-a")
    assert logsafety.RedactingFilter().filter(made) is True
    assert made.getMessage() == "bought 10 shares of SPY"
    assert made.args == (10, "SPY")
    assert made.account == "acct-a"  # type: ignore[attr-defined]


def test_the_powertools_handler_redacts() -> None:
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[arg-type]
    try:
        logger.warning(
            "headers %s", {"Authorization": TOKEN}, extra={"body": {"SecretString": SECRET}}
        )
    finally:
        handler.setStream(previous)  # type: ignore[arg-type]
    written = stream.getvalue()
    assert "headers" in written
    assert TOKEN not in written
    assert SECRET not in written


@pytest.fixture
def debug_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield root
    finally:
        root.setLevel(level)


@pytest.mark.parametrize("name", ["botocore", "boto3", "urllib3", "s3transfer"])
def test_aws_libraries_stay_quiet_with_the_root_at_debug(
    debug_root: logging.Logger, name: str
) -> None:
    logsafety.secure_logging()
    assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    assert not logging.getLogger(f"{name}.child").isEnabledFor(logging.DEBUG)
    assert logging.getLogger(name).isEnabledFor(logging.WARNING)


def test_a_library_child_set_to_debug_is_pinned_too(debug_root: logging.Logger) -> None:
    child = logging.getLogger("botocore.parsers")
    previous = child.level
    child.setLevel(logging.DEBUG)
    try:
        logsafety.secure_logging()
        assert not child.isEnabledFor(logging.DEBUG)
    finally:
        child.setLevel(previous)


def test_a_canonical_request_line() -> None:
    text = filtered(
        record(f"CanonicalRequest:\nPOST\n/\nhost:x\nx-amz-security-token:{TOKEN}\nx-amz-target:y")
    )
    assert "x-amz-target:y" in text
