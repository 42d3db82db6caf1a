"""Reproductions of defects in the dry run, ``data fetch`` and ``wait-for``: each test
states the behaviour the product should have."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.cli import check
from alchemiser.cli.data import Fetch
from alchemiser.cli.main import main
from alchemiser.domain.prices import DailyBar
from tests.unit.test_preflight import readers


def _bar(day: date, close: float) -> DailyBar:
    return DailyBar(day, close, close + 1, close - 1, close, 1000.0)


SESSIONS = [date(2026, 7, d) for d in (1, 2, 6, 7, 8, 9, 10, 13, 14)]


# -- dry run ----------------------------------------------------------------------------


# -- data fetch -------------------------------------------------------------------------


@dataclass
class _Echo:
    """Bars for every symbol asked for (a market that knows every name)."""

    asked: list[list[str]]

    def __call__(self, symbols: list[str], start: date, end: date) -> dict[str, list[DailyBar]]:
        self.asked.append(list(symbols))
        return {s: [_bar(d, 100.0) for d in SESSIONS if start <= d <= end] for s in symbols}


class _Wiring:
    def __init__(self, bars: _Echo) -> None:
        self.market = self
        self.transport = argparse.Namespace(requests_sent=0)
        self.daily_bars = bars

    def completed_session(self) -> date:
        return SESSIONS[-1]


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> _Echo:
    bars = _Echo([])
    monkeypatch.setattr(bootstrap, "alpaca_market_data", lambda settings, clock: _Wiring(bars))
    return bars


def _fetch(directory: Path, symbols: str) -> int:
    return main(
        ["data", "fetch", "--dir", str(directory), "--symbols", symbols, "--secret-id", "s"]
    )


@pytest.mark.xfail(strict=True, reason="a symbol is used as a path unchecked")
def test_data_fetch_refuses_a_symbol_that_leaves_the_directory(tmp_path: Path, echo: _Echo) -> None:
    prices = tmp_path / "prices"
    code = _fetch(prices, "../evil")
    assert not (tmp_path / "EVIL.csv").exists()
    assert code == 2
    assert echo.asked == []  # refused before any request


@pytest.mark.xfail(strict=True, reason="a symbol with a slash raises FileNotFoundError")
def test_data_fetch_with_a_slash_in_a_symbol_is_a_typed_error(tmp_path: Path, echo: _Echo) -> None:
    """Alpaca writes some share classes with a slash (BRK/B); the file name cannot."""
    code = _fetch(tmp_path / "prices", "BRK/B")  # raised FileNotFoundError before
    assert code in (1, 2)


@pytest.mark.xfail(strict=True, reason="a re-fetch from --start drops earlier stored sessions")
def test_a_refetch_from_a_later_start_keeps_the_earlier_stored_history(tmp_path: Path) -> None:
    """A re-adjusted history is fetched again from ``--start``; a ``--start`` later than
    the file's first session silently drops every session before it."""
    (tmp_path / "SPY.csv").write_text(
        "date,close\n" + "".join(f"{d.isoformat()},50\n" for d in SESSIONS[:5])
    )

    def readjusted(symbols: list[str], start: date, end: date) -> dict[str, list[DailyBar]]:
        return {s: [_bar(d, 100.0) for d in SESSIONS if start <= d <= end] for s in symbols}

    fetch = Fetch(readjusted, tmp_path, start=date(2026, 7, 8))
    fetch.run(["SPY"], SESSIONS[-1])
    first = (tmp_path / "SPY.csv").read_text().splitlines()[1].split(",")[0]
    assert first == SESSIONS[0].isoformat()


# -- check ------------------------------------------------------------------------------


def test_check_without_broker_passes_an_alpaca_config_whose_tickers_are_not_bundled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Alpaca account never reads local price files (freshness says so and skips);
    the local data check fails it anyway, so a valid live config exits 1."""
    path = tmp_path / "paper.toml"
    path.write_text(
        'broker = "alpaca"\nmode = "paper"\n[alpaca]\nsecret_id = "alchemiser/paper"\n'
        '[[strategies]]\nname = "core"\nallocation = 1.0\nweights = { AAPL = 0.99 }\n'
    )
    args = argparse.Namespace(
        config=path, account=None, all=False, prices=None, broker=False, live=False, as_of=None
    )
    code = check.run(args, readers(environ={}))
    out = capsys.readouterr().out
    assert "FAIL data" not in out
    assert code == 0
