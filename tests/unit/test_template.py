"""template.yaml: the production stack as other code and docs/OPERATIONS.md rely on it.

Lint-clean; both schedules at the right New York times with retries and a DLQ; the
orchestrator -> FIFO queue -> worker path; the tables' key schemas; every alarm wired to
the reports topic; the dashboard's widgets; and no IAM statement with a wildcard action,
counting the policies SAM attaches by itself.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from alchemiser.devstack.resources import implicit_roles
from alchemiser.devstack.template import Resolver, load_template
from alchemiser.handlers.events import parse_event

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
TOPIC = {"Ref": "ReportsTopic"}
DLQ_ARN = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
SERVICE = [{"Name": "service", "Value": "alchemiser"}]

FUNCTIONS = {
    "OrchestratorFunction": ("alchemiser.handlers.orchestrator.handler", 256, 60),
    "RebalanceFunction": ("alchemiser.handlers.worker.handler", 1024, 300),
    "WatchdogFunction": ("alchemiser.handlers.watchdog.handler", 256, 60),
}
SCHEDULES = {
    # (function, event): (the cron it resolves to by default, its window, its condition)
    ("OrchestratorFunction", "MarketOpen"): ("cron(30 09 ? * MON-FRI *)", "open", "OpenScheduled"),
    ("OrchestratorFunction", "MarketClose"): (
        "cron(45 15 ? * MON-FRI *)",
        "close",
        "CloseScheduled",
    ),
    ("OrchestratorFunction", "MarketEarlyClose"): (
        "cron(45 12 ? * MON-FRI *)",
        "close",
        "CloseScheduled",
    ),
    ("WatchdogFunction", "NoRunCheck"): ("cron(0 10 ? * MON-FRI *)", "open", "OpenScheduled"),
    ("WatchdogFunction", "NoCloseRunCheck"): (
        "cron(15 16 ? * MON-FRI *)",
        "close",
        "CloseScheduled",
    ),
}
TIME_PARAMETERS = {"OpenTime": "09:30", "CloseTime": "15:45", "EarlyCloseTime": "12:45"}

# What each SAM policy template grants (samtranslator's policy_templates.json). A
# function that uses a template missing here fails the IAM test until it is added.
SAM_POLICY_TEMPLATES: dict[str, list[str]] = {
    "SNSPublishMessagePolicy": ["sns:Publish"],
    "SQSSendMessagePolicy": ["sqs:SendMessage*"],
    "AWSSecretsManagerGetSecretValuePolicy": ["secretsmanager:GetSecretValue"],
    "SSMParameterReadPolicy": [
        "ssm:DescribeParameters",
        "ssm:GetParameters",
        "ssm:GetParameter",
        "ssm:GetParametersByPath",
    ],
    "DynamoDBReadPolicy": [
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
    ],
    "DynamoDBCrudPolicy": [
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "dynamodb:ConditionCheckItem",
    ],
}
# The AWS managed policies SAM attaches by itself, and their actions.
MANAGED_POLICIES: dict[str, list[str]] = {
    "AWSLambdaBasicExecutionRole": [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
    "AWSXrayWriteOnlyAccess": [  # Tracing: Active
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    ],
    "AWSLambdaSQSQueueExecutionRole": [  # an SQS event
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
}
# What SAM writes into the roles it generates for events and destinations.
SCHEDULE_ROLE_ACTIONS = ["lambda:InvokeFunction", "sqs:SendMessage"]  # ScheduleV2 + its DLQ
ON_FAILURE_ACTIONS = {"SQS": ["sqs:SendMessage"], "SNS": ["sns:Publish"]}

ALARMS: dict[str, dict[str, Any]] = {
    "HandlerErrorsAlarm": {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "RebalanceFunction"}}],
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
    },
    "OrchestratorErrorsAlarm": {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "OrchestratorFunction"}}],
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
    },
    "RunFailedAlarm": {
        "Namespace": "Alchemiser",
        "MetricName": "RunFailed",
        "Dimensions": SERVICE,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
    },
    "OrdersRejectedAlarm": {
        "Namespace": "Alchemiser",
        "MetricName": "OrdersRejected",
        "Dimensions": SERVICE,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
    },
    "RiskDeniedAlarm": {
        "Namespace": "Alchemiser",
        "MetricName": "OrdersDenied",
        "Dimensions": SERVICE,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": {"Ref": "RiskDeniedThreshold"},
        "Statistic": "Sum",
        "Period": 3600,
    },
    "DeadLetterQueueAlarm": {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
        ],
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
    },
    "AccountsDeadLetterQueueAlarm": {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [
            {
                "Name": "QueueName",
                "Value": {"Fn::GetAtt": ["AccountsDeadLetterQueue", "QueueName"]},
            }
        ],
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
    },
    "NoSuccessfulRunAlarm": {
        "Namespace": "Alchemiser",
        "MetricName": "RunMissing",
        "Dimensions": SERVICE,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
        "Period": 300,
    },
    "RunDegradedAlarm": {
        "Namespace": "Alchemiser",
        "MetricName": "RunDegraded",
        "Dimensions": SERVICE,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
        "Statistic": "Maximum",
        "Period": 86400,  # one datapoint per session
        "EvaluationPeriods": {"Ref": "DegradedSessions"},
        "DatapointsToAlarm": {"Ref": "DegradedSessions"},
    },
}

DASHBOARD: dict[str, set[str]] = {
    "Runs": {
        "RunSucceeded",
        "RunFailed",
        "RunSkipped",
        "IdempotentReplay",
        "Invocations",
        "Errors",
    },
    "Orders": {
        "OrdersSubmitted",
        "OrdersFilled",
        "OrdersRejected",
        "OrdersDenied",
        "OrdersUnfilled",
    },
    "Turnover ($)": {"Turnover"},
    "Equity ($)": {"Equity"},
    "Run duration (ms)": {"RunDurationMs"},
    "Data staleness (days)": {"DataStalenessDays"},
    "Broker requests and retries": {"BrokerRequests", "BrokerRetries"},
    "Dead-letter queues": {"ApproximateNumberOfMessagesVisible"},
    "Degraded runs": {"RunDegraded"},
}

ENVIRONMENT: dict[str, object] = {
    "POWERTOOLS_SERVICE_NAME": "alchemiser",
    "POWERTOOLS_METRICS_NAMESPACE": "Alchemiser",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    "ALCHEMISER_CONFIG": {"Ref": "ConfigPath"},
    "ALCHEMISER_STATE_DIR": "/tmp/alchemiser",
    "ALCHEMISER_LIVE": {"Ref": "LiveTrading"},
    "ALCHEMISER_LEDGER_TABLE": {"Ref": "LedgerTable"},
    "ALCHEMISER_IDEMPOTENCY_TABLE": {"Ref": "IdempotencyTable"},
    "ALCHEMISER_REPORTS_TOPIC_ARN": {"Ref": "ReportsTopic"},
    "ALCHEMISER_TRADING_STATE_PARAMETER": {"Ref": "TradingStateParameter"},
    "ALCHEMISER_ACCOUNTS_QUEUE_URL": {"Ref": "AccountsQueue"},
    "ALCHEMISER_TRADING_WINDOWS": {"Ref": "TradingWindow"},
    "ALCHEMISER_DRY_RUN": {"Ref": "DryRun"},
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]  # type: ignore[no-any-return]


def _properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return _resources(template)[logical_id]["Properties"]  # type: ignore[no-any-return]


def _function(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties with Globals.Function merged in, as SAM merges them."""
    resource = _resources(template)[logical_id]
    assert resource["Type"] == "AWS::Serverless::Function"
    return {**template["Globals"]["Function"], **resource["Properties"]}


