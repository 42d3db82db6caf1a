"""The vectorised engine against a deliberately simple per-date evaluator.

The reference below walks the tree recursively for one date at a time, computes
every indicator with plain loops over the closes up to that date, and builds a
sub-portfolio's value series by evaluating it date after date. It shares nothing
with the engine but the parsed tree. Both must agree on at least 200 random dates for
each built-in strategy and for several generated symphonies.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import date
from functools import cache

import numpy as np
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import BUILTINS, builtin_symphony
from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import StrategyError
from alchemiser.strategy.symphony.ast import (
    Asset,
    Cash,
    Comparator,
    Condition,
    Filter,
    Group,
    If,
    Indicator,
    IndicatorFn,
    Location,
    Node,
    Number,
    Selection,
    Symphony,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.strategy.symphony.evaluator import evaluate
from alchemiser.strategy.symphony.parser import parse_symphony, symbols

pytestmark = pytest.mark.slow

DATES_PER_STRATEGY = 200
START = date(2012, 1, 3)
END = date(2026, 7, 31)
STORE = FilePriceStore.bundled()


# ---- indicators, the plain way: values is the list of valid closes up to the date ----


def _returns(values: list[float]) -> list[float]:
    return [100 * (b / a - 1) for a, b in itertools.pairwise(values)]


def _stdev(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _rsi(values: list[float], n: int) -> float:
    if len(values) < n + 1:
        return math.nan
    changes = [b - a for a, b in itertools.pairwise(values)]
    gain = sum(max(c, 0.0) for c in changes[:n]) / n
    loss = sum(max(-c, 0.0) for c in changes[:n]) / n
    for change in changes[n:]:
        gain = (gain * (n - 1) + max(change, 0.0)) / n
        loss = (loss * (n - 1) + max(-change, 0.0)) / n
    if loss == 0:
        return 100.0 if gain > 0 else 50.0
    return 100 - 100 / (1 + gain / loss)


def _ema(values: list[float], n: int) -> float:
    if len(values) < n:
        return math.nan
    alpha = 2 / (n + 1)
    average = values[0]
    for value in values[1:]:
        average = alpha * value + (1 - alpha) * average
    return average


def _emas(values: list[float], n: int) -> list[float]:
    """The EMA as of every value; NaN on the first n - 1."""
    alpha = 2 / (n + 1)
    out, average = [], values[0]
    for t, value in enumerate(values):
        average = value if t == 0 else alpha * value + (1 - alpha) * average
        out.append(average if t >= n - 1 else math.nan)
    return out


def _ppos(values: list[float], short: int, long: int) -> list[float]:
    """The PPO as of every value; NaN until both EMAs have one."""
    fast, slow = _emas(values, short), _emas(values, long)
    return [100 * (f - s) / s for f, s in zip(fast, slow, strict=True)]


PPO_DEFAULTS = {"short-window": 12, "long-window": 26, "smooth-window": 9}


def _drawdown(values: list[float]) -> float:
    worst, peak = 0.0, values[0]
    for value in values:
        peak = max(peak, value)
        worst = max(worst, (peak - value) / peak * 100)
    return worst


def indicator(
    fn: IndicatorFn, values: list[float], n: int, params: tuple[tuple[str, int], ...] = ()
) -> float:
    if not values:
        return math.nan
    options = PPO_DEFAULTS | dict(params)
    short, long = options["short-window"], options["long-window"]
    last_n = values[-n:] if len(values) >= n else None
    returns = _returns(values[-(n + 1) :]) if len(values) >= n + 1 else None
    match fn:
        case IndicatorFn.CURRENT_PRICE:
            return values[-1]
        case IndicatorFn.MOVING_AVERAGE_PRICE:
            return sum(last_n) / n if last_n else math.nan
        case IndicatorFn.EXPONENTIAL_MOVING_AVERAGE_PRICE:
            return _ema(values, n)
        case IndicatorFn.RSI:
            return _rsi(values, n)
        case IndicatorFn.CUMULATIVE_RETURN:
            return (values[-1] / values[-1 - n] - 1) * 100 if len(values) > n else math.nan
        case IndicatorFn.MOVING_AVERAGE_RETURN:
            return sum(returns) / n if returns else math.nan
        case IndicatorFn.STDEV_RETURN:
            return _stdev(returns) if returns and n > 1 else math.nan
        case IndicatorFn.STDEV_PRICE:
            return _stdev(last_n) if last_n and n > 1 else math.nan
        case IndicatorFn.MAX_DRAWDOWN:
            return _drawdown(last_n) if last_n else math.nan
        case IndicatorFn.PPO:
            return _ppos(values, short, long)[-1]
        case IndicatorFn.PPO_SIGNAL:
            # The EMA of the PPO series from the first value it has.
            return _ema(
                _ppos(values, short, long)[max(short, long) - 1 :], options["smooth-window"]
            )


# ---- the per-date evaluator ----


class Reference:
    def __init__(self, symphony: Symphony, history: PriceHistory) -> None:
        self.symphony = symphony
        self.history = history
        self.columns = {s: i for i, s in enumerate(history.symbols)}
        self.weights = cache(self._weights)
        self.value = cache(self._value)

    def close(self, ticker: str, day: int) -> float:
        return float(self.history.closes[day, self.columns[ticker]])

    def series(self, node: Node, day: int) -> list[float] | None:
        """Valid values of an asset's closes or a sub-portfolio's value, up to ``day``;
        None when ``day`` itself has no value."""
        if isinstance(node, Asset):
            points = [self.close(node.ticker, d) for d in range(day + 1)]
        else:
            points = [self.value(node, d) for d in range(day + 1)]
        if math.isnan(points[-1]):
            return None
        return [p for p in points if not math.isnan(p)]

    def _value(self, node: Node, day: int) -> float:
        """A sub-portfolio's value on the days it decides: the last value it had times
        what yesterday's weights earned today (nothing if it had no weights yesterday)."""
        if self.weights(node, day) is None:
            return math.nan
        if day == 0:
            return 1.0
        base = self._last_value(node, day - 1)
        held = self.weights(node, day - 1)
        if held is None:
            return base
        growth = 0.0
        for symbol, weight in held.items():
            if weight <= 0:
                continue
            today, yesterday = self.close(symbol, day), self.close(symbol, day - 1)
            if math.isnan(today) or math.isnan(yesterday):
                return math.nan
            growth += weight * (today / yesterday - 1)
        return base * (1 + growth)

    def _last_value(self, node: Node, day: int) -> float:
        """The value on the last day up to ``day`` that had one; 1 before any."""
        for earlier in range(day, -1, -1):
            value = self.value(node, earlier)
            if not math.isnan(value):
                return value
        return 1.0

    def operand(self, operand: Indicator | Number, day: int) -> float:
        if isinstance(operand, Number):
            return operand.value
        assert operand.ticker is not None
        values = [self.close(operand.ticker, d) for d in range(day + 1)]
        if math.isnan(values[-1]):
            return math.nan
        valid = [v for v in values if not math.isnan(v)]
        return indicator(operand.fn, valid, operand.window, operand.params)

    def score(
        self,
        child: Node,
        fn: IndicatorFn,
        window: int,
        day: int,
        params: tuple[tuple[str, int], ...] = (),
    ) -> float:
        if self.weights(child, day) is None:
            return math.nan
        values = self.series(child, day)
        return math.nan if values is None else indicator(fn, values, window, params)

    def _weights(self, node: Node, day: int) -> dict[str, float] | None:
        match node:
            case Asset():
                return None if math.isnan(self.close(node.ticker, day)) else {node.ticker: 1.0}
            case Cash():
                return {}
            case Group():
                return self.weights(node.child, day)
            case WeightEqual() | WeightSpecified():
                shares = (
                    [1 / len(node.children)] * len(node.children)
                    if isinstance(node, WeightEqual)
                    else list(node.weights)
                )
                return self.mix(
                    [(s, self.weights(c, day)) for s, c in zip(shares, node.children, strict=True)]
                )
            case If():
                left = self.operand(node.condition.left, day)
                right = self.operand(node.condition.right, day)
                if math.isnan(left) or math.isnan(right):
                    return None
                holds = {
                    Comparator.GT: left > right,
                    Comparator.LT: left < right,
                    Comparator.GE: left >= right,
                    Comparator.LE: left <= right,
                    Comparator.EQ: math.isclose(left, right, rel_tol=1e-9, abs_tol=0.0),
                }[node.condition.op]
                return self.weights(node.then if holds else node.otherwise, day)
            case Filter():
                return self.filter(node, day)
            case WeightInverseVolatility():
                vols = [
                    self.score(c, IndicatorFn.STDEV_RETURN, node.window, day) for c in node.children
                ]
                if any(math.isnan(v) or v <= 0 for v in vols):
                    return None
                inverse = [1 / v for v in vols]
                total = sum(inverse)
                return self.mix(
                    [
                        (i / total, self.weights(c, day))
                        for i, c in zip(inverse, node.children, strict=True)
                    ]
                )
        raise AssertionError(node)

    def filter(self, node: Filter, day: int) -> dict[str, float] | None:
        names = [_name(child, i) for i, child in enumerate(node.children)]
        scored = []
        for name, child in zip(names, node.children, strict=True):
            value = self.score(child, node.score.fn, node.score.window, day, node.score.params)
            if not math.isnan(value):
                scored.append((value, name, child))
        if not scored:
            return None
        top = node.selection is Selection.TOP
        scored.sort(key=lambda item: (-item[0] if top else item[0], item[1]))
        picked = scored[: node.count]
        return self.mix([(1 / len(picked), self.weights(child, day)) for _, _, child in picked])

    @staticmethod
    def mix(parts: list[tuple[float, dict[str, float] | None]]) -> dict[str, float] | None:
        total: dict[str, float] = {}
        for share, weights in parts:
            if weights is None:
                return None
            for symbol, weight in weights.items():
                total[symbol] = total.get(symbol, 0.0) + share * weight
        return total


