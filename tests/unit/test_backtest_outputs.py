"""What a backtest writes beside its summary: every trade with the strategies it serves
and why, each strategy run alone beside the account, the targets over time, the risk
limits by code, and the progress of all its runs."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.backtest import BacktestResult, run_backtest, summary, write_csv
from alchemiser.cli import main
from alchemiser.cli.progress import Progress
from alchemiser.config import load_config
from alchemiser.errors import DataError
from alchemiser.reporting.outputs import write_allocations, write_trades
from tests.unit.test_backtest import SPY_OR_TLT, write_config

START = date(2026, 6, 1)
END = date(2026, 7, 31)
TRADES_HEADER = ["date", "strategy", "symbol", "side", "qty", "price", "notional", "reason"]
EQUITY_HEADER = ["date", "equity", "cash", "traded", "status", "risk_limited", "note"]
A_AND_B = """
[[strategies]]
name = "a"
allocation = 0.5
weights = { SPY = 1.0 }

[[strategies]]
name = "b"
allocation = 0.5
weights = { SPY = 0.5, TLT = 0.5 }
"""
ALONE = """
[[strategies]]
name = "{name}"
allocation = 1.0
weights = {{ {weights} }}
"""
SWING_AND_SPY = """
[[strategies]]
name = "swing"
kind = "symphony"
file = "s.clj"
allocation = 0.5

