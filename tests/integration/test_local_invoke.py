"""``alchemiser invoke`` end to end: the template's resources in moto, the orchestrator,
the worker on what it queued, idempotent repeats, the local exchange, failures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from alchemiser.devstack.aws import Aws
from alchemiser.devstack.functions import SqsSource, function_spec, pick_function
from alchemiser.devstack.output import emf_metrics, pretty_logs
from alchemiser.devstack.resources import CREATORS, create_stack, implicit_roles
from alchemiser.devstack.session import FAKE_KEY_ID, FAKE_SECRET_KEY
from alchemiser.devstack.template import Resolver, Resource, load_template
from alchemiser.errors import EventError
from alchemiser.handlers.events import BUILTIN_DEFAULT

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
_DROPPED = ("AWS_", "ALPACA_", "APCA_", "POWERTOOLS_", "ALCHEMISER_")
DEMO = ("--env", f"ALCHEMISER_CONFIG={BUILTIN_DEFAULT}")
"""The embedded demo config, as ``make invoke`` passes it (the template's is empty)."""


def invoke(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``alchemiser invoke`` in a fresh process, without the caller's AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    return subprocess.run(
        [sys.executable, "-m", "alchemiser.cli", "invoke", *args, "--template", str(TEMPLATE)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def sections(stdout: str) -> list[tuple[str, str]]:
    """(function, section text) per invocation, in order."""
    parts = re.split(r"^-- delivery \d+: (\w+) ", stdout, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def ledger_rows(stdout: str) -> list[str]:
    block = stdout.split("== ledger ", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()[1:]]


def test_default_invoke_runs_the_orchestrator_then_the_worker(tmp_path: Path) -> None:
    result = invoke(str(EVENTS / "market_open.json"), *DEMO, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert [name for name, _ in sections(out)] == ["OrchestratorFunction", "RebalanceFunction"]
    orchestrator, worker = (text for _, text in sections(out))
    assert "accounts queued" in orchestrator
    assert "AccountsQueued = 1" in orchestrator
    assert "AccountsQueue -> RebalanceFunction: 1 message(s) (group demo" in orchestrator
    assert "run finished" in worker
    assert "status=completed" in worker
    assert "RunSucceeded = 1" in worker
    assert "RunFailed = 0" in worker
    submitted = int(re.search(r"OrdersSubmitted = (\d+)", worker).group(1))  # type: ignore[union-attr]
    assert submitted > 0
    assert "AccountsQueue: 1 message(s) deleted" in worker
    (row,) = ledger_rows(out)
    assert re.match(rf"\S+  demo  2026-07-31  completed  orders={submitted} ", row)
    assert "[alchemiser] demo 2026-07-31: COMPLETED" in out
    assert "== exit 0" in out


def test_repeat_is_answered_from_idempotency(tmp_path: Path) -> None:
    result = invoke(str(EVENTS / "market_open.json"), "--repeat", "2", *DEMO, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert [name for name, _ in sections(out)] == [
        "OrchestratorFunction",
        "RebalanceFunction",
        "OrchestratorFunction",
        "RebalanceFunction",
    ]
    first, second = (text for name, text in sections(out) if name == "RebalanceFunction")
    assert "run finished" in first
    assert "delivery 2: answered from idempotency (no new run, no orders)" in second
    assert "IdempotentReplay = 1" in second
    assert "OrdersSubmitted" not in second
    assert "run started" not in second
    assert "5 minutes" in out  # what the FIFO queue would have done with the repeated send
    assert len(ledger_rows(out)) == 1
    assert "ReportsTopic: 1 message(s)" in out


def test_alpaca_trades_on_the_local_exchange_and_never_prints_the_keys(tmp_path: Path) -> None:
    result = invoke(str(EVENTS / "market_open.json"), "--alpaca", "--repeat", "2", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    accepted = int(re.search(r"the local exchange accepted (\d+) order", output).group(1))  # type: ignore[union-attr]
    assert accepted > 0
    first, second = (text for name, text in sections(result.stdout) if name == "RebalanceFunction")
    assert f"OrdersSubmitted = {accepted}," in first  # the repeat ordered nothing more
    assert "BrokerRequests = " in first
    assert "answered from idempotency" in second
    (row,) = ledger_rows(result.stdout)
    assert "local-paper  2026-07-31  completed" in row
    for value in (FAKE_KEY_ID, FAKE_SECRET_KEY):
        assert value not in output


def test_stale_data_fails_closed(tmp_path: Path) -> None:
    result = invoke(str(EVENTS / "stale_data.json"), *DEMO, cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    ((_, worker),) = [s for s in sections(out) if s[0] == "RebalanceFunction"]
    assert "ERROR   run failed" in worker
    assert "DATA_STALE" in worker
    assert "RunFailed = 1" in worker
    assert "OrdersSubmitted = 0" in worker
    assert "1 left (SQS delivers it again" in worker
    (row,) = ledger_rows(out)
    assert "demo  2026-11-20  failed  orders=0" in row
    assert "DATA_STALE" in row
    assert "[alchemiser] demo 2026-11-20: FAILED - DATA_STALE" in out
    assert "== exit 1" in out


def queue_depths(stdout: str) -> dict[str, str]:
    """The summary's queue depths (read from moto at the end), by logical id."""
    block = stdout.split("== queues\n", 1)[1].split("\n\n", 1)[0]
    return dict(line.strip().split(None, 1) for line in block.splitlines())


def assert_no_failure(out: str) -> None:
    assert "RunFailed" not in out
    assert "RunDegraded" not in out
    assert "FUNCTION ERROR" not in out
    assert "batch item(s) failed" not in out
    depths = queue_depths(out)
    for queue in ("DeadLetterQueue", "AccountsDeadLetterQueue", "AccountsQueue"):
        assert depths[queue] == "0 waiting, 0 in flight", out
    assert "== exit 0" in out


def test_a_stack_without_a_config_records_the_trigger_and_fails_nothing(tmp_path: Path) -> None:
    """The template's default (ConfigPath empty): one skipped run in the ledger, one
    notice, RunSkipped and no failure metric, empty dead-letter queues, exit 0."""
    result = invoke(str(EVENTS / "market_open.json"), "--env", "ALCHEMISER_CONFIG=", cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "config: ALCHEMISER_CONFIG=: not configured" in out
    ((name, orchestrator),) = sections(out)  # nothing queued, so no worker
    assert name == "OrchestratorFunction"
    assert "RunSkipped = 1" in orchestrator
    assert '"skipped": "not_configured"' in orchestrator
    assert '"queued": []' in orchestrator
    (row,) = ledger_rows(out)
    assert re.match(r"\S+  default  2026-07-31  skipped  orders=0 fills=0", row)
    assert "ReportsTopic: 1 message(s)" in out
    assert "[alchemiser] not configured" in out
    assert_no_failure(out)


def test_a_worker_message_without_a_config_is_a_skip(tmp_path: Path) -> None:
    result = invoke(
        str(EVENTS / "account_message.json"), "--env", "ALCHEMISER_CONFIG=", cwd=tmp_path
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    ((name, worker),) = sections(out)
    assert name == "RebalanceFunction"
    assert "RunSkipped = 1" in worker
    (row,) = ledger_rows(out)
    assert re.match(r"\S+  demo  2026-07-31  skipped  orders=0 fills=0", row)
    assert "ReportsTopic: 1 message(s)" in out
    assert_no_failure(out)


def test_malformed_event_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"scheduled_time": "yesterday"}))
    result = invoke(str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "errorType: EventError (EVENT_INVALID)" in result.stdout
    assert "AccountsQueue -> " not in result.stdout
    shapeless = tmp_path / "shapeless.json"
    shapeless.write_text(json.dumps({"hello": "world"}))
    result = invoke(str(shapeless), cwd=tmp_path)
    assert result.returncode == 1
    assert "EVENT_INVALID" in result.stderr


def _created(endpoint: str) -> tuple[dict[str, Any], Aws, str, dict[str, Resource]]:
    template = load_template(TEMPLATE)
    aws = Aws(endpoint)
    stack = f"test-{uuid.uuid4().hex[:8]}"
    return template, aws, stack, create_stack(template, aws, stack)


NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SSM::Parameter": "Name",
    "AWS::SecretsManager::Secret": "Name",
}


def test_create_stack_creates_what_the_template_declares(moto_server: str) -> None:
    template, aws, stack, created = _created(moto_server)
    declared = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in CREATORS and "Condition" not in resource
    }
    assert set(created) == set(declared)
    kinds = {r["Type"] for r in declared.values()}
    assert kinds == set(CREATORS)  # the template has one of each at least
    resolver = Resolver(template, stack, {**implicit_roles(template, stack), **created})
    for logical_id, resource in declared.items():
        properties = resource["Properties"]
        name = created[logical_id].name
        if resource["Type"] == "AWS::KMS::Key":  # no name: the key id
            kms = aws.client("kms")
            assert (
                kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"]
                == (created[logical_id].attributes["Arn"])
            )
            rotation = kms.get_key_rotation_status(KeyId=name)["KeyRotationEnabled"]
            assert rotation is bool(properties.get("EnableKeyRotation"))
            policy = json.loads(kms.get_key_policy(KeyId=name, PolicyName="default")["Policy"])
            assert policy == resolver.resolve(properties["KeyPolicy"])
            continue
        given = properties.get(NAME_PROPERTY[resource["Type"]])
        expected = resolver.resolve(given) if given else f"{stack}-{logical_id}"
        if properties.get("FifoQueue") and not expected.endswith(".fifo"):
            expected += ".fifo"
        assert name == expected
        if resource["Type"] == "AWS::DynamoDB::Table":
            table = aws.client("dynamodb").describe_table(TableName=name)["Table"]
            assert table["KeySchema"] == properties["KeySchema"]
            assert {
                (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
            } >= {
                (a["AttributeName"], a["AttributeType"]) for a in properties["AttributeDefinitions"]
            }
            indexes = {
                i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])
            }
            assert indexes == {
                i["IndexName"]: i["KeySchema"] for i in properties.get("GlobalSecondaryIndexes", [])
            }
            ttl = aws.client("dynamodb").describe_time_to_live(TableName=name)
            if "TimeToLiveSpecification" in properties:
                description = ttl["TimeToLiveDescription"]
                assert description["TimeToLiveStatus"] == "ENABLED"
                assert (
                    description["AttributeName"]
                    == properties["TimeToLiveSpecification"]["AttributeName"]
                )
        elif resource["Type"] == "AWS::SQS::Queue":
            url = aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
            attributes = aws.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["All"]
            )["Attributes"]
            assert (attributes.get("FifoQueue") == "true") == bool(properties.get("FifoQueue"))
            assert name.endswith(".fifo") == bool(properties.get("FifoQueue"))
            if "RedrivePolicy" in properties:
                redrive = json.loads(attributes["RedrivePolicy"])
                target = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                assert redrive["deadLetterTargetArn"] == created[target].attributes["Arn"]
                assert int(redrive["maxReceiveCount"]) == int(
                    properties["RedrivePolicy"]["maxReceiveCount"]
                )
        elif resource["Type"] == "AWS::SNS::Topic":
            topics = aws.client("sns").list_topics()["Topics"]
            assert {"TopicArn": created[logical_id].ref} in topics
        elif resource["Type"] == "AWS::SSM::Parameter":
            parameter = aws.client("ssm").get_parameter(Name=name)["Parameter"]
            assert parameter["Value"] == properties["Value"]
            assert parameter["Type"] == properties["Type"]
        else:
            described = aws.client("secretsmanager").describe_secret(SecretId=name)
            assert described["ARN"] == created[logical_id].ref
            if "KmsKeyId" in properties:
                assert described["KmsKeyId"] == resolver.resolve(properties["KmsKeyId"])


def test_function_environment_points_at_the_created_resources(moto_server: str) -> None:
    template, _, stack, created = _created(moto_server)
    resolver = Resolver(template, stack, created)
    for name in ("OrchestratorFunction", "RebalanceFunction", "WatchdogFunction"):
        env = function_spec(template, name, resolver).environment
        assert env["ALCHEMISER_LEDGER_TABLE"] == created["LedgerTable"].name
        assert env["ALCHEMISER_IDEMPOTENCY_TABLE"] == created["IdempotencyTable"].name
        assert env["ALCHEMISER_REPORTS_TOPIC_ARN"] == created["ReportsTopic"].ref
        assert env["ALCHEMISER_ACCOUNTS_QUEUE_URL"] == created["AccountsQueue"].ref
        assert env["ALCHEMISER_TRADING_STATE_PARAMETER"] == created["TradingStateParameter"].name
        assert env["ALCHEMISER_CONFIG"] == ""
        assert env["ALCHEMISER_LIVE"] == "false"
    worker = function_spec(template, "RebalanceFunction", resolver)
    assert worker.sqs_sources == (SqsSource("AccountsQueue", 1, report_failures=True),)


def test_the_event_picks_the_function() -> None:
    template = load_template(TEMPLATE)
    scheduled = json.loads((EVENTS / "market_open.json").read_text())
    message = json.loads((EVENTS / "account_message.json").read_text())
    assert pick_function(template, scheduled) == "OrchestratorFunction"
    assert pick_function(template, message) == "RebalanceFunction"
    with pytest.raises(EventError):
        pick_function(template, {"detail": {}})
    body = json.loads(message["Records"][0]["body"])
    assert body["account"] == "demo"
    assert body["scheduled_time"] == "2026-07-31T13:30:00Z"


def test_logs_and_metrics_are_read_from_the_output() -> None:
    emf = json.dumps(
        {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Alchemiser",
                        "Dimensions": [[]],
                        "Metrics": [{"Name": "RunFailed"}],
                    }
                ],
            },
            "RunFailed": [1.0],
        }
    )
    log = json.dumps(
        {
            "level": "INFO",
            "message": "run finished",
            "timestamp": "2026-07-31 13:30:01,123+0000",
            "service": "alchemiser",
            "status": "completed",
        }
    )
    text = "\n".join(
        [
            log,
            emf,
            "Traceback (most recent call last):",
            '  File "x.py", line 1',
            "    f()",
            "E: boom",
        ]
    )
    assert emf_metrics(emf) == [("RunFailed", 1.0)]
    assert pretty_logs(text) == [
        "13:30:01,123 INFO    run finished  status=completed",
        "  [traceback, 1 frames] E: boom",
    ]


def test_at_debug_the_invoke_path_prints_no_key(tmp_path: Path) -> None:
    """The function's ApplicationLogLevel at DEBUG (the runtime sets the root logger from
    AWS_LAMBDA_LOG_LEVEL): the whole invoke path logs at DEBUG, and no byte of it is a
    key (botocore, which would log the secret's value, stays at INFO)."""
    result = invoke(
        str(EVENTS / "market_open.json"),
        "--alpaca",
        "--env",
        "AWS_LAMBDA_LOG_LEVEL=DEBUG",
        "--env",
        "POWERTOOLS_LOG_LEVEL=DEBUG",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "DEBUG" in output  # the level took: there is something to search
    assert "broker request" in output  # each request to the broker, at DEBUG
    for value in (FAKE_KEY_ID, FAKE_SECRET_KEY):
        assert value not in output


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.parametrize(
    ("args", "config"),
    [
        ("", [f"ALCHEMISER_CONFIG={BUILTIN_DEFAULT}"]),
        ("--repeat 2", [f"ALCHEMISER_CONFIG={BUILTIN_DEFAULT}"]),
        ("--alpaca", []),  # --alpaca sets its own config: the demo must not replace it
        (
            "--env ALCHEMISER_CONFIG=",
            [f"ALCHEMISER_CONFIG={BUILTIN_DEFAULT}", "ALCHEMISER_CONFIG="],
        ),
    ],
)
def test_make_invoke_passes_the_demo_config(args: str, config: list[str]) -> None:
    """``make invoke`` runs the demo; ARGS come last, so an ``--env`` of its own wins
    (``alchemiser invoke`` keeps the last value of a repeated ``--env``)."""
    done = subprocess.run(
        ["make", "-n", "-o", ".venv/.synced", "invoke", f"ARGS={args}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    words = done.stdout.replace("\\\n", " ").split()
    given = [words[i + 1] for i, word in enumerate(words) if word == "--env"]
    assert [g for g in given if g.startswith("ALCHEMISER_CONFIG=")] == config