def _name(node: Node, position: int) -> str:
    if isinstance(node, Asset):
        return node.ticker
    if isinstance(node, Group):
        return node.label
    return f"#{position + 1}"


# ---- the comparison ----


def _compare(symphony: Symphony, seed: int) -> int:
    history = STORE.history(sorted(symbols(symphony)), END, 1_000_000)
    engine = evaluate(symphony, history)
    reference = Reference(symphony, history)
    first = history.row_index(START)
    rng = random.Random(seed)
    decidable = [d for d in range(first, len(history.dates)) if engine.root.valid[d]]
    undecidable = [d for d in range(first, len(history.dates)) if not engine.root.valid[d]]
    # Dates where the engine decides, and a few where it says it cannot: both must agree.
    days = rng.sample(decidable, min(DATES_PER_STRATEGY, len(decidable)))
    days += rng.sample(undecidable, min(20, len(undecidable)))
    decided = 0
    for day in sorted(days):
        expected = reference.weights(symphony.body, day)
        session = history.session(day)
        if expected is None:
            with pytest.raises(StrategyError):
                engine.weights_at(session)
            continue
        actual = engine.weights_at(session)
        wanted = {s: w for s, w in expected.items() if w > 0}
        assert actual.keys() == wanted.keys(), (session, actual, wanted)
        for symbol, weight in wanted.items():
            assert actual[symbol] == pytest.approx(weight, rel=1e-9, abs=1e-12), (session, symbol)
        decided += 1
    return decided


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtins_agree_with_the_reference(name: str) -> None:
    assert _compare(builtin_symphony(name), seed=len(name)) == DATES_PER_STRATEGY


