"""Backtest statistics: hand-computed values on short series, a second implementation
in plain Python loops on random series, empyrical's figures where it computes the
same one, and the edge cases (flat, never recovered, short, a flat benchmark)."""

from __future__ import annotations

import math
import random
import statistics as pystats
from datetime import date, timedelta

import empyrical
import numpy as np
import pytest

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import DataError, DataErrorKind
from alchemiser.reporting.benchmark import benchmark_equity
from alchemiser.reporting.figures import monthly_rows, rows, text_table
from alchemiser.reporting.statistics import (
    compute,
    daily_risk_free,
    monthly_returns,
)

D1, D2, D3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)


def business_days(start: date, count: int) -> list[date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


# ------------------------------------------------------------- by hand


def test_three_sessions_by_hand() -> None:
    # base 100, then 110, 99, 121: returns +10%, -10%, +22.2...%
    stats = compute([D1, D2, D3], [110.0, 99.0, 121.0], 100.0, [100.0, 10.0, 0.0])
    r = [0.1, -0.1, 121 / 99 - 1]
    mean = sum(r) / 3  # = (0.1 - 0.1 + 0.2222) / 3 = 0.074074...
    sample_std = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)  # ddof = 1
    assert stats.sessions == 3
    assert stats.total_return == pytest.approx(0.21)  # 121 / 100 - 1
    assert stats.cagr == pytest.approx(1.21 ** (252 / 3) - 1)  # 3 sessions = 3/252 years
    assert stats.volatility == pytest.approx(sample_std * math.sqrt(252))
    assert stats.sharpe == pytest.approx(mean / sample_std * math.sqrt(252))
    downside = math.sqrt((0 + 0.1**2 + 0) / 3)  # only -10% is below 0, over all 3 days
    assert stats.sortino == pytest.approx(mean * 252 / (downside * math.sqrt(252)))
    assert stats.max_drawdown == pytest.approx(0.1)  # 110 -> 99
    assert stats.calmar == pytest.approx(stats.cagr / 0.1)
    drawdown = stats.drawdown
    assert drawdown is not None
    assert (drawdown.peak, drawdown.trough, drawdown.recovery) == (D1, D2, D3)
    assert (drawdown.sessions, drawdown.days) == (2, 2)
    assert stats.win_rate == pytest.approx(2 / 3)
    # 110 traded over an average equity of (100 + 110 + 99 + 121) / 4 = 107.5, per year
    assert stats.turnover == pytest.approx(110 / 107.5 / (3 / 252))
    assert stats.trailing.one_month is None  # 3 sessions do not reach a month back
    assert stats.trailing.year_to_date == pytest.approx(0.21)  # began this year: from base


def test_the_risk_free_rate_is_taken_daily() -> None:
    daily = daily_risk_free(0.04)
    assert (1 + daily) ** 252 == pytest.approx(1.04)
    stats = compute([D1, D2, D3], [110.0, 99.0, 121.0], 100.0, risk_free=0.04)
    excess = [0.1 - daily, -0.1 - daily, 121 / 99 - 1 - daily]
    mean = sum(excess) / 3
    assert stats.sharpe == pytest.approx(mean / pystats.stdev(excess) * math.sqrt(252))
    downside = math.sqrt(sum(min(x, 0) ** 2 for x in excess) / 3)
    assert stats.sortino == pytest.approx(mean * 252 / (downside * math.sqrt(252)))


def test_beta_alpha_by_hand() -> None:
    # The strategy moves exactly twice the benchmark, plus 0.1% a day.
    bench_r = [0.01, -0.02, 0.015, 0.0]
    strat_r = [2 * b + 0.001 for b in bench_r]
    days = business_days(D1, 4)
    bench, strat = [100.0], [100.0]
    for b, s in zip(bench_r, strat_r, strict=True):
        bench.append(bench[-1] * (1 + b))
        strat.append(strat[-1] * (1 + s))
    stats = compute(days, strat[1:], 100.0, benchmark=bench[1:])
    relative = stats.relative
    assert relative is not None
    assert relative.beta == pytest.approx(2.0)
    assert relative.alpha == pytest.approx(1.001**252 - 1)  # mean residual 0.001 a day
    assert relative.correlation == pytest.approx(1.0)
    assert relative.r_squared == pytest.approx(1.0)
    assert stats.benchmark is not None
    assert stats.benchmark.total_return == pytest.approx(bench[-1] / 100 - 1)
    assert math.isnan(stats.benchmark.turnover)


