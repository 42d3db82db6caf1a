"""The stack's template as the local stack reads it: CloudFormation YAML (short-form
intrinsic tags included), and its intrinsic functions resolved against what was created
locally (``Resolver``), and what a node refers to (``references``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alchemiser.errors import ConfigError

REGION = "us-east-1"
EXAMPLE_ACCOUNT = "123456789012"
"""moto's account id, so the local ARNs and the context's function ARN agree."""
STACK_NAME = "alchemiser-local"


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


def declared_resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
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
            return plain_text(default)
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
                return plain_text(left) == plain_text(right)
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
                return str(separator).join(plain_text(v) for v in self.resolve(items))
            if key == "Fn::Split":
                separator, text = value
                return plain_text(self.resolve(text)).split(str(separator))
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
                return plain_text(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return plain_text(self.ref(name))

        return _SUB_VARIABLE.sub(one, text)


def plain_text(value: Any) -> str:
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
