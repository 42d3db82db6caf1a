"""One model of when strategies decide and where orders fill, for both windows: the
simulated run and the backtest decide on the same session and fill at the same price,
a close-window run decides on today's latest prices, and a trigger that is not the
account's (the other window, the close trigger of another kind of day) is skipped."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from alchemiser import bootstrap
from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.backtest import run_backtest, summary
from alchemiser.config import load_config
from alchemiser.domain.market import NEW_YORK, MarketStatus, TradingWindow, close_trigger_skip
from alchemiser.domain.orders import Side
from alchemiser.domain.prices import PriceHistory, with_session
from alchemiser.domain.report import Mode, RunStatus, SkipReason
from alchemiser.errors import DataError, DataErrorKind
from alchemiser.service import Dependencies, RunRequest, rebalance
from tests.conftest import LAST, simulated_run

# -- a market where the session's own move is known only at its close ---------------------

DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(60)]
SESSION_DAYS = [d for d in DAYS if d.weekday() < 5]
SEESAW = (
    '(defsymphony "Chaser" {} '
    '(if (> (cumulative-return "AAA" {:window 1}) 0) [(asset "AAA")] [(asset "SPY")]))'
)


def seesaw_prices(directory: Path) -> Path:
    """AAA opens at the previous close, then closes 10% up and 10% down on alternate
    sessions; SPY never moves. A strategy that holds AAA after an up session loses every
    time, unless it could see the session's own close before buying at its open."""
    directory.mkdir(parents=True, exist_ok=True)
    aaa = ["date,open,close"]
    spy = ["date,close"]
    close = 100.0
    for i, day in enumerate(SESSION_DAYS):
        opened = close
        close = opened * (1.1 if i % 2 == 0 else 0.9)
        aaa.append(f"{day},{opened:.6f},{close:.6f}")
        spy.append(f"{day},400")
    (directory / "AAA.csv").write_text("\n".join(aaa) + "\n")
    (directory / "SPY.csv.gz").write_bytes(gzip.compress(("\n".join(spy) + "\n").encode()))
    return directory


def seesaw_config(tmp_path: Path, window: str) -> Path:
    prices = seesaw_prices(tmp_path / "prices")
    (tmp_path / "chaser.clj").write_text(SEESAW)
    config = tmp_path / f"{window}.toml"
    config.write_text(
        f'trading_window = "{window}"\n'
        "[[strategies]]\n"
        'name = "chaser"\nkind = "symphony"\nfile = "chaser.clj"\nallocation = 1.0\n'
        '[sim]\nslippage_bps = "0"\n'
        '[risk]\nmax_order_notional = "1000000000"\nmax_position_weight = "1"\n'
        f'[data]\ndir = "{prices}"\n'
    )
    return config


def test_the_open_window_never_decides_on_the_session_it_fills_at(tmp_path: Path) -> None:
    config = load_config(seesaw_config(tmp_path, "open"))
    market = bootstrap.market_data(config)
    result = run_backtest(config, market, SESSION_DAYS[0], SESSION_DAYS[-1])
    # Decided on the previous close (an up session), filled at the open, closed down:
    # AAA is held only across down sessions, so the account loses on every one of them.
    assert result.metrics.final_equity < 100_000 * 0.9**10
    assert result.days[0].session == SESSION_DAYS[2]  # 1-day return from the 2nd session on
    model = " ".join(next(ln for ln in summary(result) if ln.startswith("fill model")).split())
    assert "each session's open" in model  # AAA's (SPY, which never moves, has none)


def test_the_close_window_fills_at_the_close_it_decided_on(tmp_path: Path) -> None:
    """The same strategy deciding and filling at the close (Composer's window) buys AAA
    after an up session at that close: no session's outcome is known before its fill, so
    it loses too. Only a model that decided on a close and filled at the open before it
    (the defect this guards against) could win."""
    config = load_config(seesaw_config(tmp_path, "close"))
    result = run_backtest(config, bootstrap.market_data(config), SESSION_DAYS[0], SESSION_DAYS[-1])
    assert result.metrics.final_equity < 100_000
    assert result.days[0].session == SESSION_DAYS[1]
    model = " ".join(next(ln for ln in summary(result) if ln.startswith("fill model")).split())
    assert "each session's close and fills at that close" in model