def test_trailing_returns_count_back_from_the_last_session() -> None:
    days = business_days(date(2023, 1, 2), 320)  # to 2024-03-22, a Friday
    equity = [100.0 + i for i in range(len(days))]
    stats = compute(days, equity, 100.0)
    end = days[-1]
    assert end == date(2024, 3, 22)

    def value_on_or_before(anchor: date) -> float:
        return equity[max(i for i, d in enumerate(days) if d <= anchor)]

    last = equity[-1]
    trailing = stats.trailing
    assert trailing.one_month == pytest.approx(last / value_on_or_before(date(2024, 2, 22)) - 1)
    assert trailing.three_months == pytest.approx(last / value_on_or_before(date(2023, 12, 22)) - 1)
    assert trailing.one_year == pytest.approx(last / value_on_or_before(date(2023, 3, 22)) - 1)
    assert trailing.year_to_date == pytest.approx(last / value_on_or_before(date(2023, 12, 31)) - 1)


def test_a_month_back_from_the_31st_is_the_last_day_of_a_shorter_month() -> None:
    days = [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1), date(2024, 3, 29)]
    days.append(date(2024, 3, 31))  # a Sunday, but any increasing dates are accepted
    stats = compute(days, [100.0, 102.0, 104.0, 106.0, 108.0], 100.0)
    assert stats.trailing.one_month == pytest.approx(108 / 102 - 1)  # back to Feb 29


def test_monthly_returns_by_hand() -> None:
    days = [date(2023, 12, 28), date(2023, 12, 29), date(2024, 1, 31), date(2024, 3, 1)]
    table = monthly_returns(days, [101.0, 102.0, 99.0, 110.0], 100.0)
    assert [row.year for row in table] == [2023, 2024]
    assert table[0].months[11] == pytest.approx(0.02)  # 102 / 100 (the base) - 1
    assert table[0].months[:11] == (None,) * 11
    assert table[0].total == pytest.approx(0.02)
    assert table[1].months[0] == pytest.approx(99 / 102 - 1)
    assert table[1].months[1] is None  # February has no session
    assert table[1].months[2] == pytest.approx(110 / 99 - 1)
    assert table[1].total == pytest.approx(110 / 102 - 1)
    text = monthly_rows(table)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert text[0] == ("year", *months, "total")
    assert text[2][:4] == ("2024", f"{99 / 102 - 1:.6f}", "", f"{110 / 99 - 1:.6f}")


# ------------------------------------------------------------- edge cases


def test_a_flat_series_has_no_ratios_and_no_drawdown() -> None:
    stats = compute([D1, D2, D3], [100.0, 100.0, 100.0], 100.0, [0.0, 0.0, 0.0])
    assert stats.volatility == 0
    assert math.isnan(stats.sharpe)
    assert math.isnan(stats.sortino)
    assert math.isnan(stats.calmar)
    assert stats.drawdown is None
    assert stats.max_drawdown == 0
    assert stats.win_rate == 0
    table = {row[0]: row[1:] for row in rows(stats)}
    assert table["Sharpe"] == ("n/a",)
    assert table["  recovered"] == ("none",)


def test_a_series_that_never_recovers() -> None:
    stats = compute([D1, D2, D3], [90.0, 80.0, 85.0], 100.0)
    drawdown = stats.drawdown
    assert drawdown is not None
    assert drawdown.depth == pytest.approx(0.2)
    assert drawdown.peak == D1  # the starting cash was the peak
    assert drawdown.trough == D2
    assert drawdown.recovery is None
    assert drawdown.sessions == 3  # from the start to the last session
    assert {row[0]: row[1] for row in rows(stats)}["  recovered"] == "not recovered"


def test_a_flat_benchmark_has_no_beta() -> None:
    stats = compute([D1, D2, D3], [110.0, 99.0, 121.0], 100.0, benchmark=[100.0] * 3)
    relative = stats.relative
    assert relative is not None
    assert all(math.isnan(v) for v in (relative.beta, relative.alpha, relative.correlation))
    assert stats.benchmark is not None
    assert math.isnan(stats.benchmark.sharpe)


