"""The backtest command's report.html: the page is built from the backtest's own
result (statistics, the benchmark, each strategy alone, targets, risk codes)."""

from __future__ import annotations

import csv
import gc
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.backtest import BACKTEST_GC_THRESHOLD, alone_statistics, run_backtest, summary
from alchemiser.cli import main
from alchemiser.cli.backtest_page import ACCOUNT, backtest_page
from alchemiser.config import load_config
from alchemiser.reporting.html import render_backtest_html
from tests.unit.test_backtest import write_config
from tests.unit.test_backtest_outputs import A_AND_B

START, END = date(2026, 5, 1), date(2026, 7, 31)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_carries_the_backtests_own_figures(tmp_path: Path) -> None:
    store = FilePriceStore.bundled()
    result = run_backtest(
        load_config(write_config(tmp_path, A_AND_B)), store, START, END, benchmark="SPY"
    )
    page = backtest_page(result, "Backtest: <two>")
    assert list(page.series) == [ACCOUNT, "SPY", "a alone", "b alone"]
    assert page.series[ACCOUNT] == [d.equity for d in result.days]
    assert page.series["SPY"] == result.benchmark_equity
    assert page.series["a alone"] == result.strategy_equity["a"]
    assert page.benchmark == "SPY"
    assert page.dates == [d.session for d in result.days]
    assert page.stats.columns == ["", "account", "SPY", "a alone", "b alone"]
    labels = [label for label, _ in page.stats.rows]
    assert {"CAGR", "Sortino", "beta", "R-squared"} <= set(labels)
    assert "period" not in labels  # the subtitle says it once
    table = dict(page.stats.rows)
    alone = alone_statistics(result)
    assert table["CAGR"] == [
        f"{result.metrics.cagr:.2%}",
        f"{result.metrics.benchmark.cagr:.2%}" if result.metrics.benchmark else "",
        f"{alone['a'].cagr:.2%}",
        f"{alone['b'].cagr:.2%}",
    ]
    assert table["beta"][2:] == ["", ""]  # measured against the benchmark: the account only
    assert alone["a"].final_equity == pytest.approx(result.strategy_equity["a"][-1])
    assert page.allocations is not None
    assert sorted(page.allocations.weights) == ["SPY", "TLT"]
    first = {s: w[0] for s, w in page.allocations.weights.items()}
    assert first == pytest.approx(result.days[0].targets)
    assert page.risk_limited == result.limited_by_code
    months = [m for row in page.monthly for m in row.months if m is not None]
    assert len(months) == 3  # May, June, July 2026
    parser = _Text()
    parser.feed(render_backtest_html(page))
    text = "".join(parser.text)
    assert "Backtest: <two>" in text  # escaped in the markup, read back as text
    assert parser.svgs >= 5


def test_the_command_writes_report_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path, A_AND_B)
    args = ["backtest", "--start", "2026-06-01", "--end", "2026-07-31", "--no-chart"]
    assert main([*args, "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"report        {out / 'report.html'}" in printed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html
    assert "https://" not in html
    with (out / "equity.csv").open(newline="", encoding="utf-8") as stream:
        last = list(csv.DictReader(stream))[-1]
    # The page's statistics come from the same equity the CSV holds.
    assert f"${float(last['equity']):,.2f}" in html


def test_the_summary_shows_each_strategy_alone(tmp_path: Path) -> None:
    result = run_backtest(
        load_config(write_config(tmp_path, A_AND_B)), FilePriceStore.bundled(), START, END
    )
    lines = summary(result)
    header = lines.index(next(line for line in lines if line.startswith("each alone")))
    alone = alone_statistics(result)
    for offset, name in enumerate(("a", "b"), start=1):
        cells = lines[header + offset].split()
        assert cells[0] == name
        assert cells[1] == f"{alone[name].cagr:.2%}"
        assert cells[-1] == f"${alone[name].final_equity:,.2f}"
    assert all(len(part) <= 100 for line in lines for part in line.splitlines())
    solo = run_backtest(
        load_config(write_config(tmp_path, A_AND_B)),
        FilePriceStore.bundled(),
        START,
        END,
        strategies=False,
    )
    assert not any(line.startswith("each alone") for line in summary(solo))


def test_the_collector_runs_less_often_only_while_sessions_are_simulated(tmp_path: Path) -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    during: list[tuple[int, int, int]] = []
    frozen: list[int] = []

    def progress(*_: int) -> None:
        during.append(gc.get_threshold())
        frozen.append(gc.get_freeze_count())

    run_backtest(
        load_config(write_config(tmp_path, A_AND_B)), FilePriceStore.bundled(), START, END, progress
    )
    assert during
    assert {t[0] for t in during} == {BACKTEST_GC_THRESHOLD}
    assert gc.get_threshold() == before
    # What each session leaves is set aside from the collector while sessions run, and
    # given back to it at the end.
    assert min(frozen) > frozen_before
    assert frozen[-1] > frozen[0]  # again after every session
    assert gc.get_freeze_count() == 0
