"""The library's default risk limits against the strategies users run: the real service
and the simulated broker, over the bundled prices, with configs that have no [risk]
table. A strategy holding 100% of one fund is never limited, and limits given as
fractions of equity bite the same on an account ten times larger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.backtest import BacktestResult, run_backtest
from alchemiser.config import load_config
from alchemiser.domain.decisions import Verdict
from alchemiser.domain.orders import Side
from alchemiser.domain.report import RunReport, RunStatus
from alchemiser.service import rebalance

START = date(2026, 3, 2)  # a Monday; five months to the end of the bundled prices
END = date(2026, 7, 31)
ONE_FUND = """account = "one-fund"
[[strategies]]
name = "all-in"
allocation = 1.0
weights = {{ {symbol} = 1.0 }}
"""
SWING = """account = "swing"
[[strategies]]
name = "swing"
kind = "symphony"
file = "s.clj"
allocation = 1.0
"""
SPY_OR_TLT = (
    '(defsymphony "Swing" {} (if (> (rsi "SPY" {:window 10}) 50) [(asset "SPY")] [(asset "TLT")]))'
)


def write(directory: Path, text: str, name: str = "config.toml") -> Path:
    """A config as a user writes it: no [risk] table, so the library's defaults apply
    (and the simulator's default slippage)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def backtest(config: Path) -> BacktestResult:
    return run_backtest(load_config(config), FilePriceStore.bundled(), START, END)


def assert_never_limited_and_invested(result: BacktestResult) -> None:
    assert len(result.days) > 80  # every session of the five months
    assert result.metrics.limited_orders == 0
    for day in result.days:
        assert day.status in (RunStatus.COMPLETED, RunStatus.NOOP), (day.session, day.note)
        assert day.limited == 0, day.session
        # All but the 1% cash buffer is invested, give or take the drift band (1 point:
        # a holding that drifted less than that is not traded).
        assert (day.equity - day.cash) / day.equity == pytest.approx(0.99, abs=0.0105)


def test_a_fixed_strategy_all_in_one_fund_trades_every_day_unlimited(tmp_path: Path) -> None:
    result = backtest(write(tmp_path, ONE_FUND.format(symbol="SPY")))

    assert_never_limited_and_invested(result)
    assert result.days[0].status is RunStatus.COMPLETED
    assert result.days[0].traded == pytest.approx(99_000, rel=0.001)


def test_a_symphony_switching_between_two_funds_is_never_limited(tmp_path: Path) -> None:
    (tmp_path / "s.clj").write_text(SPY_OR_TLT)

    result = backtest(write(tmp_path, SWING))

    assert_never_limited_and_invested(result)
    # It does switch: a day that sells one whole fund and buys the other trades about
    # twice the equity, and risk approved all of it.
    switches = [d for d in result.days[1:] if d.traded > 1.5 * d.equity]
    assert switches
    assert all(d.status is RunStatus.COMPLETED for d in switches)


def run_once(config: Path, state: Path, session: date) -> RunReport:
    """One run through bootstrap.build, the simulated account kept in ``state``."""
    settings = load_config(config)
    market = FilePriceStore.bundled()
    clock = ManualClock(datetime.combine(session, datetime.min.time(), tzinfo=UTC))
    deps = bootstrap.build(settings, market=market, session=session, clock=clock, state_dir=state)
    request = bootstrap.manual_request(settings, market, clock.now(), session)
    return rebalance(request, deps)


def test_a_switch_from_one_fund_to_another_is_approved_in_full(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # At the close, the plan is priced at the prices it fills at: the switch lands on
    # exactly the target (at the open it is sized on the day before's closes).
    account = 'account = "switcher"\ntrading_window = "close"\n'
    spy = write(tmp_path, account + ONE_FUND.format(symbol="SPY").split("\n", 1)[1], "spy.toml")
    tlt = write(tmp_path, account + ONE_FUND.format(symbol="TLT").split("\n", 1)[1], "tlt.toml")

    bought = run_once(spy, state, date(2026, 7, 29))
    assert bought.status is RunStatus.COMPLETED
    held = bought.account_after
    assert held is not None
    assert [p.symbol for p in held.positions] == ["SPY"]

    switched = run_once(tlt, state, date(2026, 7, 30))

    assert switched.status is RunStatus.COMPLETED
    assert [(d.symbol, d.side, d.verdict) for d in switched.decisions] == [
        ("SPY", Side.SELL, Verdict.APPROVED),
        ("TLT", Side.BUY, Verdict.APPROVED),
    ]
    assert all(d.approved_qty == d.requested_qty for d in switched.decisions)
    after = switched.account_after
    assert after is not None
    assert [p.symbol for p in after.positions] == ["TLT"]
    assert after.positions[0].weight == pytest.approx(Decimal("0.99"), abs=Decimal("0.001"))


FRACTIONS = """
[risk]
max_order_fraction = "0.4"
max_position_weight = "0.7"
max_turnover = "0.5"
"""


@pytest.mark.parametrize("text", [ONE_FUND.format(symbol="SPY"), SWING])
def test_limits_as_fractions_bite_no_harder_on_ten_times_the_equity(
    tmp_path: Path, text: str
) -> None:
    """Tight fractional limits on a $100,000 account and on a $1,000,000 one: the same
    orders are limited on the same days, and the accounts grow alike."""
    (tmp_path / "s.clj").write_text(SPY_OR_TLT)
    small = backtest(write(tmp_path, text + FRACTIONS + '[sim]\nstarting_cash = "100000"\n'))
    large = backtest(write(tmp_path, text + FRACTIONS + '[sim]\nstarting_cash = "1000000"\n'))

    assert small.metrics.limited_orders > 0  # the limits do bite, on both
    assert [d.limited for d in large.days] == [d.limited for d in small.days]
    assert [d.status for d in large.days] == [d.status for d in small.days]
    for little, big in zip(small.days, large.days, strict=True):
        assert big.equity == pytest.approx(10 * little.equity, rel=1e-4)
        assert big.traded == pytest.approx(10 * little.traded, rel=1e-3, abs=0.1)
