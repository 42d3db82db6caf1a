"""Reading the local ledger file as ``report`` does, the rule that tells a ledger file
from a DynamoDB table, one report line's arithmetic, and a run's web page."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from alchemiser.adapters.aws.ledger import DynamoLedger
from alchemiser.adapters.ledger import FileLedger
from alchemiser.bootstrap import LEDGER_FILE
from alchemiser.cli import ledger as cli_ledger
from alchemiser.cli.main import DEFAULT_STATE_DIR
from alchemiser.domain.account import AccountValuation
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.orders import Fill, Side
from alchemiser.domain.report import (
    ErrorReport,
    Mode,
    RunReport,
    RunStatus,
    StrategyReport,
    TargetReport,
)
from alchemiser.errors import AlchemiserError
from alchemiser.reporting.run_html import render_run

FIRST = "20260731T133000000001Z-aaaaaa"
SECOND = "20260731T134500000002Z-bbbbbb"


def report(run_id: str, attempt_id: str, status: RunStatus, **changes: Any) -> RunReport:
    fields: dict[str, Any] = {
        "run_id": run_id,
        "attempt_id": attempt_id,
        "account": "demo",
        "as_of": date(2026, 7, 30),
        "trading_date": date(2026, 7, 31),
        "scheduled_time": datetime(2026, 7, 31, 13, 30, tzinfo=UTC),
        "mode": Mode.SIM,
        "trading_state": TradingState.ACTIVE,
        "status": status,
    }
    return RunReport.model_validate({**fields, **changes})


def valued(equity: str) -> AccountValuation:
    return AccountValuation(cash=Decimal(equity), equity=Decimal(equity), positions=())


@pytest.mark.parametrize(
    ("value", "is_file"),
    [
        ("ledger.jsonl", True),
        ("./ledger", True),
        ("/var/state/ledger.jsonl", True),
        ("state/ledger.txt", True),
        ("alchemiser-ledger", False),
        ("prod.ledger", False),
    ],
)
def test_a_ledger_file_or_a_table(value: str, is_file: bool) -> None:
    assert cli_ledger.is_file(value) is is_file


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="alchemiser")
    cli_ledger.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["report", *argv])


def test_which_ledger_report_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli_ledger.DEFAULT_FILE == DEFAULT_STATE_DIR / LEDGER_FILE  # what `run` writes
    file = tmp_path / "runs.jsonl"
    file.write_text("")
    monkeypatch.setenv(cli_ledger.TABLE_ENV, "deployed-ledger")
    deployed = cli_ledger.source(args())
    assert isinstance(deployed.ledger, DynamoLedger)
    assert deployed.where == "ledger table 'deployed-ledger'"
    local = cli_ledger.source(args("--ledger", str(file)))
    assert isinstance(local.ledger, FileLedger)
    assert local.where == f"ledger file {file}"
    assert cli_ledger.source(args("--table", "x.jsonl")).where == "ledger table 'x.jsonl'"
    assert cli_ledger.source(args("--ledger", "other")).where == "ledger table 'other'"
    monkeypatch.delenv(cli_ledger.TABLE_ENV)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AlchemiserError, match="no ledger file") as caught:
        cli_ledger.source(args())
    assert caught.value.code == "LEDGER_UNAVAILABLE"
    with pytest.raises(SystemExit):
        args("--ledger", "a.jsonl", "--table", "b")


def test_a_malformed_line_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = FileLedger(path)
    ledger.record(report("r1", FIRST, RunStatus.STARTED))
    with path.open("a") as stream:
        stream.write("\n")  # blank lines are nothing
        stream.write('{"run_id": "r2", "status": "completed"}\n')
    for read in (ledger.reports, lambda: ledger.finished("r1"), lambda: ledger.last_runs("d", 1)):
        with pytest.raises(AlchemiserError, match=r"line 3 is not a run report") as caught:
            read()
        assert caught.value.code == "LEDGER_MALFORMED"
    path.write_bytes(b"\xff\xfe\n")
    with pytest.raises(AlchemiserError, match="cannot be read") as caught:
        ledger.reports()
    assert caught.value.code == "LEDGER_UNAVAILABLE"


def test_the_file_is_read_back_attempt_by_attempt(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    strategy = StrategyReport(name="core", allocation=1.0, weights={"SPY": 1.0})
    killed = report("r1", FIRST, RunStatus.STARTED)
    done = report("r1", SECOND, RunStatus.COMPLETED, strategies=[strategy])
    later = report("r2", FIRST, RunStatus.NOOP, trading_date=date(2026, 8, 3))
    other = report("r3", FIRST, RunStatus.NOOP, account="ira")
    for record in (killed, report("r1", SECOND, RunStatus.STARTED), done, later, other):
        ledger.record(record)
    assert ledger.attempts("r1") == [killed, done]
    assert ledger.superseded("r1", FIRST)
    assert not ledger.superseded("r1", SECOND)
    assert ledger.last_runs("demo", 5) == [later, done, killed]
    assert ledger.last_runs("demo", 1) == [later]
    (row,) = ledger.runs_for_strategy("core", 5)
    assert (row.run_id, row.attempt_id, row.status, row.weights) == (
        "r1",
        SECOND,
        RunStatus.COMPLETED,
        {"SPY": 1.0},
    )
    assert row.recorded_at == datetime(2026, 7, 31, 13, 45, 0, 2, tzinfo=UTC)
    assert FileLedger(tmp_path / "none.jsonl").last_runs("demo", 5) == []


def test_the_file_is_parsed_once_while_it_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report`` asks the ledger about every unfinished row; a file of 40 runs is parsed
    40 lines' worth, not 40 times over, and a record appended later is still seen."""
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    for k in range(40):
        ledger.record(report(f"r{k:02d}", FIRST, RunStatus.STARTED))
    parsed: list[int] = []
    parse = FileLedger._parse
    monkeypatch.setattr(
        FileLedger, "_parse", lambda self, n, line: parsed.append(n) or parse(self, n, line)
    )
    newest = ledger.last_runs("demo", 40)
    rows = [(r.run_id, r.attempt_id, r.status) for r in newest]
    assert cli_ledger.superseded_attempts(ledger, rows) == set()
    assert len(parsed) == 40
    ledger.record(report("r07", SECOND, RunStatus.STARTED))
    assert ledger.superseded("r07", FIRST)
    assert cli_ledger.superseded_attempts(ledger, rows) == {("r07", FIRST)}
    assert len(parsed) == 40 + 41