def test_one_session_never_raises() -> None:
    stats = compute([D1], [99.0], 100.0, [100.0], [101.0], risk_free=0.04)
    assert stats.total_return == pytest.approx(-0.01)
    assert stats.cagr == pytest.approx(0.99**252 - 1)
    for value in (stats.volatility, stats.sharpe, stats.sortino):
        assert math.isnan(value)
    assert stats.relative is not None
    assert math.isnan(stats.relative.beta)
    assert text_table(rows(stats))  # renders


def test_an_extreme_cagr_is_not_an_overflow() -> None:
    stats = compute([D1], [1e300], 1.0)
    assert math.isnan(stats.cagr)
    assert {row[0]: row[1] for row in rows(stats)}["CAGR"] == "n/a"


@pytest.mark.parametrize(
    ("equity", "kind"),
    [
        ([100.0, math.nan], DataErrorKind.NON_FINITE),
        ([100.0, math.inf], DataErrorKind.NON_FINITE),
        ([100.0, 0.0], DataErrorKind.NON_POSITIVE),
        ([100.0, -5.0], DataErrorKind.NON_POSITIVE),
        ([100.0], DataErrorKind.MALFORMED),
    ],
)
def test_bad_equity_is_a_data_error(equity: list[float], kind: DataErrorKind) -> None:
    with pytest.raises(DataError) as caught:
        compute([D1, D2], equity, 100.0)
    assert caught.value.kind is kind


def test_other_bad_input_is_a_data_error() -> None:
    with pytest.raises(DataError, match="increasing"):
        compute([D2, D1], [100.0, 101.0], 100.0)
    with pytest.raises(DataError, match="base"):
        compute([D1], [100.0], 0.0)
    with pytest.raises(DataError, match="benchmark"):
        compute([D1], [100.0], 100.0, benchmark=[math.nan])
    with pytest.raises(DataError, match="traded"):
        compute([D1], [100.0], 100.0, traded=[-1.0])
    with pytest.raises(DataError, match="risk-free"):
        compute([D1], [100.0], 100.0, risk_free=math.nan)
    with pytest.raises(DataError):
        compute([], [], 100.0)


# ---------------------------------------------- a second implementation


def loops(equity: list[float], base: float, bench: list[float], rf: float) -> dict[str, float]:
    """The same figures in plain Python, each from its textbook definition."""
    values = [base, *equity]
    r = [values[i] / values[i - 1] - 1 for i in range(1, len(values))]
    marks = [base, *bench]
    b = [marks[i] / marks[i - 1] - 1 for i in range(1, len(marks))]
    n = len(r)
    daily = (1 + rf) ** (1 / 252) - 1
    ex = [x - daily for x in r]
    bx = [x - daily for x in b]
    mean = sum(ex) / n
    var = sum((x - mean) ** 2 for x in ex) / (n - 1)
    mean_r = sum(r) / n
    vol = math.sqrt(sum((x - mean_r) ** 2 for x in r) / (n - 1)) * math.sqrt(252)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in ex) / n)
    peak, depth = values[0], 0.0
    for v in values:
        peak = max(peak, v)
        depth = max(depth, 1 - v / peak)
    cagr = (values[-1] / base) ** (252 / n) - 1
    mean_b = sum(bx) / n
    cov = sum((x - mean) * (y - mean_b) for x, y in zip(ex, bx, strict=True)) / (n - 1)
    var_b = sum((y - mean_b) ** 2 for y in bx) / (n - 1)
    beta = cov / var_b
    residual = sum(x - beta * y for x, y in zip(ex, bx, strict=True)) / n
    return {
        "cagr": cagr,
        "volatility": vol,
        "sharpe": mean / math.sqrt(var) * math.sqrt(252),
        "sortino": mean * 252 / (down * math.sqrt(252)),
        "max_drawdown": depth,
        "calmar": cagr / depth,
        "win_rate": sum(1 for x in r if x > 0) / n,
        "beta": beta,
        "alpha": (1 + residual) ** 252 - 1,
        "correlation": cov / math.sqrt(var * var_b),
    }


