"""The ``report`` command: runs and their attempts recorded in the DynamoDB ledger.

A run may be attempted several times (retries, redeliveries, a rerun); the ledger keeps
every attempt. ``alchemiser report`` lists the account's last five attempts, one line
each with its attempt id and status; ``--last N`` more or fewer. ``--run ID`` prints every
attempt of one run in full, oldest first. ``--strategy NAME`` lists a strategy's
attempts (in any account). A STARTED attempt that a later attempt of its run followed
is shown as "started, never finished" (its Lambda died or timed out). ``--json`` prints
the reports (a list, also for ``--run``) or strategy rows as JSON instead. The table is
``--table`` or ``ALCHEMISER_LEDGER_TABLE``; the account is ``--account`` or the
config's. Exit status 0 when the ledger answered (whatever the runs' outcomes), 1 when
it could not be read or ``--run`` names no recorded run, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from alchemiser.adapters.aws.ledger import DynamoLedger, StrategyRun
from alchemiser.config import load_config
from alchemiser.domain.report import RunReport, RunStatus, failure_reason
from alchemiser.errors import ConfigError
from alchemiser.render import render_report

TABLE_ENV = "ALCHEMISER_LEDGER_TABLE"
DEFAULT_LAST = 5
MAX_LAST = 1000
EXIT_FAILED = 1
NEVER_FINISHED = "started, never finished"
NO_ATTEMPT_ID = "-"


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
    which.add_argument("--run", metavar="ID", help="print every attempt of one run in full")
    which.add_argument(
        "--last",
        type=_count,
        metavar="N",
        help=f"list the last N attempts (default {DEFAULT_LAST})",
    )
    report.add_argument(
        "--account", metavar="NAME", help="the account (default: the config's account)"
    )
    report.add_argument("--config", type=Path, help="TOML config (default: the embedded default)")
    report.add_argument("--strategy", metavar="NAME", help="list the attempts of one strategy")
    report.add_argument("--json", action="store_true", help="print JSON")


def _table(args: argparse.Namespace) -> str:
    table: str | None = args.table or os.environ.get(TABLE_ENV) or None
    if table is None:
        raise ConfigError(f"no ledger table: pass --table NAME or set {TABLE_ENV}", field="--table")
    return table


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def state(status: RunStatus, superseded: bool) -> str:
    """An attempt's status as a person reads it: a STARTED attempt followed by a later
    attempt of its run never finished."""
    return NEVER_FINISHED if status is RunStatus.STARTED and superseded else status.value


def superseded_attempts(
    ledger: DynamoLedger, rows: Sequence[tuple[str, str, RunStatus]]
) -> set[tuple[str, str]]:
    """The (run id, attempt id) of the STARTED rows (newest first) that a later attempt of
    the same run followed: known from a newer row, else asked of the ledger."""
    found: set[tuple[str, str]] = set()
    newer: set[str] = set()
    for run_id, attempt_id, status in rows:
        if status is RunStatus.STARTED and (
            run_id in newer or ledger.superseded(run_id, attempt_id)
        ):
            found.add((run_id, attempt_id))
        newer.add(run_id)
    return found


def run_line(report: RunReport, superseded: bool = False) -> str:
    """One attempt on one line: when, which run and attempt, outcome, activity, and why it
    did not succeed."""
    line = (
        f"{report.trading_date.isoformat()}  {report.run_id}  "
        f"{state(report.status, superseded):<10}  {report.mode.value:<5}  "
        f"attempt {report.attempt_id or NO_ATTEMPT_ID}  orders {len(report.orders)}  "
        f"fills {len(report.fills)}  turnover {_money(report.turnover)}"
    )
    if not report.status.succeeded and report.status is not RunStatus.STARTED:
        line += f"  -- {failure_reason(report)}"
    return line


def strategy_line(run: StrategyRun, superseded: bool = False) -> str:
    top = sorted(run.weights.items(), key=lambda kv: (-kv[1], kv[0]))
    weights = ", ".join(f"{symbol} {weight:.0%}" for symbol, weight in top[:4])
    if len(top) > 4:
        weights += f", +{len(top) - 4} more"
    line = (
        f"{run.trading_date.isoformat()}  {run.run_id}  {run.account}  "
        f"{state(run.status, superseded):<10}  attempt {run.attempt_id or NO_ATTEMPT_ID}  "
        f"allocation {run.allocation:.0%}  [{weights or 'all cash'}]  orders {run.orders}  "
        f"fills {run.fills}  turnover {_money(run.turnover)}"
    )
    if not run.succeeded and run.status is not RunStatus.STARTED:
        line += f"  -- {run.failure_reason or run.status.value}"
    return line


def attempts_text(run_id: str, attempts: Sequence[RunReport]) -> str:
    """Every attempt of one run in full, oldest first, each under a line that says which
    attempt it was and how it ended."""
    out = [f"Run {run_id}: {len(attempts)} attempt(s), oldest first", ""]
    for index, report in enumerate(attempts, start=1):
        latest = index == len(attempts)
        out += [
            f"== Attempt {index} of {len(attempts)}: {report.attempt_id or NO_ATTEMPT_ID}  "
            f"{state(report.status, not latest)}  orders {len(report.orders)}  "
            f"fills {len(report.fills)}  turnover {_money(report.turnover)}",
            render_report(report),
            "",
        ]
    return "\n".join(out).rstrip("\n")


def run(args: argparse.Namespace) -> int:
    if args.run is not None and args.strategy is not None:
        raise ConfigError("--run and --strategy cannot be combined")
    ledger = DynamoLedger(_table(args))
    if args.run is not None:
        attempts = ledger.attempts(args.run)
        if not attempts:
            print(
                f"alchemiser: no run {args.run} in ledger table {ledger.table_name!r}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in attempts], indent=2))
        else:
            print(attempts_text(args.run, attempts))
        return 0
    count: int = args.last or DEFAULT_LAST
    if args.strategy is not None:
        runs = ledger.runs_for_strategy(args.strategy, count)
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        elif not runs:
            print(f"No runs of strategy {args.strategy!r} in {ledger.table_name!r}.")
        else:
            gone = superseded_attempts(ledger, [(r.run_id, r.attempt_id, r.status) for r in runs])
            print(f"Last {len(runs)} attempt(s) of strategy {args.strategy!r}, newest first:")
            print("\n".join(strategy_line(r, (r.run_id, r.attempt_id) in gone) for r in runs))
        return 0
    account: str = args.account or load_config(args.config).account
    reports = ledger.last_runs(account, count)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
    elif not reports:
        print(f"No runs of account {account!r} in {ledger.table_name!r}.")
    else:
        gone = superseded_attempts(ledger, [(r.run_id, r.attempt_id, r.status) for r in reports])
        print(f"Last {len(reports)} attempt(s) of account {account!r}, newest first:")
        print("\n".join(run_line(r, (r.run_id, r.attempt_id) in gone) for r in reports))
    return 0