def test_a_simulated_open_run_fills_at_the_open_and_decides_on_the_day_before(
    tmp_path: Path,
) -> None:
    config = load_config(seesaw_config(tmp_path, "open"))
    market = bootstrap.market_data(config)
    day = SESSION_DAYS[5]  # the session before (index 4) closed up: buy AAA at day's open
    request = bootstrap.manual_request(config, market, datetime(2026, 4, 1, tzinfo=UTC), day)
    assert (request.as_of, request.trading_date) == (SESSION_DAYS[4], day)
    report = simulated_run(config, market, day)
    assert (report.as_of, report.trading_date) == (SESSION_DAYS[4], day)
    assert report.status is RunStatus.COMPLETED
    history = market.history(["AAA"], day, 1)
    assert history.opens is not None
    opened = float(history.opens[-1, 0])
    (fill,) = [f for f in report.fills if f.symbol == "AAA"]
    assert fill.side is Side.BUY
    assert float(fill.price) == pytest.approx(opened, abs=0.01)
    assert float(fill.price) != pytest.approx(float(history.closes[-1, 0]), abs=0.01)


def test_a_simulated_close_run_decides_on_the_day_itself(tmp_path: Path) -> None:
    config = load_config(seesaw_config(tmp_path, "close"))
    market = bootstrap.market_data(config)
    day = SESSION_DAYS[5]  # closed down: the chaser holds SPY at its close
    request = bootstrap.manual_request(config, market, datetime(2026, 4, 1, tzinfo=UTC), day)
    assert request.as_of == request.trading_date == day
    assert request.window is TradingWindow.CLOSE
    report = simulated_run(config, market, day)
    assert [s.weights for s in report.strategies] == [{"SPY": 1.0}]
    (fill,) = report.fills
    assert fill.symbol == "SPY"
    assert float(fill.price) == pytest.approx(400.0)


# -- the price files' optional columns ----------------------------------------------------


def test_price_files_may_carry_opens_and_more(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_text(
        "date,open,high,low,close,volume\n2026-07-30,10,11,9,10.5,1000\n2026-07-31,,12,10,11,0\n"
    )
    history = FilePriceStore(tmp_path).history(["SPY"], date(2026, 7, 31), 10)
    assert history.closes[:, 0].tolist() == [10.5, 11.0]
    assert history.opens is not None
    assert history.opens[0, 0] == 10.0
    assert np.isnan(history.opens[1, 0])  # an empty cell: no open that session


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        ("2026-07-31,0,11", DataErrorKind.NON_POSITIVE),
        ("2026-07-31,inf,11", DataErrorKind.NON_FINITE),
        ("2026-07-31,x,11", DataErrorKind.MALFORMED),
        ("2026-07-31,10", DataErrorKind.MALFORMED),
        ("2026-7-31,10,11", DataErrorKind.MALFORMED),
        ("2026-07-31,10,", DataErrorKind.MALFORMED),
    ],
)
def test_a_bad_open_fails_the_file(tmp_path: Path, row: str, kind: DataErrorKind) -> None:
    (tmp_path / "SPY.csv").write_text(f"date,open,close\n{row}\n")
    with pytest.raises(DataError) as raised:
        FilePriceStore(tmp_path).history(["SPY"], date(2026, 7, 31), 10)
    assert raised.value.kind is kind
    assert "SPY.csv:2" in raised.value.message


