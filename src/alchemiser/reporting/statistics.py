"""Backtest statistics from a daily equity series, as docs/STATISTICS.md defines them.

Every figure is measured on the simple daily returns of ``[base, equity_1, ...,
equity_n]``: the starting cash is the value before the first session, so the first
day's fills, slippage and fees count. A year is 252 sessions. Dispersion follows
empyrical (and quantstats): the sample standard deviation (``ddof=1``) for volatility
and Sharpe, and for Sortino the downside deviation ``sqrt(mean(min(r - rf, 0)^2))``
over every session. The annual risk-free rate becomes ``(1 + rf)^(1/252) - 1`` a
session. A figure that does not exist for the series (the Sharpe ratio of a flat
one, say) is NaN, shown as "n/a"; finite input never raises.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from alchemiser.errors import DataError, DataErrorKind

TRADING_DAYS = 252
TINY = 1e-12
"""A daily standard deviation at or below this is no dispersion (rounding only)."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Drawdown:
    """The deepest fall from a peak: ``depth`` is a fraction of the peak (0.25 = 25%)."""

    depth: float
    peak: date
    """The last session at the peak before the fall (the first session when the peak
    is the starting cash)."""
    trough: date
    recovery: date | None
    """The first session back at the peak; None when the series never got back."""
    sessions: int
    """Sessions from the peak to the recovery, or to the last session if none."""
    days: int
    """Calendar days over the same span."""


@dataclass(frozen=True)
class Trailing:
    """Returns over the last month, 3 months, year and the year to date, each ending on
    the last session; None when the series does not reach that far back."""

    one_month: float | None
    three_months: float | None
    one_year: float | None
    year_to_date: float | None


@dataclass(frozen=True)
class Relative:
    """The strategy against the benchmark (CAPM over daily excess returns)."""

    beta: float
    alpha: float
    """Annualised: ``(1 + mean(r - rf - beta (b - rf)))^252 - 1``."""
    correlation: float
    r_squared: float


@dataclass(frozen=True)
class Statistics:
    start: date
    end: date
    sessions: int
    base: float
    """The value before the first session (the starting cash)."""
    final_equity: float
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    """The deepest drawdown's depth (0 when the series never fell)."""
    drawdown: Drawdown | None
    """The deepest drawdown in full; None when the series never fell below a peak."""
    turnover: float
    """Traded notional per year as a multiple of average equity; NaN when not given."""
    win_rate: float
    """The share of sessions with a positive return."""
    trailing: Trailing
    risk_free: float
    """The annual risk-free rate the ratios use."""
    benchmark: Statistics | None = None
    """The benchmark's own figures over the same sessions (its turnover is NaN)."""
    relative: Relative | None = None


@dataclass(frozen=True)
class MonthlyRow:
    year: int
    months: tuple[float | None, ...]
    """Twelve returns, January first; None for a month without a session."""
    total: float


def _values(name: str, values: Sequence[float] | FloatArray, *, positive: bool) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DataError(f"{name} must be one series of numbers", kind=DataErrorKind.MALFORMED)
    if not bool(np.all(np.isfinite(array))):
        raise DataError(
            f"{name} has a value that is not a finite number", kind=DataErrorKind.NON_FINITE
        )
    if positive and not bool(np.all(array > 0)):
        raise DataError(f"{name} has a value that is not positive", kind=DataErrorKind.NON_POSITIVE)
    if not positive and not bool(np.all(array >= 0)):
        raise DataError(f"{name} has a negative value", kind=DataErrorKind.NON_POSITIVE)
    return array


def _series(
    dates: Sequence[date], equity: Sequence[float] | FloatArray, base: float, name: str
) -> FloatArray:
    """``[base, *equity]`` checked: finite, positive, one value per date, dates rising."""
    values = _values(name, equity, positive=True)
    if len(values) == 0 or len(values) != len(dates):
        raise DataError(
            f"{name} has {len(values)} values for {len(dates)} dates (need one per date, "
            "at least one)",
            kind=DataErrorKind.MALFORMED,
        )
    if any(b <= a for a, b in pairwise(dates)):
        raise DataError("dates must be strictly increasing", kind=DataErrorKind.MALFORMED)
    return np.concatenate([_values(f"{name} base", [base], positive=True), values])


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def _power(value: float, exponent: float) -> float:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _finite(float(np.power(np.float64(value), np.float64(exponent))))


def daily_risk_free(annual: float) -> float:
    """The per-session rate that compounds to ``annual`` over 252 sessions."""
    return _power(1 + annual, 1 / TRADING_DAYS) - 1


def _std(returns: FloatArray) -> float:
    """Sample standard deviation (``ddof=1``); NaN below two returns."""
    return float(np.std(returns, ddof=1)) if len(returns) > 1 else math.nan


def _sharpe(excess: FloatArray) -> float:
    std = _std(excess)
    if not std > TINY:
        return math.nan
    return float(np.mean(excess)) / std * math.sqrt(TRADING_DAYS)


def _sortino(excess: FloatArray) -> float:
    if len(excess) < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if not downside > TINY:
        return math.nan
    return float(np.mean(excess)) * TRADING_DAYS / (downside * math.sqrt(TRADING_DAYS))


def deepest_drawdown(dates: Sequence[date], values: FloatArray) -> Drawdown | None:
    """``values`` is ``[base, *equity]``; the base stands on the first date."""
    peaks = np.maximum.accumulate(values)
    depths = 1 - values / peaks
    trough = int(np.argmax(depths))
    if not depths[trough] > 0:
        return None
    level = peaks[trough]
    peak = int(np.flatnonzero(values[: trough + 1] == level)[-1])
    back = np.flatnonzero(values[trough:] >= level)
    recovery = trough + int(back[0]) if len(back) else None

    def day(index: int) -> date:
        return dates[max(index - 1, 0)]

    last = recovery if recovery is not None else len(values) - 1
    return Drawdown(
        depth=float(depths[trough]),
        peak=day(peak),
        trough=day(trough),
        recovery=day(recovery) if recovery is not None else None,
        sessions=last - peak,
        days=(day(last) - day(peak)).days,
    )


