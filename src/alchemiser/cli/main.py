"""The ``alchemiser`` command: run | invoke | check | evaluate | explain | validate |
backtest | exchange serve | halt | resume | report | data fetch | wait-for.

This module holds the parser, ``run`` and ``invoke``, and the dispatch: the research
commands are in ``research``, ``report`` in ``ledger``, ``halt`` and ``resume`` in ``ops``,
``exchange`` in ``alchemiser.exchange.cli``, ``check`` in ``check``, ``data`` in ``data``,
``wait-for`` in ``waitfor``.

Exit status: 0 when the run completed or had nothing to do, 1 when it failed
(the reason on stderr, one line), 2 for bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from alchemiser import bootstrap
from alchemiser.adapters.clock import SystemClock
from alchemiser.cli import check, data, ledger, ops, research, waitfor
from alchemiser.cli.accounts import accounts_asked
from alchemiser.config import AppConfig, load_config
from alchemiser.devstack.invoke import run as run_invoke
from alchemiser.devstack.session import Options as InvokeOptions
from alchemiser.devstack.template import STACK_NAME
from alchemiser.domain.report import RunReport, failure_reason
from alchemiser.errors import AlchemiserError, ConfigError, LiveTradingRefused
from alchemiser.exchange import cli as exchange_cli
from alchemiser.logsafety import secure_logging
from alchemiser.render import render_report
from alchemiser.service import rebalance

DEFAULT_STATE_DIR = Path(".alchemiser")
EXIT_FAILED = 1
EXIT_USAGE = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alchemiser", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="rebalance once (default: simulated broker, bundled prices)"
    )
    run.add_argument("--config", type=Path, help="TOML config (default: the embedded default)")
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
        help="session to trade on (default: latest in the data); at the open, the "
        "strategies decide on the session before it",
    )
    run.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="simulated account and ledger"
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
    invoke.add_argument("event", type=Path)
    invoke.add_argument("--template", type=Path, default=Path("template.yaml"))
    invoke.add_argument(
        "--function",
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
    invoke.add_argument("--stack-name", default=STACK_NAME, help="for the physical names")
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
    research.add_commands(commands, _date)
    exchange_cli.add_command(commands)
    ops.add_commands(commands)
    ledger.add_commands(commands)
    data.add_commands(commands, _date)
    waitfor.add_command(commands)
    check.add_command(commands)
    return parser


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 instant, got {text!r}") from error
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. 2026-07-31T13:30:00Z")
    return value


def _finish(report: RunReport, as_json: bool) -> int:
    print(report.model_dump_json(indent=2) if as_json else render_report(report))
    if not report.status.succeeded:
        print(f"alchemiser: run {report.status.value}: {failure_reason(report)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _run_alpaca(args: argparse.Namespace, config: AppConfig) -> int:
    if args.as_of is not None or args.reset or args.prices is not None:
        raise ConfigError(
            "--as-of, --reset and --prices apply to the simulated broker only "
            "(an Alpaca run reads Alpaca's bars)"
        )
    assert config.alpaca is not None  # guaranteed by AppConfig
    clock = SystemClock()
    deadline = clock.monotonic() + config.alpaca.time_budget_seconds
    wiring = bootstrap.alpaca(config, clock=clock, live=args.live, deadline=deadline)
    request = bootstrap.alpaca_request(
        config, wiring.market, wiring.broker, args.scheduled_time, deadline
    )
    deps = bootstrap.build_alpaca(config, wiring, clock=clock, state_dir=args.state_dir)
    report = rebalance(request, deps)
    print(
        f"broker requests: {wiring.transport.requests_sent}, retries: {wiring.transport.retries}",
        file=sys.stderr,
    )
    return _finish(report, args.json)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    names = accounts_asked(args, config, "run")
    if names is None:
        return EXIT_USAGE
    if not args.all:
        (name,) = names
        return _run_account(args, config.for_account(name))
    # Accounts are independent: one that cannot run does not stop the others.
    worst = 0
    for number, name in enumerate(names, start=1):
        print(f"alchemiser: account {name!r} ({number} of {len(names)})", file=sys.stderr)
        try:
            code = _run_account(args, config.for_account(name))
        except AlchemiserError as error:
            code = _account_error(name, error)
        worst = max(worst, code)
    return worst


def _account_error(name: str, error: AlchemiserError) -> int:
    """One account's error under ``--all``, said as ``main`` would say it."""
    prefix = f"alchemiser: account {name!r}"
    if isinstance(error, LiveTradingRefused):
        print(f"{prefix}: {error.code}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(error, ConfigError):
        print(f"{prefix}: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{prefix}: {error.code}: {error}", file=sys.stderr)
    return EXIT_FAILED


def _run_account(args: argparse.Namespace, config: AppConfig) -> int:
    """One account's run: ``config`` is that account's settings (``--dry-run`` makes it
    a dry run; so does ``dry_run = true`` in them)."""
    if args.dry_run:
        config = config.model_copy(update={"dry_run": True})
    if config.broker == "alpaca":
        return _run_alpaca(args, _obey_kill_switch(config))
    if args.live:
        raise LiveTradingRefused("--live needs broker = 'alpaca' and mode = 'live'", field="mode")
    return _run_sim(args, config)


def _obey_kill_switch(config: AppConfig) -> AppConfig:
    """The stricter of the config's trading state and its kill switch in SSM. A switch
    that cannot be read raises TradingStateUnavailable: the run stops before it sends
    the broker anything."""
    if config.trading_state_parameter is None:
        return config
    # Lazy: boto3 and Powertools' parameters are for configs that name a switch only.
    from alchemiser.adapters.aws.trading_state import (  # noqa: PLC0415
        read_trading_state,
        strictest,
    )

    switch = read_trading_state(config.trading_state_parameter)
    state = strictest(config.trading_state, switch)
    if state is not config.trading_state:
        print(
            f"alchemiser: trading state {state.value} (kill switch "
            f"{config.trading_state_parameter})",
            file=sys.stderr,
        )
    return config.model_copy(update={"trading_state": state})


def _run_sim(args: argparse.Namespace, config: AppConfig) -> int:
    state_dir: Path = args.state_dir
    if args.reset and config.dry_run:
        raise ConfigError(
            "--reset would delete the simulated account, and a dry run changes nothing: "
            "reset without --dry-run (or dry_run = true in the config) first"
        )
    if args.reset:
        state = bootstrap.sim_state_path(config, state_dir)
        state.unlink(missing_ok=True)
        print(f"simulated account reset ({state})", file=sys.stderr)
    clock = SystemClock()
    market = bootstrap.market_data(config, args.prices)
    if args.scheduled_time is not None:
        request = bootstrap.scheduled_request(config, market, args.scheduled_time)
    else:
        request = bootstrap.manual_request(config, market, clock.now(), args.as_of)
    deps = bootstrap.build_run(config, market, request, clock=clock, state_dir=state_dir)
    return _finish(rebalance(request, deps), args.json)


def _invoke(args: argparse.Namespace) -> int:
    overrides = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    options = InvokeOptions(
        event_path=args.event,
        template_path=args.template,
        function=args.function,
        repeat=args.repeat,
        alpaca=args.alpaca,
        stack_name=args.stack_name,
        overrides=overrides,
        artifact=args.artifact,
    )
    return run_invoke(options, lambda line: print(line, flush=True))


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
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "invoke":
            return _invoke(args)
        if args.command == "exchange":
            return exchange_cli.run(args)
        if args.command in ops.HANDLERS:
            return ops.HANDLERS[args.command](args)
        if args.command == "report":
            return ledger.run(args)
        if args.command == "data":
            return data.run(args)
        if args.command == "wait-for":
            return waitfor.run(args)
        if args.command == "check":
            return check.run(args)
        return research.HANDLERS[args.command](args)
    except LiveTradingRefused as error:
        print(f"alchemiser: {error.code}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"alchemiser: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AlchemiserError as error:
        print(f"alchemiser: {error.code}: {error}", file=sys.stderr)
        return EXIT_FAILED
