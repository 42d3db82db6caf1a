"""``alchemiser data fetch`` against the local exchange and moto: files the price reader
loads, incremental updates that ask only from the last stored session, a full re-fetch
when the adjusted history moved, no bar of a session still under way, bad replies."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.cli.main import main
from alchemiser.exchange import LocalExchange
from alchemiser.exchange.faults import Fault
from tests.conftest import write_prices
from tests.integration.alpaca_fixtures import (
    create_secret,
    exchange_settings,
    secret_document,
    unique_secret_name,
)

pytestmark = pytest.mark.integration

NEW_YORK = ZoneInfo("America/New_York")
BARS = "/v2/stocks/bars"
START = "2026-06-01"


@pytest.fixture
def secret(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    return create_secret(moto_server, unique_secret_name(), secret_document())


def fetch(exchange: LocalExchange, secret: str, directory: Path, *extra: str) -> int:
    return main(
        [
            "data",
            "fetch",
            "--dir",
            str(directory),
            "--start",
            START,
            "--secret-id",
            secret,
            "--data-url",
            exchange.url,
            "--trading-url",
            exchange.url,
            *extra,
        ]
    )


def bar_starts(exchange: LocalExchange, since: int = 0) -> list[tuple[date, str]]:
    """(first session asked for, symbols) of every bars request after ``since``."""
    asked = []
    for record in exchange.requests[since:]:
        if record.path == BARS:
            start = datetime.fromisoformat(record.query["start"][0]).astimezone(NEW_YORK)
            asked.append((start.date(), record.query["symbols"][0]))
    return asked


def closes(directory: Path | Any, symbol: str, end: date) -> tuple[list[str], list[float]]:
    history = FilePriceStore(directory).history([symbol], end, 10_000)
    valid = ~np.isnan(history.closes[:, 0])
    return [str(d) for d in history.dates[valid]], history.closes[valid, 0].tolist()


def test_fetch_then_update_asks_only_from_the_last_stored_session(
    secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "prices"
    with LocalExchange(settings=exchange_settings(session=date(2026, 7, 20))) as exchange:
        assert fetch(exchange, secret, directory, "--symbols", "TLT,GLD") == 0
        first = capsys.readouterr()
        assert "data fetch: 3 symbols, 3 updated, 0 re-adjusted, 0 up to date" in first.out
        assert sorted(p.name for p in directory.iterdir()) == ["GLD.csv", "SPY.csv", "TLT.csv"]
        bundled = FilePriceStore.bundled()
        for symbol in ("SPY", "TLT", "GLD"):
            days, got = closes(directory, symbol, date(2026, 7, 31))
            assert days[0] == START
            assert days[-1] == "2026-07-17"
            want = bundled.history([symbol], date(2026, 7, 17), len(days)).closes[:, 0]
            np.testing.assert_allclose(got, want, rtol=1e-12)
        assert bar_starts(exchange) == [(date(2026, 6, 1), "GLD,SPY,TLT")]
        before = (directory / "TLT.csv").read_text()

        exchange.configure(session=date(2026, 7, 24))
        seen = len(exchange.requests)
        assert fetch(exchange, secret, directory, "--symbols", "TLT,GLD") == 0
        assert "3 symbols, 3 updated, 0 re-adjusted, 0 up to date" in capsys.readouterr().out
        # One request, from the last stored session (the overlap) and nothing earlier.
        assert bar_starts(exchange, seen) == [(date(2026, 7, 17), "GLD,SPY,TLT")]
        after = (directory / "TLT.csv").read_text()
        assert after.startswith(before)
        added = [line.split(",")[0] for line in after[len(before) :].splitlines()]
        assert added == ["2026-07-20", "2026-07-21", "2026-07-22", "2026-07-23"]

        seen = len(exchange.requests)
        assert fetch(exchange, secret, directory, "--symbols", "TLT,GLD") == 0
        assert "0 updated, 0 re-adjusted, 3 up to date" in capsys.readouterr().out
        assert bar_starts(exchange, seen) == []


def _subset(directory: Path, scale: float) -> Path:
    """SPY, TLT and GLD over the bundled sessions of 2026, TLT's closes times ``scale``."""
    store = FilePriceStore.bundled()
    history = store.history(["GLD", "SPY", "TLT"], date(2026, 7, 31), 150)
    rows = {
        symbol: {
            str(day): float(history.closes[i, j]) * (scale if symbol == "TLT" else 1.0)
            for i, day in enumerate(history.dates)
        }
        for j, symbol in enumerate(history.symbols)
    }
    return write_prices(directory, rows)


