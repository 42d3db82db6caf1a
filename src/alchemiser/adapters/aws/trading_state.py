"""The kill switch: the trading state (ACTIVE / REDUCING / HALTED) in SSM Parameter Store.

Runs read it through Powertools parameters with a short cache age, so a ``halt`` takes
effect at the next run (and within ``max_age`` seconds for a warm function). A parameter
that cannot be read, or holds anything else, fails the run closed: no orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from alchemiser.domain.decisions import TradingState
from alchemiser.errors import AlchemiserError, ConfigError

DEFAULT_MAX_AGE_SECONDS = 15
_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class TradingStateUnavailable(AlchemiserError):
    code = "TRADING_STATE_UNAVAILABLE"


def read_trading_state(name: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS) -> TradingState:
    try:
        value = parameters.get_parameter(name, max_age=max_age)
    except NoRegionError:
        # Raised while Powertools builds its client, outside its own error wrapping.
        raise TradingStateUnavailable(
            f"cannot read the trading state from SSM parameter {name!r}: no AWS region "
            "(set AWS_REGION or AWS_DEFAULT_REGION)"
        ) from None
    except GetParameterError as error:
        first = str(error).strip().splitlines()
        raise TradingStateUnavailable(
            f"cannot read the trading state from SSM parameter {name!r}: "
            + (first[0][:300] if first else type(error).__name__)
        ) from None
    try:
        return TradingState(str(value).strip().upper())
    except ValueError:
        raise TradingStateUnavailable(
            f"SSM parameter {name!r} holds {str(value)[:40]!r}; expected ACTIVE, REDUCING or HALTED"
        ) from None


def strictest(*states: TradingState) -> TradingState:
    """The config's state and the switch's: whichever trades less wins."""
    return max(states, key=_STRICTNESS.__getitem__)


@dataclass(frozen=True)
class StoredState:
    """The switch as read back after ``halt`` / ``resume`` set it."""

    arn: str
    state: TradingState
    version: int


def write_trading_state(name: str, state: TradingState, client: Any | None = None) -> StoredState:
    """Set the switch (``alchemiser halt`` / ``resume``) and read it back.

    Only a parameter that exists is overwritten: a mistyped name, or the right name in
    the wrong region, must not create a new parameter (and report HALTED) while the
    runs keep reading the real one, still ACTIVE. A missing region or parameter is a
    ConfigError; AWS refusing or unreachable is TradingStateUnavailable."""
    try:
        # A fresh session: this command's region and credentials, nothing cached.
        ssm = client or boto3.session.Session().client("ssm")
    except NoRegionError:
        raise ConfigError(
            "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION to the stack's region"
        ) from None
    region = ssm.meta.region_name
    _stored(ssm, name, region)  # it must exist before we write
    try:
        ssm.put_parameter(Name=name, Value=state.value, Type="String", Overwrite=True)
    except (BotoCoreError, ClientError) as error:
        raise TradingStateUnavailable(
            f"cannot set SSM parameter {name!r}: {type(error).__name__}: {str(error)[:300]}"
        ) from None
    stored = _stored(ssm, name, region)
    if stored.state is not state:
        raise TradingStateUnavailable(
            f"SSM parameter {stored.arn} reads {stored.state.value} after writing {state.value}"
        )
    return stored


def _stored(ssm: Any, name: str, region: str) -> StoredState:
    try:
        parameter = ssm.get_parameter(Name=name)["Parameter"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise ConfigError(
                f"SSM parameter {name!r} does not exist in region {region}: halt and resume "
                "only change an existing parameter (the stack's output "
                "TradingStateParameterName, in the stack's region)"
            ) from None
        raise TradingStateUnavailable(
            f"cannot read SSM parameter {name!r}: {type(error).__name__}: {str(error)[:300]}"
        ) from None
    except BotoCoreError as error:
        raise TradingStateUnavailable(
            f"cannot read SSM parameter {name!r}: {type(error).__name__}: {str(error)[:300]}"
        ) from None
    value = str(parameter.get("Value", ""))
    try:
        state = TradingState(value.strip().upper())
    except ValueError:
        raise TradingStateUnavailable(
            f"SSM parameter {name!r} holds {value[:40]!r}; expected ACTIVE, REDUCING or HALTED"
        ) from None
    return StoredState(
        arn=str(parameter.get("ARN", name)), state=state, version=int(parameter.get("Version", 0))
    )