def test_one_line_a_run(tmp_path: Path) -> None:
    traded = report(
        "demo-20260731-aaaaaaaaaa",
        SECOND,
        RunStatus.COMPLETED,
        account_before=valued("100000.00"),
        account_after=valued("101234.50"),
    )
    failed = report(
        "demo-20260730-bbbbbbbbbb",
        FIRST,
        RunStatus.FAILED,
        trading_date=date(2026, 7, 30),
        account_before=valued("100000.00"),
        errors=[ErrorReport(type="DataError", code="DATA_STALE", message="SPY " * 40)],
    )
    blocked = report(
        "demo-20260729-cccccccccc",
        FIRST,
        RunStatus.BLOCKED,
        degraded=["risk approved none of the 3 planned order(s)"],
    )
    lines = cli_ledger.run_table([traded, failed, blocked], set())
    assert lines[1] == (
        "2026-07-31  completed      0      $0  $100,000 $101,235  +$1,235 +1.23%  "
        "demo-20260731-aaaaaaaaaa"
    )
    assert lines[2].startswith("2026-07-30  failed         0      $0  $100,000        -")
    assert lines[2].endswith("demo-20260730-bbbbbbbbbb")
    # A reason goes on the line below its row, under the status, cut to fit 100
    # columns; --run shows it whole.
    assert lines[3].startswith("            -- DATA_STALE: SPY SPY")
    assert lines[3].endswith("SP...")
    assert len(lines[3]) == cli_ledger.WIDTH
    assert lines[4].endswith("demo-20260729-cccccccccc")
    assert lines[5] == "            -- risk approved none of the 3 planned order(s)"
    assert all(len(line) <= cli_ledger.WIDTH for line in lines)
    assert cli_ledger.change(traded) == (Decimal("1234.50"), Decimal("1.2345"))


