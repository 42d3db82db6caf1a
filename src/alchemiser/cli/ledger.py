"""The ``report`` command: runs and their attempts, from the local ledger file or the
DynamoDB ledger.

A run may be attempted several times (retries, redeliveries, a rerun); the ledger keeps
every attempt. ``alchemiser report`` lists the account's last five attempts, newest
first, one line each: trading date, status, orders, turnover, equity before and after
the run, the change between them ($ and %), the run id, and why it did less than asked
(failed, incomplete, blocked, degraded, skipped, a dry run). ``--last N`` lists more or
fewer. ``--run ID`` prints every attempt of one run in full, oldest first (``--html``
writes its latest attempt as a web page instead). ``--strategy NAME`` lists a
strategy's attempts (in any account). A STARTED attempt that a later attempt of its run
followed never finished (its process died or timed out). ``--json`` prints the reports
(a list, also for ``--run``) or strategy rows as JSON instead.

Which ledger: ``--ledger PATH|TABLE`` (``--table NAME`` is the same for a table). A
value that contains a ``/`` or ends in ``.jsonl`` is a ledger file (``./ledger`` for a
file named otherwise), anything else a DynamoDB table name. Without either:
``$ALCHEMISER_LEDGER_TABLE`` when set (as in the deployed functions), else
``.alchemiser/ledger.jsonl``, the file a local ``alchemiser run`` writes (its default
``--state-dir``). The account is ``--account`` or the config's.

Exit status 0 when the ledger answered (whatever the runs' outcomes), 1 when it could not
be read (a missing file, a line that is not a run report: the error names the line) or
``--run`` names no recorded run, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from alchemiser.config import load_config
from alchemiser.domain.decisions import Verdict
from alchemiser.domain.report import RunReport, RunStatus, failure_reason
from alchemiser.errors import AlchemiserError, ConfigError
from alchemiser.render import render_report

if TYPE_CHECKING:
    from alchemiser.adapters.aws.ledger import StrategyRun

TABLE_ENV = "ALCHEMISER_LEDGER_TABLE"
DEFAULT_FILE = Path(".alchemiser") / "ledger.jsonl"
"""What ``alchemiser run`` writes with its default ``--state-dir``."""
DEFAULT_LAST = 5
MAX_LAST = 1000
EXIT_FAILED = 1
NEVER_FINISHED = "started, never finished"
NO_ATTEMPT_ID = "-"
WIDTH = 100
MILLION = Decimal(1_000_000)
REASON_MARK = "  -- "
HEADER = ("DATE", "STATUS", "ORDERS", "TRADED", "BEFORE", "AFTER", "P&L", "%", "RUN")
GAPS = ("  ", " ", "  ", "  ", " ", "  ", " ", "  ", "")
"""After each column: equity before and after, and the change in $ and %, are pairs."""
RIGHT = {"ORDERS", "TRADED", "BEFORE", "AFTER", "P&L", "%"}


class Readable(Protocol):
    """What ``report`` reads of a ledger: the file one and the DynamoDB one alike."""

    def attempts(self, run_id: str) -> list[RunReport]: ...
    def superseded(self, run_id: str, attempt_id: str) -> bool: ...
    def last_runs(self, account: str, n: int) -> list[RunReport]: ...
    def runs_for_strategy(self, name: str, n: int) -> list[StrategyRun]: ...


@dataclass(frozen=True)
class Source:
    ledger: Readable
    where: str
    """How messages name it: ``ledger file PATH`` or ``ledger table 'NAME'``."""


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LAST:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_LAST}")
    return value


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="the last runs, one line each, or one run in full (local file or DynamoDB)",
        description="List an account's last runs, one line each (trading date, status, "
        "orders, turnover, equity before and after, the change in $ and %, the run id, and "
        "why it did less than asked), a strategy's (--strategy), or one run in full (--run "
        "ID; with --html as a web page). Reads the ledger file local runs write, or the "
        "DynamoDB ledger (see --ledger).",
    )
    where = report.add_mutually_exclusive_group()
    where.add_argument(
        "--ledger",
        metavar="PATH|TABLE",
        help=f"a ledger file (contains '/' or ends in .jsonl) or a DynamoDB table name "
        f"(default: ${TABLE_ENV} when set, else {DEFAULT_FILE})",
    )
    where.add_argument("--table", metavar="NAME", help="a DynamoDB ledger table (as --ledger)")
    which = report.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="ID", help="print every attempt of one run in full")
    which.add_argument(
        "--last",
        type=_count,
        metavar="N",
        help=f"list the last N attempts (default: {DEFAULT_LAST})",
    )
    report.add_argument(
        "--account", metavar="NAME", help="the account (default: the config's account)"
    )
    report.add_argument(
        "--config", type=Path, metavar="PATH", help="TOML config (default: the embedded default)"
    )
    report.add_argument("--strategy", metavar="NAME", help="list the attempts of one strategy")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument(
        "--html",
        action="store_true",
        help="with --run: write the run's latest attempt as a self-contained web page",
    )
    report.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="with --html: where to write it (default: run-<run id>.html)",
    )


def is_file(value: str) -> bool:
    """The rule for ``--ledger``: a path contains a separator or ends in ``.jsonl``."""
    return "/" in value or os.sep in value or value.endswith(".jsonl")


def source(args: argparse.Namespace) -> Source:
    """The ledger ``args`` name (see the module docstring for the rule)."""
    value: str | None = args.ledger or args.table or os.environ.get(TABLE_ENV) or None
    if value is not None and (args.table or not is_file(value)):
        # Lazy: boto3 and the table layout are for the deployed ledger only.
        from alchemiser.adapters.aws.ledger import DynamoLedger  # noqa: PLC0415

        return Source(DynamoLedger(value), f"ledger table {value!r}")
    from alchemiser.adapters.ledger import UNAVAILABLE, FileLedger  # noqa: PLC0415

    path = Path(value) if value is not None else DEFAULT_FILE
    if not path.is_file():
        raise AlchemiserError(
            f"no ledger file {path}: a local `alchemiser run` writes it (to "
            f"{DEFAULT_FILE} with its default --state-dir); pass --ledger PATH|TABLE, "
            f"or set {TABLE_ENV} for the deployed ledger",
            code=UNAVAILABLE,
        )
    return Source(FileLedger(path), f"ledger file {path}")


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _dollars(value: Decimal, sign: bool = False, compact: bool = False) -> str:
    """Whole dollars (``$1,234``); with ``compact``, a million and more in millions to
    the thousand (``$12.346M``)."""
    whole = value.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if compact and abs(whole) >= MILLION:
        millions = (abs(value) / MILLION).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
        text = f"${millions}M"
    else:
        text = f"${abs(whole):,.0f}"
    if whole < 0:
        return "-" + text
    return ("+" if sign else "") + text


def state(status: RunStatus, superseded: bool) -> str:
    """An attempt's status as a person reads it: a STARTED attempt followed by a later
    attempt of its run never finished."""
    return NEVER_FINISHED if status is RunStatus.STARTED and superseded else status.value


def superseded_attempts(
    ledger: Readable, rows: Sequence[tuple[str, str, RunStatus]]
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


def change(report: RunReport) -> tuple[Decimal, Decimal] | None:
    """Equity after the run minus before it, and that as a percentage of before; None
    when the report lacks either valuation (or before is zero)."""
    before, after = report.account_before, report.account_after
    if before is None or after is None or before.equity == 0:
        return None
    delta = after.equity - before.equity
    return delta, delta / before.equity * 100


def status_word(report: RunReport, superseded: bool) -> str:
    if report.status is RunStatus.STARTED:
        return "unfinished" if superseded else "started"
    if report.dry_run and report.status is not RunStatus.FAILED:
        return "dry run"
    return report.status.value


def reason(report: RunReport, superseded: bool) -> str:
    """Why the attempt did less than its targets asked, short; empty when it did all."""
    if report.status is RunStatus.STARTED:
        text = NEVER_FINISHED if superseded else ""
    elif not report.status.succeeded:
        text = failure_reason(report)
    elif report.status is RunStatus.SKIPPED:
        text = report.skipped.value if report.skipped is not None else "skipped"
    elif report.dry_run:
        approved = [d for d in report.decisions if d.verdict is not Verdict.DENIED]
        text = f"would place {len(approved)}"
    else:
        text = "; ".join(report.degraded)
    return " ".join(text.split())


def run_row(
    report: RunReport, superseded: bool = False, compact: bool = False
) -> tuple[list[str], str]:
    """One attempt's cells (as ``HEADER``) and its reason; ``compact`` writes traded and
    equity of a million and more in millions (the P&L stays to the dollar)."""
    moved = change(report)
    before = report.account_before
    after = report.account_after
    cells = [
        report.trading_date.isoformat(),
        status_word(report, superseded),
        str(len(report.orders)),
        _dollars(report.turnover, compact=compact),
        "-" if before is None else _dollars(before.equity, compact=compact),
        "-" if after is None else _dollars(after.equity, compact=compact),
        "-" if moved is None else _dollars(moved[0], sign=True),
        "-" if moved is None else f"{moved[1]:+.2f}%",
        report.run_id,
    ]
    return cells, reason(report, superseded)


def run_table(reports: Sequence[RunReport], gone: set[tuple[str, str]]) -> list[str]:
    """A header and one line per attempt, each column as wide as its widest cell; the
    attempt's reason, if any, on the line below it under its status, cut to stay within
    ``WIDTH`` columns (``--run`` shows it whole).

    A table too wide for ``WIDTH`` writes its millions compact; a row still too wide
    (a long account name, or seven-figure P&L) moves its run id to a line of its own
    below it, before the reason. A run id is never cut: it is what ``--run`` takes."""
    table = _cells(reports, gone, compact=False)
    if max(len(line) for line in _lines(table)[0]) > WIDTH:
        table = _cells(reports, gone, compact=True)
    rows, below = _lines(table)
    room = WIDTH - len(below)
    out = [rows[0]]
    for (cells, why), row in zip(table[1:], rows[1:], strict=True):
        if len(row) > WIDTH:
            out.append(row[: -len(cells[-1])].rstrip())
            out.append(f"{below}run {cells[-1]}")
        else:
            out.append(row)
        if why:
            out.append(below + (why if len(why) <= room else why[: room - 3] + "..."))
    return out


def _cells(
    reports: Sequence[RunReport], gone: set[tuple[str, str]], compact: bool
) -> list[tuple[list[str], str]]:
    """The header and each attempt's cells and reason."""
    return [
        (list(HEADER), ""),
        *(run_row(r, (r.run_id, r.attempt_id) in gone, compact) for r in reports),
    ]


