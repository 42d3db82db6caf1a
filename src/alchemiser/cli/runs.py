"""``run`` and ``invoke``: the commands that rebalance, here (``run``) or in the local
stack's Lambda functions (``invoke``). Their arguments are defined in ``main``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alchemiser import bootstrap
from alchemiser.adapters.clock import SystemClock
from alchemiser.cli.accounts import accounts_asked
from alchemiser.config import AppConfig, load_config
from alchemiser.domain.report import RunReport, failure_reason
from alchemiser.errors import AlchemiserError, ConfigError, LiveTradingRefused
from alchemiser.render import render_report
from alchemiser.service import rebalance

EXIT_FAILED = 1
EXIT_USAGE = 2


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


def run(args: argparse.Namespace) -> int:
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


def invoke(args: argparse.Namespace) -> int:
    # Lazy: the local stack (moto, the template) is for ``invoke`` only, not ``run``.
    from alchemiser.devstack.invoke import run as run_invoke  # noqa: PLC0415
    from alchemiser.devstack.session import Options as InvokeOptions  # noqa: PLC0415

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