def random_series(seed: int, n: int) -> tuple[list[date], list[float], list[float]]:
    rng = random.Random(seed)
    strat, bench = [100_000.0], [100_000.0]
    for _ in range(n):
        market = rng.gauss(0.0004, 0.011)
        bench.append(bench[-1] * (1 + market))
        strat.append(strat[-1] * (1 + 0.8 * market + rng.gauss(0.0002, 0.009)))
    return business_days(date(2015, 1, 2), n), strat[1:], bench[1:]


@pytest.mark.parametrize(("seed", "n", "rf"), [(1, 30, 0.0), (2, 500, 0.04), (3, 2000, 0.02)])
def test_random_series_agree_with_plain_loops(seed: int, n: int, rf: float) -> None:
    days, strat, bench = random_series(seed, n)
    stats = compute(days, strat, 100_000.0, benchmark=bench, risk_free=rf)
    expected = loops(strat, 100_000.0, bench, rf)
    assert stats.relative is not None
    got = {
        "cagr": stats.cagr,
        "volatility": stats.volatility,
        "sharpe": stats.sharpe,
        "sortino": stats.sortino,
        "max_drawdown": stats.max_drawdown,
        "calmar": stats.calmar,
        "win_rate": stats.win_rate,
        "beta": stats.relative.beta,
        "alpha": stats.relative.alpha,
        "correlation": stats.relative.correlation,
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize(("seed", "n", "rf"), [(4, 60, 0.0), (5, 750, 0.03), (6, 3000, 0.05)])
def test_random_series_agree_with_empyrical(seed: int, n: int, rf: float) -> None:
    days, strat, bench = random_series(seed, n)
    stats = compute(days, strat, 100_000.0, benchmark=bench, risk_free=rf)
    r = np.diff(np.array([100_000.0, *strat])) / np.array([100_000.0, *strat[:-1]])
    b = np.diff(np.array([100_000.0, *bench])) / np.array([100_000.0, *bench[:-1]])
    daily = (1 + rf) ** (1 / 252) - 1
    alpha, beta = empyrical.alpha_beta(r, b, risk_free=daily)
    assert stats.relative is not None
    pairs = [
        (stats.cagr, empyrical.cagr(r)),
        (stats.volatility, empyrical.annual_volatility(r)),
        (stats.sharpe, empyrical.sharpe_ratio(r, risk_free=daily)),
        (stats.sortino, empyrical.sortino_ratio(r, required_return=daily)),
        (stats.calmar, empyrical.calmar_ratio(r)),
        (stats.max_drawdown, -empyrical.max_drawdown(r)),
        (stats.total_return, empyrical.cum_returns_final(r)),
        (stats.relative.beta, beta),
        (stats.relative.alpha, alpha),
    ]
    for ours, theirs in pairs:
        assert ours == pytest.approx(float(theirs), rel=1e-9, abs=1e-12)
    assert stats.benchmark is not None
    assert stats.benchmark.sharpe == pytest.approx(
        float(empyrical.sharpe_ratio(b, risk_free=daily)), rel=1e-9
    )


# ------------------------------------------------------------ the benchmark


def history(closes: list[float], start: date = D1) -> PriceHistory:
    days = business_days(start, len(closes))
    return PriceHistory(
        dates=np.array([np.datetime64(d, "D") for d in days]),
        symbols=("SPY",),
        closes=np.array(closes, dtype=np.float64)[:, None],
    )


def test_the_benchmark_is_bought_at_the_first_close_and_held() -> None:
    prices = history([50.0, 40.0, math.nan, 60.0])
    days = business_days(D1, 4)
    marks = benchmark_equity(prices, "SPY", days[1:], 1000.0)
    # bought at 40 on the first session; the missing close keeps 40; then 60
    assert marks.tolist() == [1000.0, 1000.0, 1500.0]


def test_a_benchmark_without_a_close_before_the_first_session_is_a_data_error() -> None:
    prices = history([math.nan, math.nan, 10.0])
    with pytest.raises(DataError, match="no close on or before") as caught:
        benchmark_equity(prices, "SPY", business_days(D1, 3), 1000.0)
    assert caught.value.kind is DataErrorKind.MISSING
