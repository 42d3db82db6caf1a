"""Docker-free local invoke: the stack's functions, each in a fresh process, against a
local stand-in of the stack's AWS resources (moto) and, with ``--alpaca``, the local
Alpaca-compatible exchange.

``run`` reads template.yaml, starts a moto server on 127.0.0.1 and creates the
stack's tables, queues, topics, parameters and secrets from the template's own
definitions (``create_stack``). It then invokes the function the event is for (a
scheduled event: the orchestrator; an SQS event: the queue's worker; or
``--function``) with exactly the environment Lambda would give it (the template's,
with ``!Ref``/``!Sub``/``!GetAtt`` resolved to the local resources) plus the AWS
endpoint and fake credentials. Like Lambda's SQS event source mapping, it then delivers
what the invocation queued to the function subscribed to that queue, deletes the
messages of a successful batch and leaves failed ones. At the end it prints the ledger
rows, the SNS messages and (``--alpaca``) the orders the exchange accepted.

Each invocation runs ``python -m alchemiser.handlers.local`` in a child process, which
builds a Lambda-like context, calls the handler and writes the response (or Lambda's
error shape). This module prints nothing itself: output goes through ``emit``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from time import monotonic
from typing import Any

import yaml

from alchemiser.adapters.files.text import read_capped_text
from alchemiser.errors import ConfigError, EventError

REGION = "us-east-1"
EXAMPLE_ACCOUNT = "123456789012"
"""moto's account id, so the local ARNs and the context's function ARN agree."""
STACK_NAME = "alchemiser-local"
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "TZ")
FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
FAKE_KEY_ID = "local-invoke-key-id"
"""The local exchange's key pair under ``--alpaca`` (never printed)."""
FAKE_SECRET_KEY = "local-invoke-secret-key"  # noqa: S105 - a fake, for the local exchange
ALPACA_EXAMPLE = Path("examples") / "local-alpaca.toml"
ORCHESTRATOR = "OrchestratorFunction"
SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")
REPLAY_LOG = "answered from idempotency"
REPLAY_METRIC = "IdempotentReplay"
MAX_BATCHES = 100
"""A queue drained in more batches than this in one go is a loop, not a backlog."""
LONG_VALUE = 200
LOG_NOISE = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
        "stack_trace",
        "exception_name",
    }
)

Emit = Callable[[str], None]


# -- the template ---------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form intrinsic tags."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read template {path}: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a CloudFormation template")
    return document


def _resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    resources = template.get("Resources") or {}
    return {k: v for k, v in resources.items() if isinstance(v, dict)}


# -- intrinsic functions --------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One resource created locally: what ``!Ref`` and ``!GetAtt`` give for it."""

    logical_id: str
    type: str
    name: str
    """The physical name (table, queue, topic, parameter or secret name)."""
    ref: str
    attributes: Mapping[str, str]
    summary: str


