"""``alchemiser check``: the preflight to run before a deployment (alchemiser.preflight,
alchemiser.preflight_online).

One line per check (``ok``, ``FAIL`` or ``skip``, its name, what it found). Exit status:
0 when every check is ok or skipped, 1 when any failed, 2 for bad arguments or a
config that does not load. Reads only: nothing is written at the broker or in AWS.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from alchemiser import preflight, preflight_online
from alchemiser.cli.accounts import accounts_asked
from alchemiser.config import load_config
from alchemiser.domain.market import NEW_YORK
from alchemiser.errors import ConfigError
from alchemiser.preflight import CheckResult, Status
from alchemiser.preflight_online import Readers

EXIT_FAILED = 1
EXIT_USAGE = 2
LABELS = {Status.OK: "ok", Status.FAIL: "FAIL", Status.SKIP: "skip"}
WIDTH = max(len(name) for name in preflight.ORDER)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from error


def add_command(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="preflight a config before deploying it: symphonies, data, secret, kill switch",
        description="Check a config without trading: it loads, its symphony files validate, "
        "its tickers have data (local files, or Alpaca's bars with --broker), and for an "
        "account on Alpaca the AWS region, the secret, its endpoint against the mode and "
        "--live, the kill switch and (with --broker) the account pin. Reads only.",
    )
    check.add_argument(
        "--config", type=Path, required=True, metavar="PATH", help="the TOML config to check"
    )
    which = check.add_mutually_exclusive_group()
    which.add_argument(
        "--account", metavar="NAME", help="the account to check (configs with [[accounts]])"
    )
    which.add_argument("--all", action="store_true", help="check every account of the config")
    where = check.add_mutually_exclusive_group()
    where.add_argument(
        "--prices",
        type=Path,
        metavar="DIR",
        help="check tickers in this directory of <TICKER>.csv[.gz] files (default: the "
        "config's [data] dir, else the bundled prices)",
    )
    where.add_argument(
        "--broker",
        action="store_true",
        help="check tickers at Alpaca (recent daily bars) and the account pin: GET requests only",
    )
    check.add_argument(
        "--live", action="store_true", help="as for run: check the live confirmation too"
    )
    check.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="the trading date local data must be fresh for (default: today in New York)",
    )


def _line(result: CheckResult) -> str:
    return f"{LABELS[result.status]:<4} {result.name:<{WIDTH}}  {result.message}"


def run(args: argparse.Namespace, readers: Readers | None = None) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        first, *rest = str(error).splitlines() or [""]
        print(_line(CheckResult("config", Status.FAIL, first)))
        for line in rest:
            print(f"{'':<{WIDTH + 7}}{line.strip()}")
        return EXIT_USAGE
    names = accounts_asked(args, config, "check")
    if names is None:
        return EXIT_USAGE
    accounts = [config.for_account(name) for name in names]
    if args.broker and all(account.broker != "alpaca" for account in accounts):
        print("alchemiser check: --broker needs an account with broker = 'alpaca'", file=sys.stderr)
        return EXIT_USAGE
    today = args.as_of or datetime.now(NEW_YORK).date()
    print(_line(preflight.config_loaded(config, str(args.config))))
    failed = False
    for number, account in enumerate(accounts, start=1):
        if len(accounts) > 1 or config.accounts:
            print(f"-- account {account.account!r} ({number} of {len(accounts)})")
        results = preflight_online.check_account(
            account,
            prices=args.prices,
            use_broker=args.broker,
            live=args.live,
            trading_date=today,
            readers=readers,
        )
        for result in results:
            print(_line(result))
        failed = failed or any(result.failed for result in results)
    return EXIT_FAILED if failed else 0
