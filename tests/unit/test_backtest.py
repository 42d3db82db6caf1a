"""The backtester over short ranges of the bundled prices: one ``service.rebalance`` per
session, equity marked at the closes, metrics, the late start, and the output files."""

from __future__ import annotations

import csv
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import read_symphony_file
from alchemiser.backtest import BacktestResult, run_backtest, summary, write_chart, write_csv
from alchemiser.cli import main
from alchemiser.config import load_config
from alchemiser.domain.prices import FloatMatrix
from alchemiser.domain.report import RunStatus
from alchemiser.errors import DataError, StrategyError
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.strategy import SymphonyStrategy

START = date(2026, 6, 1)  # a Monday
END = date(2026, 7, 31)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIXED = """
[[strategies]]
name = "core"
allocation = 1.0
weights = {{ {weights} }}
"""
SYMPHONY = """
[[strategies]]
name = "mine"
kind = "symphony"
file = "{file}"
allocation = 1.0
"""
SPY_OR_TLT = (
    '(defsymphony "Swing" {} (if (> (rsi "SPY" {:window 10}) 50) [(asset "SPY")] [(asset "TLT")]))'
)
SMR_RSI_200 = (
    '(defsymphony "Late" {} (if (> (rsi "SMR" {:window 200}) 50) [(asset "SPY")] [(asset "TLT")]))'
)