TICKERS = ["SPY", "TLT", "QQQ", "GLD", "BIL", "XLK", "TQQQ", "UVXY", "SMR", "IEF", "SOXL", "BTAL"]


# The oscillators take :short-window/:long-window options rather than :window; the
# symphonies built from the tree below cover them.
WINDOWED = [f.value for f in IndicatorFn if f not in (IndicatorFn.PPO, IndicatorFn.PPO_SIGNAL)]


def _random_indicator(rng: random.Random, ticker: str | None) -> str:
    fn = rng.choice([*WINDOWED, "rsi"])
    window = rng.choice([1, 2, 5, 10, 14, 20, 60, 200]) if fn != "current-price" else 1
    where = f'"{ticker}" ' if ticker else ""
    return f"({fn} {where}{{:window {window}}})"


def _random_node(rng: random.Random, depth: int) -> str:
    kind = rng.choice(
        ["asset", "asset", "if", "filter", "equal", "specified", "group", "invvol", "cash"]
    )
    if depth == 0 or kind == "asset":
        return f'(asset "{rng.choice(TICKERS)}")'
    children = " ".join(_random_node(rng, depth - 1) for _ in range(rng.randint(1, 3)))
    if kind == "cash":
        return "[]"
    if kind == "if":
        left = _random_indicator(rng, rng.choice(TICKERS))
        right = (
            _random_indicator(rng, rng.choice(TICKERS))
            if rng.random() < 0.5
            else str(rng.randint(0, 100))
        )
        op = rng.choice([">", "<", ">=", "<="])
        then, otherwise = _random_node(rng, depth - 1), _random_node(rng, depth - 1)
        return f"(if ({op} {left} {right}) [{then}] [{otherwise}])"
    if kind == "filter":
        pick = rng.choice(["select-top", "select-bottom"])
        return f"(filter {_random_indicator(rng, None)} ({pick} {rng.randint(1, 3)}) [{children}])"
    if kind == "equal":
        return f"(weight-equal [{children}])"
    if kind == "specified":
        first, second = _random_node(rng, depth - 1), _random_node(rng, depth - 1)
        return f"(weight-specified 0.3 {first} 0.7 {second})"
    if kind == "group":
        return f'(group "g{rng.randint(1, 99)}" [{_random_node(rng, depth - 1)}])'
    return f"(weight-inverse-volatility {rng.choice([5, 14, 30])} [{children}])"


