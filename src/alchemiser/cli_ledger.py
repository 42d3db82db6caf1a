"""The ``report`` command: runs recorded in the DynamoDB ledger.

``alchemiser report`` lists the account's last five runs; ``--last N`` more or fewer,
``--run ID`` prints one run in full, ``--strategy NAME`` lists a strategy's runs (in any
account). ``--json`` prints the reports (or strategy runs) as JSON instead. The table is
``--table`` or ``ALCHEMISER_LEDGER_TABLE``; the account is ``--account`` or the
config's. Exit status 0 when the ledger answered (whatever the runs' outcomes), 1 when
it could not be read or ``--run`` names no recorded run, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

from alchemiser.adapters.aws.ledger import DynamoLedger, StrategyRun
from alchemiser.config import load_config
from alchemiser.domain.report import RunReport, failure_reason
from alchemiser.errors import ConfigError
from alchemiser.render import render_report

TABLE_ENV = "ALCHEMISER_LEDGER_TABLE"
DEFAULT_LAST = 5
MAX_LAST = 1000
EXIT_FAILED = 1


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LAST:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_LAST}")
    return value


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("report", help="runs recorded in the DynamoDB ledger")
    report.add_argument("--table", help=f"the ledger table (default: ${TABLE_ENV})", metavar="NAME")
    which = report.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="ID", help="print one run in full")
    which.add_argument(
        "--last", type=_count, metavar="N", help=f"list the last N runs (default {DEFAULT_LAST})"
    )
    report.add_argument(
        "--account", metavar="NAME", help="the account (default: the config's account)"
    )
    report.add_argument("--config", type=Path, help="TOML config (default: the embedded default)")
    report.add_argument("--strategy", metavar="NAME", help="list the runs of one strategy")
    report.add_argument("--json", action="store_true", help="print JSON")


def _table(args: argparse.Namespace) -> str:
    table: str | None = args.table or os.environ.get(TABLE_ENV) or None
    if table is None:
        raise ConfigError(f"no ledger table: pass --table NAME or set {TABLE_ENV}", field="--table")
    return table


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def run_line(report: RunReport) -> str:
    """One run on one line: when, which, outcome, activity, and why it did not succeed."""
    line = (
        f"{report.trading_date.isoformat()}  {report.run_id}  {report.status.value:<10}  "
        f"{report.mode.value:<5}  orders {len(report.orders)}  fills {len(report.fills)}  "
        f"turnover {_money(report.turnover)}"
    )
    if not report.status.succeeded:
        line += f"  -- {failure_reason(report)}"
    return line


def strategy_line(run: StrategyRun) -> str:
    top = sorted(run.weights.items(), key=lambda kv: (-kv[1], kv[0]))
    weights = ", ".join(f"{symbol} {weight:.0%}" for symbol, weight in top[:4])
    if len(top) > 4:
        weights += f", +{len(top) - 4} more"
    line = (
        f"{run.trading_date.isoformat()}  {run.run_id}  {run.account}  {run.status.value:<10}  "
        f"allocation {run.allocation:.0%}  [{weights or 'all cash'}]  orders {run.orders}  "
        f"fills {run.fills}  turnover {_money(run.turnover)}"
    )
    if not run.succeeded:
        line += f"  -- {run.failure_reason or run.status.value}"
    return line


def run(args: argparse.Namespace) -> int:
    if args.run is not None and args.strategy is not None:
        raise ConfigError("--run and --strategy cannot be combined")
    ledger = DynamoLedger(_table(args))
    if args.run is not None:
        report = ledger.get_run(args.run)
        if report is None:
            print(
                f"alchemiser: no run {args.run} in ledger table {ledger.table_name!r}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        print(report.model_dump_json(indent=2) if args.json else render_report(report))
        return 0
    count: int = args.last or DEFAULT_LAST
    if args.strategy is not None:
        runs = ledger.runs_for_strategy(args.strategy, count)
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        elif not runs:
            print(f"No runs of strategy {args.strategy!r} in {ledger.table_name!r}.")
        else:
            print(f"Last {len(runs)} run(s) of strategy {args.strategy!r}, newest first:")
            print("\n".join(strategy_line(r) for r in runs))
        return 0
    account: str = args.account or load_config(args.config).account
    reports = ledger.last_runs(account, count)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
    elif not reports:
        print(f"No runs of account {account!r} in {ledger.table_name!r}.")
    else:
        print(f"Last {len(reports)} run(s) of account {account!r}, newest first:")
        print("\n".join(run_line(r) for r in reports))
    return 0