def _months_back(day: date, months: int) -> date:
    month = day.year * 12 + day.month - 1 - months
    year, month = divmod(month, 12)
    month += 1
    following = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - date(year, month, 1)).days))


def trailing_returns(dates: Sequence[date], values: FloatArray) -> Trailing:
    """Each return from the close of the last session on or before the anchor date
    (the base stands just before the first date) to the last session; the year to date
    compounds the sessions of the last session's year (from the base if it began then)."""
    end = dates[-1]

    def since(anchor: date) -> float | None:
        if anchor < dates[0]:
            return None
        return float(values[-1] / values[bisect_right(dates, anchor)] - 1)

    start = bisect_left(dates, date(end.year, 1, 1))
    return Trailing(
        one_month=since(_months_back(end, 1)),
        three_months=since(_months_back(end, 3)),
        one_year=since(_months_back(end, 12)),
        year_to_date=float(values[-1] / values[start] - 1),
    )


def relative(returns: FloatArray, benchmark: FloatArray, risk_free: float) -> Relative:
    """Beta, alpha, correlation and R-squared of ``returns`` on ``benchmark``: NaN when
    either has no dispersion or there are fewer than two returns."""
    nan = Relative(math.nan, math.nan, math.nan, math.nan)
    if len(returns) < 2:
        return nan
    daily = daily_risk_free(risk_free)
    excess, market = returns - daily, benchmark - daily
    spread = _std(market)
    if not spread > TINY:
        return nan
    covariance = float(np.cov(excess, market, ddof=1)[0, 1])
    beta = covariance / spread**2
    alpha = _power(1 + float(np.mean(excess - beta * market)), TRADING_DAYS) - 1
    own = _std(excess)
    correlation = covariance / (own * spread) if own > TINY else math.nan
    correlation = min(max(correlation, -1.0), 1.0) if math.isfinite(correlation) else math.nan
    return Relative(beta, alpha, correlation, correlation**2)


def compute(
    dates: Sequence[date],
    equity: Sequence[float] | FloatArray,
    base: float,
    traded: Sequence[float] | FloatArray | None = None,
    benchmark: Sequence[float] | FloatArray | None = None,
    risk_free: float = 0.0,
) -> Statistics:
    """The statistics of ``equity`` (one value a session, after ``base``, the starting
    cash). ``traded``: each session's traded notional (for turnover). ``benchmark``:
    the benchmark's equity on the same sessions, starting from the same ``base``.
    DataError for a value that is not finite and positive, or misaligned series."""
    if not math.isfinite(risk_free) or risk_free <= -1:
        raise DataError(
            f"risk-free rate {risk_free} is not a rate above -100%", kind=DataErrorKind.MALFORMED
        )
    values = _series(dates, equity, base, "equity")
    returns = values[1:] / values[:-1] - 1
    sessions = len(returns)
    years = sessions / TRADING_DAYS
    growth = float(values[-1] / values[0])
    cagr = _power(growth, 1 / years) - 1
    excess = returns - daily_risk_free(risk_free)
    drawdown = deepest_drawdown(dates, values)
    depth = drawdown.depth if drawdown is not None else 0.0
    if traded is None:
        turnover = math.nan
    else:
        notional = _values("traded", traded, positive=False)
        if len(notional) != sessions:
            raise DataError("traded needs one value per date", kind=DataErrorKind.MALFORMED)
        turnover = float(np.sum(notional)) / float(np.mean(values)) / years
    own: Statistics | None = None
    versus: Relative | None = None
    if benchmark is not None:
        marks = _series(dates, benchmark, base, "benchmark")
        own = compute(dates, marks[1:], base, None, None, risk_free)
        versus = relative(returns, marks[1:] / marks[:-1] - 1, risk_free)
    return Statistics(
        start=dates[0],
        end=dates[-1],
        sessions=sessions,
        base=float(values[0]),
        final_equity=float(values[-1]),
        total_return=growth - 1,
        cagr=cagr,
        volatility=_std(returns) * math.sqrt(TRADING_DAYS),
        sharpe=_sharpe(excess),
        sortino=_sortino(excess),
        calmar=_finite(cagr / depth) if depth > 0 else math.nan,
        max_drawdown=depth,
        drawdown=drawdown,
        turnover=turnover,
        win_rate=float(np.count_nonzero(returns > 0)) / sessions,
        trailing=trailing_returns(dates, values),
        risk_free=risk_free,
        benchmark=own,
        relative=versus,
    )


def monthly_returns(
    dates: Sequence[date], equity: Sequence[float] | FloatArray, base: float
) -> list[MonthlyRow]:
    """Each calendar month's return, close of its last session over the close of the
    month before's (the base for the first month), and each year's, by year."""
    values = _series(dates, equity, base, "equity")
    month_end: dict[tuple[int, int], float] = {}
    for day, value in zip(dates, values[1:].tolist(), strict=True):
        month_end[(day.year, day.month)] = value
    rows: list[MonthlyRow] = []
    previous = float(values[0])
    for year in range(dates[0].year, dates[-1].year + 1):
        opening = previous
        months: list[float | None] = []
        for month in range(1, 13):
            close = month_end.get((year, month))
            if close is None:
                months.append(None)
                continue
            months.append(close / previous - 1)
            previous = close
        rows.append(MonthlyRow(year, tuple(months), previous / opening - 1))
    return rows