_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class Resolver:
    """CloudFormation's intrinsic functions, resolved against the local stack: parameters
    to their defaults, pseudo parameters to the local stack, resources to what was
    created (a reference to anything else is a ConfigError naming it)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        stack_name: str,
        created: Mapping[str, Resource],
        region: str = REGION,
    ) -> None:
        self.template = template
        self.created = created
        self.parameters: Mapping[str, Any] = template.get("Parameters") or {}
        self.conditions: Mapping[str, Any] = template.get("Conditions") or {}
        self.pseudo = {
            "AWS::StackName": stack_name,
            "AWS::Region": region,
            "AWS::AccountId": EXAMPLE_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": (
                f"arn:aws:cloudformation:{region}:{EXAMPLE_ACCOUNT}:stack/{stack_name}/local"
            ),
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            parameter = self.parameters[name] or {}
            if "Default" not in parameter:
                raise ConfigError(f"parameter {name} has no default to use locally")
            default = parameter["Default"]
            if str(parameter.get("Type", "")).startswith("CommaDelimitedList"):
                return [part.strip() for part in str(default).split(",")]
            return _text(default)
        if name in self.created:
            return self.created[name].ref
        raise ConfigError(f"!Ref {name}: not a parameter or a resource created locally")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.created.get(logical_id)
        if resource is None:
            raise ConfigError(f"!GetAtt {logical_id}.{attribute}: not a resource created locally")
        if attribute not in resource.attributes:
            raise ConfigError(f"!GetAtt {logical_id}.{attribute}: no such attribute locally")
        return resource.attributes[attribute]

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise ConfigError(f"no condition {name!r} in the template")
        return self._truth(self.conditions[name])

    def _truth(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Condition":
                return self.condition(str(value))
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in value)
                return _text(left) == _text(right)
            if key == "Fn::Not":
                return not self._truth(value[0])
            if key == "Fn::And":
                return all(self._truth(v) for v in value)
            if key == "Fn::Or":
                return any(self._truth(v) for v in value)
        raise ConfigError(f"condition {node!r} cannot be evaluated locally")

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic function replaced by its local value."""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(str(value))
            if key == "Fn::GetAtt":
                parts = value if isinstance(value, list) else str(value).split(".", 1)
                return self.get_att(str(parts[0]), str(self.resolve(parts[1])))
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::Join":
                separator, items = value
                return str(separator).join(_text(v) for v in self.resolve(items))
            if key == "Fn::Split":
                separator, text = value
                return _text(self.resolve(text)).split(str(separator))
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                name, when_true, when_false = value
                return self.resolve(when_true if self.condition(str(name)) else when_false)
            if key.startswith("Fn::"):
                raise ConfigError(f"{key} cannot be resolved locally")
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def _sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, variables = str(value[0]), dict(value[1]) if len(value) > 1 else {}
        else:
            text, variables = str(value), {}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return _text(self.ref(name))

        return _SUB_VARIABLE.sub(one, text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        raise ConfigError(f"{value!r} is not a plain value")
    return str(value)


def references(node: Any) -> set[str]:
    """The logical ids and parameter names ``node`` refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        if set(node) == {"Ref"}:
            found.add(str(node["Ref"]))
        elif set(node) == {"Fn::GetAtt"}:
            value = node["Fn::GetAtt"]
            found.add(str(value[0] if isinstance(value, list) else str(value).split(".")[0]))
        elif set(node) == {"Fn::Sub"}:
            value = node["Fn::Sub"]
            text = value[0] if isinstance(value, list) else value
            local = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
            for name in _SUB_VARIABLE.findall(str(text)):
                if not name.startswith("!") and name.split(".")[0] not in local:
                    found.add(name.split(".")[0])
            if isinstance(value, list) and len(value) > 1:
                found |= references(value[1])
        else:
            for item in node.values():
                found |= references(item)
    return found


# -- creating the stack's resources in moto -------------------------------------------


class Aws:
    """boto3 clients on the moto server, with fake credentials (never the caller's)."""

    def __init__(self, endpoint: str, region: str = REGION) -> None:
        self.endpoint = endpoint
        self.region = region
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3  # noqa: PLC0415 - boto3 costs half a second to import

            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=FAKE_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
        return self._clients[service]


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": _text(t["Value"])} for t in properties.get("Tags", [])]


def _default_name(stack: str, logical_id: str) -> str:
    return f"{stack}-{logical_id}"


TABLE_PASSTHROUGH = ("AttributeDefinitions", "KeySchema", "LocalSecondaryIndexes")


def _create_table(aws: Aws, stack: str, logical_id: str, props: Mapping[str, Any]) -> Resource:
    name = str(props.get("TableName") or _default_name(stack, logical_id))
    billing = str(props.get("BillingMode", "PROVISIONED"))
    request: dict[str, Any] = {"TableName": name, "BillingMode": billing}
    request.update({key: props[key] for key in TABLE_PASSTHROUGH if key in props})
    if "ProvisionedThroughput" in props:
        request["ProvisionedThroughput"] = _throughput(props["ProvisionedThroughput"])
    indexes = []
    for index in props.get("GlobalSecondaryIndexes", []):
        entry = {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
        if "ProvisionedThroughput" in index:
            entry["ProvisionedThroughput"] = _throughput(index["ProvisionedThroughput"])
        indexes.append(entry)
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    if "StreamSpecification" in props:
        view = props["StreamSpecification"]["StreamViewType"]
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {
            "Enabled": _flag(sse.get("SSEEnabled")),
            **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
        }
    if _tags(props):
        request["Tags"] = _tags(props)
    dynamodb = aws.client("dynamodb")
    description = dynamodb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _flag(ttl.get("Enabled")):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    attributes = {"Arn": str(description["TableArn"])}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = str(description["LatestStreamArn"])
    keys = "/".join(k["AttributeName"] for k in props.get("KeySchema", []))
    summary = f"table {name} ({keys}"
    if indexes:
        summary += "; GSIs " + ", ".join(i["IndexName"] for i in indexes)
    if ttl and _flag(ttl.get("Enabled")):
        summary += f"; TTL {ttl['AttributeName']}"
    return Resource(logical_id, "AWS::DynamoDB::Table", name, name, attributes, summary + ")")


def _throughput(value: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in value.items()}


QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _create_queue(aws: Aws, stack: str, logical_id: str, props: Mapping[str, Any]) -> Resource:
    fifo = _flag(props.get("FifoQueue"))
    name = str(props.get("QueueName") or _default_name(stack, logical_id))
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {}
    for key in QUEUE_ATTRIBUTES:
        if key in props:
            value = props[key]
            attributes[key] = json.dumps(value) if isinstance(value, dict) else _text(value)
    if not fifo:
        attributes.pop("FifoQueue", None)  # SQS refuses FifoQueue=false on a standard queue
    sqs = aws.client("sqs")
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if _tags(props):
        request["tags"] = {t["Key"]: t["Value"] for t in _tags(props)}
    url = str(sqs.create_queue(**request)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    summary = f"{'FIFO ' if fifo else ''}queue {name}"
    redrive = props.get("RedrivePolicy")
    if isinstance(redrive, dict):
        target = str(redrive.get("deadLetterTargetArn", "")).rsplit(":", 1)[-1]
        summary += f" (to {target} after {redrive.get('maxReceiveCount')} receives)"
    return Resource(
        logical_id,
        "AWS::SQS::Queue",
        name,
        url,
        {"Arn": str(arn), "QueueName": name, "QueueUrl": url},
        summary,
    )


def _create_topic(aws: Aws, stack: str, logical_id: str, props: Mapping[str, Any]) -> Resource:
    fifo = _flag(props.get("FifoTopic"))
    name = str(props.get("TopicName") or _default_name(stack, logical_id))
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: _text(props[key])
        for key in ("DisplayName", "FifoTopic", "ContentBasedDeduplication", "KmsMasterKeyId")
        if key in props
    }
    request: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if _tags(props):
        request["Tags"] = _tags(props)
    arn = str(aws.client("sns").create_topic(**request)["TopicArn"])
    return Resource(
        logical_id,
        "AWS::SNS::Topic",
        name,
        arn,
        {"TopicArn": arn, "TopicName": name},
        f"topic {name}",
    )


def _create_parameter(aws: Aws, stack: str, logical_id: str, props: Mapping[str, Any]) -> Resource:
    name = str(props.get("Name") or _default_name(stack, logical_id))
    request: dict[str, Any] = {
        "Name": name,
        "Value": _text(props["Value"]),
        "Type": str(props.get("Type", "String")),
    }
    for key in ("Description", "AllowedPattern", "Tier", "DataType"):
        if key in props:
            request[key] = _text(props[key])
    aws.client("ssm").put_parameter(**request)
    return Resource(
        logical_id,
        "AWS::SSM::Parameter",
        name,
        name,
        {"Type": request["Type"], "Value": request["Value"]},
        f"parameter {name} ({request['Type']}, {request['Value']})",
    )


def _create_secret(aws: Aws, stack: str, logical_id: str, props: Mapping[str, Any]) -> Resource:
    name = str(props.get("Name") or _default_name(stack, logical_id))
    request: dict[str, Any] = {"Name": name}
    if "Description" in props:
        request["Description"] = _text(props["Description"])
    if "KmsKeyId" in props:
        request["KmsKeyId"] = _text(props["KmsKeyId"])
    if "SecretString" in props:
        request["SecretString"] = _text(props["SecretString"])
    elif "GenerateSecretString" in props:
        request["SecretString"] = _generated_secret(props["GenerateSecretString"])
    if _tags(props):
        request["Tags"] = _tags(props)
    arn = str(aws.client("secretsmanager").create_secret(**request)["ARN"])
    return Resource(
        logical_id,
        "AWS::SecretsManager::Secret",
        name,
        arn,
        {"Id": arn},
        f"secret {name}",
    )


def _create_key(aws: Aws, stack: str, logical_id: str, props: Mapping[str, Any]) -> Resource:
    kms = aws.client("kms")
    request: dict[str, Any] = {
        "KeyUsage": str(props.get("KeyUsage", "ENCRYPT_DECRYPT")),
        "KeySpec": str(props.get("KeySpec", "SYMMETRIC_DEFAULT")),
    }
    if "Description" in props:
        request["Description"] = _text(props["Description"])
    if "KeyPolicy" in props:
        request["Policy"] = json.dumps(props["KeyPolicy"])
    if _tags(props):
        request["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(props)]
    metadata = kms.create_key(**request)["KeyMetadata"]
    key_id, arn = str(metadata["KeyId"]), str(metadata["Arn"])
    rotation = _flag(props.get("EnableKeyRotation", False))
    if rotation:
        kms.enable_key_rotation(KeyId=key_id)
    return Resource(
        logical_id,
        "AWS::KMS::Key",
        key_id,
        key_id,
        {"Arn": arn, "KeyId": key_id},
        f"key {key_id} (rotation {'on' if rotation else 'off'})",
    )


def _generated_secret(spec: Mapping[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    value = secrets.token_urlsafe(length)[:length]
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template and key:
        document = json.loads(str(template))
        document[str(key)] = value
        return json.dumps(document)
    return value


CREATORS: dict[str, Callable[[Aws, str, str, Mapping[str, Any]], Resource]] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::SNS::Topic": _create_topic,
    "AWS::SQS::Queue": _create_queue,
    "AWS::SSM::Parameter": _create_parameter,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::KMS::Key": _create_key,
}
"""The resource types created locally; the others (functions, alarms, log groups,
dashboards, email subscriptions, resource policies) have no part in a local invoke."""


def implicit_roles(template: Mapping[str, Any], stack: str) -> dict[str, Resource]:
    """The execution role SAM generates for each function without a ``Role`` (logical id
    ``<function>Role``), for the ``!GetAtt <function>Role.Arn`` of policies. Named, not
    created: nothing checks IAM locally."""
    roles = {}
    for logical_id, resource in _resources(template).items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::Serverless::Function" or "Role" in properties:
            continue
        name = f"{stack}-{logical_id}Role"
        arn = f"arn:aws:iam::{EXAMPLE_ACCOUNT}:role/{name}"
        roles[f"{logical_id}Role"] = Resource(
            f"{logical_id}Role", "AWS::IAM::Role", name, name, {"Arn": arn}, f"role {name}"
        )
    return roles


def _creation_order(candidates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise ConfigError(f"circular references around {logical_id}")
        visiting.add(logical_id)
        for name in sorted(references(candidates[logical_id].get("Properties", {}))):
            if name in candidates:
                visit(name)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in candidates:
        visit(logical_id)
    return order


def create_stack(template: Mapping[str, Any], aws: Aws, stack_name: str) -> dict[str, Resource]:
    """Create every table, queue, topic, parameter, secret and key the template declares
    (and whose condition holds), from its own properties; returns them by logical id."""
    created: dict[str, Resource] = implicit_roles(template, stack_name)
    resolver = Resolver(template, stack_name, created, aws.region)
    candidates = {}
    for logical_id, resource in _resources(template).items():
        if resource.get("Type") not in CREATORS:
            continue
        condition = resource.get("Condition")
        if condition is not None and not resolver.condition(str(condition)):
            continue
        candidates[logical_id] = resource
    for logical_id in _creation_order(candidates):
        resource = candidates[logical_id]
        properties = resolver.resolve(resource.get("Properties") or {})
        created[logical_id] = CREATORS[str(resource["Type"])](
            aws, stack_name, logical_id, properties
        )
    return {logical_id: created[logical_id] for logical_id in candidates}


# -- functions ------------------------------------------------------------------------


@dataclass(frozen=True)
class SqsSource:
    """An SQS event of a function: Lambda's event source mapping."""

    queue: str
    """The queue's logical id."""
    batch_size: int
    report_failures: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_uri: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    scheduled: bool = False
    sqs_sources: tuple[SqsSource, ...] = ()


def _functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    functions = {
        k: v
        for k, v in _resources(template).items()
        if v.get("Type") == "AWS::Serverless::Function"
    }
    if not functions:
        raise ConfigError("the template declares no AWS::Serverless::Function")
    return functions


def _sqs_sources(events: Mapping[str, Any]) -> tuple[SqsSource, ...]:
    sources = []
    for event in events.values():
        if not isinstance(event, dict) or event.get("Type") != "SQS":
            continue
        properties = event.get("Properties") or {}
        queue = properties.get("Queue")
        names = references(queue)
        if len(names) != 1:
            raise ConfigError(f"SQS event on {queue!r}: expected !GetAtt QUEUE.Arn")
        sources.append(
            SqsSource(
                queue=next(iter(names)),
                batch_size=int(properties.get("BatchSize", 10)),
                report_failures="ReportBatchItemFailures"
                in (properties.get("FunctionResponseTypes") or []),
            )
        )
    return tuple(sources)


def function_spec(
    template: Mapping[str, Any],
    logical_id: str | None = None,
    resolver: Resolver | None = None,
    *,
    environment: bool = True,
) -> FunctionSpec:
    """The function's handler, limits, events and environment (Globals and its own, with
    every intrinsic resolved by ``resolver``; without one, parameters only). With
    ``environment=False`` the environment is left out (nothing needs to exist)."""
    functions = _functions(template)
    name = logical_id or next(iter(functions))
    if name not in functions:
        raise ConfigError(f"no function {name!r} in the template (has {', '.join(functions)})")
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    own = functions[name].get("Properties") or {}
    properties = {**globals_, **own}
    variables = {
        **(globals_.get("Environment") or {}).get("Variables", {}),
        **(own.get("Environment") or {}).get("Variables", {}),
    }
    resolver = resolver or Resolver(template, STACK_NAME, {})
    resolved = {}
    for key, value in variables.items() if environment else ():
        try:
            resolved[key] = _text(resolver.resolve(value))
        except ConfigError as error:
            raise ConfigError(f"{name} environment {key}: {error}") from None
    events = own.get("Events") or {}
    return FunctionSpec(
        logical_id=name,
        handler=str(properties["Handler"]),
        code_uri=str(properties.get("CodeUri", ".")),
        timeout_seconds=int(properties.get("Timeout", 3)),
        memory_mb=int(properties.get("MemorySize", 128)),
        environment=resolved,
        scheduled=any(
            isinstance(e, dict) and e.get("Type") in SCHEDULE_EVENT_TYPES for e in events.values()
        ),
        sqs_sources=_sqs_sources(events),
    )


def lambda_environment(spec: FunctionSpec, code_root: Path) -> dict[str, str]:
    """The environment the Lambda runtime would give the function, plus the template's."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]" + uuid.uuid4().hex,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_SAM_LOCAL": "true",
            "LAMBDA_TASK_ROOT": str(code_root),
            "_HANDLER": spec.handler,
            "PYTHONPATH": str(code_root),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(spec.environment)
    return env


def pick_function(template: Mapping[str, Any], event: Any) -> str:
    """The function that takes ``event``, by its shape: an SQS event goes to the function
    subscribed to a queue, a scheduled event (``scheduled_time``) to the orchestrator
    (or else the template's first scheduled function)."""
    specs = [function_spec(template, name, environment=False) for name in _functions(template)]
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        sources = [r.get("eventSource") for r in event["Records"] if isinstance(r, dict)] or [None]
        if set(sources) == {"aws:sqs"}:
            workers = [s.logical_id for s in specs if s.sqs_sources]
            if not workers:
                raise ConfigError("an SQS event, but no function has an SQS event source")
            return workers[0]
    if isinstance(event, dict) and "scheduled_time" in event:
        scheduled = [s.logical_id for s in specs if s.scheduled]
        if ORCHESTRATOR in scheduled:
            return ORCHESTRATOR
        if scheduled:
            return scheduled[0]
        raise ConfigError("a scheduled event, but no function has a schedule")
    raise EventError(
        "cannot tell which function takes this event: it is neither a scheduled event "
        "(scheduled_time) nor an SQS event (Records from aws:sqs); pass --function"
    )


# -- one invocation -------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One invocation of one function, in a fresh process."""

    function: str
    delivery: int
    exit_code: int
    response: Any
    error_code: str | None
    logs: str
    seconds: float

    @property
    def metrics(self) -> list[tuple[str, Any]]:
        return [pair for line in self.logs.splitlines() for pair in emf_metrics(line)]

    @property
    def replayed(self) -> bool:
        return REPLAY_LOG in self.logs or any(
            name == REPLAY_METRIC and value for name, value in self.metrics
        )

    @property
    def failed_items(self) -> list[str]:
        if isinstance(self.response, dict) and isinstance(
            self.response.get("batchItemFailures"), list
        ):
            return [str(f.get("itemIdentifier")) for f in self.response["batchItemFailures"]]
        return []

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failed_items


def run_child(
    spec: FunctionSpec,
    event: Any,
    env: Mapping[str, str],
    code_root: Path,
    scratch: Path,
    delivery: int = 1,
) -> Invocation:
    """Run the function on ``event`` in a fresh process with exactly ``env``."""
    tag = uuid.uuid4().hex[:8]
    event_path = scratch / f"event-{tag}.json"
    result_path = scratch / f"result-{tag}.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    started = monotonic()
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "alchemiser.handlers.local",
                spec.handler,
                str(event_path),
                str(result_path),
            ],
            env=dict(env),
            cwd=code_root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=spec.timeout_seconds + 10,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        output = timeout.stdout if isinstance(timeout.stdout, str) else ""
        return Invocation(
            spec.logical_id,
            delivery,
            1,
            {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {spec.timeout_seconds} seconds",
            },
            None,
            output,
            monotonic() - started,
        )
    seconds = monotonic() - started
    result: dict[str, Any] = {}
    if result_path.exists():
        result = json.loads(result_path.read_text(encoding="utf-8"))
    response = result.get("response")
    if not result:
        response = {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"the process exited with status {completed.returncode}",
        }
    return Invocation(
        spec.logical_id,
        delivery,
        completed.returncode if result else 1,
        response,
        result.get("error_code"),
        completed.stdout,
        seconds,
    )


# -- reading what the child printed ---------------------------------------------------


def _json_line(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def emf_metrics(line: str) -> list[tuple[str, Any]]:
    """The (name, value) pairs of one CloudWatch EMF line (none for any other line)."""
    record = _json_line(line)
    if record is None or not isinstance(record.get("_aws"), dict):
        return []
    pairs = []
    for directive in record["_aws"].get("CloudWatchMetrics", []):
        for metric in directive.get("Metrics", []):
            value = record.get(metric["Name"])
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            pairs.append((str(metric["Name"]), value))
    return pairs


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _wrap(items: list[str], width: int) -> list[str]:
    """``items`` joined with ", " in lines of at most ``width`` (an item is never split)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            lines.append(item)
    return lines


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > LONG_VALUE:
        return f"{text[:LONG_VALUE]}... ({len(text)} chars)"
    return text


def condense(lines: list[str]) -> list[str]:
    """Each Python traceback in ``lines`` as one line: its depth and the exception."""
    out: list[str] = []
    frames: int | None = None
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            frames = 0
            continue
        if frames is not None:
            if line.startswith("  File "):
                frames += 1
                continue
            if line.startswith(" ") or not line.strip():
                continue
            out.append(f"  [traceback, {frames} frames] {line}")
            frames = None
            continue
        if line.strip():
            out.append(line.rstrip())
    if frames is not None:
        out.append(f"  [traceback, {frames} frames]")
    return out


def pretty_logs(logs: str) -> list[str]:
    """Powertools JSON log lines as ``time LEVEL message key=value``, EMF lines left out
    (see ``emf_metrics``), tracebacks condensed, anything else as it is."""
    lines: list[str] = []
    raw: list[str] = []
    for line in logs.splitlines():
        record = _json_line(line)
        if record is not None and "_aws" in record:
            continue
        if record is None or "message" not in record or "level" not in record:
            raw.append(line)
            continue
        lines += condense(raw)
        raw = []
        stamp = str(record.get("timestamp", ""))
        clock = stamp[11:23] if len(stamp) >= 23 else stamp
        extras = [
            f"{key}={_short(value)}"
            for key, value in record.items()
            if key not in LOG_NOISE and key != "exception"
        ]
        message = _short(record["message"])
        lines.append(f"{clock} {record['level']:<7} {message}  {' '.join(extras)}".rstrip())
        if isinstance(record.get("exception"), str):
            lines += condense(record["exception"].splitlines())
    return lines + condense(raw)


# -- the session ----------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    event_path: Path
    template_path: Path = Path("template.yaml")
    function: str | None = None
    repeat: int = 1
    alpaca: bool = False
    stack_name: str = STACK_NAME
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Sent:
    """A message the session took from a queue, to deliver again on a repeat."""

    queue: str
    body: str
    group_id: str | None
    dedup_id: str | None
    receipt_handle: str
    deleted: bool = False


class Session:
    """One local stack (moto), optionally the local exchange, and the invocations."""

    def __init__(self, options: Options, emit: Emit) -> None:
        self.options = options
        self.emit = emit
        self.template = load_template(options.template_path)
        self.invocations: list[Invocation] = []
        self.stack: dict[str, Resource] = {}
        self.taps: dict[str, str] = {}
        self.exchange: Any = None
        self.session_env: dict[str, str] = {}
        self.taken: list[_Sent] = []
        self.delivered: set[tuple[str, str | None]] = set()
        self._stack = ExitStack()
        self._aws: Aws | None = None
        self.scratch = Path()

    @property
    def aws(self) -> Aws:
        assert self._aws is not None, "the session is not started"
        return self._aws

    # -- lifecycle --

    def __enter__(self) -> Session:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.scratch = Path(
            self._stack.enter_context(tempfile.TemporaryDirectory(prefix="alchemiser-invoke-"))
        )
        endpoint = self._stack.enter_context(moto_server())
        self._aws = Aws(endpoint)
        self.stack = create_stack(self.template, self.aws, self.options.stack_name)
        self.emit(
            f"stack {self.options.stack_name} from {self.options.template_path}, "
            f"on a moto server at {endpoint}:"
        )
        for resource in self.stack.values():
            self.emit(f"  {resource.logical_id:<26} {resource.summary}")
        self._tap_topics()
        state_dir = self.scratch / "tmp"
        state_dir.mkdir()
        self.session_env = {
            **FAKE_AWS_CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint,
            "NO_PROXY": "127.0.0.1,localhost",
            "ALCHEMISER_STATE_DIR": str(state_dir),
        }
        if self.options.alpaca:
            self._start_exchange()
        else:
            self.emit(
                "config: ALCHEMISER_CONFIG from the template (empty: the embedded default, "
                "the simulated broker)"
            )
        if "ALCHEMISER_STATE_DIR" in self.options.overrides:
            self.emit(f"ALCHEMISER_STATE_DIR={self.options.overrides['ALCHEMISER_STATE_DIR']}")
        else:
            self.emit(f"ALCHEMISER_STATE_DIR={state_dir} (a fresh /tmp for this session)")

    def _tap_topics(self) -> None:
        """Subscribe an SQS queue to every topic, to show what was published."""
        sqs, sns = self.aws.client("sqs"), self.aws.client("sns")
        for resource in self.stack.values():
            if resource.type != "AWS::SNS::Topic" or resource.name.endswith(".fifo"):
                continue
            url = sqs.create_queue(QueueName=f"local-tap-{resource.logical_id}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            sns.subscribe(
                TopicArn=resource.ref, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
            )
            self.taps[resource.logical_id] = str(url)

    def _start_exchange(self) -> None:
        from alchemiser.config import MAX_CONFIG_BYTES, load_config  # noqa: PLC0415
        from alchemiser.exchange import ExchangeSettings, LocalExchange  # noqa: PLC0415

        secret = next(
            (r for r in self.stack.values() if r.type == "AWS::SecretsManager::Secret"), None
        )
        if secret is None:
            raise ConfigError("--alpaca needs an AWS::SecretsManager::Secret in the template")
        example = self.options.template_path.resolve().parent / ALPACA_EXAMPLE
        text = read_capped_text(
            example,
            MAX_CONFIG_BYTES,
            lambda reason: ConfigError(f"cannot read {example}: {reason}"),
        )
        exchange = LocalExchange(
            settings=ExchangeSettings(key_id=FAKE_KEY_ID, secret_key=FAKE_SECRET_KEY)
        )
        exchange.start()
        self._stack.callback(exchange.stop)
        self.exchange = exchange
        self.aws.client("secretsmanager").put_secret_value(
            SecretId=secret.name,
            SecretString=json.dumps(
                {"api_key_id": FAKE_KEY_ID, "api_secret_key": FAKE_SECRET_KEY, "endpoint": "paper"}
            ),
        )
        config_path = self.scratch / "local-alpaca.toml"
        config_path.write_text(_alpaca_config(text, secret.name, exchange.url), encoding="utf-8")
        config = load_config(config_path)
        if config.alpaca is None or config.alpaca.secret_id != secret.name:
            raise ConfigError(f"{example}: expected an [alpaca] table with secret_id")
        self.session_env["ALCHEMISER_CONFIG"] = str(config_path)
        self.emit(
            f"--alpaca: the local exchange at {exchange.url} (a fake key pair, put into "
            f"secret {secret.name}); ALCHEMISER_CONFIG={config_path} ({ALPACA_EXAMPLE}, "
            f"account {config.account})"
        )

    # -- invoking --

    def spec(self, logical_id: str) -> FunctionSpec:
        resolver = Resolver(self.template, self.options.stack_name, self.stack)
        return function_spec(self.template, logical_id, resolver)

    def invoke(self, logical_id: str, event: Any, delivery: int, why: str) -> Invocation:
        spec = self.spec(logical_id)
        root = (self.options.template_path.resolve().parent / spec.code_uri).resolve()
        env = {**lambda_environment(spec, root), **self.session_env, **self.options.overrides}
        self.emit("")
        self.emit(f"-- delivery {delivery}: {spec.logical_id} ({spec.handler}) <- {why}")
        invocation = run_child(spec, event, env, root, self.scratch, delivery)
        self.invocations.append(invocation)
        self._show(invocation)
        return invocation

    def _show(self, invocation: Invocation) -> None:
        self.emit("logs:")
        for line in pretty_logs(invocation.logs) or ["(none)"]:
            self.emit("  " + line)
        pairs = [f"{name} = {_number(value)}" for name, value in invocation.metrics]
        self.emit("metrics:" if pairs else "metrics: (none)")
        for line in _wrap(pairs, 94):
            self.emit("  " + line)
        outcome = "ok" if invocation.ok else "FUNCTION ERROR"
        if invocation.exit_code == 0 and invocation.failed_items:
            outcome = f"{len(invocation.failed_items)} batch item(s) failed"
        self.emit(f"response ({outcome}, {invocation.seconds:.1f} s):")
        response = invocation.response
        if invocation.exit_code != 0 and isinstance(response, dict) and "errorType" in response:
            code = f" ({invocation.error_code})" if invocation.error_code else ""
            message = condense(str(response.get("errorMessage", "")).splitlines()) or [""]
            self.emit(f"  errorType: {response['errorType']}{code}")
            self.emit(f"  errorMessage: {message[0]}")
            for line in message[1:]:
                self.emit("  " + line)
        else:
            for line in json.dumps(response, indent=2, default=str).splitlines():
                self.emit("  " + line)
        if invocation.replayed:
            self.emit(
                f"delivery {invocation.delivery}: answered from idempotency (no new run, no orders)"
            )

    # -- Lambda's SQS event source mapping --

    def sources(self) -> list[tuple[str, SqsSource]]:
        return [
            (name, source)
            for name in _functions(self.template)
            for source in self.spec(name).sqs_sources
            if source.queue in self.stack
        ]

    def pump(self, delivery: int) -> int:
        """Deliver what is visible in every queue with an SQS event source to its function,
        in batches of its BatchSize; delete what succeeded. Returns the batches run."""
        batches = 0
        for function, source in self.sources():
            queue = self.stack[source.queue]
            for _ in range(MAX_BATCHES):
                messages = (
                    self.aws.client("sqs")
                    .receive_message(
                        QueueUrl=queue.ref,
                        MaxNumberOfMessages=max(1, min(10, source.batch_size)),
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                        WaitTimeSeconds=0,
                    )
                    .get("Messages", [])
                )
                if not messages:
                    break
                batches += 1
                self._deliver(function, source, queue, messages, delivery)
        return batches

    def _deliver(
        self,
        function: str,
        source: SqsSource,
        queue: Resource,
        messages: list[dict[str, Any]],
        delivery: int,
    ) -> None:
        event = sqs_event(messages, queue.attributes["Arn"], self.aws.region)
        groups = sorted({str(m.get("Attributes", {}).get("MessageGroupId", "-")) for m in messages})
        self.emit("")
        self.emit(
            f"{queue.logical_id} -> {function}: {len(messages)} message(s) "
            f"(group {', '.join(groups)}; receive #"
            f"{messages[0].get('Attributes', {}).get('ApproximateReceiveCount', '?')})"
        )
        repeated = [
            m
            for m in messages
            if (queue.logical_id, m.get("Attributes", {}).get("MessageDeduplicationId"))
            in self.delivered
            and m.get("Attributes", {}).get("ApproximateReceiveCount") == "1"
        ]
        if repeated:
            self.emit(
                "note: in AWS the FIFO queue would have dropped this repeated send (the same "
                "MessageDeduplicationId within 5 minutes; moto forgets it once the message is "
                "deleted). Delivered anyway: a repeat past the 5-minute window, or SQS's "
                "at-least-once delivery, reaches the worker just like this"
            )
        invocation = self.invoke(function, event, delivery, f"an SQS event from {queue.name}")
        if invocation.exit_code != 0:
            failed = {str(m["MessageId"]) for m in messages}
        elif source.report_failures:
            failed = set(invocation.failed_items)
        else:
            failed = set()
        for message in messages:
            attributes = message.get("Attributes", {})
            taken = _Sent(
                queue.logical_id,
                str(message["Body"]),
                attributes.get("MessageGroupId"),
                attributes.get("MessageDeduplicationId"),
                str(message["ReceiptHandle"]),
            )
            if str(message["MessageId"]) not in failed:
                self.aws.client("sqs").delete_message(
                    QueueUrl=queue.ref, ReceiptHandle=message["ReceiptHandle"]
                )
                taken.deleted = True
            self.taken.append(taken)
            if taken.dedup_id is not None:
                self.delivered.add((queue.logical_id, taken.dedup_id))
        deleted = len(messages) - len(failed)
        note = f"{queue.logical_id}: {deleted} message(s) deleted"
        if failed:
            note += (
                f", {len(failed)} left (SQS delivers it again after the visibility timeout; "
                "after the queue's maxReceiveCount it goes to the dead-letter queue)"
            )
        self.emit(note)

    def redeliver(self, delivery: int) -> None:
        """On a repeat whose queue send was deduplicated: deliver the first delivery's
        messages again, as SQS would (a failed one after its visibility timeout, a deleted
        one when sent again past the deduplication window)."""
        first = [t for t in self.taken if t.queue in self.stack]
        if not first:
            return
        self.emit(
            "nothing new in the queue: the FIFO queue deduplicated the repeated send (the "
            "same MessageDeduplicationId within 5 minutes)."
        )
        if any(not t.deleted for t in first):
            self.emit(
                "The message of the failed run is still in the queue: made visible again, as "
                "SQS does when its visibility timeout ends."
            )
        if any(t.deleted for t in first):
            self.emit(
                "Sending the delivered message(s) again with a new deduplication id, as a "
                "repeat past the 5-minute window would."
            )
        sqs = self.aws.client("sqs")
        seen: set[tuple[str, str]] = set()
        for taken in first:
            key = (taken.queue, taken.body)
            if key in seen:
                continue
            seen.add(key)
            url = self.stack[taken.queue].ref
            if not taken.deleted:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=taken.receipt_handle, VisibilityTimeout=0
                )
                continue
            request: dict[str, Any] = {"QueueUrl": url, "MessageBody": taken.body}
            if taken.group_id is not None:
                request["MessageGroupId"] = taken.group_id
                request["MessageDeduplicationId"] = f"{taken.dedup_id or 'local'}-{delivery}"[:128]
            sqs.send_message(**request)
        self.taken = []
        self.pump(delivery)

    # -- the summary --

    def summary(self) -> None:
        self._ledger_rows()
        self._published()
        self._queues()
        if self.exchange is not None:
            orders = self.exchange.engine.accepted_orders()
            self.emit("")
            self.emit(f"== the local exchange accepted {len(orders)} order(s)")
            for order in orders:
                size = f"qty {order.qty}" if order.qty is not None else f"${order.notional}"
                self.emit(
                    f"  {order.symbol:<6} {order.side:<4} {size:<18} {order.status:<10} "
                    f"{order.client_order_id}"
                )

    def _ledger_rows(self) -> None:
        tables = sorted(
            {
                self.spec(name).environment.get("ALCHEMISER_LEDGER_TABLE", "")
                for name in _functions(self.template)
            }
            - {""}
        )
        for table in tables:
            items = scan_runs(self.aws, table)
            self.emit("")
            self.emit(f"== ledger {table}: {len(items)} run(s)")
            for item in items:
                reason = f"  {item['reason']}" if item.get("reason") else ""
                self.emit(
                    f"  {item['run_id']}  {item['account']}  {item['trading_date']}  "
                    f"{item['status']}  orders={item['orders']} fills={item['fills']}{reason}"
                )

    def _published(self) -> None:
        for logical_id, url in self.taps.items():
            subjects = drain_subjects(self.aws, url)
            self.emit("")
            self.emit(f"== SNS {self.stack[logical_id].name}: {len(subjects)} message(s)")
            for subject in subjects:
                self.emit(f"  {subject}")

    def _queues(self) -> None:
        sqs = self.aws.client("sqs")
        depths = []
        for resource in self.stack.values():
            if resource.type != "AWS::SQS::Queue":
                continue
            attributes = sqs.get_queue_attributes(
                QueueUrl=resource.ref,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depths.append(
                f"{resource.logical_id:<26} {attributes['ApproximateNumberOfMessages']} waiting, "
                f"{attributes['ApproximateNumberOfMessagesNotVisible']} in flight"
            )
        if depths:
            self.emit("")
            self.emit("== queues")
            for depth in depths:
                self.emit("  " + depth)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    records = []
    for message in messages:
        attributes = {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()}
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": attributes,
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": value.get("StringListValues", []),
                        "binaryListValues": value.get("BinaryListValues", []),
                        "dataType": value.get("DataType"),
                    }
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def scan_runs(aws: Aws, table: str) -> list[dict[str, str]]:
    """The attempt items of a ledger table (``sk = RUN#<attempt>``, or a legacy ``RUN``),
    oldest trading date first."""
    rows = []
    paginator = aws.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        FilterExpression="begins_with(sk, :run)",
        ExpressionAttributeValues={":run": {"S": "RUN"}},
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            rows.append(
                {
                    key: str(next(iter(item[key].values())))
                    for key in (
                        "run_id",
                        "account",
                        "trading_date",
                        "status",
                        "orders",
                        "fills",
                        "reason",
                        "run_sk",
                    )
                    if key in item
                }
            )
    return sorted(rows, key=lambda row: row.get("run_sk", ""))


def drain_subjects(aws: Aws, queue_url: str) -> list[str]:
    """The subjects of the SNS notifications delivered to an SQS queue."""
    sqs = aws.client("sqs")
    subjects = []
    for _ in range(MAX_BATCHES):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            envelope = json.loads(message["Body"])
            subjects.append(str(envelope.get("Subject") or "(no subject)"))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return subjects


def _alpaca_config(text: str, secret_id: str, url: str) -> str:
    """examples/local-alpaca.toml with the template's secret and the exchange's URL."""
    replaced = text
    for key, value in (("secret_id", secret_id), ("trading_url", url), ("data_url", url)):
        replaced, count = re.subn(
            rf'^{key}\s*=\s*"[^"]*"', f"{key} = {json.dumps(value)}", replaced, flags=re.M
        )
        if count != 1:
            raise ConfigError(f'{ALPACA_EXAMPLE}: expected one {key} = "..." line')
    return replaced


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port, in this process; yields its URL."""
    try:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "alchemiser invoke needs moto[server] (a dev dependency: make invoke installs it)"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def read_event(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read event {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise EventError(f"{path} is not JSON: {error}") from error


def run(options: Options, emit: Emit) -> int:
    """The whole local session; returns the worst exit status of the invocations (0 all
    succeeded, 1 any function error or failed batch item)."""
    if options.repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    event = read_event(options.event_path)
    template = load_template(options.template_path)
    target = options.function or pick_function(template, event)
    function_spec(template, target, environment=False)  # an unknown --function: before moto
    with Session(options, emit) as session:
        for delivery in range(1, options.repeat + 1):
            if delivery > 1:
                emit("")
                emit(f"== delivery {delivery} of {options.repeat}: the same event again")
            why = str(options.event_path)
            session.invoke(target, event, delivery, why)
            if session.pump(delivery) == 0 and delivery > 1:
                session.redeliver(delivery)
        session.summary()
        worst = 0 if all(i.ok for i in session.invocations) else 1
        emit("")
        emit(f"== exit {worst} (the worst of {len(session.invocations)} invocation(s))")
        return worst


# -- the child process ----------------------------------------------------------------


class LocalContext:
    """The attributes and method of the Lambda context object that handlers use."""

    def __init__(self, function_name: str, memory_mb: int, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{EXAMPLE_ACCOUNT}:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self._deadline = monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - monotonic()) * 1000))


def _runtime_logging() -> None:
    """What the Lambda runtime does with a function's ApplicationLogLevel (it sets
    AWS_LAMBDA_LOG_LEVEL): the root logger at that level, with a handler of its own,
    before the handler's module is imported."""
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").strip().upper()
    if level not in logging.getLevelNamesMapping():
        return
    root = logging.getLogger()
    root.setLevel(level)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
    root.addHandler(handler)


def _child(handler_path: str, event_path: str, result_path: str) -> int:
    _runtime_logging()
    module_name, _, function_name = handler_path.rpartition(".")
    function = getattr(import_module(module_name), function_name)
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    context = LocalContext(
        os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
        int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]),
    )
    code: str | None = None
    try:
        response = function(event, context)
        status = 0
    except Exception as error:  # noqa: BLE001 - reported in Lambda's error shape
        response = {"errorType": type(error).__name__, "errorMessage": str(error)}
        code = getattr(error, "code", None)
        status = 1
        # What the Lambda runtime writes to the function's log for an unhandled error.
        sys.stdout.flush()
        sys.stderr.write(f"[ERROR] {type(error).__name__}: {error}\n")
        sys.stderr.write("Traceback (most recent call last):\n")
        sys.stderr.write("".join(traceback.format_tb(error.__traceback__)))
        sys.stderr.flush()
    document = {"response": response, "error_code": code if isinstance(code, str) else None}
    Path(result_path).write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
