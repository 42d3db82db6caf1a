"""Creating the stack's tables, queues, topics, parameters, secrets and keys in moto,
from the template's own definitions (``create_stack``), and naming the execution roles
SAM would generate (``implicit_roles``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from alchemiser.devstack.aws import Aws
from alchemiser.devstack.template import (
    EXAMPLE_ACCOUNT,
    Resolver,
    Resource,
    declared_resources,
    plain_text,
    references,
)
from alchemiser.errors import ConfigError


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"Key": str(t["Key"]), "Value": plain_text(t["Value"])} for t in properties.get("Tags", [])
    ]


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
            attributes[key] = json.dumps(value) if isinstance(value, dict) else plain_text(value)
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
        key: plain_text(props[key])
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
        "Value": plain_text(props["Value"]),
        "Type": str(props.get("Type", "String")),
    }
    for key in ("Description", "AllowedPattern", "Tier", "DataType"):
        if key in props:
            request[key] = plain_text(props[key])
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
        request["Description"] = plain_text(props["Description"])
    if "KmsKeyId" in props:
        request["KmsKeyId"] = plain_text(props["KmsKeyId"])
    if "SecretString" in props:
        request["SecretString"] = plain_text(props["SecretString"])
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
        request["Description"] = plain_text(props["Description"])
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
    for logical_id, resource in declared_resources(template).items():
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
    for logical_id, resource in declared_resources(template).items():
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