def test_an_unknown_column_is_not_read_as_a_price_file(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_text("date,adj_close\n2026-07-31,10\n")
    with pytest.raises(DataError) as raised:
        FilePriceStore(tmp_path).history(["SPY"], date(2026, 7, 31), 10)
    assert raised.value.kind is DataErrorKind.MALFORMED


def test_latest_prices_from_files_are_the_sessions_closes(store: FilePriceStore) -> None:
    prices = store.latest_prices(["SPY", "TLT"], LAST)
    assert prices["SPY"] == pytest.approx(500 * 1.04)
    with pytest.raises(DataError) as stale:
        store.latest_prices(["AAA"], LAST)  # no close that session
    assert stale.value.kind is DataErrorKind.STALE
    with pytest.raises(DataError) as beyond:
        store.latest_prices(["SPY"], date(2026, 8, 3))
    assert beyond.value.kind is DataErrorKind.STALE
    assert "2026-08-03" in beyond.value.message


def test_with_session_appends_todays_latest_prices() -> None:
    history = PriceHistory(
        dates=np.array(["2026-07-30", "2026-07-31"], dtype="datetime64[D]"),
        symbols=("A", "B"),
        closes=np.array([[1.0, 2.0], [1.5, 2.5]]),
        opens=np.array([[1.0, 2.0], [1.4, 2.4]]),
    )
    today = with_session(history, date(2026, 8, 3), {"A": 1.6})
    assert today.session(2) == date(2026, 8, 3)
    assert today.closes[2, 0] == 1.6
    assert np.isnan(today.closes[2, 1])
    assert today.opens is not None
    assert np.isnan(today.opens[2]).all()
    with pytest.raises(DataError):
        with_session(history, date(2026, 7, 31), {"A": 1.0})


# -- the close window in the service ------------------------------------------------------


class FixedMarket:
    """The broker's clock, stopped at one instant (a MarketClock)."""

    def __init__(self, at: datetime, close: datetime, is_open: bool = True) -> None:
        self.status = MarketStatus(
            at=at, is_open=is_open, next_open=at + timedelta(days=1), next_close=close
        )

    def market_status(self) -> MarketStatus:
        return self.status


def ny(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK)


def close_request(
    scheduled: datetime | None,
    *,
    trigger_window: TradingWindow | None = None,
    window: TradingWindow = TradingWindow.CLOSE,
) -> RunRequest:
    as_of = LAST if window is TradingWindow.CLOSE else date(2026, 7, 30)
    return RunRequest(
        run_id=f"close-{scheduled}-{trigger_window}-{window}",
        as_of=as_of,
        trading_date=LAST,
        scheduled_time=scheduled,
        mode=Mode.SIM,
        window=window,
        trigger_window=trigger_window,
    )


def with_market(deps: Dependencies, market: FixedMarket) -> Dependencies:
    return Dependencies(**{**deps.__dict__, "market_clock": market})


def test_the_close_trigger_15_minutes_before_the_close_trades(
    make_deps: Callable[..., Dependencies],
) -> None:
    market = FixedMarket(ny(LAST, 15, 45), close=ny(LAST, 16, 0))
    report = rebalance(close_request(ny(LAST, 15, 45)), with_market(make_deps(), market))
    assert report.status is RunStatus.COMPLETED
    assert report.as_of == LAST  # decided on today's latest prices
    # The sim's latest prices for today are its closes: the fills are at them.
    spy = next(f for f in report.fills if f.symbol == "SPY")
    assert float(spy.price) == pytest.approx(500 * 1.04, rel=1e-3)


def test_the_early_close_trigger_on_a_normal_day_is_skipped(
    make_deps: Callable[..., Dependencies],
) -> None:
    market = FixedMarket(ny(LAST, 12, 45), close=ny(LAST, 16, 0))
    deps = with_market(make_deps(), market)
    report = rebalance(close_request(ny(LAST, 12, 45)), deps)
    assert report.status is RunStatus.SKIPPED
    assert report.skipped is SkipReason.OTHER_TRIGGER
    assert not report.orders
    assert "closes at 16:00" in report.notes[0]
    assert "12:45" in report.notes[0]
    assert report.status.succeeded  # no alarm: RunFailed is not emitted for it


def test_the_normal_close_trigger_on_an_early_close_day_is_skipped(
    make_deps: Callable[..., Dependencies],
) -> None:
    # 15:45 on a day that closed at 13:00: the market is closed at the trigger.
    market = FixedMarket(ny(LAST, 15, 45), close=ny(LAST + timedelta(days=3), 16, 0), is_open=False)
    report = rebalance(close_request(ny(LAST, 15, 45)), with_market(make_deps(), market))
    assert report.status is RunStatus.SKIPPED
    assert report.skipped is SkipReason.MARKET_CLOSED  # a session: not a holiday
    assert "closed" in report.notes[0]


def test_the_early_close_trigger_on_an_early_close_day_trades(
    make_deps: Callable[..., Dependencies],
) -> None:
    market = FixedMarket(ny(LAST, 12, 45), close=ny(LAST, 13, 0))
    report = rebalance(close_request(ny(LAST, 12, 45)), with_market(make_deps(), market))
    assert report.status is RunStatus.COMPLETED


def test_a_trigger_for_the_other_window_is_skipped(
    make_deps: Callable[..., Dependencies],
) -> None:
    market = FixedMarket(ny(LAST, 9, 30), close=ny(LAST, 16, 0))
    report = rebalance(
        close_request(ny(LAST, 9, 30), trigger_window=TradingWindow.OPEN),
        with_market(make_deps(), market),
    )
    assert report.status is RunStatus.SKIPPED
    assert report.skipped is SkipReason.OTHER_WINDOW
    assert "trades at the close" in report.notes[0]
    opened = rebalance(
        close_request(
            ny(LAST, 9, 30), trigger_window=TradingWindow.OPEN, window=TradingWindow.OPEN
        ),
        with_market(make_deps(), market),
    )
    assert opened.status is RunStatus.COMPLETED


def test_a_close_run_without_todays_prices_fails_closed(
    make_deps: Callable[..., Dependencies],
) -> None:
    # AAA traded the session before but has no price today: no decision, no order.
    deps = make_deps({"AAA": 0.5, "SPY": 0.5})
    request = RunRequest(
        run_id="close-stale",
        as_of=LAST,
        trading_date=LAST,
        scheduled_time=None,
        mode=Mode.SIM,
        window=TradingWindow.CLOSE,
    )
    report = rebalance(request, deps)
    assert report.status is RunStatus.FAILED
    assert not report.orders
    assert report.errors[0].code == "DATA_STALE"
    assert "AAA" in report.errors[0].message


@pytest.mark.parametrize(
    ("hour", "minute", "closes", "runs"),
    [
        (15, 45, (16, 0), True),
        (15, 59, (16, 0), True),
        (15, 44, (16, 0), False),
        (16, 0, (16, 0), False),
        (12, 45, (13, 0), True),
        (12, 45, (16, 0), False),
    ],
)
def test_which_close_trigger_trades(
    hour: int, minute: int, closes: tuple[int, int], runs: bool
) -> None:
    assert (close_trigger_skip(ny(LAST, hour, minute), ny(LAST, *closes)) is None) is runs


@pytest.mark.parametrize(
    "scheduled", [None, ny(LAST, 15, 45)], ids=["by-hand", "15:45-trigger-delivered-early"]
)
def test_a_close_run_outside_the_window_is_skipped(
    make_deps: Callable[..., Dependencies], scheduled: datetime | None
) -> None:
    """The broker's clock says 10:00: whatever the trigger says, the latest prices are
    not a stand-in for today's close yet, so nothing is read or placed."""
    market = FixedMarket(ny(LAST, 10, 0), close=ny(LAST, 16, 0))
    report = rebalance(close_request(scheduled), with_market(make_deps(), market))
    assert report.status is RunStatus.SKIPPED
    assert report.skipped is SkipReason.OUTSIDE_WINDOW
    assert not report.orders
    assert "10:00" in report.notes[0]


def test_a_close_run_a_little_late_still_trades(make_deps: Callable[..., Dependencies]) -> None:
    # Triggered 15:45, reaching the broker at 15:52 (a cold start, a retry): in time.
    market = FixedMarket(ny(LAST, 15, 52), close=ny(LAST, 16, 0))
    report = rebalance(close_request(ny(LAST, 15, 45)), with_market(make_deps(), market))
    assert report.status is RunStatus.COMPLETED


def test_without_a_broker_clock_the_early_close_trigger_is_skipped(
    make_deps: Callable[..., Dependencies],
) -> None:
    """The simulator knows no early closes: its close is 16:00, so of the two close
    triggers only 15:45 trades."""
    early = rebalance(close_request(ny(LAST, 12, 45)), make_deps())
    assert early.status is RunStatus.SKIPPED
    assert early.skipped is SkipReason.OTHER_TRIGGER
    normal = rebalance(close_request(ny(LAST, 15, 45)), make_deps())
    assert normal.status is RunStatus.COMPLETED


def test_a_scheduled_open_run_beyond_the_data_fills_at_the_close_it_decided_on(
    tmp_path: Path,
) -> None:
    """The data does not reach the trading date yet: the simulator fills at the close
    the strategies decided on, never at that session's open (a price from before the
    decision)."""
    config = load_config(seesaw_config(tmp_path, "open"))
    market = bootstrap.market_data(config)
    last = SESSION_DAYS[-1]
    following = last + timedelta(days=3 if last.weekday() == 4 else 1)
    scheduled = datetime(following.year, following.month, following.day, 13, 30, tzinfo=UTC)
    request = bootstrap.scheduled_request(config, market, scheduled)
    assert (request.as_of, request.trading_date) == (last, following)
    deps = bootstrap.build_run(
        config, market, request, clock=ManualClock(scheduled), state_dir=None
    )
    report = rebalance(request, deps)
    assert report.status is RunStatus.COMPLETED, report.errors
    history = market.history(["AAA", "SPY"], last, 1)
    closes = dict(zip(history.symbols, history.closes[-1].tolist(), strict=True))
    for fill in report.fills:
        assert float(fill.price) == pytest.approx(closes[fill.symbol], abs=0.01)


def test_a_close_backtest_from_the_datas_first_session_does_not_fail_it(tmp_path: Path) -> None:
    config = load_config(seesaw_config(tmp_path, "close"))
    (tmp_path / "chaser.clj").write_text('(defsymphony "Hold" {} (asset "SPY"))')
    config = load_config(tmp_path / "close.toml")
    result = run_backtest(config, bootstrap.market_data(config), SESSION_DAYS[0], SESSION_DAYS[9])
    assert result.days[0].session == SESSION_DAYS[1]  # nothing before the first to read
    assert result.metrics.failed_days == 0


def test_the_summary_names_the_symbols_filled_at_the_close_for_want_of_opens(
    tmp_path: Path,
) -> None:
    config = load_config(seesaw_config(tmp_path, "open"))  # AAA has opens, SPY has none
    result = run_backtest(config, bootstrap.market_data(config), SESSION_DAYS[0], SESSION_DAYS[-1])
    model = " ".join(next(ln for ln in summary(result) if ln.startswith("fill model")).split())
    assert "where the data has one, else at its CLOSE: 1 of 2 symbols have no opens (SPY)" in model
