"""The deployed stack in one process, for tests/integration/test_lambda_stack.py.

moto (``mock_aws``, in-process: it patches botocore only) stands in for DynamoDB (the
ledger and idempotency tables), SNS (the reports topic, captured through an SQS queue
subscribed to it), SQS (the accounts FIFO queue), SSM (the kill switch) and Secrets
Manager; one :class:`LocalExchange` per account stands in for Alpaca (alpaca-py talks
real HTTP to 127.0.0.1, which moto leaves alone). The handlers are the real ones, called
with a Lambda-like context and the environment template.yaml gives them.

The fake key pairs are defined here once: every test that creates a secret uses them,
and tests/test_no_secret_in_logs.py checks that none of them reaches any log record.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from alchemiser.adapters.aws.ledger import DynamoLedger
from alchemiser.devstack.runner import LocalContext
from alchemiser.exchange import ExchangeSettings, LocalExchange
from alchemiser.observability import logger
from tests.integration import alpaca_fixtures

FAKE_KEY_ID = "AKFAKESTACKKEY7Q3W9E"
FAKE_SECRET_KEY = "fake-stack-secret-3f9c1a77d2b04e6a"
ROTATED_KEY_ID = "AKFAKESTACKKEY2RT5Y8"
ROTATED_SECRET_KEY = "fake-stack-rotated-8d2e4b19c6a35f07"
OTHER_KEY_ID = "AKFAKESTACKKEYB6N1M4"
OTHER_SECRET_KEY = "fake-stack-other-account-5a7e0c92b1d8"
STACK_SECRET_VALUES = (
    FAKE_KEY_ID,
    FAKE_SECRET_KEY,
    ROTATED_KEY_ID,
    ROTATED_SECRET_KEY,
    OTHER_KEY_ID,
    OTHER_SECRET_KEY,
)
"""Every key this module's tests put in a secret or give an exchange."""

REGION = "us-east-1"
SCHEDULED = "2026-07-31T13:30:00Z"
"""The exchange's today (its clock starts at 2026-07-31 09:30:01 New York): open."""
ACCOUNT = "acct-a"
OTHER_ACCOUNT = "acct-b"
LEDGER_TABLE = "alchemiser-ledger"
IDEMPOTENCY_TABLE = "alchemiser-idempotency"
PARAMETER = "/alchemiser/trading-state"
TARGETS = {"SPY": 0.5, "TLT": 0.3, "GLD": 0.19}
SEED_CASH = Decimal(50_000)
SEED_POSITIONS = {"QQQ": (Decimal(60), Decimal(400)), "BND": (Decimal(200), Decimal(70))}
"""Two holdings outside the targets (sold), three targets (bought)."""
FAST_RETRY = {
    "initial_backoff_seconds": 0.01,
    "max_backoff_seconds": 0.05,
    "jitter_seconds": 0.01,
    "connect_timeout_seconds": 1.0,
    "read_timeout_seconds": 0.5,
}
RISK = {"max_position_weight": 1.0, "max_order_notional": 1_000_000}
"""Wide enough that a clean run reaches the targets (a second run is a no-op)."""
EXECUTION = {
    "poll_interval_seconds": 0.02,
    "fill_timeout_seconds": 2.0,
    "cancel_timeout_seconds": 0.5,
}
_SCRUBBED_ENV = ("AWS_", "ALPACA_", "APCA_", "ALCHEMISER_", "POWERTOOLS_")


def all_fake_secret_values() -> tuple[str, ...]:
    """Every fake credential the suite uses: this module's, alpaca_fixtures' (the CLI and
    exchange tests), and the AWS keys of the DynamoDB ledger tests."""
    from tests.integration import test_dynamo_ledger  # noqa: PLC0415 - constants only

    return (
        *STACK_SECRET_VALUES,
        *alpaca_fixtures.SECRET_VALUES,
        test_dynamo_ledger.FAKE_KEY_ID,
        test_dynamo_ledger.FAKE_SECRET,
    )


def secret_document(
    key_id: str = FAKE_KEY_ID, secret_key: str = FAKE_SECRET_KEY, endpoint: str = "paper"
) -> dict[str, str]:
    return {"api_key_id": key_id, "api_secret_key": secret_key, "endpoint": endpoint}


