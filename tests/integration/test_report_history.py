"""``alchemiser report`` over the ledger file that real local runs write, a run's page
(``--html``), and every command's end when the reader of its output goes away early."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from alchemiser.cli.main import main
from alchemiser.domain.report import RunReport, RunStatus

pytestmark = pytest.mark.integration
HEADER = ["DATE", "STATUS", "ORDERS", "TRADED", "BEFORE", "AFTER", "P&L", "%", "RUN"]


def alchemiser(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alchemiser.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real runs of the default config: one that trades, one with nothing left to
    do, and a dry run; each wrote its records to .alchemiser/ledger.jsonl."""
    cwd = tmp_path_factory.mktemp("runs")
    for args in (("run", "--reset"), ("run",), ("run", "--dry-run")):
        done = alchemiser(*args, cwd=cwd)
        assert done.returncode == 0, done.stderr
    return cwd


def attempts(path: Path) -> list[RunReport]:
    """Each attempt's last record, in the order the attempts began."""
    latest: dict[tuple[str, str], RunReport] = {}
    for line in path.read_text().splitlines():
        report = RunReport.model_validate_json(line)
        latest[(report.run_id, report.attempt_id)] = report
    return list(latest.values())


def cells(line: str) -> tuple[list[str], str]:
    """One line of ``report``'s table: its columns (the one status of two words, "dry
    run", kept whole), and the reason after `` -- ``."""
    columns, _, why = line.partition("  -- ")
    return [c.replace("\0", " ") for c in columns.replace("dry run", "dry\0run").split()], why


def rows_of(lines: list[str]) -> list[tuple[list[str], str]]:
    """The table's rows: a reason that did not fit beside its row is on the next line,
    indented under the status."""
    rows: list[tuple[list[str], str]] = []
    for line in lines:
        if line.lstrip().startswith("-- "):
            rows[-1] = (rows[-1][0], line.lstrip().removeprefix("-- "))
        else:
            rows.append(cells(line))
    return rows


def whole(value: Decimal, sign: bool = False) -> str:
    rounded = value.quantize(Decimal(1))
    text = f"${abs(rounded):,.0f}"
    return ("-" if rounded < 0 else "+" if sign else "") + text


