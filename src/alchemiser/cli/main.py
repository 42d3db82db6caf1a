"""The ``alchemiser`` command: run | invoke | check | evaluate | explain | validate |
backtest | exchange serve | halt | resume | report | data fetch | wait-for.

This module holds the parser (``run`` and ``invoke``'s arguments) and the dispatch:
``run`` and ``invoke`` are in ``runs``, the research commands in ``research``, ``report``
in ``ledger``, ``halt`` and ``resume`` in ``ops``, ``exchange`` in
``alchemiser.exchange.cli``, ``check`` in ``check``, ``data`` in ``data``, ``wait-for``
in ``waitfor``. A command imports its own module only (``COMMANDS``).

Exit status: 0 when the run completed or had nothing to do, 1 when it failed
(the reason on stderr, one line), 2 for bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from alchemiser.errors import AlchemiserError, ConfigError, LiveTradingRefused
from alchemiser.logsafety import secure_logging

DEFAULT_STATE_DIR = Path(".alchemiser")
EXIT_FAILED = 1
EXIT_USAGE = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from error


if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

MAIN = __name__
RESEARCH = "alchemiser.cli.research"
EXCHANGE = "alchemiser.exchange.cli"
OPS = "alchemiser.cli.ops"
LEDGER = "alchemiser.cli.ledger"
DATA = "alchemiser.cli.data"
WAITFOR = "alchemiser.cli.waitfor"
CHECK = "alchemiser.cli.check"
COMMANDS = {
    "run": MAIN,
    "invoke": MAIN,
    "evaluate": RESEARCH,
    "explain": RESEARCH,
    "validate": RESEARCH,
    "convert": RESEARCH,
    "backtest": RESEARCH,
    "exchange": EXCHANGE,
    "halt": OPS,
    "resume": OPS,
    "report": LEDGER,
    "data": DATA,
    "wait-for": WAITFOR,
    "check": CHECK,
}
"""Each command and the module that defines its arguments, in the order ``--help`` lists
them. A command imports only its own module: ``evaluate`` never loads the broker's
client, boto3 or the local stack."""


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` (only its module's commands get their arguments, the
    rest are not defined), or for every command when None: for ``--help``, a missing or
    unknown command."""
    parser = argparse.ArgumentParser(
        prog="alchemiser",
        description="Rebalance Alpaca accounts on a schedule, research and backtest "
        "symphonies, and read what every run did. 'alchemiser COMMAND --help' says more.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):
        if command is None or COMMANDS[command] == module:
            _define(module, commands)
    return parser


def _define(module: str, commands: Commands) -> None:
    """Add the commands ``module`` defines (its arguments) to ``commands``."""
    # Each import is here, not at the top, so a command loads only its own module.
    if module == MAIN:
        _define_run(commands)
    elif module == RESEARCH:
        from alchemiser.cli import research  # noqa: PLC0415

        research.add_commands(commands, _date)
    elif module == EXCHANGE:
        from alchemiser.exchange import cli as exchange_cli  # noqa: PLC0415

        exchange_cli.add_command(commands)
    elif module == OPS:
        from alchemiser.cli import ops  # noqa: PLC0415

        ops.add_commands(commands)
    elif module == LEDGER:
        from alchemiser.cli import ledger  # noqa: PLC0415

        ledger.add_commands(commands)
    elif module == DATA:
        from alchemiser.cli import data  # noqa: PLC0415

        data.add_commands(commands, _date)
    elif module == WAITFOR:
        from alchemiser.cli import waitfor  # noqa: PLC0415

        waitfor.add_command(commands)
    else:
        from alchemiser.cli import check  # noqa: PLC0415

        check.add_command(commands)


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs ``command`` (its module is imported by then)."""
    # Imports as in _define: each command's module only.
    module = COMMANDS[command]
    if module == MAIN:
        from alchemiser.cli import runs  # noqa: PLC0415

        return runs.run if command == "run" else runs.invoke
    if module == RESEARCH:
        from alchemiser.cli import research  # noqa: PLC0415

        return research.HANDLERS[command]
    if module == EXCHANGE:
        from alchemiser.exchange import cli as exchange_cli  # noqa: PLC0415

        return exchange_cli.run
    if module == OPS:
        from alchemiser.cli import ops  # noqa: PLC0415

        return ops.HANDLERS[command]
    if module == LEDGER:
        from alchemiser.cli import ledger  # noqa: PLC0415

        return ledger.run
    if module == DATA:
        from alchemiser.cli import data  # noqa: PLC0415

        return data.run
    if module == WAITFOR:
        from alchemiser.cli import waitfor  # noqa: PLC0415

        return waitfor.run
    from alchemiser.cli import check  # noqa: PLC0415

    return check.run


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if its first argument is one: the top-level parser has
    no option but ``--help``, so a command is always first."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def _define_run(commands: Commands) -> None:
    """``run`` and ``invoke`` (handled in ``runs``)."""
    # Lazy: the local stack's names are for invoke's arguments only.
    from alchemiser.devstack.template import STACK_NAME  # noqa: PLC0415

    run = commands.add_parser(
        "run", help="rebalance once (default: simulated broker, bundled prices)"
    )
    run.add_argument(
        "--config", type=Path, metavar="PATH", help="TOML config (default: the embedded default)"
    )
    which = run.add_mutually_exclusive_group()
    which.add_argument(
        "--account",
        metavar="NAME",
        help="the account to run (required, or --all, when the config has [[accounts]])",
    )
    which.add_argument(
        "--all",
        action="store_true",
        help="run every account of the config in turn (exit 1 if any run did not succeed)",
    )
    run.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="session to trade on (default: latest in the data); at the open, the "
        "strategies decide on the session before it",
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        metavar="DIR",
        help=f"the simulated account and the ledger file (default: {DEFAULT_STATE_DIR})",
    )
    run.add_argument("--reset", action="store_true", help="start the simulated account over")
    run.add_argument(
        "--prices",
        type=Path,
        metavar="DIR",
        help="daily prices for the simulated broker: a directory of <TICKER>.csv[.gz] files "
        "(default: the config's [data] dir, else the bundled prices)",
    )
    run.add_argument("--json", action="store_true", help="print the RunReport as JSON")
    run.add_argument(
        "--live",
        action="store_true",
        help="confirm live trading (the config's mode and the secret's endpoint must agree)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="read the account and plan as a run does, then stop: submit and cancel nothing "
        "(as dry_run = true in the config)",
    )
    run.add_argument(
        "--scheduled-time",
        type=_instant,
        metavar="INSTANT",
        help="the trigger instant this run answers (ISO 8601 with offset); the same instant "
        "gives the same run id and order ids, so a repeated run never trades twice",
    )

    invoke = commands.add_parser(
        "invoke",
        help="run the stack's Lambda functions locally on an event file (moto, no Docker)",
        description="Create the template's tables, queues, topic, parameter and secret in a "
        "local moto server, invoke the function the event is for in a fresh process (then, "
        "like SQS, the worker on what it queued) and print logs, metrics, responses, the "
        "ledger rows and the SNS messages.",
    )
    invoke.add_argument(
        "event", type=Path, help="an event file (events/market_open.json, an SQS batch, ...)"
    )
    invoke.add_argument(
        "--template",
        type=Path,
        default=Path("template.yaml"),
        metavar="PATH",
        help="the SAM template (default: template.yaml)",
    )
    invoke.add_argument(
        "--function",
        metavar="ID",
        help="logical id (default: by the event: scheduled_time -> OrchestratorFunction, "
        "SQS Records -> the queue's worker)",
    )
    invoke.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="deliver the event N times in one session (a repeat is answered from idempotency)",
    )
    invoke.add_argument(
        "--alpaca",
        action="store_true",
        help="trade on the local Alpaca-compatible exchange (examples/local-alpaca.toml, "
        "keys in the template's secret)",
    )
    invoke.add_argument(
        "--stack-name",
        default=STACK_NAME,
        metavar="NAME",
        help=f"the stack name the physical names derive from (default: {STACK_NAME})",
    )
    invoke.add_argument(
        "--artifact",
        type=Path,
        metavar="DIR",
        help="run the built code instead of src/: DIR/functions/<LogicalId>/ and "
        "DIR/layer/python only, in an isolated interpreter (make build-host writes one)",
    )
    invoke.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the functions' environment variables (repeatable)",
    )


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 instant, got {text!r}") from error
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. 2026-07-31T13:30:00Z")
    return value


EXIT_PIPE_CLOSED = 141
"""As a shell reports a command ended by SIGPIPE: the reader of stdout went away."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command, return its exit status. When stdout's reader goes away
    (``alchemiser report | head -1``) the command ends quietly with status 141, as a
    shell reports a process that SIGPIPE ended: what it did (a run, its ledger record)
    is done, only the rest of its output is lost."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # inside the try: a closed pipe shows here, not at exit
    except BrokenPipeError:
        # Point stdout at /dev/null so that the interpreter's own flush at exit is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    secure_logging()  # whatever the caller set the root logger to: no key in any log
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_command(arguments)).parse_args(arguments)
    try:
        return _handler(args.command)(args)
    except LiveTradingRefused as error:
        print(f"alchemiser: {error.code}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"alchemiser: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AlchemiserError as error:
        print(f"alchemiser: {error.code}: {error}", file=sys.stderr)
        return EXIT_FAILED