def _functions(template: dict[str, Any]) -> list[str]:
    return [
        name
        for name, resource in _resources(template).items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]


# --- lint ----------------------------------------------------------------------------


@pytest.mark.skipif(not CFN_LINT.exists(), reason="cfn-lint is not installed")
def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(CFN_LINT), str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- functions -------------------------------------------------------------------------


def test_the_three_functions_and_nothing_else(template: dict[str, Any]) -> None:
    assert sorted(_functions(template)) == sorted(FUNCTIONS)


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_is_python312_on_arm64_with_tracing(
    template: dict[str, Any], logical_id: str
) -> None:
    function = _function(template, logical_id)
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    assert function["CodeUri"] == "src/"  # the source; make build points the deploy at its build
    assert function["Layers"] == [{"Ref": "DependenciesLayer"}]


def test_the_dependency_layer_is_shared_python312_on_arm64(template: dict[str, Any]) -> None:
    layers = {
        name: resource
        for name, resource in _resources(template).items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }
    assert list(layers) == ["DependenciesLayer"]
    properties = layers["DependenciesLayer"]["Properties"]
    assert properties["ContentUri"] == "build/layer/"  # make build installs it there
    assert properties["CompatibleRuntimes"] == [template["Globals"]["Function"]["Runtime"]]
    assert properties["CompatibleArchitectures"] == template["Globals"]["Function"]["Architectures"]
    assert "Layers" not in _resources(template)["RebalanceFunction"]["Properties"]  # Globals'


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_memory_and_timeout(template: dict[str, Any], logical_id: str) -> None:
    handler, memory, timeout = FUNCTIONS[logical_id]
    function = _function(template, logical_id)
    assert (function["Handler"], function["MemorySize"], function["Timeout"]) == (
        handler,
        memory,
        timeout,
    )
    module, _, name = handler.rpartition(".")
    assert callable(getattr(import_module(module), name)), handler


