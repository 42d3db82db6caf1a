"""``alchemiser data fetch`` without a network: symbols checked as tickers before any
file is read or request sent, ``--start`` checked against the last completed session,
and a re-fetch that keeps the history already stored."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.cli.data import Fetch
from alchemiser.cli.main import main
from alchemiser.domain.prices import DailyBar


def _bar(day: date, close: float) -> DailyBar:
    return DailyBar(day, close, close + 1, close - 1, close, 1000.0)


SESSIONS = [date(2026, 7, d) for d in (1, 2, 6, 7, 8, 9, 10, 13, 14)]


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


def _fetch(directory: Path, symbols: str, *extra: str) -> int:
    return main(
        ["data", "fetch", "--dir", str(directory), "--symbols", symbols, "--secret-id", "s", *extra]
    )


@pytest.mark.parametrize("symbol", ["../evil", "..", "a/b/c", "SPY\\..\\X", "SP Y", "/etc"])
def test_a_symbol_that_is_not_a_ticker_is_refused_before_any_request(
    tmp_path: Path, echo: _Echo, symbol: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "prices"
    code = _fetch(prices, f"SPY,{symbol}")
    assert code == 2
    assert repr(symbol) in capsys.readouterr().err
    assert echo.asked == []
    assert not prices.exists()
    assert not (tmp_path / "EVIL.csv").exists()


def test_a_share_class_written_with_a_slash_is_fetched_as_alpaca_spells_it(
    tmp_path: Path, echo: _Echo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alpaca spells share classes with a dot (BRK.B); BRK/B is the same ticker."""
    prices = tmp_path / "prices"
    assert _fetch(prices, "brk/b") == 0
    assert echo.asked == [["BRK.B", "SPY"]]
    assert sorted(p.name for p in prices.iterdir()) == ["BRK.B.csv", "SPY.csv"]
    capsys.readouterr()


def test_a_start_after_the_last_completed_session_is_a_usage_error(
    tmp_path: Path, echo: _Echo, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _fetch(tmp_path / "prices", "SPY", "--start", "2026-07-15")
    assert code == 2
    err = capsys.readouterr().err
    assert "--start 2026-07-15 is after the last completed session, 2026-07-14" in err
    assert echo.asked == []


def test_a_refetch_from_a_later_start_keeps_the_earlier_stored_history(tmp_path: Path) -> None:
    """A re-adjusted history is fetched again from the earlier of ``--start`` and the
    file's first session: no stored session is dropped."""
    (tmp_path / "SPY.csv").write_text(
        "date,close\n" + "".join(f"{d.isoformat()},50\n" for d in SESSIONS[:5])
    )
    asked: list[date] = []

    def readjusted(symbols: list[str], start: date, end: date) -> dict[str, list[DailyBar]]:
        asked.append(start)
        return {s: [_bar(d, 100.0) for d in SESSIONS if start <= d <= end] for s in symbols}

    fetch = Fetch(readjusted, tmp_path, start=date(2026, 7, 8))
    fetch.run(["SPY"], SESSIONS[-1])
    assert asked == [SESSIONS[4], SESSIONS[0]]
    assert fetch.readjusted == ["SPY"]
    days = [line.split(",")[0] for line in (tmp_path / "SPY.csv").read_text().splitlines()[1:]]
    assert days == [d.isoformat() for d in SESSIONS]


def test_an_earlier_start_does_not_back_fill_a_file_already_there(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_text(
        "date,close\n" + "".join(f"{d.isoformat()},100.0\n" for d in SESSIONS[3:5])
    )
    echo = _Echo([])
    fetch = Fetch(echo, tmp_path, start=SESSIONS[0])
    fetch.run(["SPY"], SESSIONS[-1])
    days = [line.split(",")[0] for line in (tmp_path / "SPY.csv").read_text().splitlines()[1:]]
    assert days == [d.isoformat() for d in SESSIONS[3:]]
    assert fetch.updated == ["SPY"]