def test_a_millionaire_s_row_still_reads_at_100_columns() -> None:
    """Money of seven figures and more goes compact ($12.346M) when the full figures
    would push a row past ``WIDTH``; the P&L stays exact to the dollar."""
    fills = [
        Fill(
            client_order_id=f"c{k}",
            symbol="SPY",
            side=Side.BUY,
            qty=Decimal(1000),
            price=Decimal("612.3456"),
            notional=Decimal("612345.60"),
        )
        for k in range(5)
    ]
    big = report(
        "demo-20260731-aaaaaaaaaa-dry",
        SECOND,
        RunStatus.STARTED,
        fills=fills,
        account_before=valued("12345678.90"),
        account_after=valued("12501234.10"),
    )
    small = report(
        "demo-20260730-bbbbbbbbbb",
        FIRST,
        RunStatus.COMPLETED,
        trading_date=date(2026, 7, 30),
        account_before=valued("99000"),
        account_after=valued("100000"),
    )
    lines = cli_ledger.run_table([big, small], {(big.run_id, big.attempt_id)})
    assert all(len(line) <= cli_ledger.WIDTH for line in lines), lines
    for money in ("$3.062M", "$12.346M", "$12.501M", "+$155,555", "+1.26%"):
        assert money in lines[1]
    # Still too wide with its 28-character run id, the row names its run on a line of
    # its own below, whole, before the reason.
    assert lines[1].endswith("+1.26%")
    assert lines[2] == "            -- run demo-20260731-aaaaaaaaaa-dry"
    assert lines[3] == "            -- started, never finished"
    # Only the millions go compact: the smaller row keeps every dollar; in columns this
    # wide its run id goes below too.
    assert lines[4].endswith("$99,000 $100,000    +$1,000 +1.01%")
    assert lines[5] == "            -- run demo-20260730-bbbbbbbbbb"
    # A table whose rows fit keeps every dollar everywhere.
    fits = report(
        "demo-20260729-cccccccccc",
        FIRST,
        RunStatus.COMPLETED,
        account_before=valued("1234567.49"),
        account_after=valued("1234000"),
    )
    (line,) = cli_ledger.run_table([fits], set())[1:]
    assert "$1,234,567 $1,234,000  -$567 -0.05%" in line


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag != "meta":
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1:] == [tag], (tag, self.open)
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_escapes_what_user_files_name() -> None:
    evil = "<script>alert(1)</script>"
    strategy = StrategyReport(name=evil, allocation=1.0, weights={"SPY": 1.0})
    run = report(
        "r1",
        SECOND,
        RunStatus.COMPLETED,
        strategies=[strategy],
        targets={"SPY": TargetReport(weight=0.99, attribution={evil: 0.99})},
        notes=['a note with "quotes" & <b>tags</b>'],
        account_before=valued("100000"),
        account_after=valued("99000"),
    )
    page = render_run([report("r1", FIRST, RunStatus.STARTED), run])
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.open == []
    assert "script" not in parser.tags
    assert "b" not in parser.tags
    assert evil in parser.text  # shown as text, in the strategies table
    assert any(evil in text for text in parser.text if "99.00%" in text)  # and the targets
    assert parser.tags.count("table") == 4  # summary, attempts, targets, strategies
    assert "Equity change over the run: -$1,000.00 (-1.00%)" in parser.text
    assert "Attempts (oldest first; this page shows the last)" in parser.text
    with pytest.raises(ValueError, match="at least one attempt"):
        render_run([])
