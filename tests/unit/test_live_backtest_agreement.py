"""A live run and a backtest agree by construction: on any session, the weights each
strategy asks for in a simulated live run (the service evaluating the history up to
that session, as a scheduled run does) are the weights the backtest traded on that
session, for both trading windows."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.backtest import BacktestResult, run_backtest
from alchemiser.config import AppConfig, load_config
from alchemiser.domain.report import RunStatus
from alchemiser.ports import MarketData
from tests.conftest import simulated_run

pytestmark = pytest.mark.slow

START = date(2021, 1, 4)
END = date(2026, 7, 31)
SAMPLES = 100


def default_with(tmp_path: Path, window: str) -> AppConfig:
    text = (
        Path(__file__).parents[2] / "src" / "alchemiser" / "defaults" / "default.toml"
    ).read_text()
    config = tmp_path / f"{window}.toml"
    config.write_text(f'trading_window = "{window}"\n' + text)
    return load_config(config)


def live_weights(
    config: AppConfig, market: MarketData, trading_date: date
) -> dict[str, dict[str, float]]:
    report = simulated_run(config, market, trading_date)
    assert report.status is not RunStatus.FAILED, report.errors
    return {s.name: s.weights for s in report.strategies}


def check_agreement(config: AppConfig, result: BacktestResult) -> None:
    days = random.Random(20261204).sample(result.days, SAMPLES)
    market = bootstrap.market_data(config)  # one store: its files are read once
    for day in days:
        traded = {s.name: s.weights for s in day.strategies}
        live = live_weights(config, market, day.session)
        assert live.keys() == traded.keys()
        for name, weights in live.items():
            assert weights.keys() == traded[name].keys(), (day.session, name)
            for symbol, weight in weights.items():
                assert weight == pytest.approx(traded[name][symbol], abs=1e-12), (
                    day.session,
                    name,
                    symbol,
                )


@pytest.mark.parametrize("window", ["open", "close"])
def test_the_default_strategies_agree_on_100_random_sessions(tmp_path: Path, window: str) -> None:
    config = default_with(tmp_path, window)
    result = run_backtest(config, bootstrap.market_data(config), START, END)
    check_agreement(config, result)


PAIR = (
    '(defsymphony "Pair" {:rebalance-threshold 0.05} (weight-equal [(asset "SPY") (asset "TLT")]))'
)
MONTHLY = (
    '(defsymphony "Monthly" {:rebalance-frequency :monthly} '
    '(if (> (rsi "SPY" {:window 10}) 50) '
    '[(asset "SPY") (asset "GLD")] [(asset "TLT") (asset "GLD")]))'
)


def drifting(tmp_path: Path, window: str) -> AppConfig:
    """A corridor pair and a monthly switcher: holdings that drift between rebalances,
    a pure function of the prices from each strategy's anchor."""
    (tmp_path / "pair.clj").write_text(PAIR)
    (tmp_path / "monthly.clj").write_text(MONTHLY)
    config = tmp_path / f"drift-{window}.toml"
    config.write_text(
        f'trading_window = "{window}"\n'
        '[[strategies]]\nname = "pair"\nkind = "symphony"\nfile = "pair.clj"\n'
        "allocation = 0.6\n"
        '[[strategies]]\nname = "monthly"\nkind = "symphony"\nfile = "monthly.clj"\n'
        "allocation = 0.4\n"
    )
    return load_config(config)


@pytest.mark.parametrize("window", ["open", "close"])
def test_drifting_holdings_agree_on_100_random_sessions(tmp_path: Path, window: str) -> None:
    config = drifting(tmp_path, window)
    result = run_backtest(config, bootstrap.market_data(config), date(2015, 1, 2), END)
    notes = {s.rebalance for d in result.days for s in d.strategies}
    assert any(n and "keeping drifted weights" in n for n in notes)  # they do drift
    check_agreement(config, result)