def seeded_exchange(key_id: str = FAKE_KEY_ID, secret_key: str = FAKE_SECRET_KEY) -> LocalExchange:
    """A started exchange demanding the given key pair, seeded so the plan sells and buys."""
    exchange = LocalExchange(
        settings=ExchangeSettings(cash=SEED_CASH, key_id=key_id, secret_key=secret_key)
    ).start()
    for symbol, (qty, price) in SEED_POSITIONS.items():
        exchange.engine.set_position(symbol, qty, price)
    return exchange


# -- TOML --------------------------------------------------------------------------------


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def _table(name: str, values: Mapping[str, object]) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()) + "\n"


@dataclass(frozen=True)
class AccountSpec:
    """One account of a config: its name, secret, exchange and risk limits."""

    name: str
    secret_id: str
    url: str
    risk: Mapping[str, object] = field(default_factory=dict)


def config_text(
    accounts: list[AccountSpec],
    *,
    weights: Mapping[str, float] = TARGETS,
    execution: Mapping[str, object] | None = None,
) -> str:
    """A paper-trading Alpaca config; more than one account gives ``[[accounts]]``."""
    first = accounts[0]
    text = f'account = {_toml(first.name)}\nbroker = "alpaca"\nmode = "paper"\n\n'
    text += _table(
        "alpaca", {"secret_id": first.secret_id, "trading_url": first.url, "data_url": first.url}
    )
    text += _table("alpaca.retry", FAST_RETRY)
    text += _table("risk", {**RISK, **first.risk})
    text += _table("execution", {**EXECUTION, **(execution or {})})
    text += '[[strategies]]\nname = "core"\nallocation = 1.0\n'
    text += f"weights = {_toml(dict(weights))}\n\n"
    if len(accounts) > 1:
        for spec in accounts:
            alpaca = {"secret_id": spec.secret_id, "trading_url": spec.url, "data_url": spec.url}
            text += f"[[accounts]]\naccount = {_toml(spec.name)}\nalpaca = {_toml(alpaca)}\n"
            text += f"risk = {_toml({**RISK, **spec.risk})}\n\n"
    return text


# -- output: logs and EMF metrics -------------------------------------------------------


class Output:
    """What the handlers wrote to stdout and stderr (Powertools logs and EMF metrics),
    accumulated over a test."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.text = ""

    def read(self) -> str:
        """Everything written since the last ``read`` (and keep it for ``text``)."""
        captured = self._capsys.readouterr()
        new = captured.out + captured.err
        self.text += new
        return new

    @staticmethod
    def records(text: str) -> list[dict[str, Any]]:
        found = []
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def metrics(self, text: str) -> dict[str, list[float]]:
        """EMF metric values by name, in the order emitted (Powertools prints one JSON
        line with an ``_aws`` key per flush)."""
        values: dict[str, list[float]] = {}
        for record in self.records(text):
            if "_aws" not in record:
                continue
            for directive in record["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    raw = record[metric["Name"]]
                    values.setdefault(metric["Name"], []).extend(
                        raw if isinstance(raw, list) else [raw]
                    )
        return values

    def logs(self, text: str) -> list[dict[str, Any]]:
        return [r for r in self.records(text) if "level" in r and "message" in r]


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is when written to (pytest swaps it per phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Iterator[Output]:
    """The Powertools logger writes to the stream it found when it was created; point it
    at the test's stdout (as in Lambda), and check at the end that no key was written."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(_CurrentStdout())  # type: ignore[arg-type]
    captured = Output(capsys)
    try:
        yield captured
        captured.read()
        for value in all_fake_secret_values():
            assert value not in captured.text, "a secret value reached stdout or stderr"
    finally:
        if previous is not None:
            handler.setStream(previous)


# -- the stack ----------------------------------------------------------------------------


def lambda_context(name: str = "RebalanceFunction") -> LocalContext:
    return LocalContext(name, 1024, 300)


