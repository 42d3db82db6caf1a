"""Indicators: against plain reference loops on real prices, a published RSI example,
hand-worked percentage price oscillators, and the edge cases the module docstring
decides.

The references below are deliberately naive: pure Python over lists, one row at a
time, written straight from the definitions, sharing no code or trick with the
vectorised module (no blocks, no closed forms, no packing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.strategy import indicators
from alchemiser.strategy.indicators import compute
from alchemiser.strategy.symphony.ast import IndicatorFn

FloatArray = npt.NDArray[np.float64]
NAN = math.nan
LAST = date(2026, 7, 31)
SHARED_PRICES = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices"
ALL = list(IndicatorFn)
WINDOWED = [fn for fn in IndicatorFn if fn is not IndicatorFn.CURRENT_PRICE]
PPOS = (IndicatorFn.PPO, IndicatorFn.PPO_SIGNAL)
Params = tuple[tuple[str, int], ...]


def options(fn: IndicatorFn, n: int) -> Params:
    """What "window n" means for the generic tests below: the PPOs take options instead,
    so they get a long window of n, a short one of about n/2 and a smoothing of about
    n/3 (never below 1); every other indicator takes none."""
    if fn not in PPOS:
        return ()
    windows: Params = (("long-window", n), ("short-window", max(1, n // 2)))
    if fn is IndicatorFn.PPO_SIGNAL:
        windows += (("smooth-window", max(1, n // 3)),)
    return windows


def run(fn: IndicatorFn, closes: FloatArray, n: int) -> FloatArray:
    return compute(fn, closes, n, options(fn, n))


# ---------------------------------------------------------------- references


def _blank(closes: Sequence[float]) -> list[float]:
    return [NAN] * len(closes)


def ref_current_price(c: Sequence[float], n: int) -> list[float]:
    return list(c)


def ref_moving_average_price(c: Sequence[float], n: int) -> list[float]:
    out = _blank(c)
    for t in range(n - 1, len(c)):
        out[t] = sum(c[t - n + 1 : t + 1]) / n
    return out


def ref_ema(c: Sequence[float], n: int) -> list[float]:
    alpha = 2 / (n + 1)
    out = _blank(c)
    ema = NAN
    for t, close in enumerate(c):
        ema = close if t == 0 else alpha * close + (1 - alpha) * ema
        if t >= n - 1:
            out[t] = ema
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0:
        return 50.0 if avg_gain == 0 else 100.0
    return 100 - 100 / (1 + avg_gain / avg_loss)


def ref_rsi(c: Sequence[float], n: int) -> list[float]:
    out = _blank(c)
    if len(c) <= n:
        return out
    gain = [NAN] + [max(c[t] - c[t - 1], 0.0) for t in range(1, len(c))]
    loss = [NAN] + [max(c[t - 1] - c[t], 0.0) for t in range(1, len(c))]
    avg_gain = sum(gain[1 : n + 1]) / n
    avg_loss = sum(loss[1 : n + 1]) / n
    out[n] = _rsi_value(avg_gain, avg_loss)
    for t in range(n + 1, len(c)):
        avg_gain = (avg_gain * (n - 1) + gain[t]) / n
        avg_loss = (avg_loss * (n - 1) + loss[t]) / n
        out[t] = _rsi_value(avg_gain, avg_loss)
    return out


def ref_cumulative_return(c: Sequence[float], n: int) -> list[float]:
    out = _blank(c)
    for t in range(n, len(c)):
        out[t] = (c[t] / c[t - n] - 1) * 100
    return out


def _daily_returns(c: Sequence[float]) -> list[float]:
    """r[t] is the percent return into row t; r[0] does not exist."""
    return [NAN] + [100 * (c[t] / c[t - 1] - 1) for t in range(1, len(c))]


def _sample_stdev(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def ref_moving_average_return(c: Sequence[float], n: int) -> list[float]:
    r, out = _daily_returns(c), _blank(c)
    for t in range(n, len(c)):
        out[t] = sum(r[t - n + 1 : t + 1]) / n
    return out


def ref_stdev_return(c: Sequence[float], n: int) -> list[float]:
    r, out = _daily_returns(c), _blank(c)
    for t in range(n, len(c)):
        out[t] = _sample_stdev(r[t - n + 1 : t + 1]) if n > 1 else NAN
    return out


def ref_stdev_price(c: Sequence[float], n: int) -> list[float]:
    out = _blank(c)
    for t in range(n - 1, len(c)):
        out[t] = _sample_stdev(c[t - n + 1 : t + 1]) if n > 1 else NAN
    return out


def ref_max_drawdown(c: Sequence[float], n: int) -> list[float]:
    # For a fixed trough j the worst start i <= j is the highest close so far, so a
    # running peak gives max over i <= j of (c_i - c_j) / c_i; the pairwise
    # definition itself is checked against this in a test below.
    out = _blank(c)
    for t in range(n - 1, len(c)):
        worst, peak = 0.0, c[t - n + 1]
        for close in c[t - n + 1 : t + 1]:
            peak = max(peak, close)
            worst = max(worst, (peak - close) / peak * 100)
        out[t] = worst
    return out


def ref_max_drawdown_pairs(c: Sequence[float], n: int) -> list[float]:
    out = _blank(c)
    for t in range(n - 1, len(c)):
        w = c[t - n + 1 : t + 1]
        out[t] = max((w[i] - w[j]) / w[i] * 100 for j in range(n) for i in range(j + 1))
    return out


def ref_ppo(c: Sequence[float], short: int, long: int) -> list[float]:
    fast, slow = ref_ema(c, short), ref_ema(c, long)
    return [100 * (f - s) / s for f, s in zip(fast, slow, strict=True)]  # NaN stays NaN


def ref_ppo_signal(c: Sequence[float], short: int, long: int, smooth: int) -> list[float]:
    # The EMA of the PPO series, that series starting on its first defined row.
    ppo = ref_ppo(c, short, long)
    start = max(short, long) - 1
    out = _blank(c)
    if len(c) > start:
        out[start:] = ref_ema(ppo[start:], smooth)
    return out


def _with_options(fn: IndicatorFn) -> Callable[[Sequence[float], int], list[float]]:
    def ref(c: Sequence[float], n: int) -> list[float]:
        given = dict(options(fn, n))
        if fn is IndicatorFn.PPO:
            return ref_ppo(c, given["short-window"], given["long-window"])
        return ref_ppo_signal(
            c, given["short-window"], given["long-window"], given["smooth-window"]
        )

    return ref


REFERENCES: dict[IndicatorFn, Callable[[Sequence[float], int], list[float]]] = {
    IndicatorFn.CURRENT_PRICE: ref_current_price,
    IndicatorFn.MOVING_AVERAGE_PRICE: ref_moving_average_price,
    IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE: ref_ema,
    IndicatorFn.RSI: ref_rsi,
    IndicatorFn.CUMULATIVE_RETURN: ref_cumulative_return,
    IndicatorFn.MOVING_AVERAGE_RETURN: ref_moving_average_return,
    IndicatorFn.STDEV_RETURN: ref_stdev_return,
    IndicatorFn.STDEV_PRICE: ref_stdev_price,
    IndicatorFn.MAX_DRAWDOWN: ref_max_drawdown,
    IndicatorFn.PPO: _with_options(IndicatorFn.PPO),
    IndicatorFn.PPO_SIGNAL: _with_options(IndicatorFn.PPO_SIGNAL),
}


def reference(fn: IndicatorFn, column: FloatArray, n: int) -> FloatArray:
    """The reference on a column's bars alone (missing days skipped), put back on the
    rows the bars came from; NaN on the rows without one."""
    rows = [t for t, v in enumerate(column.tolist()) if not math.isnan(v)]
    values = REFERENCES[fn]([float(column[t]) for t in rows], n)
    out = np.full(len(column), NAN)
    for t, value in zip(rows, values, strict=True):
        out[t] = value
    return out


def assert_matches_reference(fn: IndicatorFn, closes: FloatArray, n: int) -> None:
    actual = run(fn, closes, n)
    assert actual.shape == closes.shape
    # A mean of percent returns can cancel to ~0, where no two summation orders agree
    # relatively (their rounding is ~eps * n * max|r|; the worst seen is 9e-15), so it
    # gets an absolute floor far below any meaningful value. So do the PPOs: at a
    # crossover the two EMAs cancel, and their last-digit differences (~eps * 100 per
    # EMA) are all that is left. All else: relative only.
    floors = {
        IndicatorFn.MOVING_AVERAGE_RETURN: 1e-12,
        IndicatorFn.PPO: 1e-10,
        IndicatorFn.PPO_SIGNAL: 1e-10,
    }
    atol = floors.get(fn, 0.0)
    for j in range(closes.shape[1]):
        np.testing.assert_allclose(
            actual[:, j],
            reference(fn, closes[:, j], n),
            rtol=1e-9,
            atol=atol,
            equal_nan=True,  # also requires NaN on exactly the same rows
            err_msg=f"{fn.value} window {n} column {j}",
        )


# ----------------------------------------------------------------- real prices

BUNDLED = ("BIL", "SMR", "SOXL", "SPY", "SQQQ", "TLT", "TQQQ", "UVXY")
"""Calm (BIL: tiny variance), late starters (SMR, in 2022; SOXL), extreme level
changes (SQQQ and UVXY fall by 1e5..1e9 overall), and the plain ones."""
WINDOWS = (1, 2, 5, 14, 21, 50)


@pytest.fixture(scope="module")
def bundled() -> FloatArray:
    # ~6 years (from mid-2020): SMR still starts inside it, and it keeps the pure
    # Python references quick. The recursive indicators get the full history below.
    history = FilePriceStore.bundled().history(BUNDLED, LAST, 1500)
    assert history.symbols == BUNDLED
    assert np.isnan(history.column("SMR")[0])  # starts inside the range
    assert not np.isnan(history.column("SMR")[-1])
    return history.closes


@pytest.fixture(scope="module")
def shared() -> FloatArray:
    if not SHARED_PRICES.is_dir():
        pytest.skip(f"no shared price directory at {SHARED_PRICES}")
    # UNH, LULU and YINN end a few sessions before SPY: bars then NaN, a gap.
    symbols = ("AAPL", "BITO", "LULU", "NVDA", "SVXY", "TMF", "UNH", "YINN")
    return FilePriceStore(SHARED_PRICES).history(symbols, LAST, 1500).closes


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("fn", ALL)
def test_matches_reference_on_bundled_prices(
    bundled: FloatArray, fn: IndicatorFn, window: int
) -> None:
    assert_matches_reference(fn, bundled, window)


@pytest.mark.parametrize("window", [2, 14, 200])
@pytest.mark.parametrize("fn", [IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE, IndicatorFn.RSI])
def test_recursive_indicators_over_the_full_bundled_history(fn: IndicatorFn, window: int) -> None:
    # 21 years: long recursions, and (for window 2) many chunks of the closed form.
    closes = FilePriceStore.bundled().history(["SPY", "TQQQ", "UVXY"], LAST, 10_000).closes
    assert closes.shape[0] > 5000
    assert_matches_reference(fn, closes, window)


@pytest.mark.parametrize("window", [2, 14, 50])
@pytest.mark.parametrize("fn", ALL)
def test_matches_reference_on_shared_prices(
    shared: FloatArray, fn: IndicatorFn, window: int
) -> None:
    assert_matches_reference(fn, shared, window)


@pytest.mark.parametrize("window", [1, 3, 14, 40])
@pytest.mark.parametrize("fn", ALL)
def test_missing_bars_are_skipped(bundled: FloatArray, fn: IndicatorFn, window: int) -> None:
    closes = bundled[:, [2, 3, 6]].copy()  # SOXL, SPY, TQQQ
    closes[100:400:7, 0] = NAN  # scattered missing days
    closes[500:530, 1] = NAN  # a month without bars
    closes[-3:, 2] = NAN  # a series that stops
    closes[:20, 2] = NAN  # ... and starts late
    assert_matches_reference(fn, closes, window)


@pytest.mark.parametrize("fn", ALL)
def test_random_walks_with_random_gaps(fn: IndicatorFn) -> None:
    rng = np.random.default_rng(7)
    closes = 50 * np.exp(np.cumsum(rng.normal(0, 0.03, size=(300, 6)), axis=0))
    closes[rng.random(closes.shape) < 0.1] = NAN
    closes[:40, 1] = NAN
    closes[:, 5] = NAN
    for window in (1, 2, 3, 7, 13, 64):
        assert_matches_reference(fn, closes, window)


def test_drawdown_reference_is_the_pairwise_definition(bundled: FloatArray) -> None:
    uvxy = [float(v) for v in bundled[-300:, BUNDLED.index("UVXY")]]
    for window in (1, 2, 9, 30):
        assert ref_max_drawdown(uvxy, window) == ref_max_drawdown_pairs(uvxy, window)


# ------------------------------------------------------------ published RSI

# ChartSchool's RSI page (chartschool.stockcharts.com, "Relative Strength Index (RSI)")
# and its spreadsheet cs-rsi.xls: QQQQ closes as the spreadsheet holds them, and its
# 14-day RSI column from row 15. The page's text shows both rounded to 2 decimals.
STOCKCHARTS_CLOSES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433,
    46.0826, 45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116,
    46.2222, 45.6439, 46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288,
    44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314,
]  # fmt: skip
STOCKCHARTS_RSI = [
    70.5328, 66.3186, 66.5498, 69.4063, 66.3552, 57.9749, 62.9296, 63.2571, 56.0593,
    62.3771, 54.7076, 50.4228, 39.9898, 41.4605, 41.8689, 45.4632, 37.3040, 33.0795,
    37.7730,
]  # fmt: skip
PUBLISHED_RSI_2DP = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42,
    39.99, 41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]  # fmt: skip


def test_rsi_reproduces_the_stockcharts_spreadsheet() -> None:
    rsi = indicators.relative_strength_index(np.array(STOCKCHARTS_CLOSES), 14)
    assert np.isnan(rsi[:14]).all()  # first defined on the 15th close (row n = 14)
    # Within the spreadsheet's own 4-decimal rounding, on every row it publishes.
    np.testing.assert_allclose(rsi[14:], STOCKCHARTS_RSI, rtol=0, atol=5e-5)
    assert [round(float(v), 2) for v in rsi[14:]] == PUBLISHED_RSI_2DP


def test_rsi_of_cent_rounded_closes_is_not_the_published_column() -> None:
    """The 2-decimal closes shown in the page's text are not the spreadsheet's inputs.

    Rounded to cents, the first 14 changes gain 3.34 and lose 1.40 in all (the
    spreadsheet's closes: 3.3374 and 1.3943), so the first RSI is 70.46, not 70.53;
    later rows differ by up to 0.07 the same way. That is the inputs, not the method:
    the same code reproduces the spreadsheet exactly from its own closes (above).
    """
    cents = np.round(np.array(STOCKCHARTS_CLOSES), 2)
    rsi = indicators.relative_strength_index(cents, 14)
    first = 100 - 100 / (1 + (3.34 / 14) / (1.40 / 14))
    assert rsi[14] == pytest.approx(first, rel=1e-12)
    assert round(first, 2) == 70.46
    np.testing.assert_allclose(rsi, ref_rsi(cents.tolist(), 14), rtol=1e-12, equal_nan=True)
    gap = np.abs(rsi[14:] - np.array(PUBLISHED_RSI_2DP))
    assert 0.03 < gap.max() < 0.08


# ----------------------------------------------------------------- edge cases

PRICES = np.array([10.0, 11.0, 10.5, 12.0, 11.0, 11.5, 13.0, 12.5, 12.0, 14.0])


@pytest.mark.parametrize("fn", ALL)
def test_one_dimensional_input_is_one_column(fn: IndicatorFn) -> None:
    flat = run(fn, PRICES, 3)
    assert flat.shape == PRICES.shape
    as_column = run(fn, PRICES[:, None], 3)
    assert as_column.shape == (len(PRICES), 1)
    np.testing.assert_array_equal(flat, as_column[:, 0])
    both = run(fn, np.column_stack([PRICES, PRICES[::-1]]), 3)
    np.testing.assert_array_equal(both[:, 0], flat)
    np.testing.assert_array_equal(both[:, 1], run(fn, PRICES[::-1].copy(), 3))


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (4, 0)])
def test_empty_input_keeps_its_shape(fn: IndicatorFn, shape: tuple[int, ...]) -> None:
    assert run(fn, np.ones(shape), 2).shape == shape


@pytest.mark.parametrize("fn", ALL)
def test_leading_nans_mean_a_later_start(fn: IndicatorFn) -> None:
    late = np.concatenate([np.full(4, NAN), PRICES])
    result = run(fn, late, 3)
    assert np.isnan(result[:4]).all()
    # Equal up to rounding: rolling sums group rows by position, which shifted.
    np.testing.assert_allclose(result[4:], run(fn, PRICES, 3), rtol=1e-13)


@pytest.mark.parametrize("fn", ALL)
def test_a_missing_bar_is_skipped(fn: IndicatorFn) -> None:
    gappy = np.insert(PRICES, 5, NAN)  # a NaN between the 5th and 6th close
    result = run(fn, gappy, 3)
    assert np.isnan(result[5])
    np.testing.assert_allclose(np.delete(result, 5), run(fn, PRICES, 3), rtol=1e-13)


@pytest.mark.parametrize("fn", WINDOWED)
def test_window_longer_than_history_is_all_nan(fn: IndicatorFn) -> None:
    assert np.isnan(run(fn, PRICES, len(PRICES) + 1)).all()
    if fn in (IndicatorFn.MOVING_AVERAGE_PRICE, IndicatorFn.STDEV_PRICE):
        assert not np.isnan(compute(fn, PRICES, len(PRICES))[-1])  # exactly enough


def test_current_price_ignores_the_window() -> None:
    np.testing.assert_array_equal(indicators.current_price(PRICES, 50), PRICES)
    np.testing.assert_array_equal(indicators.current_price(PRICES), PRICES)


def test_warm_up_rows() -> None:
    first_defined = {
        IndicatorFn.CURRENT_PRICE: 0,
        IndicatorFn.MOVING_AVERAGE_PRICE: 3,
        IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE: 3,
        IndicatorFn.RSI: 4,
        IndicatorFn.CUMULATIVE_RETURN: 4,
        IndicatorFn.MOVING_AVERAGE_RETURN: 4,
        IndicatorFn.STDEV_RETURN: 4,
        IndicatorFn.STDEV_PRICE: 3,
        IndicatorFn.MAX_DRAWDOWN: 3,
    }
    for fn, row in first_defined.items():
        defined = ~np.isnan(compute(fn, PRICES, 4))
        assert defined.tolist() == [t >= row for t in range(len(PRICES))], fn


def test_window_one() -> None:
    returns = 100 * (PRICES[1:] / PRICES[:-1] - 1)
    one = {fn: compute(fn, PRICES, 1) for fn in IndicatorFn}
    np.testing.assert_array_equal(one[IndicatorFn.MOVING_AVERAGE_PRICE], PRICES)
    np.testing.assert_array_equal(one[IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE], PRICES)
    np.testing.assert_allclose(one[IndicatorFn.CUMULATIVE_RETURN][1:], returns, rtol=1e-15)
    np.testing.assert_allclose(one[IndicatorFn.MOVING_AVERAGE_RETURN][1:], returns, rtol=1e-15)
    # RSI(1): the last change alone; up 100, down 0 (a flat day would be 50).
    rsi = one[IndicatorFn.RSI][1:]
    np.testing.assert_array_equal(rsi, np.where(returns > 0, 100.0, 0.0))
    # A sample standard deviation of one value is undefined: NaN, not 0.
    assert np.isnan(one[IndicatorFn.STDEV_PRICE]).all()
    assert np.isnan(one[IndicatorFn.STDEV_RETURN]).all()
    np.testing.assert_array_equal(one[IndicatorFn.MAX_DRAWDOWN], np.zeros(len(PRICES)))


def test_constant_series() -> None:
    flat = np.full(30, 42.5)
    n = 5

    def tail(fn: IndicatorFn) -> FloatArray:
        result = compute(fn, flat, n)
        return result[~np.isnan(result)]

    assert (tail(IndicatorFn.RSI) == 50.0).all()  # no gains, no losses: neutral
    assert len(tail(IndicatorFn.RSI)) == 30 - n
    assert (tail(IndicatorFn.STDEV_PRICE) == 0.0).all()
    assert (tail(IndicatorFn.STDEV_RETURN) == 0.0).all()
    assert (tail(IndicatorFn.MAX_DRAWDOWN) == 0.0).all()
    assert (tail(IndicatorFn.CUMULATIVE_RETURN) == 0.0).all()
    assert (tail(IndicatorFn.MOVING_AVERAGE_RETURN) == 0.0).all()
    assert (tail(IndicatorFn.MOVING_AVERAGE_PRICE) == 42.5).all()
    np.testing.assert_allclose(tail(IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE), 42.5)


def test_one_way_series() -> None:
    rising = np.arange(1.0, 31.0)
    assert (indicators.relative_strength_index(rising, 14)[14:] == 100.0).all()
    assert (indicators.relative_strength_index(rising[::-1].copy(), 14)[14:] == 0.0).all()
    assert (indicators.max_drawdown(rising, 10)[9:] == 0.0).all()
    falling = indicators.max_drawdown(rising[::-1].copy(), 10)
    # Window ending at close 1.0 starts at 10.0: a 90% fall.
    assert falling[-1] == pytest.approx(90.0)


def test_drawdown_is_peak_to_later_trough_only() -> None:
    # The low (8) comes before the high (12): a rise, not a fall; the worst fall is
    # 12 -> 9, i.e. 25%.
    closes = np.array([10.0, 8.0, 12.0, 9.0, 11.0])
    assert indicators.max_drawdown(closes, 5)[-1] == pytest.approx(25.0)
    assert indicators.max_drawdown(closes, 2).tolist()[1:] == pytest.approx([20.0, 0.0, 25.0, 0.0])


@pytest.mark.parametrize("window", [0, -3, 1.5, 2.0, True, "14", None])
@pytest.mark.parametrize("fn", ALL)
def test_invalid_window_raises(fn: IndicatorFn, window: object) -> None:
    with pytest.raises(ValueError, match="window"):
        compute(fn, PRICES, window)  # type: ignore[arg-type]


def test_numpy_integer_window_is_accepted() -> None:
    np.testing.assert_array_equal(
        indicators.moving_average_price(PRICES, np.int64(3)),  # type: ignore[arg-type]
        indicators.moving_average_price(PRICES, 3),
    )


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, -math.inf])
@pytest.mark.parametrize("fn", ALL)
def test_non_prices_raise(fn: IndicatorFn, bad: float) -> None:
    closes = PRICES.copy()
    closes[3] = bad
    with pytest.raises(ValueError, match="positive"):
        run(fn, closes, 3)


def test_three_dimensional_input_raises() -> None:
    with pytest.raises(ValueError, match="1-D or 2-D"):
        compute(IndicatorFn.RSI, np.ones((4, 2, 2)), 2)


def test_all_nan_column_stays_nan() -> None:
    closes = np.column_stack([PRICES, np.full(len(PRICES), NAN)])
    for fn in IndicatorFn:
        assert np.isnan(run(fn, closes, 2)[:, 1]).all()


@pytest.mark.parametrize("fn", ALL)
def test_input_is_left_untouched(fn: IndicatorFn) -> None:
    closes = np.column_stack([PRICES, np.insert(PRICES[:-1], 2, NAN)])
    before = closes.copy()
    result = run(fn, closes, 3)
    np.testing.assert_array_equal(closes, before)
    assert not np.shares_memory(result, closes)


def test_every_indicator_is_dispatched() -> None:
    assert set(indicators.INDICATORS) == set(IndicatorFn)
    for fn in IndicatorFn:
        np.testing.assert_array_equal(compute(fn, PRICES, 3), indicators.INDICATORS[fn](PRICES, 3))


# ------------------------------------------------- percentage price oscillators

PPO_2_3 = (("long-window", 3), ("short-window", 2))


def test_ppo_by_hand() -> None:
    # EMA(2) (alpha 2/3) and EMA(3) (alpha 1/2) of 10, 11, 12, 11, both seeded at 10:
    # row 2: 104/9 and 45/4, so PPO = 100 * (104/9 - 45/4) / (45/4) = 220/81;
    # row 3: 302/27 and 89/8, so PPO = 100 * (302/27 - 89/8) / (89/8) = 1300/2403.
    closes = np.array([10.0, 11.0, 12.0, 11.0])
    ppo = compute(IndicatorFn.PPO, closes, 3, PPO_2_3)
    assert np.isnan(ppo[:2]).all()  # the 3-session EMA is first defined on row 2
    np.testing.assert_allclose(ppo[2:], [220 / 81, 1300 / 2403], rtol=1e-12)
    # Its signal over 2 sessions (alpha 2/3) starts on the PPO's first row, 2: NaN
    # there (the signal's own warm-up), then 2/3 * 1300/2403 + 1/3 * 220/81.
    signal = compute(IndicatorFn.PPO_SIGNAL, closes, 3, (*PPO_2_3, ("smooth-window", 2)))
    assert np.isnan(signal[:3]).all()
    assert signal[3] == pytest.approx(2 / 3 * 1300 / 2403 + 1 / 3 * 220 / 81, rel=1e-12)


def test_ppo_of_a_constant_series_is_zero() -> None:
    flat = np.full(60, 42.5)
    ppo = indicators.percentage_price_oscillator(flat)
    signal = indicators.percentage_price_oscillator_signal(flat)
    assert np.isnan(ppo[:25]).all()
    assert np.isnan(signal[:33]).all()
    # Zero up to the EMA's rounding of a constant (a few ulps of the price).
    np.testing.assert_allclose(ppo[25:], 0.0, atol=1e-12)
    np.testing.assert_allclose(signal[33:], 0.0, atol=1e-12)


def test_ppo_with_equal_windows_is_exactly_zero() -> None:
    same = (("long-window", 5), ("short-window", 5))
    assert (compute(IndicatorFn.PPO, PRICES, 5, same)[4:] == 0.0).all()


def test_ppo_rises_with_a_rising_series() -> None:
    rising = np.arange(1.0, 41.0)
    assert (indicators.percentage_price_oscillator(rising)[25:] > 0).all()
    assert (indicators.percentage_price_oscillator(rising[::-1].copy())[25:] < 0).all()


def test_ppo_defaults_and_window() -> None:
    closes = np.linspace(10.0, 20.0, 60) + np.sin(np.arange(60.0))
    defaults = compute(IndicatorFn.PPO, closes, 26)
    np.testing.assert_array_equal(
        defaults, compute(IndicatorFn.PPO, closes, 26, (("long-window", 26), ("short-window", 12)))
    )
    np.testing.assert_array_equal(defaults, compute(IndicatorFn.PPO, closes, 3))  # window unused
    signal = compute(IndicatorFn.PPO_SIGNAL, closes, 26)
    np.testing.assert_array_equal(
        signal, compute(IndicatorFn.PPO_SIGNAL, closes, 26, (("smooth-window", 9),))
    )
    np.testing.assert_allclose(
        signal, ref_ppo_signal(closes.tolist(), 12, 26, 9), rtol=1e-9, equal_nan=True
    )


def test_ppo_warm_up_rows() -> None:
    # PPO from row max(s, l) - 1; its signal m - 1 rows after that.
    for short, long, smooth in [(2, 4, 3), (4, 2, 1), (3, 3, 5), (1, 1, 1)]:
        ppo = compute(IndicatorFn.PPO, PRICES, 4, (("long-window", long), ("short-window", short)))
        first = max(short, long) - 1
        assert (~np.isnan(ppo)).tolist() == [t >= first for t in range(len(PRICES))]
        params = (("long-window", long), ("short-window", short), ("smooth-window", smooth))
        signal = compute(IndicatorFn.PPO_SIGNAL, PRICES, 4, params)
        assert (~np.isnan(signal)).tolist() == [t >= first + smooth - 1 for t in range(len(PRICES))]


@pytest.mark.parametrize("window", [2, 12, 26, 100])
def test_ppo_with_the_usual_options_over_the_full_bundled_history(window: int) -> None:
    closes = FilePriceStore.bundled().history(["SPY", "TQQQ", "UVXY"], LAST, 10_000).closes
    for short, long, smooth in [(12, 26, 9), (window, 2 * window, window // 2 + 1)]:
        params = (("long-window", long), ("short-window", short), ("smooth-window", smooth))
        signal = compute(IndicatorFn.PPO_SIGNAL, closes, long, params)
        ppo = compute(IndicatorFn.PPO, closes, long, params[:2])
        for j in range(closes.shape[1]):
            bars = ~np.isnan(closes[:, j])  # UVXY and TQQQ start late
            assert np.isnan(ppo[~bars, j]).all()
            assert np.isnan(signal[~bars, j]).all()
            column = closes[bars, j].tolist()
            np.testing.assert_allclose(
                ppo[bars, j], ref_ppo(column, short, long), rtol=1e-9, atol=1e-10, equal_nan=True
            )
            np.testing.assert_allclose(
                signal[bars, j],
                ref_ppo_signal(column, short, long, smooth),
                rtol=1e-9,
                atol=1e-10,
                equal_nan=True,
            )


@pytest.mark.parametrize("fn", PPOS)
@pytest.mark.parametrize("value", [0, -1, 2.5, True, "9"])
def test_ppo_options_must_be_positive_ints(fn: IndicatorFn, value: object) -> None:
    with pytest.raises(ValueError, match="window"):
        compute(fn, PRICES, 3, (("short-window", value),))  # type: ignore[arg-type]


def test_an_option_the_indicator_does_not_have_raises() -> None:
    with pytest.raises(ValueError, match="has no option smooth-window"):
        compute(IndicatorFn.PPO, PRICES, 3, (("smooth-window", 9),))
    with pytest.raises(ValueError, match="has no option short-window"):
        compute(IndicatorFn.RSI, PRICES, 3, (("short-window", 9),))


# ------------------------------------------------- equal arithmetic, faster paths


@pytest.mark.parametrize("op", [np.add, np.maximum, np.minimum])
@pytest.mark.parametrize("shape", [(30, 181, 1), (5, 1086, 1), (200, 28, 3), (3, 100, 4)])
def test_both_scans_compute_the_same_bits(op: np.ufunc, shape: tuple[int, ...]) -> None:
    # The scan picks a per-step loop or ``accumulate`` by size: the same operations
    # in the same order either way, so the result must not depend on the choice.
    values = np.random.default_rng(len(shape) + shape[0]).normal(size=shape) * 1e3
    looped = values.copy()
    for k in range(1, shape[0]):
        op(looped[k - 1], looped[k], out=looped[k])
    accumulated = op.accumulate(values, axis=0)
    scanned = indicators._scan(op, values.copy())
    assert looped.tobytes() == accumulated.tobytes() == scanned.tobytes()


@pytest.mark.parametrize("window", [2, 10, 40, 300])
def test_smoothing_with_shared_decay_powers_is_the_closed_form(window: int) -> None:
    # The decay powers are cached per (beta, chunk) and sliced for a short last chunk:
    # the result must be bit for bit the closed form with powers computed per chunk.
    rng = np.random.default_rng(window)
    values = rng.random((5_000, 3)) * 100
    seed = values[0].copy()
    alpha = 2.0 / (window + 1)
    expected = np.empty_like(values)
    beta = 1.0 - alpha
    span = max(1, int(indicators._EXP_RANGE / -math.log(beta)))
    carry = seed
    for start in range(0, len(values), span):
        part = expected[start : start + span]
        decay = beta ** np.arange(1, part.shape[0] + 1, dtype=np.float64)[:, None]
        part[...] = np.cumsum(values[start : start + span] / decay, axis=0)
        part *= alpha
        part += carry
        part *= decay
        carry = part[-1]
    for _ in range(2):  # computed, then from the cache
        got = np.empty_like(values)
        indicators._smooth(values, seed, alpha, out=got)
        assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("fn", ALL)
def test_a_strided_column_gives_the_bits_of_a_contiguous_one(fn: IndicatorFn) -> None:
    closes = FilePriceStore.bundled().history(BUNDLED, LAST, 3000).closes
    for j in range(closes.shape[1]):
        strided = compute(fn, closes[:, j], 14)
        contiguous = compute(fn, np.ascontiguousarray(closes[:, j]), 14)
        assert strided.tobytes() == contiguous.tobytes(), j


@pytest.mark.parametrize("fn", ALL)
def test_checked_closes_give_the_same_bits(fn: IndicatorFn) -> None:
    """Closes checked once (``check``) read as the raw array does, to the bit: late
    starts (one series, several), gaps, all-NaN and complete series; and a recursive
    indicator reads a series alone as it does beside others."""
    late = np.insert(PRICES[:-4], 0, [NAN] * 4)
    gapped = np.insert(PRICES[:-1], 2, NAN)
    cases: list[FloatArray] = [
        late,
        gapped,
        PRICES,
        np.full(len(PRICES), NAN),
        np.column_stack([late, np.insert(PRICES[:-2], 0, [NAN] * 2)]),
        np.column_stack([late, gapped]),
    ]
    for closes in cases:
        for n in (1, 2, 3, 5):
            raw = compute(fn, closes, n, options(fn, n))
            checked = compute(fn, indicators.check(closes), n, options(fn, n))
            assert raw.shape == checked.shape
            assert raw.tobytes() == checked.tobytes()
        if closes.ndim == 1 and fn in (
            IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE,
            *PPOS,
            IndicatorFn.RSI,
        ):
            # Beside a gapped series, every column of a recursive indicator (which
            # seeds on its first bar) takes the general packing path.
            for n in (1, 2, 3, 5):
                alone = compute(fn, closes, n, options(fn, n))
                beside = compute(fn, np.column_stack([closes, gapped]), n, options(fn, n))
                assert alone.tobytes() == np.ascontiguousarray(beside[:, 0]).tobytes()


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf])
def test_check_refuses_what_the_indicators_refuse(bad: float) -> None:
    closes = PRICES.copy()
    closes[3] = bad
    with pytest.raises(ValueError, match="positive"):
        indicators.check(closes)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        indicators.check(np.ones((4, 2, 2)))