@pytest.mark.parametrize("seed", range(6))
def test_random_symphonies_agree_with_the_reference(seed: int) -> None:
    rng = random.Random(1000 + seed)
    text = f'(defsymphony "random {seed}" {{}} {_random_node(rng, 4)})'
    _compare(parse_symphony(text, f"random-{seed}"), seed=seed)


def _options(fn: IndicatorFn, window: int) -> tuple[tuple[str, int], ...]:
    """Options for the oscillators (no other indicator has any), scaled with window."""
    if fn is IndicatorFn.PPO:
        return (("long-window", 2 * window), ("short-window", window))
    if fn is IndicatorFn.PPO_SIGNAL:
        return (("long-window", 2 * window), ("short-window", window), ("smooth-window", window))
    return ()


def test_reference_indicators_match_the_engine_on_real_prices() -> None:
    """Keeps the reference honest: its indicators are the documented ones."""
    from alchemiser.strategy.indicators import compute  # noqa: PLC0415

    closes = STORE.history(["SPY"], END, 600).closes[:, 0]
    for fn in IndicatorFn:
        for window in (5, 14):
            for params in {(), _options(fn, window)}:  # the oscillators' defaults, and others
                engine = compute(fn, closes, window, params)
                plain = indicator(fn, [float(c) for c in closes], window, params)
                assert engine[-1] == pytest.approx(plain, rel=1e-9), (fn, params)
    assert np.isfinite(closes).all()


HERE = Location("tree", 1, 1)


def _ind(fn: IndicatorFn, ticker: str | None, window: int, **options: int) -> Indicator:
    params = tuple(sorted((name.replace("_", "-"), value) for name, value in options.items()))
    return Indicator(fn, ticker, window, HERE, params)


def _if(op: Comparator, left: Indicator, right: Indicator | float, then: Node, other: Node) -> If:
    side = right if isinstance(right, Indicator) else Number(right, HERE)
    return If(Condition(op, left, side, HERE), then, other, HERE)


def _asset(ticker: str) -> Asset:
    return Asset(ticker, None, HERE)


def test_oscillators_and_equality_agree_with_the_reference() -> None:
    ppo, signal = IndicatorFn.PPO, IndicatorFn.PPO_SIGNAL
    fast = _ind(ppo, "SPY", 10, short_window=5, long_window=10)
    fast_signal = _ind(signal, "SPY", 10, short_window=5, long_window=10, smooth_window=4)
    usual = _ind(ppo, "QQQ", 26, short_window=12, long_window=26)
    # 5 sessions of SPY without a fall: a drawdown of exactly 0, equal to 0.
    flat_run = _ind(IndicatorFn.MAX_DRAWDOWN, "SPY", 5)
    momentum = Filter(
        _ind(signal, None, 26, short_window=12, long_window=26, smooth_window=9),
        Selection.TOP,
        2,
        (
            _asset("TQQQ"),
            _asset("SOXL"),
            _asset("TLT"),
            Group("bonds", _if(Comparator.GT, usual, 0.0, _asset("IEF"), _asset("BIL")), HERE),
        ),
        HERE,
    )
    body = _if(
        Comparator.EQ,
        flat_run,
        0.0,
        _if(Comparator.GT, fast, fast_signal, momentum, _asset("GLD")),
        WeightEqual(
            (
                _if(Comparator.LT, usual, -1.0, _asset("BTAL"), _asset("SPY")),
                _if(Comparator.EQ, fast, fast, _asset("XLK"), _asset("UVXY")),
            ),
            HERE,
        ),
    )
    symphony = Symphony("oscillators", {}, body, HERE)
    assert _compare(symphony, seed=11) == DATES_PER_STRATEGY