def test_every_function_logs_to_its_own_log_group(template: dict[str, Any]) -> None:
    groups = {
        logical_id: _function(template, logical_id)["LoggingConfig"]["LogGroup"]["Ref"]
        for logical_id in FUNCTIONS
    }
    assert len(set(groups.values())) == len(FUNCTIONS)
    assert groups["RebalanceFunction"] == "RebalanceLogGroup"
    for log_group in groups.values():
        assert _resources(template)[log_group]["Type"] == "AWS::Logs::LogGroup"
        assert _properties(template, log_group)["RetentionInDays"] > 0
    assert _properties(template, "RebalanceLogGroup")["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/${AWS::StackName}-rebalance"
    }


def test_environment_names_every_resource(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables == ENVIRONMENT
    for logical_id in FUNCTIONS:  # nothing overrides the shared environment
        assert "Environment" not in _properties(template, logical_id)


# --- schedules -------------------------------------------------------------------------


@pytest.mark.parametrize(("function", "event"), sorted(SCHEDULES))
def test_schedules_are_new_york_weekdays_with_retries_and_a_dlq(
    template: dict[str, Any], function: str, event: str
) -> None:
    schedule = _properties(template, function)["Events"][event]
    assert schedule["Type"] == "ScheduleV2"
    properties = schedule["Properties"]
    cron, window, condition = SCHEDULES[(function, event)]
    assert _resolver(template).resolve(properties["ScheduleExpression"]) == cron
    assert properties["ScheduleExpressionTimezone"] == "America/New_York"
    assert properties["State"] == {"Fn::If": [condition, "ENABLED", "DISABLED"]}
    payload = json.loads(properties["Input"])
    assert payload == {
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "execution_id": "<aws.scheduler.execution-id>",
        "schedule_arn": "<aws.scheduler.schedule-arn>",
        "attempt": "<aws.scheduler.attempt-number>",
        "window": window,
    }
    delivered = {**payload, "scheduled_time": "2026-07-31T19:45:00Z", "attempt": "1"}
    assert parse_event(delivered).window == window
    assert properties["RetryPolicy"] == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 3600,
    }
    assert properties["DeadLetterConfig"] == {"Arn": DLQ_ARN}


def _resolver(template: dict[str, Any], **parameters: str) -> Resolver:
    """The template's intrinsics resolved with ``parameters`` as the deployer gives them."""
    changed = copy.deepcopy(template)
    for name, value in parameters.items():
        changed["Parameters"][name]["Default"] = value
    return Resolver(changed, "alchemiser", {})


def _enabled(template: dict[str, Any], **parameters: str) -> set[str]:
    resolver = _resolver(template, **parameters)
    return {
        event
        for function, event in SCHEDULES
        if resolver.resolve(_properties(template, function)["Events"][event]["Properties"]["State"])
        == "ENABLED"
    }


def test_the_trading_window_decides_which_schedules_run(template: dict[str, Any]) -> None:
    opening = {"MarketOpen", "NoRunCheck"}
    closing = {"MarketClose", "MarketEarlyClose", "NoCloseRunCheck"}
    assert _enabled(template) == opening  # the default: open
    assert _enabled(template, TradingWindow="open") == opening
    assert _enabled(template, TradingWindow="close") == closing
    assert _enabled(template, TradingWindow="both") == opening | closing
    for window in ("open", "close", "both"):
        assert _enabled(template, TradingWindow=window, ScheduleState="DISABLED") == set()


def test_the_window_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    window = parameters["TradingWindow"]
    assert window["AllowedValues"] == ["open", "close", "both"]
    assert window["Default"] == "open"
    for name, default in TIME_PARAMETERS.items():
        parameter = parameters[name]
        assert parameter["Type"] == "String"
        assert parameter["Default"] == default
        pattern = re.compile(parameter["AllowedPattern"])
        for good in ("00:00", "09:30", "15:45", "23:59"):
            assert pattern.fullmatch(good), (name, good)
        for bad in ("9:30", "24:00", "15:60", "15.45", "1545", "15:45 ", ""):
            assert not pattern.fullmatch(bad), (name, bad)


@pytest.mark.parametrize(
    ("parameter", "event", "value", "cron"),
    [
        ("OpenTime", "MarketOpen", "10:05", "cron(05 10 ? * MON-FRI *)"),
        ("CloseTime", "MarketClose", "15:50", "cron(50 15 ? * MON-FRI *)"),
        ("EarlyCloseTime", "MarketEarlyClose", "12:40", "cron(40 12 ? * MON-FRI *)"),
    ],
)
def test_the_cron_is_built_from_the_time_parameter(
    template: dict[str, Any], parameter: str, event: str, value: str, cron: str
) -> None:
    expression = _properties(template, "OrchestratorFunction")["Events"][event]["Properties"][
        "ScheduleExpression"
    ]
    assert parameter in json.dumps(expression)  # a parameter, not a constant
    assert _resolver(template, **{parameter: value}).resolve(expression) == cron


def test_schedule_dlq_is_a_standard_queue(template: dict[str, Any]) -> None:
    # EventBridge Scheduler does not deliver dead letters to FIFO queues.
    assert not _properties(template, "DeadLetterQueue").get("FifoQueue", False)


