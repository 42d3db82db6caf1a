"""The symphony indicators over whole price matrices, in pure numpy.

Every function takes ``closes``, float64 of shape ``(T,)`` or ``(T, N)`` (one series
per column, rows are sessions), and returns an array of the same shape: the
indicator's value as of each row, using closes up to and including that row. Work is
vectorised along time and across columns, so a backtest (every row) costs about as
much as a live run (the last row).

Definitions (n = window, c = closes, "returns" are daily percent returns
r_t = 100 * (c_t / c_{t-1} - 1)):

- current-price: c_t. The window is validated but not used.
- moving-average-price: mean of c_{t-n+1} .. c_t.
- exponential-moving-average-price: ema_0 = c_0, ema_t = a*c_t + (1-a)*ema_{t-1}
  with a = 2/(n+1), over the series' full history; NaN on the first n-1 rows.
- relative-strength-index: Wilder's. Changes d_t = c_t - c_{t-1}, gains max(d, 0),
  losses max(-d, 0). Both averages are seeded at row n with the simple mean of
  d_1 .. d_n, then avg_t = (avg_{t-1}*(n-1) + x_t)/n. RSI = 100 - 100/(1 + G/L),
  computed as the equal 100*G/(G+L), which needs no special case when L == 0:
  L == 0 < G gives 100, and G == L == 0 (no movement at all) gives 50, neutral, so
  a flat series never reads as overbought or oversold. First defined at row n.
- cumulative-return: (c_t / c_{t-n} - 1) * 100; first defined at row n.
- moving-average-return: mean of r_{t-n+1} .. r_t; first defined at row n.
- stdev-return: sample (ddof=1) standard deviation of r_{t-n+1} .. r_t, in percent,
  not annualised; first defined at row n.
- stdev-price: sample (ddof=1) standard deviation of c_{t-n+1} .. c_t.
- max-drawdown: max over t-n+1 <= i <= j <= t of (c_i - c_j)/c_i * 100, so a
  positive percent, 0 when the window never falls.
- percentage-price-oscillator, options short-window s (default 12) and long-window l
  (default 26): ppo_t = 100 * (ema_s_t - ema_l_t) / ema_l_t, both EMAs exactly as
  exponential-moving-average-price (seeded at c_0, over the full history). Defined
  where both EMAs are: from row max(s, l) - 1.
- percentage-price-oscillator-signal, options s, l and smooth-window m (default 9):
  the same EMA (alpha = 2/(m+1)) applied to the PPO series as if that series were a
  price series starting on its first defined row p = max(s, l) - 1: seeded with
  ppo_p, NaN on its first m-1 rows, so first defined at row max(s, l) + m - 2.

The PPOs take their windows from ``params`` (``compute``) or keyword arguments; their
``window`` argument is validated but not used (as for current-price). Options are
positive ints like windows; an option the indicator does not have is a ValueError.
s > l is allowed (the oscillator then has the opposite sign); s == l gives 0.

Edge cases, decided here:

- NaN means "not defined": not enough history for the window (including a window
  longer than the whole input, which gives all NaN), or no bar on that row.
- Leading NaNs mean the series starts later; the warm-up counts from its first bar.
- A NaN inside a series is a missing bar: each column is computed on its bars alone,
  in order, as if the missing sessions did not exist, and the results go back on the
  rows that have bars. A window of n therefore spans n bars, not n sessions.
- Sample standard deviation of a single value is undefined, so stdev-price and
  stdev-return with window 1 are all NaN rather than 0. A constant window gives 0.
- window must be a positive int (bool and float are refused): ValueError otherwise.
- closes must be positive or NaN: zero, negative or infinite values raise
  ValueError, since every ratio above divides by a close; so does a shape other
  than 1-D or 2-D.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from alchemiser.strategy.symphony.ast import IndicatorFn

FloatArray = npt.NDArray[np.float64]
_Kernel = Callable[[FloatArray, int], FloatArray]

# The closed-form EMA scales terms by beta**-k; chunks are cut so that factor stays
# below e**300 (doubles overflow past e**709, with headroom for the running sums).
_EXP_RANGE = 300.0


def _check_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ValueError(f"indicator window must be a positive int, got {window!r}")
    return int(window)


class Checked(NamedTuple):
    """Closes validated and laid out once (``check``), for many indicators of the same
    series: the ``closes`` argument of every indicator takes one in place of an array."""

    shape: tuple[int, ...]
    matrix: FloatArray
    """The closes as T x N, C-contiguous (a view of the array given when it can be)."""
    missing: npt.NDArray[np.bool_]
    anything_missing: bool
    gapped: bool
    """Some series has a bar after a missing one."""


def check(closes: FloatArray) -> Checked:
    """Validate ``closes`` (shape, positive finite prices or NaN): ValueError otherwise."""
    values = np.asarray(closes, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise ValueError(f"closes must be 1-D or 2-D, got shape {values.shape}")
    matrix = np.ascontiguousarray(values[:, None] if values.ndim == 1 else values)
    if values.size == 0:
        return Checked(values.shape, matrix, np.zeros(matrix.shape, dtype=bool), False, False)
    # fmin/fmax skip NaN; an all-NaN input reduces to NaN, which passes both tests.
    if np.fmin.reduce(matrix, axis=None) <= 0 or np.fmax.reduce(matrix, axis=None) == np.inf:
        raise ValueError("closes must be positive finite prices or NaN (no bar)")
    missing = np.isnan(matrix)
    anything_missing = bool(missing.any())
    gapped = anything_missing and bool((missing[1:] & ~missing[:-1]).any())
    return Checked(values.shape, matrix, missing, anything_missing, gapped)


Closes = FloatArray | Checked
"""What the indicators take: closes, or closes already checked (``check``)."""


def _apply(kernel: _Kernel, closes: Closes, window: int, recursive: bool = False) -> FloatArray:
    """Validate, run ``kernel`` so that no series has a gap, and return its result.

    A window touching a NaN is NaN, so window kernels need no help with leading NaNs
    (a series starting late). A gap (a bar, then NaN) does: the indicator must skip
    it. So do recursive kernels, which seed on row 0. For those cases each column's
    bars are packed to the top, in order, NaN below; the kernel runs on that, and
    the results go back onto the rows the bars came from.
    """
    n = _check_window(window)
    shape, matrix, missing, anything_missing, gapped = (
        closes if isinstance(closes, Checked) else check(closes)
    )
    if matrix.size == 0:
        return np.full(shape, np.nan)
    if not gapped and not (recursive and anything_missing):
        return kernel(matrix, n).reshape(shape)
    if not gapped and matrix.shape[1] == 1:
        # One series starting late: its bars moved up are the packed series.
        first = int(np.argmin(missing[:, 0])) if not missing[-1, 0] else matrix.shape[0]
        bars = matrix.shape[0] - first
        moved = np.full_like(matrix, np.nan)
        moved[:bars] = matrix[first:]
        packed = kernel(moved, n)
        result = np.full_like(packed, np.nan)
        result[first:] = packed[:bars]
        return result.reshape(shape)
    # A stable sort on the NaN flag lists each column's bars first, in order; as flat
    # indices into the C-ordered matrix one gather packs and one scatter unpacks.
    flat = np.argsort(missing, axis=0, kind="stable")
    flat *= matrix.shape[1]
    flat += np.arange(matrix.shape[1])
    packed = kernel(matrix.ravel().take(flat), n)
    result = np.empty_like(packed)
    result.ravel()[flat] = packed
    result[missing] = np.nan
    return result.reshape(shape)


# Rolling windows use the prefix/suffix block trick: cut rows into blocks of n, so a
# window [s, t] is the tail of s's block plus the head of the next block up to t
# (just the tail when s starts a block). Head and tail statistics are running scans
# within blocks, so a window costs O(1) whatever n is. Blocks are laid out offset-
# major, (n, blocks, N), so each scan step is one numpy call over every block and
# column at once: n calls in all, never one per row.


def _blocks(x: FloatArray, n: int) -> FloatArray:
    """``out[k, b]`` is row ``b*n + k`` of x (NaN past the end): shape (n, blocks, N)."""
    rows, cols = x.shape
    full, rest = divmod(rows, n)
    out = np.full((n, full + (rest > 0), cols), np.nan)
    by_block = out.transpose(1, 0, 2)
    by_block[:full] = x[: full * n].reshape(full, n, cols)
    if rest:
        by_block[full, :rest] = x[full * n :]
    return out


def _rows(blocks: FloatArray) -> FloatArray:
    """Inverse of ``_blocks`` (padding included): shape (blocks*n, N)."""
    return blocks.transpose(1, 0, 2).reshape(-1, blocks.shape[2])


def _scan(op: np.ufunc, a: FloatArray) -> FloatArray:
    """Running ``op`` along axis 0, in place: ``a[k] = op(a[k-1], a[k])`` in order, the
    same operations either way. ``op.accumulate`` calls its inner loop once per (block,
    column) pair, several nanoseconds an element; a loop over n costs a numpy call per
    step (about a microsecond) but then streams a step's pairs at about a nanosecond an
    element, so it wins once a step holds a few hundred pairs, whatever n is."""
    if a[0].size < 256:
        op.accumulate(a, axis=0, out=a)
        return a
    for k in range(1, a.shape[0]):
        op(a[k - 1], a[k], out=a[k])
    return a


def _scan_moments(blocks: FloatArray, with_m2: bool) -> tuple[FloatArray, FloatArray | None]:
    """Running mean and, if asked, sum of squared deviations (M2) along axis 0.

    Sums are taken of deviations from the run's first value: a plain cumulative
    sum of squared prices loses nearly all digits of a small variance to
    cancellation, while deviations from a value inside the run keep it (the
    cancellation factor is bounded by the run length, not by the price level).
    Large temporaries are few and updated in place: at this size, fresh memory
    (page faults) costs more than the arithmetic.
    """
    anchor = blocks[0]
    count = _counts(blocks.shape[0])
    s1 = blocks - anchor
    s2 = _scan(np.add, s1 * s1) if with_m2 else None
    _scan(np.add, s1)
    mean = s1 / count
    mean += anchor
    if s2 is not None:
        s1 *= s1
        s1 /= count
        s2 -= s1
        # M2 >= 0; the anchor keeps rounding far below M2 itself, but a rounding-
        # negative M2 would turn into a NaN stdev, so clamp rather than trust that.
        np.maximum(s2, 0.0, out=s2)
    return mean, s2


@functools.lru_cache(maxsize=64)
def _counts(n: int) -> FloatArray:
    """1 .. n as floats, shaped to divide running sums over (n, blocks, N)."""
    count = np.arange(1, n + 1, dtype=np.float64)[:, None, None]
    count.flags.writeable = False
    return count


@functools.lru_cache(maxsize=64)
def _head_shares(starts: int, n: int) -> tuple[FloatArray, FloatArray]:
    """For each window start: the head's share of the window, h, and the weight of the
    squared mean gap in the merged M2, h * (n - n*h) (columns, read-only; the same few
    window sizes recur over one history)."""
    head_share = (np.arange(starts) % n / n)[:, None]
    spread = head_share * (n - n * head_share)
    head_share.flags.writeable = False
    spread.flags.writeable = False
    return head_share, spread


def _window_moments(x: FloatArray, n: int, with_m2: bool) -> tuple[FloatArray, FloatArray | None]:
    """Mean and (if asked) M2 of the last n rows, for each row; NaN before row n-1."""
    rows, cols = x.shape
    mean = np.full((rows, cols), np.nan)
    m2 = np.full((rows, cols), np.nan) if with_m2 else None
    if rows < n:
        return mean, m2
    blocks = _blocks(x, n)
    head_mean, head_m2 = _scan_moments(blocks, with_m2)
    # Tails are heads of the time-reversed blocks; [::-1] puts them back in order.
    tail_mean, tail_m2 = _scan_moments(blocks[::-1], with_m2)
    starts = rows - n + 1
    head_share, spread = _head_shares(starts, n)
    mean_a, mean_b = _rows(tail_mean[::-1])[:starts], _rows(head_mean)[n - 1 : rows]
    # Chan et al.'s pairwise combination: stable, unlike recombining raw power sums.
    delta = mean_b - mean_a
    merged = mean[n - 1 :]
    # A window starting a block is its tail alone: head_share is 0 there, so the
    # head (that block's full mean) drops out exactly.
    np.multiply(delta, head_share, out=merged)
    merged += mean_a
    if m2 is not None and head_m2 is not None and tail_m2 is not None:
        m2_a, m2_b = _rows(tail_m2[::-1])[:starts], _rows(head_m2)[n - 1 : rows]
        merged = m2[n - 1 :]
        np.multiply(delta, delta, out=merged)
        merged *= spread
        merged += m2_a
        merged += m2_b
        # ... but its head's M2 (the whole block's) would not: drop it.
        merged[::n] = m2_a[::n]
    return mean, m2


def _smooth(values: FloatArray, seed: FloatArray, alpha: float, out: FloatArray) -> None:
    """out_j = alpha*values_j + (1-alpha)*out_{j-1} with out_{-1} = seed, every row.

    Closed form per chunk, beta = 1 - alpha:
    out_j = beta**(j+1) * (seed + alpha * sum_{k<=j} values_k / beta**(k+1)).
    For non-negative terms (prices, gains, losses) the cumulative sum has no
    cancellation; for mixed signs (the PPO signal's input) the error is absolute, a
    few ulps of the largest recent |value| per 1/alpha rows, far below any meaningful
    difference of percentages. Chunks keep beta**-k finite, and a loop over a few
    chunks replaces a loop over every row. ``out`` may be ``values`` (updated in place).
    """
    beta = 1.0 - alpha
    if beta == 0.0:
        out[...] = values
        return
    span = max(1, int(_EXP_RANGE / -math.log(beta)))
    carry = seed
    for start in range(0, values.shape[0], span):
        part = out[start : start + span]
        decay = _decay(beta, min(span, values.shape[0]))[: part.shape[0]]
        np.divide(values[start : start + span], decay, out=part)
        np.cumsum(part, axis=0, out=part)
        part *= alpha
        part += carry
        part *= decay
        carry = part[-1]


@functools.lru_cache(maxsize=64)
def _decay(beta: float, count: int) -> FloatArray:
    """``beta**1 .. beta**count`` as a read-only column (the same few recur: windows)."""
    decay = beta ** np.arange(1, count + 1, dtype=np.float64)[:, None]
    decay.flags.writeable = False
    return decay


def _returns(x: FloatArray) -> FloatArray:
    r = np.full_like(x, np.nan)
    r[1:] = 100.0 * (x[1:] / x[:-1] - 1.0)
    return r


def _sample_stdev(x: FloatArray, n: int) -> FloatArray:
    if n == 1:
        return np.full_like(x, np.nan)
    m2 = _window_moments(x, n, with_m2=True)[1]
    assert m2 is not None  # asked for
    return np.sqrt(m2 / (n - 1))


def _current_price(x: FloatArray, n: int) -> FloatArray:
    return x.copy()


def _moving_average_price(x: FloatArray, n: int) -> FloatArray:
    return _window_moments(x, n, with_m2=False)[0]


def _ema(x: FloatArray, n: int) -> FloatArray:
    ema = np.full_like(x, np.nan)
    if x.shape[0] >= n:
        ema[0] = x[0]
        _smooth(x[1:], x[0], 2.0 / (n + 1), out=ema[1:])
        ema[: n - 1] = np.nan
    return ema


def _ppo(x: FloatArray, short: int, long: int) -> FloatArray:
    fast, slow = _ema(x, short), _ema(x, long)
    fast -= slow
    fast /= slow
    fast *= 100.0
    return fast


def _ppo_signal(x: FloatArray, short: int, long: int, smooth: int) -> FloatArray:
    # Columns are packed (no gaps), so every column's PPO starts on the same row.
    start = max(short, long) - 1
    out = np.full_like(x, np.nan)
    if x.shape[0] > start:
        out[start:] = _ema(_ppo(x, short, long)[start:], smooth)
    return out


def _rsi(x: FloatArray, n: int) -> FloatArray:
    rows, cols = x.shape
    out = np.full_like(x, np.nan)
    if rows <= n:
        return out
    # moves[i] holds the gains then the losses of the change into close row i+1, side
    # by side so that one smoothing pass serves both.
    change = np.diff(x, axis=0)
    moves = np.empty((rows - 1, 2 * cols))
    np.maximum(change, 0.0, out=moves[:, :cols])
    np.negative(change, out=change)
    np.maximum(change, 0.0, out=moves[:, cols:])
    # Averages overwrite the moves in place: row n-1 (close row n) gets the seed.
    moves[n - 1] = moves[:n].sum(axis=0) / n
    _smooth(moves[n:], moves[n - 1], 1.0 / n, out=moves[n:])
    gain, loss = moves[n - 1 :, :cols], moves[n - 1 :, cols:]
    total = gain + loss
    rsi = out[n:]
    # No movement at all (0 / 0) reads 50, those rows skipped; moves that overflow the
    # averages (inf / inf) read NaN, as quietly as every other kernel's.
    flat = total == 0.0
    with np.errstate(invalid="ignore"):
        np.divide(gain, total, out=rsi, where=~flat)
    rsi *= 100.0
    rsi[flat] = 50.0
    return out


def _cumulative_return(x: FloatArray, n: int) -> FloatArray:
    out = np.full_like(x, np.nan)
    if x.shape[0] > n:
        out[n:] = (x[n:] / x[:-n] - 1.0) * 100.0
    return out


def _moving_average_return(x: FloatArray, n: int) -> FloatArray:
    return _window_moments(_returns(x), n, with_m2=False)[0]


def _stdev_return(x: FloatArray, n: int) -> FloatArray:
    return _sample_stdev(_returns(x), n)


def _stdev_price(x: FloatArray, n: int) -> FloatArray:
    return _sample_stdev(x, n)


def _max_drawdown(x: FloatArray, n: int) -> FloatArray:
    rows = x.shape[0]
    out = np.full_like(x, np.nan)
    if rows < n:
        return out
    blocks = _blocks(x, n)
    # Heads (window ends): the worst fall from the running peak, and the lowest close.
    peak = _scan(np.maximum, blocks.copy())
    fall = peak - blocks
    fall /= peak
    head_fall = _rows(_scan(np.maximum, fall))[n - 1 : rows]
    head_low = _rows(_scan(np.minimum, blocks.copy()))[n - 1 : rows]
    # Tails (window starts), scanned backwards: the worst fall to the running trough
    # ahead, and the highest close.
    rev = blocks[::-1]
    trough = _scan(np.minimum, rev.copy())
    np.subtract(rev, trough, out=fall)
    fall /= rev
    tail_fall = _rows(_scan(np.maximum, fall)[::-1])[: rows - n + 1]
    tail_high = _rows(_scan(np.maximum, rev.copy())[::-1])[: rows - n + 1]
    # A fall from a tail close to a later head close is worst from the tail's high to
    # the head's low; a negative value (a rise) loses to the tail's own fall, >= 0.
    worst = out[n - 1 :]
    np.subtract(tail_high, head_low, out=worst)
    worst /= tail_high
    np.maximum(worst, head_fall, out=worst)
    np.maximum(worst, tail_fall, out=worst)
    # A window starting a block is its tail alone; its "head" (the whole block, the
    # same closes) holds no later trough, so the cross term must not count there.
    worst[::n] = tail_fall[::n]
    worst *= 100.0
    return out


def current_price(closes: Closes, window: int = 1) -> FloatArray:
    return _apply(_current_price, closes, window)


def moving_average_price(closes: Closes, window: int) -> FloatArray:
    return _apply(_moving_average_price, closes, window)


def exponential_moving_average_price(closes: Closes, window: int) -> FloatArray:
    return _apply(_ema, closes, window, recursive=True)


def relative_strength_index(closes: Closes, window: int) -> FloatArray:
    return _apply(_rsi, closes, window, recursive=True)


def cumulative_return(closes: Closes, window: int) -> FloatArray:
    return _apply(_cumulative_return, closes, window)


def moving_average_return(closes: Closes, window: int) -> FloatArray:
    return _apply(_moving_average_return, closes, window)


def stdev_return(closes: Closes, window: int) -> FloatArray:
    return _apply(_stdev_return, closes, window)


def stdev_price(closes: Closes, window: int) -> FloatArray:
    return _apply(_stdev_price, closes, window)


def max_drawdown(closes: Closes, window: int) -> FloatArray:
    return _apply(_max_drawdown, closes, window)


def percentage_price_oscillator(
    closes: Closes, window: int = 26, *, short_window: int = 12, long_window: int = 26
) -> FloatArray:
    short, long = _check_window(short_window), _check_window(long_window)
    return _apply(lambda x, _: _ppo(x, short, long), closes, window, recursive=True)


def percentage_price_oscillator_signal(
    closes: Closes,
    window: int = 26,
    *,
    short_window: int = 12,
    long_window: int = 26,
    smooth_window: int = 9,
) -> FloatArray:
    short, long = _check_window(short_window), _check_window(long_window)
    smooth = _check_window(smooth_window)
    return _apply(lambda x, _: _ppo_signal(x, short, long, smooth), closes, window, recursive=True)


OPTIONS: dict[IndicatorFn, dict[str, int]] = {
    IndicatorFn.PPO: {"long-window": 26, "short-window": 12},
    IndicatorFn.PPO_SIGNAL: {"long-window": 26, "short-window": 12, "smooth-window": 9},
}
"""The options an indicator takes besides its window, with their defaults."""

INDICATORS: dict[IndicatorFn, Callable[..., FloatArray]] = {
    IndicatorFn.CURRENT_PRICE: current_price,
    IndicatorFn.MOVING_AVERAGE_PRICE: moving_average_price,
    IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE: exponential_moving_average_price,
    IndicatorFn.RSI: relative_strength_index,
    IndicatorFn.CUMULATIVE_RETURN: cumulative_return,
    IndicatorFn.MOVING_AVERAGE_RETURN: moving_average_return,
    IndicatorFn.STDEV_RETURN: stdev_return,
    IndicatorFn.STDEV_PRICE: stdev_price,
    IndicatorFn.MAX_DRAWDOWN: max_drawdown,
    IndicatorFn.PPO: percentage_price_oscillator,
    IndicatorFn.PPO_SIGNAL: percentage_price_oscillator_signal,
}


def compute(
    fn: IndicatorFn,
    closes: Closes,
    window: int,
    params: tuple[tuple[str, int], ...] = (),
) -> FloatArray:
    """``fn`` over ``closes`` (T or T x N) for every row; see the module docstring.

    ``params`` are the indicator's options by name (``Indicator.params``), e.g.
    ``(("long-window", 26), ("short-window", 12))``; missing ones take their defaults.
    """
    known = OPTIONS.get(fn, {})
    unknown = sorted(name for name, _ in params if name not in known)
    if unknown:
        raise ValueError(f"{fn.value} has no option {', '.join(unknown)}")
    options = {name.replace("-", "_"): value for name, value in params}
    return INDICATORS[fn](closes, window, **options)
