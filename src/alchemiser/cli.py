"""The ``alchemiser`` command: run | invoke | evaluate | explain | validate | backtest.

Exit status: 0 when the run completed or had nothing to do, 1 when it failed
(the reason on stderr, one line), 2 for bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from alchemiser import bootstrap, cli_research
from alchemiser.adapters.clock import SystemClock
from alchemiser.config import load_config
from alchemiser.domain.report import failure_reason
from alchemiser.errors import AlchemiserError, ConfigError
from alchemiser.handlers import local
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
    run.add_argument(
        "--as-of", type=_date, help="session to trade at (default: latest in the data)"
    )
    run.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="simulated account and ledger"
    )
    run.add_argument("--reset", action="store_true", help="start the simulated account over")
    run.add_argument("--json", action="store_true", help="print the RunReport as JSON")

    invoke = commands.add_parser("invoke", help="run the Lambda handler locally with an event file")
    invoke.add_argument("event", type=Path)
    invoke.add_argument("--template", type=Path, default=Path("template.yaml"))
    invoke.add_argument("--function", help="logical id (default: the template's first function)")
    invoke.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the function's environment variables (repeatable)",
    )
    cli_research.add_commands(commands, _date)
    return parser


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    state_dir: Path = args.state_dir
    if args.reset:
        state = bootstrap.sim_state_path(config, state_dir)
        state.unlink(missing_ok=True)
        print(f"simulated account reset ({state})", file=sys.stderr)
    clock = SystemClock()
    market = bootstrap.market_data(config)
    request = bootstrap.manual_request(config, market, clock.now(), args.as_of)
    deps = bootstrap.build(
        config, market=market, as_of=request.as_of, clock=clock, state_dir=state_dir
    )
    report = rebalance(request, deps)
    print(report.model_dump_json(indent=2) if args.json else render_report(report))
    if not report.status.succeeded:
        print(f"alchemiser: run {report.status.value}: {failure_reason(report)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _invoke(args: argparse.Namespace) -> int:
    overrides = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    result = local.invoke(args.event, args.template, args.function, overrides)
    print("--- logs ---")
    print(result.logs.rstrip())
    print("--- response ---")
    print(json.dumps(result.response, indent=2))
    return result.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "invoke":
            return _invoke(args)
        return cli_research.HANDLERS[args.command](args)
    except ConfigError as error:
        print(f"alchemiser: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AlchemiserError as error:
        print(f"alchemiser: {error.code}: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