def _lines(table: Sequence[tuple[list[str], str]]) -> tuple[list[str], str]:
    """Each row of cells as one line (columns as wide as their widest cell), and the
    indent that puts a reason under the status column."""
    widths = [max(len(cells[i]) for cells, _ in table) for i in range(len(HEADER))]
    lines = []
    for cells, _ in table:
        text = ""
        for name, cell, width, gap in zip(HEADER, cells, widths, GAPS, strict=True):
            text += (cell.rjust(width) if name in RIGHT else cell.ljust(width)) + gap
        lines.append(text.rstrip())
    return lines, " " * (widths[0] + len(GAPS[0])) + REASON_MARK.lstrip()


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


def _html_path(args: argparse.Namespace, run_id: str) -> Path:
    if args.out is not None:
        return Path(args.out)
    return Path(f"run-{re.sub(r'[^A-Za-z0-9._-]', '_', run_id)}.html")


def _write_html(args: argparse.Namespace, attempts: Sequence[RunReport]) -> None:
    from alchemiser.reporting.run_html import render_run  # noqa: PLC0415

    path = _html_path(args, args.run)
    try:
        path.write_text(render_run(attempts), encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot write {path}: {error.strerror or error}", field="--out"
        ) from None
    print(f"wrote {path}", file=sys.stderr)