def test_report_lists_the_local_runs_with_their_money(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ALCHEMISER_LEDGER_TABLE", raising=False)
    monkeypatch.chdir(workdir)
    assert main(["report"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == (
        "Last 3 attempt(s) of account 'demo' in ledger file .alchemiser/ledger.jsonl, newest first:"
    )
    assert cells(lines[1]) == (HEADER, "")
    # Every line of the table reads at 100 columns: a dry run's id is 4 characters
    # longer (-dry), so what it would have done goes on the line below it.
    assert all(len(line) <= 100 for line in lines[1:]), lines
    recorded = attempts(workdir / ".alchemiser" / "ledger.jsonl")
    assert [r.status for r in recorded] == [RunStatus.COMPLETED, RunStatus.NOOP, RunStatus.NOOP]
    assert recorded[2].dry_run
    rows = rows_of(lines[2:])
    assert [columns[-1] for columns, _ in rows] == [r.run_id for r in reversed(recorded)]
    for (columns, _), report in zip(rows, reversed(recorded), strict=True):
        before, after = report.account_before, report.account_after
        assert before is not None
        assert after is not None
        delta = after.equity - before.equity
        assert columns[0] == report.trading_date.isoformat()
        assert columns[2:8] == [
            str(len(report.orders)),
            whole(report.turnover),
            whole(before.equity),
            whole(after.equity),
            whole(delta, sign=True),
            f"{delta / before.equity * 100:+.2f}%",
        ]
    (dry, _), (noop, _), (traded, _) = rows
    assert [dry[1], noop[1], traded[1]] == ["dry run", "noop", "completed"]
    assert rows[0][1] == "would place 0"
    assert traded[2:4] == ["5", "$99,000"]  # the default config's first run
    assert dry[6:8] == ["+$0", "+0.00%"]  # a dry run changes nothing
    assert err == ""


def test_report_reads_a_ledger_file_named_anywhere(
    workdir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ALCHEMISER_LEDGER_TABLE", raising=False)
    monkeypatch.chdir(tmp_path)
    path = workdir / ".alchemiser" / "ledger.jsonl"
    recorded = attempts(path)
    assert main(["report", "--ledger", str(path), "--last", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[2].endswith("-dry")
    assert lines[3] == "            -- would place 0"

    assert main(["report", "--ledger", str(path), "--json"]) == 0
    listed = [RunReport.model_validate(r) for r in json.loads(capsys.readouterr().out)]
    assert listed == recorded[::-1]

    first = recorded[0]
    assert main(["report", "--ledger", str(path), "--run", first.run_id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Run {first.run_id}: 1 attempt(s), oldest first\n")
    assert "Status: COMPLETED" in out

    assert main(["report", "--ledger", str(path), "--strategy", "nuclear", "--last", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Last 2 attempt(s) of strategy 'nuclear', newest first:"
    assert out[1].startswith(f"{first.trading_date}  {recorded[2].run_id}  demo  noop  ")
    assert out[2].startswith(f"{first.trading_date}  {recorded[1].run_id}  demo  noop  ")
    assert main(["report", "--ledger", str(path), "--strategy", "nuclear", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in rows] == [r.run_id for r in recorded[::-1]]

    assert main(["report", "--ledger", str(path), "--run", "no-such-run"]) == 1
    assert f"no run no-such-run in ledger file {path}" in capsys.readouterr().err
    assert main(["report"]) == 1  # no ledger file here
    err = capsys.readouterr().err
    assert "no ledger file .alchemiser/ledger.jsonl" in err


def test_a_line_that_is_not_a_report_is_named(workdir: Path, tmp_path: Path) -> None:
    lines = (workdir / ".alchemiser" / "ledger.jsonl").read_text().splitlines()
    broken = tmp_path / "ledger.jsonl"
    broken.write_text("\n".join([*lines[:2], '{"run_id": "cut', *lines[2:]]) + "\n")
    done = alchemiser("report", "--ledger", str(broken), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"alchemiser: LEDGER_MALFORMED: ledger {broken} line 3 is not a run report ("
    )
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1

    # A run on that ledger cannot tell which attempts finished: it stops, placing nothing.
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(broken, state / "ledger.jsonl")
    shutil.copy(workdir / ".alchemiser" / "sim-demo.json", state / "sim-demo.json")
    account = (state / "sim-demo.json").read_bytes()
    refused = alchemiser("run", "--state-dir", str(state), cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("alchemiser: LEDGER_MALFORMED: ledger ")
    assert "line 3 is not a run report" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (state / "sim-demo.json").read_bytes() == account
    assert (state / "ledger.jsonl").read_text() == broken.read_text()


class Page(HTMLParser):
    """Checks that every element opened is closed in order, and collects what a test
    asks about: tag names, attributes, text."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.declared = False

    def handle_decl(self, decl: str) -> None:
        self.declared = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1:] == [tag], (tag, self.open)
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.declared
    assert parser.open == []
    return parser


def test_a_run_as_a_web_page(workdir: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "state" / "ledger.jsonl"
    ledger.parent.mkdir()
    shutil.copy(workdir / ".alchemiser" / "ledger.jsonl", ledger)
    traded = attempts(ledger)[0]
    out = tmp_path / "page.html"
    done = alchemiser(
        "report",
        "--ledger",
        str(ledger),
        "--run",
        traded.run_id,
        "--html",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"wrote {out}\n"
    page = parse(out.read_text())
    assert page.tags.count("table") >= 8  # summary, accounts, targets, strategies, orders...
    assert "script" not in page.tags
    assert not [a for a in page.attrs if a[0] in ("src", "href")]
    text = " ".join(page.text)
    for heading in ("Targets", "Risk decisions", "Orders", "Fills", "Account after"):
        assert heading in page.text
    for order in traded.orders:
        assert order.client_order_id in text
    assert "nuclear" in text  # a strategy's part in its targets
    assert "http" not in out.read_text()

    default = alchemiser(
        "report", "--ledger", str(ledger), "--run", traded.run_id, "--html", cwd=tmp_path
    )
    assert default.returncode == 0, default.stderr
    assert (tmp_path / f"run-{traded.run_id}.html").is_file()
    refused = alchemiser("report", "--ledger", str(ledger), "--html", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--html writes one run: pass --run ID" in refused.stderr


PIPE_CLOSED = 141


@pytest.mark.parametrize(
    "args",
    [
        ("run",),
        ("report",),
        ("report", "--run", "RUN"),
        ("backtest", "--start", "2026-07-01", "--end", "2026-07-31", "--no-chart", "--out", "bt"),
        ("--help",),
        ("report", "--help"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_closed_pipe_ends_the_command_quietly(
    workdir: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """``alchemiser ... | head -1`` with ``head`` gone before the first line: the read end
    is closed before the command writes anything, so its first write fails."""
    shutil.copytree(workdir / ".alchemiser", tmp_path / ".alchemiser")
    run_id = attempts(tmp_path / ".alchemiser" / "ledger.jsonl")[0].run_id
    argv = [run_id if a == "RUN" else a for a in args]
    process = subprocess.Popen(
        [sys.executable, "-m", "alchemiser.cli", *argv],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert "Traceback" not in err
    assert "Exception ignored" not in err
    assert "BrokenPipeError" not in err
    assert (
        process.returncode in (0, PIPE_CLOSED)
        if args[-1] == "--help"
        else process.returncode == PIPE_CLOSED
    ), err
