"""The fast paths hold to their straightforward definitions: a filter's picks against the
full tie-aware ranking, indicators over series with missing bars and late listings
against per-bar loops, the price and symbol caches against the plain conversions, the
ledger's run reports through a JSON round trip, and the backtest's collector threshold
restored whatever happens."""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from alchemiser.backtest import _fewer_collections
from alchemiser.cli.main import main
from alchemiser.domain import scalars
from alchemiser.domain.report import RunReport
from alchemiser.strategy import indicators
from alchemiser.strategy.symphony.ranking import best, ranked_best

Series = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

# -- filter picks ---------------------------------------------------------------------


def _near_ties(rng: np.random.Generator, rows: int, width: int) -> tuple[Series, Mask]:
    """Keys drawn from a few values (zeros of both signs, tiny and huge ones), nudged by
    less than, about and more than the tie tolerance, some unscored (inf)."""
    base = rng.choice([0.0, -0.0, 1.0, -1.0, 1e-300, 5e-324, 1e300, 3.0], size=(rows, width))
    nudge = rng.choice([0.0, 1e-12, -1e-12, 1e-9, 2e-9, 1e-6], size=(rows, width))
    key = base * (1 + nudge) + rng.choice([0.0, 0.0, 1e-10, 0.5], size=(rows, width))
    key = np.where(rng.random((rows, width)) < 0.25, np.inf, key)
    return key, np.isfinite(key)


@pytest.mark.parametrize("seed", range(4))
def test_filter_picks_match_the_full_ranking(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(1500):
        width = int(rng.integers(1, 30))  # both the running list and the partition
        key, known = _near_ties(rng, int(rng.integers(1, 8)), width)
        picks = min(int(rng.integers(1, width + 2)), width)
        expected = known.copy() if picks >= width else ranked_best(key, known, picks) & known
        assert np.array_equal(best(key.copy(), known, picks), expected), (key, picks)


# -- indicators over gaps -------------------------------------------------------------


def _per_bar(fn: Callable[[list[float], int], list[float]]) -> Callable[[Series, int], Series]:
    """Apply ``fn`` to each column's bars alone, in order, and put the results back on
    the rows the bars came from (the documented gap rule)."""

    def run(closes: Series, window: int) -> Series:
        out = np.full(closes.shape, np.nan)
        for j in range(closes.shape[1]):
            rows = np.flatnonzero(~np.isnan(closes[:, j]))
            values = fn([float(v) for v in closes[rows, j]], window)
            out[rows, j] = values
        return out

    return run


def _windowed(stat: Callable[[list[float]], float], first: int) -> Callable[..., list[float]]:
    def fn(bars: list[float], n: int) -> list[float]:
        return [
            stat(bars[max(0, t - n + 1 - first) : t + 1]) if t >= n - 1 + first else math.nan
            for t in range(len(bars))
        ]

    return fn


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _sample_sd(xs: list[float]) -> float:
    if len(xs) < 2:
        return math.nan
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _returns(xs: list[float]) -> list[float]:
    return [100.0 * (b / a - 1.0) for a, b in itertools.pairwise(xs)]


def _drawdown(xs: list[float]) -> float:
    worst, peak = 0.0, xs[0]
    for x in xs:
        peak = max(peak, x)
        worst = max(worst, (peak - x) / peak * 100.0)
    return worst


def _ema(bars: list[float], n: int) -> list[float]:
    alpha, out, value = 2.0 / (n + 1), [], math.nan
    for t, c in enumerate(bars):
        value = c if t == 0 else alpha * c + (1 - alpha) * value
        out.append(value if t >= n - 1 else math.nan)
    return out


def _rsi(bars: list[float], n: int) -> list[float]:
    out = [math.nan] * len(bars)
    if len(bars) <= n:
        return out
    moves = [b - a for a, b in itertools.pairwise(bars)]
    gain = sum(max(d, 0.0) for d in moves[:n]) / n
    loss = sum(max(-d, 0.0) for d in moves[:n]) / n
    for t in range(n, len(bars)):
        if t > n:
            d = moves[t - 1]
            gain = (gain * (n - 1) + max(d, 0.0)) / n
            loss = (loss * (n - 1) + max(-d, 0.0)) / n
        out[t] = 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss)
    return out


def _on_returns(stat: Callable[[list[float]], float]) -> Callable[[list[float], int], list[float]]:
    def fn(bars: list[float], n: int) -> list[float]:
        r = _returns(bars)
        return [math.nan] + [
            stat(r[t - n : t]) if t >= n else math.nan for t in range(1, len(bars))
        ]

    return fn


