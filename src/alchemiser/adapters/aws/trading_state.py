"""The kill switch: the trading state (ACTIVE / REDUCING / HALTED) in SSM Parameter Store.

Runs read it through Powertools parameters with a short cache age, so a ``halt`` takes
effect at the next run (and within ``max_age`` seconds for a warm function). A parameter
that cannot be read, or holds anything else, fails the run closed: no orders.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import NoRegionError

from alchemiser.domain.decisions import TradingState
from alchemiser.errors import AlchemiserError

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


def write_trading_state(name: str, state: TradingState, client: Any | None = None) -> None:
    """Set the switch (``alchemiser halt`` / ``resume``); overwrites the parameter."""
    import boto3  # noqa: PLC0415 - only the halt/resume commands need it
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    ssm = client or boto3.client("ssm")
    try:
        ssm.put_parameter(Name=name, Value=state.value, Type="String", Overwrite=True)
    except (BotoCoreError, ClientError) as error:
        raise TradingStateUnavailable(
            f"cannot set SSM parameter {name!r}: {type(error).__name__}: {str(error)[:300]}"
        ) from None