def write_config(
    directory: Path,
    strategies: str,
    *,
    state: str = "ACTIVE",
    rebalance: str = "",
    risk: str = "",
) -> Path:
    """A config with generous risk limits and no slippage, so hand checks are exact."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_text(
        f'account = "bt"\ntrading_state = "{state}"\n{strategies}\n'
        f"[rebalance]\n{rebalance}\n"
        f'[risk]\nmax_order_notional = "1000000"\nmax_position_weight = "1"\n{risk}\n'
        '[sim]\nstarting_cash = "100000"\nslippage_bps = "0"\n'
    )
    return path


def fixed(directory: Path, weights: str = "SPY = 0.6, TLT = 0.4", **options: str) -> Path:
    return write_config(directory, FIXED.format(weights=weights), **options)


def symphony(directory: Path, text: str) -> Path:
    (directory / "s.clj").write_text(text)
    return write_config(directory, SYMPHONY.format(file="s.clj"))


def backtest(config: Path, start: date = START, end: date = END) -> BacktestResult:
    return run_backtest(load_config(config), FilePriceStore.bundled(), start, end)


def closes(symbol: str, end: date = END) -> tuple[list[date], FloatMatrix]:
    history = FilePriceStore.bundled().history([symbol], end, ALL_HISTORY)
    return [history.session(i) for i in range(len(history.dates))], history.column(symbol)


def sessions_between(start: date, end: date) -> list[date]:
    return [d for d in closes("SPY", end)[0] if start <= d]


# ---------------------------------------------------------------- the days


def test_one_day_per_session_and_the_first_day_buys(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path))
    assert [d.session for d in result.days] == sessions_between(START, END)
    first = result.days[0]
    assert first.status is RunStatus.COMPLETED
    assert first.traded == pytest.approx(99_000, rel=0.01)  # all but the 1% cash buffer
    assert first.cash == pytest.approx(1_000, abs=100)
    assert first.equity == pytest.approx(100_000, abs=0.01)  # no slippage, marked at the fill
    assert all(d.status is not RunStatus.FAILED for d in result.days)
    assert all(d.note == "" for d in result.days)


def test_equity_is_marked_at_each_close(tmp_path: Path) -> None:
    # Bands too wide to ever rebalance: after day one the account only drifts with SPY.
    config = fixed(tmp_path, "SPY = 1.0", rebalance='drift_abs = "0.5"\ndrift_rel = "0.5"')
    result = backtest(config)
    dates, spy = closes("SPY")
    close = dict(zip(dates, spy, strict=True))
    first = result.days[0]
    invested = first.equity - first.cash
    assert invested == pytest.approx(99_000, rel=0.001)
    for day in result.days[1:]:
        assert day.status is RunStatus.NOOP
        assert day.traded == 0
        assert day.cash == first.cash
        expected = first.cash + invested * close[day.session] / close[first.session]
        assert day.equity == pytest.approx(expected, rel=1e-9)


def test_metrics_are_finite_and_consistent(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path))
    metrics = result.metrics
    equity = [d.equity for d in result.days]
    assert metrics.start == result.days[0].session == START
    assert metrics.end == result.days[-1].session == END
    assert metrics.sessions == len(result.days) == len(equity)
    assert metrics.final_equity == equity[-1]
    # From the starting cash, so the first day's slippage counts.
    assert metrics.total_return == pytest.approx(equity[-1] / 100_000 - 1)
    assert equity[0] < 100_000
    years = len(equity) / 252
    assert metrics.cagr == pytest.approx((1 + metrics.total_return) ** (1 / years) - 1)
    for value in (metrics.cagr, metrics.volatility, metrics.sharpe, metrics.turnover):
        assert math.isfinite(value)
    assert metrics.volatility > 0
    peak = np.maximum.accumulate(equity)
    assert metrics.max_drawdown == pytest.approx(float(np.max(1 - equity / peak)))
    assert 0 <= metrics.max_drawdown <= 1
    assert metrics.failed_days == 0
    traded = sum(d.traded for d in result.days)
    assert metrics.turnover == pytest.approx(traded / float(np.mean([100_000, *equity])) / years)


def test_a_symphony_rebalances_when_its_decision_changes(tmp_path: Path) -> None:
    config = symphony(tmp_path, SPY_OR_TLT)
    calls: list[tuple[int, int]] = []
    result = run_backtest(
        load_config(config), FilePriceStore.bundled(), START, END, lambda *a: calls.append(a)
    )
    total = len(result.days)
    assert calls == [(n, total) for n in range(1, total + 1)]
    strategy = SymphonyStrategy("mine", read_symphony_file(tmp_path / "s.clj"))
    history = FilePriceStore.bundled().history(["SPY", "TLT"], END, ALL_HISTORY)
    table = strategy.evaluate_all(history)
    # At the open (the default window) a session trades what the session before decided.
    picks = [
        next(iter(table.weights_at(FilePriceStore.bundled().latest_session(before=d.session))))
        for d in result.days
    ]
    assert set(picks) == {"SPY", "TLT"}  # the range sees both regimes
    for number, day in enumerate(result.days):
        switched = number == 0 or picks[number] != picks[number - 1]
        if switched:  # sell one fund, buy the other: about twice the equity traded
            assert day.traded > 0.9 * day.equity
            assert day.status is RunStatus.COMPLETED
        else:  # drift bands hold a single fund still
            assert day.traded < 0.05 * day.equity


# ------------------------------------------------------------ the late start


def test_the_start_moves_to_where_every_strategy_decides(tmp_path: Path) -> None:
    # SMR's file starts in March 2022; RSI(200) needs 200 changes, so 201 of its bars.
    requested = date(2021, 6, 1)
    end = date(2023, 1, 31)
    result = backtest(symphony(tmp_path, SMR_RSI_200), requested, end)
    dates, smr = closes("SMR", end)
    bars = np.flatnonzero(np.isfinite(smr))
    decided = dates[int(bars[200])]
    assert decided > date(2022, 3, 1)
    # At the open, the first session traded is the one after the first decision.
    first = dates[dates.index(decided) + 1]
    assert result.days[0].session == first
    assert result.metrics.start == first
    assert result.first_session == date(2021, 6, 1)  # a Tuesday: the range's first session
    assert [d.session for d in result.days] == sessions_between(first, end)
    lines = summary(result)
    assert lines[0].startswith("note")
    assert first.isoformat() in lines[0]
    assert "not enough history" in lines[0]
    assert requested.isoformat() in lines[0]
    assert lines[1].startswith(f"period        {first.isoformat()} to {end.isoformat()}")


def test_no_note_when_the_backtest_starts_where_asked(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path))
    lines = summary(result)
    assert not any(line.startswith("note") for line in lines)
    sessions = len(result.days)
    assert (
        lines[0] == f"period        {START.isoformat()} to {END.isoformat()} ({sessions} sessions)"
    )
    assert any(line.startswith("max drawdown") for line in lines)


def test_a_weekend_start_is_not_blamed_on_history(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path), date(2026, 5, 30))
    assert result.days[0].session == START
    assert not any("not enough history" in line for line in summary(result))


def test_a_range_the_strategies_can_never_decide_or_without_sessions(tmp_path: Path) -> None:
    config = symphony(tmp_path, SMR_RSI_200)
    with pytest.raises(StrategyError, match="cannot all decide"):
        backtest(config, date(2022, 3, 1), date(2022, 6, 30))
    with pytest.raises(DataError, match="no sessions"):
        backtest(config, date(2026, 8, 1), date(2026, 8, 2))
    with pytest.raises(StrategyError, match="before its start"):
        backtest(config, END, START)


# ---------------------------------------------------- the service's code path


def test_a_halted_account_never_trades(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path, state="HALTED"))
    assert {d.status for d in result.days} == {RunStatus.BLOCKED}
    assert all(d.traded == 0 and d.cash == d.equity == 100_000 for d in result.days)
    assert all(d.limited >= 1 for d in result.days)
    assert result.metrics.total_return == 0
    assert result.metrics.max_drawdown == 0
    assert result.metrics.turnover == 0


def test_risk_limits_apply_every_day(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path, risk='deny_symbols = ["TLT"]'))
    for day in result.days:  # the TLT share is never bought: it stays in cash
        assert day.cash / day.equity > 0.35
    assert result.days[0].limited == 1
    assert result.metrics.limited_orders >= len(result.days)


# --------------------------------------------------------------- the outputs


def test_write_csv_one_row_per_day(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path / "config"), date(2026, 7, 1))
    path = tmp_path / "out" / "equity.csv"
    write_csv(result, path)
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    assert header[:5] == ["date", "equity", "cash", "traded", "status"]
    assert len(body) == len(result.days)
    for row, day in zip(body, result.days, strict=True):
        record = dict(zip(header, row, strict=True))
        assert record["date"] == day.session.isoformat()
        assert float(record["equity"]) == pytest.approx(day.equity, abs=0.005)
        assert float(record["cash"]) == pytest.approx(day.cash, abs=0.005)
        assert record["status"] == day.status.value


def test_write_chart_is_a_png(tmp_path: Path) -> None:
    result = backtest(fixed(tmp_path / "config"), date(2026, 7, 1))
    path = tmp_path / "out" / "equity.png"
    write_chart(result, path, "bt: July 2026")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_the_backtest_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = fixed(tmp_path)
    out = tmp_path / "results"
    args = ["backtest", "--start", "2026-07-01", "--end", "2026-07-31", "--config", str(config)]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "period        2026-07-01 to 2026-07-31" in printed
    assert f"equity curve  {out / 'equity.csv'}" in printed
    rows = (out / "equity.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("date,equity,cash,traded,status")
    assert len(rows) == 1 + len(sessions_between(date(2026, 7, 1), date(2026, 7, 31)))
    assert (out / "equity.png").read_bytes()[:8] == PNG_SIGNATURE
    plain = tmp_path / "plain"
    assert main([*args, "--out", str(plain), "--no-chart"]) == 0
    assert (plain / "equity.csv").is_file()
    assert not (plain / "equity.png").exists()


def test_the_backtest_command_refuses_a_reversed_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backtest", "--start", "2026-07-31", "--end", "2026-07-01"]
    assert main([*args, "--config", str(fixed(tmp_path)), "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.startswith("alchemiser: STRATEGY_INVALID: ")
    assert not (tmp_path / "o").exists()