REFERENCES: dict[str, tuple[Callable[[Series, int], Series], Callable[[Series, int], Series]]] = {
    "moving-average-price": (
        indicators.moving_average_price,
        _per_bar(_windowed(_mean, 0)),
    ),
    "stdev-price": (indicators.stdev_price, _per_bar(_windowed(_sample_sd, 0))),
    "max-drawdown": (indicators.max_drawdown, _per_bar(_windowed(_drawdown, 0))),
    "cumulative-return": (
        indicators.cumulative_return,
        _per_bar(
            lambda b, n: [
                (b[t] / b[t - n] - 1) * 100 if t >= n else math.nan for t in range(len(b))
            ]
        ),
    ),
    "moving-average-return": (indicators.moving_average_return, _per_bar(_on_returns(_mean))),
    "stdev-return": (indicators.stdev_return, _per_bar(_on_returns(_sample_sd))),
    "exponential-moving-average-price": (
        indicators.exponential_moving_average_price,
        _per_bar(_ema),
    ),
    "relative-strength-index": (indicators.relative_strength_index, _per_bar(_rsi)),
}


def _gapped_closes(rng: np.random.Generator) -> Series:
    """Random walks, some listed late, some with missing bars inside, one flat."""
    rows, width = int(rng.integers(2, 120)), int(rng.integers(1, 6))
    closes = np.exp(np.cumsum(rng.normal(0, 0.02, (rows, width)), axis=0)) * 100
    for j in range(width):
        if rng.random() < 0.5:
            closes[: int(rng.integers(0, rows)), j] = np.nan
    closes[rng.random((rows, width)) < rng.choice([0.0, 0.03, 0.2])] = np.nan
    if rng.random() < 0.2:
        closes[:, 0] = np.where(np.isnan(closes[:, 0]), np.nan, 50.0)
    return closes


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_indicators_over_gaps_match_a_per_bar_loop(name: str) -> None:
    fast, reference = REFERENCES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(150):
        closes = _gapped_closes(rng)
        window = int(rng.choice([1, 2, 3, 5, 14, 30]))
        got, want = fast(closes, window), reference(closes, window)
        assert np.array_equal(np.isnan(got), np.isnan(want)), (name, window, closes)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)


# -- caches ---------------------------------------------------------------------------


def test_price_cache_answers_as_the_conversion() -> None:
    rng = np.random.default_rng(3)
    values = [*rng.uniform(0, 1000, 200).tolist(), 1e-5, 5e-5, 0.00005, 999_999_999_999.0]
    for value in values * 2:  # the second pass reads the cache
        plain = Decimal(repr(value)).quantize(scalars.PRICE_STEP)
        assert scalars.to_decimal_price(value) == plain
        assert str(scalars.to_decimal_price(value)) == str(plain)
    assert str(scalars.to_decimal_price(-0.0)) == "-0.0000"  # never kept: zero has a sign
    assert str(scalars.to_decimal_price(0.0)) == "0.0000"
    for bad in (math.nan, math.inf, -math.inf, 1e12, -1e12):
        with pytest.raises(ValueError, match="not finite or not plausible"):
            scalars.to_decimal_price(bad)


def test_symbol_cache_keeps_only_valid_symbols() -> None:
    assert scalars.normalise_symbol(" brk/b ") == "BRK.B"
    assert scalars.normalise_symbol(" brk/b ") == "BRK.B"
    for bad in ("b@d", "", "TOOLONGSYMBOL1"):
        for _ in range(2):
            with pytest.raises(ValueError, match="not a ticker symbol"):
                scalars.normalise_symbol(bad)
    assert all(scalars._SYMBOL.match(v) for v in scalars._NORMALISED.values())


# -- reports through the ledger -------------------------------------------------------


def test_run_reports_round_trip_through_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reports built from unvalidated parts (valuations, fills, targets) read back as
    the same reports and are written back as the same text."""
    for _ in range(2):
        assert main(["run", "--state-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    lines = (tmp_path / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        report = RunReport.model_validate_json(line)
        assert report.model_dump_json() == line
        again = RunReport.model_validate_json(report.model_dump_json())
        assert again == report


# -- the backtest's collector ---------------------------------------------------------


def test_collector_threshold_is_restored_after_an_error() -> None:
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []

    def failing_session() -> None:
        with _fewer_collections():
            during.append(gc.get_threshold())
            raise RuntimeError("a session failed")

    with pytest.raises(RuntimeError, match="a session failed"):
        failing_session()
    assert during[0][0] != before[0]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # nothing stays set aside from the collector


# -- commands -------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http"])
def test_exchange_serve_refuses_a_port_out_of_range(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["exchange", "serve", "--port", port])
    assert done.value.code == 2
    assert "--port" in capsys.readouterr().err