def test_a_moved_overlap_close_fetches_the_whole_history_again(
    secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "prices"
    old = _subset(tmp_path / "old", 1.0)
    new = _subset(tmp_path / "new", 0.5)  # a 2:1 split, adjusted back through history
    with LocalExchange(old, settings=exchange_settings(session=date(2026, 7, 20))) as exchange:
        assert fetch(exchange, secret, directory, "--symbols", "TLT,GLD") == 0
    capsys.readouterr()
    with LocalExchange(new, settings=exchange_settings(session=date(2026, 7, 24))) as exchange:
        assert fetch(exchange, secret, directory, "--symbols", "TLT,GLD") == 0
        out, err = capsys.readouterr()
        assert "3 symbols, 2 updated, 1 re-adjusted, 0 up to date" in out
        assert "TLT: the close of 2026-07-17 is now" in err
        assert bar_starts(exchange) == [
            (date(2026, 7, 17), "GLD,SPY,TLT"),
            (date(2026, 6, 1), "TLT"),
        ]
    days, got = closes(directory, "TLT", date(2026, 7, 31))
    want_days, want = closes(new, "TLT", date(2026, 7, 23))
    assert days == [d for d in want_days if d >= START]
    np.testing.assert_allclose(got, want[-len(days) :], rtol=1e-12)


def test_a_session_under_way_is_never_written(
    secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    during = exchange_settings(session=date(2026, 7, 20), partial_bars=True)
    with LocalExchange(settings=during) as exchange:
        assert fetch(exchange, secret, tmp_path / "open", "--symbols", "TLT") == 0
        assert closes(tmp_path / "open", "TLT", date(2026, 7, 31))[0][-1] == "2026-07-17"
        # Just after the close, late trades can still change the day's bar.
        exchange.configure(now=datetime(2026, 7, 20, 16, 10, tzinfo=NEW_YORK))
        assert fetch(exchange, secret, tmp_path / "closing", "--symbols", "TLT") == 0
        assert closes(tmp_path / "closing", "TLT", date(2026, 7, 31))[0][-1] == "2026-07-17"
        # Half an hour after the close, the day's bar is final.
        exchange.configure(now=datetime(2026, 7, 20, 16, 45, tzinfo=NEW_YORK))
        assert fetch(exchange, secret, tmp_path / "closed", "--symbols", "TLT") == 0
        assert closes(tmp_path / "closed", "TLT", date(2026, 7, 31))[0][-1] == "2026-07-20"
    capsys.readouterr()


def _closed_at(now: datetime, close: str | None) -> list[Fault]:
    """The clock at ``now`` (closed for the day) and a calendar whose session that day
    closes at ``close`` (no ``close`` at all when None)."""
    today = {"date": now.date().isoformat(), "open": "09:30"}
    if close is not None:
        today["close"] = close
    return [
        Fault(
            method="GET",
            path="/v2/clock",
            status=200,
            body={
                "timestamp": now.isoformat(),
                "is_open": False,
                "next_open": "2026-07-21T09:30:00-04:00",
                "next_close": "2026-07-21T16:00:00-04:00",
            },
        ),
        Fault(
            method="GET",
            path="/v2/calendar",
            status=200,
            body=[
                {"date": "2026-07-16", "open": "09:30", "close": "16:00"},
                {"date": "2026-07-17", "open": "09:30", "close": "16:00"},
                today,
            ],
        ),
    ]


@pytest.mark.parametrize(
    ("at", "close", "last"),
    [
        ((13, 45), "13:00", "2026-07-20"),  # an early close: final from 13:30
        ((13, 15), "13:00", "2026-07-17"),
        ((23, 0), None, "2026-07-17"),  # a close the calendar does not give: not final
    ],
)
def test_the_day_is_final_half_an_hour_after_the_calendar_close(
    secret: str,
    tmp_path: Path,
    at: tuple[int, int],
    close: str | None,
    last: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    during = exchange_settings(session=date(2026, 7, 20), partial_bars=True)
    with LocalExchange(settings=during) as exchange:
        now = datetime(2026, 7, 20, *at, tzinfo=NEW_YORK)
        exchange.configure(now=now)
        exchange.add_fault(*_closed_at(now, close))
        assert fetch(exchange, secret, tmp_path / "p", "--symbols", "TLT") == 0
        assert closes(tmp_path / "p", "TLT", date(2026, 7, 31))[0][-1] == last
    capsys.readouterr()


def test_a_bad_bar_is_a_typed_error_and_leaves_the_files_alone(
    secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "prices"
    with LocalExchange(settings=exchange_settings(session=date(2026, 7, 20))) as exchange:
        assert fetch(exchange, secret, directory, "--symbols", "TLT") == 0
        before = {p.name: p.read_bytes() for p in directory.iterdir()}
        exchange.configure(session=date(2026, 7, 24))
        bad = {"t": "2026-07-21T04:00:00Z", "o": 1, "h": 1, "l": 1, "c": "1.5", "v": 10}
        exchange.add_fault(
            Fault(method="GET", path=BARS, status=200, body={"bars": {"TLT": [bad]}})
        )
        assert fetch(exchange, secret, directory, "--symbols", "TLT") == 1
        assert "DATA_MALFORMED" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_a_server_error_is_retried(
    secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalExchange(settings=exchange_settings(session=date(2026, 7, 20))) as exchange:
        exchange.add_fault(Fault(method="GET", path=BARS, status=500))
        assert fetch(exchange, secret, tmp_path / "p", "--symbols", "TLT") == 0
        assert [r.status for r in exchange.requests if r.path == BARS] == [500, 200]
    assert "2 symbols, 2 updated" in capsys.readouterr().out


def test_a_symbol_without_bars_is_reported_and_the_others_written(
    secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalExchange(settings=exchange_settings(session=date(2026, 7, 20))) as exchange:
        assert fetch(exchange, secret, tmp_path / "p", "--symbols", "TLT,NOPE") == 1
    assert "no bars at all for NOPE" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["SPY.csv", "TLT.csv"]


def test_a_config_collects_indicator_only_tickers_and_a_backtest_runs_on_the_files(
    secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "switch.clj").write_text(
        '(defsymphony "switch" {:rebalance-frequency :daily}\n'
        '  (if (> (rsi "XLK" {:window 10}) 50) [(asset "TLT")] [(asset "GLD")]))\n'
    )
    with LocalExchange(settings=exchange_settings(session=date(2026, 7, 20))) as exchange:
        config = tmp_path / "fetch.toml"
        config.write_text(
            f'account = "paper-test"\nbroker = "alpaca"\nmode = "paper"\n'
            f'trading_window = "open"\n\n'
            f'[alpaca]\nsecret_id = "{secret}"\ntrading_url = "{exchange.url}"\n'
            f'data_url = "{exchange.url}"\n\n[data]\ndir = "prices"\n\n'
            '[[strategies]]\nname = "switch"\nkind = "symphony"\nallocation = 1.0\n'
            'file = "switch.clj"\n'
        )
        code = main(["data", "fetch", "--config", str(config), "--start", START])
        assert code == 0, capsys.readouterr().err
        assert bar_starts(exchange) == [(date(2026, 6, 1), "GLD,SPY,TLT,XLK")]
    files = sorted(p.name for p in (tmp_path / "prices").iterdir())
    assert files == ["GLD.csv", "SPY.csv", "TLT.csv", "XLK.csv"]
    capsys.readouterr()
    out = tmp_path / "bt"
    code = main(
        [
            "backtest",
            "--config",
            str(config),
            "--start",
            "2026-07-01",
            "--end",
            "2026-07-17",
            "--prices",
            str(tmp_path / "prices"),
            "--out",
            str(out),
            "--no-chart",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    # Every fetched file has opens: the backtest fills at them.
    assert "fills at each session's open" in " ".join(printed.out.split())
