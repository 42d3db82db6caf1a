"""Operating a deployed stack: ``halt``, ``resume`` (the kill switch in SSM)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from alchemiser.domain.decisions import TradingState
from alchemiser.errors import ConfigError

PARAMETER_ENV = "ALCHEMISER_TRADING_STATE_PARAMETER"


def add_commands(commands: Any) -> None:
    halt = commands.add_parser(
        "halt", help="set the kill switch: HALTED (no orders), or REDUCING with --reduce"
    )
    halt.add_argument("--reduce", action="store_true", help="REDUCING: sells only, nothing bought")
    resume = commands.add_parser("resume", help="set the kill switch back to ACTIVE")
    for command in (halt, resume):
        command.add_argument(
            "--parameter",
            metavar="NAME",
            help=f"the SSM parameter (default: ${PARAMETER_ENV}; the stack's output "
            "TradingStateParameterName)",
        )


def _parameter(args: argparse.Namespace) -> str:
    name: str | None = args.parameter or os.environ.get(PARAMETER_ENV)
    if not name:
        raise ConfigError(f"name the SSM parameter with --parameter or ${PARAMETER_ENV}")
    return name


def _set(args: argparse.Namespace, state: TradingState) -> int:
    from alchemiser.adapters.aws.trading_state import write_trading_state  # noqa: PLC0415

    name = _parameter(args)
    stored = write_trading_state(name, state)
    # The ARN says which account and region were changed; the state is the one read back.
    print(
        f"{stored.arn} = {stored.state.value} (version {stored.version}): takes effect at "
        "the next run (warm functions: within 15 s)"
    )
    return 0


def _halt(args: argparse.Namespace) -> int:
    return _set(args, TradingState.REDUCING if args.reduce else TradingState.HALTED)


def _resume(args: argparse.Namespace) -> int:
    return _set(args, TradingState.ACTIVE)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"halt": _halt, "resume": _resume}