def _check(args: argparse.Namespace) -> None:
    if args.run is not None and args.strategy is not None:
        raise ConfigError("--run and --strategy cannot be combined")
    if args.html and args.run is None:
        raise ConfigError("--html writes one run: pass --run ID", field="--html")
    if args.html and args.json:
        raise ConfigError("--html and --json cannot be combined")
    if args.out is not None and not args.html:
        raise ConfigError("--out is where --html writes: pass --html too", field="--out")


def run(args: argparse.Namespace) -> int:
    _check(args)
    found = source(args)
    ledger = found.ledger
    if args.run is not None:
        attempts = ledger.attempts(args.run)
        if not attempts:
            print(f"alchemiser: no run {args.run} in {found.where}", file=sys.stderr)
            return EXIT_FAILED
        if args.html:
            _write_html(args, attempts)
        elif args.json:
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
            print(f"No runs of strategy {args.strategy!r} in {found.where}.")
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
        print(f"No runs of account {account!r} in {found.where}.")
    else:
        gone = superseded_attempts(ledger, [(r.run_id, r.attempt_id, r.status) for r in reports])
        print(
            f"Last {len(reports)} attempt(s) of account {account!r} in {found.where}, newest first:"
        )
        print("\n".join(run_table(reports, gone)))
    return 0