def event(scheduled: str = SCHEDULED, **extra: Any) -> dict[str, Any]:
    return {
        "scheduled_time": scheduled,
        "execution_id": extra.pop("execution_id", str(uuid.uuid4())),
        "schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/open",
        "attempt": extra.pop("attempt", 1),
        **extra,
    }


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received SQS message as Lambda's event source mapping delivers it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def assert_valid_subject(subject: str) -> None:
    """What SNS accepts as a Subject (moto checks only the length): printable ASCII, no
    line breaks or control characters, at most 100 characters."""
    assert 0 < len(subject) <= 100, subject
    assert all(" " <= c <= "~" for c in subject), f"not printable ASCII: {subject!r}"


@dataclass
class Notice:
    """One SNS message as the subscribed SQS queue received it."""

    subject: str
    message: str

    def json(self) -> Any:
        return json.loads(self.message)


@dataclass
class Stack:
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    topic_arn: str
    capture_url: str
    exchanges: list[LocalExchange] = field(default_factory=list)
    published: list[Notice] = field(default_factory=list)
    """Every SNS message received so far (``notices`` returns only the new ones)."""
    accounts_queue_url: str | None = None
    accounts_queue_arn: str | None = None

    # -- AWS resources --

    def put_secret(self, name: str, document: Mapping[str, Any] | str) -> str:
        text = document if isinstance(document, str) else json.dumps(document)
        client = boto3.client("secretsmanager")
        try:
            client.put_secret_value(SecretId=name, SecretString=text)
        except client.exceptions.ResourceNotFoundException:
            client.create_secret(Name=name, SecretString=text)
        return name

    def set_trading_state(self, value: str) -> None:
        boto3.client("ssm").put_parameter(
            Name=PARAMETER, Value=value, Type="String", Overwrite=True
        )

    def trading_state(self) -> str:
        return str(boto3.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"])

    def create_accounts_queue(self) -> str:
        sqs = boto3.client("sqs")
        url = sqs.create_queue(
            QueueName="alchemiser-accounts.fifo",
            Attributes={
                "FifoQueue": "true",
                "ContentBasedDeduplication": "false",
                "VisibilityTimeout": "1800",
            },
        )["QueueUrl"]
        self.accounts_queue_url = url
        self.accounts_queue_arn = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.monkeypatch.setenv("ALCHEMISER_ACCOUNTS_QUEUE_URL", url)
        return url

    def receive_accounts(self) -> list[dict[str, Any]]:
        assert self.accounts_queue_url is not None
        sqs = boto3.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.accounts_queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return found
            found += batch

    def notices(self) -> list[Notice]:
        """The SNS messages published since the last call (drained)."""
        sqs = boto3.client("sqs")
        found: list[Notice] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                notice = Notice(envelope.get("Subject", ""), envelope["Message"])
                assert_valid_subject(notice.subject)
                found.append(notice)
                self.published.append(notice)
                sqs.delete_message(
                    QueueUrl=self.capture_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def ledger(self) -> DynamoLedger:
        return DynamoLedger(LEDGER_TABLE)

    def stored_text(self) -> str:
        """Everything the stack stored or published: both tables' items (the ledger's
        reports decompressed) and every SNS message."""
        ddb = boto3.client("dynamodb")
        texts = []
        for table in (LEDGER_TABLE, IDEMPOTENCY_TABLE):
            for item in ddb.scan(TableName=table)["Items"]:
                for value in item.values():
                    if "B" in value:
                        blob = bytes(value["B"])
                        with contextlib.suppress(zlib.error):
                            blob = zlib.decompress(blob)
                        texts.append(blob.decode("utf-8", errors="replace"))
                    else:
                        texts.append(json.dumps(value, default=str))
        self.notices()
        texts += [f"{n.subject}\n{n.message}" for n in self.published]
        return "\n".join(texts)

    # -- exchanges and configs --

    def exchange(
        self, key_id: str = FAKE_KEY_ID, secret_key: str = FAKE_SECRET_KEY
    ) -> LocalExchange:
        exchange = seeded_exchange(key_id, secret_key)
        self.exchanges.append(exchange)
        return exchange

    def write_config(
        self, accounts: list[AccountSpec], name: str = "config.toml", **kw: Any
    ) -> Path:
        path = self.tmp / name
        path.write_text(config_text(accounts, **kw), encoding="utf-8")
        self.use_config(path)
        return path

    def use_config(self, path: Path) -> None:
        self.monkeypatch.setenv("ALCHEMISER_CONFIG", str(path))

    def single(self, account: str = ACCOUNT, **kw: Any) -> tuple[LocalExchange, str]:
        """One account: its exchange, secret and config. Returns (exchange, secret id)."""
        exchange = self.exchange()
        secret_id = self.put_secret(f"alchemiser/{account}", secret_document())
        self.write_config([AccountSpec(account, secret_id, exchange.url)], **kw)
        return exchange, secret_id

    # -- handlers --

    def run(self, scheduled: str = SCHEDULED, **extra: Any) -> dict[str, Any]:
        from alchemiser.handlers.rebalance import handler  # noqa: PLC0415

        return handler(event(scheduled, **extra), lambda_context())


@functools.cache
def _shared_loader() -> Any:
    return botocore.loaders.create_loader()


def _share_botocore_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Powertools builds a new boto3 session (so a new botocore loader, which parses the
    service models and endpoint rules again) for every provider and persistence layer:
    most of a run's time under moto. One loader for every session keeps the parsed JSON;
    nothing else is shared."""
    if hasattr(botocore.session, "create_loader"):
        monkeypatch.setattr(botocore.session, "create_loader", lambda *_: _shared_loader())


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    """moto for every AWS service the stack uses, the handlers' environment set."""
    _share_botocore_models(monkeypatch)
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_ENV):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "RebalanceFunction")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    parameters.clear_caches()
    with mock_aws():
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.create_table(
            TableName=LEDGER_TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"}
                for a in ("pk", "sk", "account_pk", "run_sk", "strategy_pk")
            ],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": hash_key, "KeyType": "HASH"},
                        {"AttributeName": "run_sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index, hash_key in (
                    ("by_account", "account_pk"),
                    ("by_strategy", "strategy_pk"),
                )
            ],
        )
        sns = boto3.client("sns")
        sqs = boto3.client("sqs")
        topic = sns.create_topic(Name="alchemiser-reports")["TopicArn"]
        capture = sqs.create_queue(QueueName="captured-reports")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=capture_arn)
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value="ACTIVE", Type="String")
        monkeypatch.setenv("ALCHEMISER_LEDGER_TABLE", LEDGER_TABLE)
        monkeypatch.setenv("ALCHEMISER_IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
        monkeypatch.setenv("ALCHEMISER_REPORTS_TOPIC_ARN", topic)
        monkeypatch.setenv("ALCHEMISER_TRADING_STATE_PARAMETER", PARAMETER)
        monkeypatch.setenv("ALCHEMISER_STATE_DIR", str(tmp_path / "state"))
        built = Stack(tmp=tmp_path, monkeypatch=monkeypatch, topic_arn=topic, capture_url=capture)
        try:
            yield built
            stored = built.stored_text()
            for value in all_fake_secret_values():
                assert value not in stored, "a secret value was stored or published"
        finally:
            for exchange in built.exchanges:
                exchange.stop()
            parameters.clear_caches()


# -- checks at the exchange ----------------------------------------------------------------


def accepted_ids(exchange: LocalExchange) -> list[str]:
    return [o.client_order_id for o in exchange.engine.accepted_orders()]


def assert_nothing_twice(exchange: LocalExchange) -> None:
    ids = accepted_ids(exchange)
    assert len(ids) == len(set(ids)), f"a client_order_id was accepted twice: {ids}"


def totals(exchange: LocalExchange) -> dict[tuple[str, str], Decimal]:
    """Per (symbol, side), what the exchange filled: shares for sells, dollars for buys."""
    found: dict[tuple[str, str], Decimal] = {}
    for order in exchange.engine.accepted_orders():
        amount = order.filled_value if order.side == "buy" else order.filled_qty
        key = (order.symbol, order.side)
        found[key] = found.get(key, Decimal(0)) + amount
    return found


def order_posts(exchange: LocalExchange) -> int:
    return exchange.count("POST", "/v2/orders")
