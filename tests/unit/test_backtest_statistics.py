"""The backtest's statistics: the benchmark bought and held from the same prices, the
--benchmark and --risk-free flags, the summary at 100 columns and monthly_returns.csv."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.backtest import run_backtest, summary
from alchemiser.cli import main
from alchemiser.config import load_config
from alchemiser.errors import DataError
from alchemiser.reporting.benchmark import load_benchmark
from alchemiser.strategy.base import ALL_HISTORY

START, END = date(2026, 3, 2), date(2026, 7, 31)


def config(directory: Path, weights: str = "SPY = 0.6, TLT = 0.4") -> Path:
    path = directory / "config.toml"
    path.write_text(
        'account = "bt"\n[[strategies]]\nname = "core"\nallocation = 1.0\n'
        f"weights = {{ {weights} }}\n"
        '[risk]\nmax_order_notional = "1000000"\nmax_position_weight = "1"\n'
        '[sim]\nstarting_cash = "100000"\nslippage_bps = "0"\n'
    )
    return path


def test_the_benchmark_is_spy_bought_and_held(tmp_path: Path) -> None:
    market = FilePriceStore.bundled()
    result = run_backtest(
        load_config(config(tmp_path, "SPY = 1.0")), market, START, END, benchmark="SPY"
    )
    closes = market.history(["SPY"], END, ALL_HISTORY)
    first = float(closes.column("SPY")[closes.row_index(result.days[0].session)])
    last = float(closes.column("SPY")[closes.row_index(END)])
    own = result.metrics.benchmark
    assert own is not None
    assert own.final_equity == pytest.approx(100_000 * last / first)
    relative = result.metrics.relative
    assert relative is not None
    assert relative.correlation > 0.99  # all in SPY: it moves with its benchmark
    assert relative.beta == pytest.approx(1.0, abs=0.05)
    assert result.benchmark == "SPY"
    marks = result.benchmark_equity
    assert marks is not None
    assert len(marks) == len(result.days)
    assert marks[0] == pytest.approx(100_000)  # bought at the first session's close
    assert marks[-1] == pytest.approx(own.final_equity)


def test_a_ticker_without_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="NOPE"):
        load_benchmark(FilePriceStore.bundled(), "NOPE", START, END)


def test_the_command_prints_both_columns_and_writes_monthly_returns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["backtest", "--start", START.isoformat(), "--end", END.isoformat()]
    assert (
        main(
            [
                *args,
                "--config",
                str(config(tmp_path)),
                "--out",
                str(out),
                "--no-chart",
                "--risk-free",
                "0.04",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    # The summary reads at 100 columns; the lines naming output files are as long as
    # the paths the user gave.
    assert max(len(line) for line in lines if str(tmp_path) not in line) <= 100
    header = next(line for line in lines if line.rstrip().endswith("SPY"))
    assert header.split() == ["strategy", "SPY"]
    assert any(line.startswith("beta ") for line in lines)
    assert "4.00% a year" in printed
    with (out / "monthly_returns.csv").open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == [
        "year",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
        "total",
    ]
    assert [r[0] for r in rows[1:]] == ["2026"]
    assert rows[1][1:3] == ["", ""]  # no session in January or February
    assert all(rows[1][i] for i in range(3, 8))  # March to July
    months = [1 + float(v) for v in rows[1][3:8]]
    product = 1.0
    for m in months:
        product *= m
    assert 1 + float(rows[1][13]) == pytest.approx(product, abs=1e-5)


def test_no_benchmark_and_a_benchmark_without_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "backtest",
        "--start",
        START.isoformat(),
        "--end",
        END.isoformat(),
        "--no-chart",
        "--config",
        str(config(tmp_path)),
    ]
    assert main([*args, "--out", str(tmp_path / "a"), "--benchmark", "none"]) == 0
    printed = capsys.readouterr().out
    assert "beta" not in printed
    assert "SPY" not in printed.split("strategy", 1)[1].splitlines()[0]
    assert main([*args, "--out", str(tmp_path / "b"), "--benchmark", "nope"]) == 2
    assert capsys.readouterr().err.startswith("alchemiser: DATA_MISSING: --benchmark: NOPE")
    assert not (tmp_path / "b").exists()  # refused before the backtest ran
    assert main([*args, "--out", str(tmp_path / "c"), "--benchmark", "tlt"]) == 0
    assert "TLT" in capsys.readouterr().out


@pytest.mark.parametrize("rate", ["2", "-1", "nan", "four"])
def test_a_risk_free_rate_that_is_not_a_fraction_is_a_usage_error(
    tmp_path: Path, rate: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["backtest", "--start", "2026-07-01", "--end", "2026-07-31", "--risk-free", rate])
    assert caught.value.code == 2


def test_the_summary_reads_at_100_columns(tmp_path: Path) -> None:
    market = FilePriceStore.bundled()
    result = run_backtest(load_config(config(tmp_path)), market, START, END)
    lines = "\n".join(summary(result)).splitlines()
    assert max(len(line) for line in lines) <= 100
    assert any(line.startswith("Sortino") for line in lines)
    assert any(line.startswith("max drawdown") for line in lines)