[[strategies]]
name = "spy"
allocation = 0.5
weights = { SPY = 1.0 }
"""


def backtest(config: Path, **options: bool) -> BacktestResult:
    return run_backtest(load_config(config), FilePriceStore.bundled(), START, END, **options)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def header(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()[0].split(",")


# ------------------------------------------------------------------- trades


def test_trades_csv_has_one_row_per_fill_and_sums_to_the_turnover(tmp_path: Path) -> None:
    result = backtest(write_config(tmp_path, A_AND_B))
    path = tmp_path / "out" / "trades.csv"
    count = write_trades(result.days, path)
    assert header(path) == TRADES_HEADER
    rows = read(path)
    assert count == len(rows) == sum(len(d.trades) for d in result.days)
    assert all(float(r["qty"]) > 0 for r in rows)  # nothing was denied
    notional = sum(Decimal(r["notional"]) for r in rows)
    turnover = sum(d.traded for d in result.days)
    assert float(notional) == pytest.approx(turnover, abs=0.01 * len(rows))
    for day in result.days:
        mine = [r for r in rows if r["date"] == day.session.isoformat()]
        assert sum(float(r["notional"]) for r in mine) == pytest.approx(day.traded, abs=0.05)
    first = [r for r in rows if r["date"] == result.days[0].session.isoformat()]
    assert {(r["symbol"], r["side"]) for r in first} == {("SPY", "buy"), ("TLT", "buy")}
    for row in first:
        assert row["reason"].startswith("weight 0.000% -> ")
        price = Decimal(row["price"])
        assert float(Decimal(row["qty"]) * price) == pytest.approx(float(row["notional"]), 1e-4)


def test_attribution_names_every_strategy_a_shared_symbol_serves(tmp_path: Path) -> None:
    result = backtest(write_config(tmp_path, A_AND_B))
    first = {t.symbol: t.strategy for t in result.days[0].trades}
    assert first == {"SPY": "a+b", "TLT": "b"}
    assert all(t.strategy in ("a+b", "b") for d in result.days for t in d.trades)


def test_a_sale_serves_the_strategy_that_dropped_the_symbol(tmp_path: Path) -> None:
    (tmp_path / "s.clj").write_text(SPY_OR_TLT)
    result = backtest(write_config(tmp_path, SWING_AND_SPY))
    switches = 0
    for day in result.days:
        for trade in day.trades:
            if trade.symbol == "TLT":  # only the swing symphony ever holds TLT
                assert trade.strategy == "swing"
            elif trade.side == "sell":  # SPY sold: swing dropped it, spy still holds it
                assert trade.strategy == "swing+spy"
                switches += 1
    assert switches > 0


def test_a_denied_order_is_a_row_with_nothing_traded(tmp_path: Path) -> None:
    result = backtest(write_config(tmp_path, A_AND_B, risk='deny_symbols = ["TLT"]'))
    path = tmp_path / "trades.csv"
    write_trades(result.days, path)
    denied = [r for r in read(path) if r["symbol"] == "TLT"]
    assert denied
    assert len(denied) == sum(d.limited for d in result.days)
    for row in denied:
        assert (row["side"], row["qty"], row["notional"]) == ("buy", "0", "0.00")
        assert row["reason"].endswith("; denied SYMBOL_DENIED")
        assert float(row["price"]) > 0


# ---------------------------------------------------- the limits by their code


def test_risk_limited_orders_are_counted_by_code(tmp_path: Path) -> None:
    result = backtest(write_config(tmp_path, A_AND_B, risk='deny_symbols = ["TLT"]'))
    limited = result.metrics.limited_orders
    assert limited >= len(result.days)
    assert result.limited_by_code == {"SYMBOL_DENIED": limited}
    line = summary(result)[-1]
    assert line == (
        f"risk-limited  {limited} orders shrunk or denied by the [risk] limits: "
        f"SYMBOL_DENIED {limited}"
    )


def test_no_breakdown_when_nothing_was_limited(tmp_path: Path) -> None:
    result = backtest(write_config(tmp_path, A_AND_B))
    assert result.limited_by_code == {}
    assert summary(result)[-1] == "risk-limited  0 orders shrunk or denied by the [risk] limits"


# ---------------------------------------------------- each strategy run alone


def test_each_strategy_alone_is_its_own_backtest(tmp_path: Path) -> None:
    result = backtest(write_config(tmp_path / "both", A_AND_B))
    assert list(result.strategy_equity) == ["a", "b"]
    for name, weights in (("a", "SPY = 1.0"), ("b", "SPY = 0.5, TLT = 0.5")):
        alone = backtest(write_config(tmp_path / name, ALONE.format(name=name, weights=weights)))
        assert alone.strategy_equity == {}  # one strategy: the account is that strategy
        assert [d.session for d in alone.days] == [d.session for d in result.days]
        assert result.strategy_equity[name] == [d.equity for d in alone.days]
    combined = [d.equity for d in result.days]
    assert combined != result.strategy_equity["a"] != result.strategy_equity["b"]


def test_equity_csv_has_a_column_per_strategy_then_a_benchmark(tmp_path: Path) -> None:
    result = backtest(write_config(tmp_path, A_AND_B))
    path = tmp_path / "equity.csv"
    write_csv(result, path)
    assert header(path) == [*EQUITY_HEADER, "equity_a", "equity_b"]
    for row, day, a in zip(read(path), result.days, result.strategy_equity["a"], strict=True):
        assert float(row["equity"]) == pytest.approx(day.equity, abs=0.005)
        assert float(row["equity_a"]) == pytest.approx(a, abs=0.005)
    benchmark = [100_000.0 + n for n in range(len(result.days))]
    write_csv(replace(result, benchmark="SPY", benchmark_equity=benchmark), path)
    assert header(path) == [*EQUITY_HEADER, "equity_a", "equity_b", "equity_benchmark"]
    assert [float(r["equity_benchmark"]) for r in read(path)] == benchmark
    with pytest.raises(DataError, match="benchmark values"):
        write_csv(replace(result, benchmark="SPY", benchmark_equity=benchmark[1:]), path)


def test_without_the_strategies_alone(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    result = run_backtest(
        load_config(write_config(tmp_path, A_AND_B)),
        FilePriceStore.bundled(),
        START,
        END,
        lambda *a: calls.append(a),
        strategies=False,
    )
    assert result.strategy_equity == {}
    assert calls == [(n, len(result.days)) for n in range(1, len(result.days) + 1)]
    path = tmp_path / "equity.csv"
    write_csv(result, path)
    assert header(path) == EQUITY_HEADER


# ------------------------------------------------------------- allocations


def test_allocations_are_each_sessions_targets(tmp_path: Path) -> None:
    (tmp_path / "s.clj").write_text(SPY_OR_TLT)
    result = backtest(write_config(tmp_path, SWING_AND_SPY))
    path = tmp_path / "allocations.csv"
    write_allocations(result.days, path)
    assert header(path) == ["date", "SPY", "TLT"]
    rows = read(path)
    assert len(rows) == len(result.days)
    held = set()
    for row, day in zip(rows, result.days, strict=True):
        assert row["date"] == day.session.isoformat()
        assert sum(day.targets.values()) == pytest.approx(1.0)
        for symbol in ("SPY", "TLT"):
            assert float(row[symbol]) == pytest.approx(day.targets.get(symbol, 0.0), abs=1e-6)
        held.add(tuple(sorted(day.targets.items())))
    assert held == {(("SPY", 1.0),), (("SPY", 0.5), ("TLT", 0.5))}  # both regimes


# ------------------------------------------------------------- the command


def test_the_command_writes_every_output_and_shows_each_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["backtest", "--start", "2026-07-01", "--end", "2026-07-31", "--no-chart"]
    config = write_config(tmp_path, A_AND_B)
    assert main([*args, "--config", str(config), "--out", str(out)]) == 0
    printed, progress = capsys.readouterr()
    trades = read(out / "trades.csv")
    assert f"trades        {out / 'trades.csv'} ({len(trades)} rows)" in printed
    assert f"allocations   {out / 'allocations.csv'}" in printed
    assert header(out / "equity.csv") == [
        *EQUITY_HEADER,
        "equity_a",
        "equity_b",
        "equity_benchmark",
    ]
    assert header(out / "allocations.csv") == ["date", "SPY", "TLT"]
    sessions = len(read(out / "equity.csv"))
    lines = progress.splitlines()  # not a terminal: a line a tenth of the way, no bar
    assert lines[-1] == f"backtest: {3 * sessions}/{3 * sessions}: b alone"
    assert {line.rpartition(": ")[2] for line in lines} == {"account", "a alone", "b alone"}
    assert len(lines) <= 11
    assert main([*args, "--config", str(config), "--out", str(out), "--no-strategies"]) == 0
    assert header(out / "equity.csv") == [*EQUITY_HEADER, "equity_benchmark"]
    assert capsys.readouterr().err.splitlines()[-1] == f"backtest: {sessions}/{sessions}: account"


def test_plain_progress_prints_every_nth_step_and_the_last() -> None:
    stream = io.StringIO()
    with Progress(7, "job", stream, unit="step", every=3) as progress:
        for number in range(7):
            progress.advance(f"step {number}")
    assert stream.getvalue().splitlines() == [
        "job: 3/7: step 2",
        "job: 6/7: step 5",
        "job: 7/7: step 6",
    ]