@pytest.mark.parametrize("logical_id", ["OrchestratorFunction", "WatchdogFunction"])
def test_async_invocations_retry_once_then_go_to_the_dlq(
    template: dict[str, Any], logical_id: str
) -> None:
    config = _properties(template, logical_id)["EventInvokeConfig"]
    assert 0 <= config["MaximumRetryAttempts"] <= 1
    assert config["MaximumEventAgeInSeconds"] <= 3600
    assert config["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": DLQ_ARN}


# --- the accounts queue and the worker ---------------------------------------------------


def test_worker_reserved_concurrency_and_sqs_event(template: dict[str, Any]) -> None:
    worker = _properties(template, "RebalanceFunction")
    assert worker["ReservedConcurrentExecutions"] == {"Ref": "WorkerConcurrency"}
    assert template["Parameters"]["WorkerConcurrency"]["Default"] == 2
    event = worker["Events"]["Accounts"]
    assert event["Type"] == "SQS"
    properties = event["Properties"]
    assert properties["Queue"] == {"Fn::GetAtt": ["AccountsQueue", "Arn"]}
    assert properties["BatchSize"] == 1
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_accounts_queue_is_fifo_with_a_fifo_redrive(template: dict[str, Any]) -> None:
    queue = _properties(template, "AccountsQueue")
    assert queue["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is False
    worker_timeout = _function(template, "RebalanceFunction")["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["AccountsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 3,
    }
    assert _properties(template, "AccountsDeadLetterQueue")["FifoQueue"] is True


# --- state -----------------------------------------------------------------------------


def test_idempotency_table(template: dict[str, Any]) -> None:
    table = _properties(template, "IdempotencyTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_ledger_table(template: dict[str, Any]) -> None:
    resource = _resources(template)["LedgerTable"]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    table = resource["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by_account", "by_strategy"}
    for name, hash_key in (("by_account", "account_pk"), ("by_strategy", "strategy_pk")):
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": "run_sk", "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == dict.fromkeys(("pk", "sk", "account_pk", "strategy_pk", "run_sk"), "S")


def test_trading_state_parameter(template: dict[str, Any]) -> None:
    parameter = _properties(template, "TradingStateParameter")
    assert parameter["Type"] == "String"
    assert parameter["Name"] == {"Fn::Sub": "/${AWS::StackName}/trading-state"}
    assert parameter["Value"] == "ACTIVE"
    pattern = re.compile(parameter["AllowedPattern"])
    assert all(pattern.fullmatch(s) for s in ("ACTIVE", "REDUCING", "HALTED"))
    assert not any(pattern.search(s) for s in ("halted", "ACTIVE HALTED", "PAUSED", ""))


def test_secret_is_a_placeholder_under_the_stack_prefix(template: dict[str, Any]) -> None:
    secret = _properties(template, "AlpacaSecret")
    assert _resources(template)["AlpacaSecret"]["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Name"] == {"Fn::Sub": "${AWS::StackName}/default"}
    placeholder = json.loads(secret["SecretString"])
    assert placeholder == {
        "api_key_id": "REPLACE_ME",
        "api_secret_key": "REPLACE_ME",
        "endpoint": "paper",
    }


def test_reports_topic_and_optional_email(template: dict[str, Any]) -> None:
    assert _resources(template)["ReportsTopic"]["Type"] == "AWS::SNS::Topic"
    subscription = _resources(template)["ReportsEmailSubscription"]
    assert subscription["Condition"] == "HasEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "NotificationEmail"}
    assert template["Conditions"]["HasEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }


ROOT_PRINCIPAL = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
VIA_SECRETS_MANAGER = {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
WORKER_ROLE = {"Fn::GetAtt": ["RebalanceFunctionRole", "Arn"]}
SECRET_READERS = [
    WORKER_ROLE,
    {"Fn::If": ["HasSecretAdmin", {"Ref": "SecretAdminRoleArn"}, {"Ref": "AWS::NoValue"}]},
]


def test_secrets_key_is_customer_managed_and_rotated(template: dict[str, Any]) -> None:
    resource = _resources(template)["SecretsKey"]
    assert resource["Type"] == "AWS::KMS::Key"
    key = resource["Properties"]
    assert key["EnableKeyRotation"] is True
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert key["PendingWindowInDays"] == 30
    assert _properties(template, "AlpacaSecret")["KmsKeyId"] == {
        "Fn::GetAtt": ["SecretsKey", "Arn"]
    }


def test_only_the_worker_and_the_admin_role_may_decrypt_with_the_key(
    template: dict[str, Any],
) -> None:
    statements = {
        s["Sid"]: s for s in _properties(template, "SecretsKey")["KeyPolicy"]["Statement"]
    }
    assert set(statements) == {"AdministerKey", "WriteSecrets", "ReadSecrets"}
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == ROOT_PRINCIPAL  # the account's IAM must agree too
        assert statement["Resource"] == "*"  # in a key policy: this key
    # Administrators manage the key, never use it.
    administer = set(statements["AdministerKey"]["Action"])
    assert not {
        a
        for a in administer
        if a.split(":")[1].startswith(
            ("Decrypt", "Encrypt", "Generate", "ReEncrypt", "CreateGrant")
        )
    }
    assert {"kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:ScheduleKeyDeletion"} <= administer
    assert "Condition" not in statements["AdministerKey"]
    # Anyone the account allows may write a secret value through Secrets Manager...
    write = statements["WriteSecrets"]
    assert set(write["Action"]) == {"kms:GenerateDataKey", "kms:DescribeKey"}
    assert write["Condition"] == {
        "StringEquals": {
            "kms:ViaService": VIA_SECRETS_MANAGER,
            "kms:CallerAccount": {"Ref": "AWS::AccountId"},
        }
    }
    # ...but only the worker's role (and the optional admin role) may read one.
    read = statements["ReadSecrets"]
    assert read["Action"] == "kms:Decrypt"
    assert read["Condition"] == {
        "StringEquals": {"kms:ViaService": VIA_SECRETS_MANAGER},
        "ArnEquals": {"aws:PrincipalArn": SECRET_READERS},
    }


def test_the_secret_denies_get_secret_value_to_everyone_else(template: dict[str, Any]) -> None:
    resource = _resources(template)["AlpacaSecretPolicy"]
    assert resource["Type"] == "AWS::SecretsManager::ResourcePolicy"
    policy = resource["Properties"]
    assert policy["SecretId"] == {"Ref": "AlpacaSecret"}
    assert policy["BlockPublicPolicy"] is True
    (statement,) = policy["ResourcePolicy"]["Statement"]
    assert statement == {
        "Sid": "OnlyTheWorkerReads",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": SECRET_READERS}},
    }


def test_secret_admin_role_is_optional(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SecretAdminRoleArn"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch("arn:aws:iam::123456789012:role/Admin")
    assert pattern.fullmatch("arn:aws-us-gov:iam::123456789012:role/ops/SecretsAdmin")
    assert not pattern.fullmatch("arn:aws:iam::123456789012:user/alice")
    assert not pattern.fullmatch("arn:aws:iam::123456789012:root")
    assert template["Conditions"]["HasSecretAdmin"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SecretAdminRoleArn"}, ""]}]
    }
    assert template["Outputs"]["SecretsKeyArn"]["Value"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}


@pytest.mark.parametrize("admin", ["", "arn:aws:iam::123456789012:role/SecretsAdmin"])
def test_the_policy_output_for_other_secrets_is_the_stacks_own(
    template: dict[str, Any], admin: str
) -> None:
    changed = copy.deepcopy(template)
    changed["Parameters"]["SecretAdminRoleArn"]["Default"] = admin
    resolver = Resolver(changed, "alchemiser", implicit_roles(changed, "alchemiser"))
    output = json.loads(resolver.resolve(changed["Outputs"]["SecretResourcePolicy"]["Value"]))
    own = resolver.resolve(_properties(changed, "AlpacaSecretPolicy")["ResourcePolicy"])
    assert output == own
    readers = own["Statement"][0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert readers == [
        "arn:aws:iam::123456789012:role/alchemiser-RebalanceFunctionRole",
        *([admin] if admin else []),
    ]


def test_worker_decrypts_only_its_own_secrets_through_secrets_manager(
    template: dict[str, Any],
) -> None:
    (statement,) = [
        s
        for s in _statements(_properties(template, "RebalanceFunction")["Policies"])
        if s["Sid"] == "DecryptBrokerSecrets"
    ]
    # Not the key's ARN: the key policy names this role, so the role cannot name the key
    # (a circular dependency). The key policy is the gate; this grant is scoped to the
    # stack's secrets.
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"
    }
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": VIA_SECRETS_MANAGER},
        "StringLike": {
            "kms:EncryptionContext:SecretARN": {
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                "${AWS::AccountId}:secret:${AWS::StackName}/*"
            }
        },
    }


def test_reports_topic_refuses_requests_without_tls(template: dict[str, Any]) -> None:
    resource = _resources(template)["ReportsTopicPolicy"]
    assert resource["Type"] == "AWS::SNS::TopicPolicy"
    properties = resource["Properties"]
    assert properties["Topics"] == [TOPIC]
    statements = {s["Sid"]: s for s in properties["PolicyDocument"]["Statement"]}
    assert set(statements) == {"DenyInsecureTransport", "AlarmsPublish"}
    statement = statements["DenyInsecureTransport"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Resource"] == TOPIC
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Every action a request can take on a topic (SNS's resource-level actions).
    assert set(statement["Action"]) == {
        "sns:Publish",
        "sns:Subscribe",
        "sns:Receive",
        "sns:GetTopicAttributes",
        "sns:SetTopicAttributes",
        "sns:AddPermission",
        "sns:RemovePermission",
        "sns:DeleteTopic",
        "sns:ListSubscriptionsByTopic",
    }
    # A topic policy replaces the default one, whose account-wide grant is what lets
    # CloudWatch alarms publish: the alarms of this account are allowed again, by name.
    # The functions publish with their roles' IAM grants (same account).
    alarms = statements["AlarmsPublish"]
    assert alarms["Effect"] == "Allow"
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == "sns:Publish"
    assert alarms["Resource"] == TOPIC
    assert alarms["Condition"] == {
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:"
                "${AWS::AccountId}:alarm:*"
            }
        },
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["NotificationEmail"]["Default"] == ""
    assert parameters["RiskDeniedThreshold"]["Type"] == "Number"
    assert parameters["RiskDeniedThreshold"]["Default"] == 3
    assert parameters["LiveTrading"]["AllowedValues"] == ["false", "true"]
    assert parameters["LiveTrading"]["Default"] == "false"
    assert parameters["DryRun"]["AllowedValues"] == ["false", "true"]
    assert parameters["DryRun"]["Default"] == "false"
    assert parameters["WorkerConcurrency"]["Type"] == "Number"
    assert {"ScheduleState", "ConfigPath", "LogLevel"} <= set(parameters)


# --- alarms and dashboard --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_alarm_watches_its_metric_and_notifies_the_topic(
    template: dict[str, Any], name: str
) -> None:
    assert _resources(template)[name]["Type"] == "AWS::CloudWatch::Alarm"
    alarm = _properties(template, name)
    for key, value in ALARMS[name].items():
        assert alarm[key] == value, key
    assert alarm["AlarmActions"] == [TOPIC]
    assert alarm["OKActions"] == [TOPIC]
    assert alarm["TreatMissingData"] == "notBreaching"
    periods = alarm["EvaluationPeriods"]
    assert periods == {"Ref": "DegradedSessions"} if isinstance(periods, dict) else periods >= 1


def test_no_successful_run_alarm_says_what_it_means(template: dict[str, Any]) -> None:
    description = " ".join(
        _properties(template, "NoSuccessfulRunAlarm")["AlarmDescription"].split()
    )
    assert "10:00 New York time" in description
    assert "16:15" in description
    assert "weekday" in description


def _dashboard(template: dict[str, Any]) -> dict[str, Any]:
    body = _properties(template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    references = set(re.findall(r"\$\{([^}]+)\}", body))
    resources = _resources(template)
    for reference in references:  # every ${...} names a pseudo parameter or a resource
        assert reference.startswith("AWS::") or reference.split(".")[0] in resources, reference
    return json.loads(re.sub(r"\$\{[^}]+\}", "placeholder", body))  # type: ignore[no-any-return]


def test_degraded_sessions_parameter(template: dict[str, Any]) -> None:
    sessions = template["Parameters"]["DegradedSessions"]
    assert sessions["Type"] == "Number"
    assert sessions["Default"] == 3
    # A daily period: CloudWatch evaluates at most seven days (Period x EvaluationPeriods).
    assert (sessions["MinValue"], sessions["MaxValue"]) == (1, 7)
    assert sessions["MaxValue"] * ALARMS["RunDegradedAlarm"]["Period"] <= 7 * 86400


def test_run_degraded_alarm_says_what_it_means(template: dict[str, Any]) -> None:
    description = _properties(template, "RunDegradedAlarm")["AlarmDescription"]["Fn::Sub"]
    assert description.startswith("${DegradedSessions} sessions in a row")
    assert "degraded or blocked" in description


def test_dashboard_widgets_and_metrics(template: dict[str, Any]) -> None:
    widgets = _dashboard(template)["widgets"]
    metric_widgets = {
        w["properties"]["title"]: w["properties"] for w in widgets if w["type"] == "metric"
    }
    assert set(metric_widgets) == set(DASHBOARD)
    for title, names in DASHBOARD.items():
        metrics = metric_widgets[title]["metrics"]
        assert {row[1] for row in metrics} == names, title
        for row in metrics:
            if row[0] == "Alchemiser":
                assert row[2:4] == ["service", "alchemiser"], row
    assert metric_widgets["Equity ($)"]["stat"] == "Maximum"
    assert metric_widgets["Data staleness (days)"]["stat"] == "Maximum"
    assert len(metric_widgets["Dead-letter queues"]["metrics"]) == 2


def test_dashboard_lists_every_alarm(template: dict[str, Any]) -> None:
    body = _properties(template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    alarm_widgets = [w for w in _dashboard(template)["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widgets) == 1
    assert len(alarm_widgets[0]["properties"]["alarms"]) == len(ALARMS)
    for name in ALARMS:
        assert "${" + name + ".Arn}" in body


# --- IAM -------------------------------------------------------------------------------


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: object) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere under ``document`` (inline or in a resource policy)."""
    if isinstance(document, dict):
        if "Effect" in document and ("Action" in document or "NotAction" in document):
            yield document
        for value in document.values():
            yield from _statements(value)
    elif isinstance(document, list):
        for value in document:
            yield from _statements(value)


def _granted_actions(template: dict[str, Any], logical_id: str) -> list[str]:
    """Every action the function's role gets: its Policies (inline statements, SAM policy
    templates, managed policy names) plus what SAM attaches for its settings and events."""
    function = _function(template, logical_id)
    actions: list[str] = list(MANAGED_POLICIES["AWSLambdaBasicExecutionRole"])
    if function.get("Tracing") == "Active":
        actions += MANAGED_POLICIES["AWSXrayWriteOnlyAccess"]
    for policy in _as_list(function.get("Policies", [])):
        if isinstance(policy, str):
            assert policy in MANAGED_POLICIES, f"unknown managed policy {policy}: add it above"
            actions += MANAGED_POLICIES[policy]
        elif "Statement" in policy:
            for statement in _statements(policy):
                actions += _as_list(statement.get("Action", []))
        else:
            (name,) = policy
            assert name in SAM_POLICY_TEMPLATES, f"unknown SAM policy template {name}: add it"
            actions += SAM_POLICY_TEMPLATES[name]
    for event in function.get("Events", {}).values():
        if event["Type"] == "SQS":
            actions += MANAGED_POLICIES["AWSLambdaSQSQueueExecutionRole"]
    on_failure = function.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
    if on_failure:
        actions += ON_FAILURE_ACTIONS[on_failure["Type"]]
    return actions


def _wildcard(action: object) -> bool:
    return (
        not isinstance(action, str) or "*" in action or not re.fullmatch(r"[a-z0-9-]+:\w+", action)
    )


def test_policy_tables_themselves_are_wildcard_free_except_the_one_we_avoid() -> None:
    templates = {n for n, actions in SAM_POLICY_TEMPLATES.items() if any(map(_wildcard, actions))}
    assert templates == {"SQSSendMessagePolicy"}  # sqs:SendMessage*: must not be used
    for actions in (*MANAGED_POLICIES.values(), SCHEDULE_ROLE_ACTIONS):
        assert not any(map(_wildcard, actions))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_no_function_is_granted_a_wildcard_action(
    template: dict[str, Any], logical_id: str
) -> None:
    wildcards = [a for a in _granted_actions(template, logical_id) if _wildcard(a)]
    assert wildcards == [], f"{logical_id} is granted {wildcards}"


def test_no_statement_anywhere_has_a_wildcard_action(template: dict[str, Any]) -> None:
    statements = list(_statements(template))
    assert statements, "the walk found no statement at all"
    for statement in statements:
        assert "NotAction" not in statement, statement
        for action in _as_list(statement["Action"]):
            assert not _wildcard(action), statement


def test_only_x_ray_style_actions_may_use_resource_star(template: dict[str, Any]) -> None:
    # Inline statements name their resources; "*" only where the service has no ARNs.
    # In a resource policy (a statement with a Principal: the key's, the secret's) "*"
    # is the resource the policy is attached to.
    for statement in _statements(template):
        if "Principal" in statement:
            continue
        if "*" in _as_list(statement.get("Resource", [])):
            assert all(a.startswith("xray:") for a in _as_list(statement["Action"])), statement


def test_worker_grants_are_scoped(template: dict[str, Any]) -> None:
    policies = _properties(template, "RebalanceFunction")["Policies"]
    by_action: dict[str, list[Any]] = {}
    for statement in _statements(policies):
        for action in _as_list(statement["Action"]):
            by_action.setdefault(action, []).extend(_as_list(statement["Resource"]))
    assert by_action["secretsmanager:GetSecretValue"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
            "${AWS::AccountId}:secret:${AWS::StackName}/*"
        }
    ]
    assert {"Fn::Sub": "${LedgerTable.Arn}/index/*"} in by_action["dynamodb:Query"]
    assert by_action["ssm:GetParameter"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
            "parameter${TradingStateParameter}"
        }
    ]
    assert by_action["sns:Publish"] == [TOPIC]
    assert "cloudwatch:PutMetricData" not in by_action  # metrics go out as EMF log lines
    # TransactWriteItems is not an IAM action; the ledger's Put and Delete items are.
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem"} <= set(by_action)


# Each function's inline statements by Sid: what its code calls, and nothing more. The
# ledger is written with TransactWriteItems (authorized as its Put and Delete items) and
# read with Query; Powertools idempotency gets, puts, updates and deletes its records.
# The worker never changes a message's visibility: a failed item returns to the queue
# after the visibility timeout.
STATEMENTS: dict[str, dict[str, set[str]]] = {
    "OrchestratorFunction": {
        "QueueAccounts": {"sqs:SendMessage"},
        "PublishNotices": {"sns:Publish"},
    },
    "RebalanceFunction": {
        "ReadBrokerSecrets": {"secretsmanager:GetSecretValue"},
        "DecryptBrokerSecrets": {"kms:Decrypt"},
        "Idempotency": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
        "Ledger": {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"},
        "PublishReports": {"sns:Publish"},
        "ReadKillSwitch": {"ssm:GetParameter"},
    },
    "WatchdogFunction": {
        "ReadLedger": {"dynamodb:Query"},
        "PublishNotices": {"sns:Publish"},
    },
}
BASELINE = {
    *MANAGED_POLICIES["AWSLambdaBasicExecutionRole"],
    *MANAGED_POLICIES["AWSXrayWriteOnlyAccess"],
}
ROLE_ACTIONS: dict[str, set[str]] = {
    "OrchestratorFunction": BASELINE | {"sqs:SendMessage", "sns:Publish"},
    "RebalanceFunction": BASELINE
    | set(MANAGED_POLICIES["AWSLambdaSQSQueueExecutionRole"])
    | set().union(*STATEMENTS["RebalanceFunction"].values()),
    "WatchdogFunction": BASELINE | {"dynamodb:Query", "sns:Publish", "sqs:SendMessage"},
}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_statement_grants_exactly_what_the_code_calls(
    template: dict[str, Any], logical_id: str
) -> None:
    policies = _properties(template, logical_id)["Policies"]
    by_sid: dict[str, set[str]] = {}
    for statement in _statements(policies):
        assert statement["Sid"] not in by_sid, statement["Sid"]
        by_sid[statement["Sid"]] = set(_as_list(statement["Action"]))
    assert by_sid == STATEMENTS[logical_id]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_role_is_granted_exactly_the_expected_actions(
    template: dict[str, Any], logical_id: str
) -> None:
    assert set(_granted_actions(template, logical_id)) == ROLE_ACTIONS[logical_id]


def test_orchestrator_and_watchdog_grants(template: dict[str, Any]) -> None:
    def actions(logical_id: str) -> set[str]:
        policies = _properties(template, logical_id)["Policies"]
        return {a for s in _statements(policies) for a in _as_list(s["Action"])}

    assert actions("OrchestratorFunction") == {"sqs:SendMessage", "sns:Publish"}
    assert actions("WatchdogFunction") == {"dynamodb:Query", "sns:Publish"}


# --- outputs, packaging, samconfig -------------------------------------------------------


def test_outputs(template: dict[str, Any]) -> None:
    assert {
        "OrchestratorFunctionArn",
        "RebalanceFunctionArn",
        "WatchdogFunctionArn",
        "DashboardName",
        "ReportsTopicArn",
        "LedgerTableName",
        "IdempotencyTableName",
        "TradingStateParameterName",
        "AlpacaSecretArn",
        "AccountsQueueUrl",
    } <= set(template["Outputs"])


def test_shipped_events_are_scheduler_payloads() -> None:
    for path in sorted((ROOT / "events").glob("*.json")):
        payload = json.loads(path.read_text())
        if "scheduled_time" not in payload:  # e.g. an SQS event for the worker
            continue
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["scheduled_time"]), path
        assert payload["schedule_arn"].startswith("arn:aws:scheduler:")


UV = ROOT / ".tools" / "bin" / "uv"
# The Makefile's `requirements` recipe: the lock's runtime dependencies, with hashes (so
# `sam build`'s pip runs in --require-hashes mode), without the project itself.
EXPORT = ["export", "--frozen", "--no-dev", "--no-emit-project", "--quiet"]


def test_make_requirements_is_the_export_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrequirements:", 1)[1].splitlines()[1].strip()
    assert recipe == f"$(UV) {' '.join(EXPORT)} > src/requirements.txt"
    assert "--no-hashes" not in recipe


@pytest.mark.skipif(not UV.exists(), reason="the pinned uv is not installed (make requirements)")
def test_lambda_requirements_are_the_locks_export_byte_for_byte() -> None:
    exported = subprocess.run(
        [str(UV), *EXPORT],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "UV_OFFLINE": "1"},
    ).stdout
    on_disk = (ROOT / "src" / "requirements.txt").read_bytes()
    assert on_disk == exported, "run `make requirements`"


def test_every_lambda_requirement_is_pinned_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    text = (ROOT / "src" / "requirements.txt").read_text()
    entries = re.split(r"\n(?=[A-Za-z])", text.split("\n", 2)[2])  # after the header
    pinned = set()
    for entry in entries:
        name, _, rest = entry.partition("==")
        assert rest, entry
        assert "--hash=sha256:" in rest, f"{name} has no hash"
        pinned.add(name.split("[")[0].lower())
    assert wanted <= pinned, f"run `make requirements`: missing {sorted(wanted - pinned)}"
    assert "alchemiser" not in pinned
    assert "-e " not in text


def test_samconfig_names_the_stack_and_only_real_parameters(template: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["global"]["parameters"]["stack_name"] == "alchemiser"
    overrides = config["default"]["deploy"]["parameters"]["parameter_overrides"]
    names = re.findall(r'(\w+)="', overrides)
    assert names, overrides
    assert set(names) <= set(template["Parameters"])
    assert "NotificationEmail" not in names  # no personal address in the repository
    assert not re.search(r"\d{12}", overrides)  # no account id
    assert 'LiveTrading="false"' in overrides
