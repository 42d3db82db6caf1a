"""Benchmark: the symphony engine on a big generated symphony, the built-ins, a backtest.

Prints numbers; asserts nothing. Three scenarios, each with its target:

1. A generated symphony (seeded, so every run builds the same text) with over 1,000
   ``if`` and 250 ``filter`` nodes over bundled tickers: deep if-chains, filters whose
   candidates are assets and also groups (sub-portfolios), weight-specified and
   inverse-volatility blocks, the indicators and windows of SYMPHONY.md. Measured end
   to end as a live run needs it for 2026-07-31: read + parse the file (and collect its
   symbols, as ``SymphonyStrategy`` does), load its prices from the bundled files
   (``FilePriceStore.bundled().history``, full history, a fresh store each run so no file
   is cached), then ``SymphonyStrategy.evaluate(history, as_of)``, which evaluates the
   whole history vectorised and reads the last row. Target: total under 1 s.
2. The three built-ins over 2012-01-03..2026-07-31 on one history loaded from 2005
   (so indicators warm up): parse, ``evaluate_all`` and reading every row of the range
   with ``weights_at`` (rows without a decision, such as KMLM switcher's before KMLM
   existed, are counted). Target: the three together under 2 s (prices loaded once,
   reported separately).
3. A backtest of the embedded default config (``load_config()``, 30/50/20) from
   2012-01-03 to 2026-07-31 via ``run_backtest`` and ``bootstrap.market_data``.
   Target: under 10 s and under 1 GB.

Times are ``time.perf_counter`` wall times, best and median of k in-process runs (the
garbage collector runs between runs, untimed). Scenario 1 also shows "cold" runs: the
first and only run of a fresh process, as a live run (a Lambda invocation) makes it;
it pays for touching new memory that warm runs get back from the allocator. Peak memory is
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of a fresh subprocess running that
scenario once (its own wall time is printed too), spawned before this process does any
heavy work: Linux carries a parent's high-water mark into its child across fork and
exec, so a child spawned later would report the parent's peak. The figure includes
the interpreter and imports, whose share is printed as "baseline".

Run: make bench  (or .venv/bin/python bench/bench_symphony.py [k])
"""

from __future__ import annotations

import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from alchemiser import bootstrap
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import BUILTINS, builtin_symphony, read_symphony_file
from alchemiser.backtest import run_backtest
from alchemiser.config import load_config
from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import StrategyError
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.ast import Filter, If, Symphony
from alchemiser.strategy.symphony.parser import iter_nodes
from alchemiser.strategy.symphony.strategy import SymphonyStrategy

AS_OF = date(2026, 7, 31)
START = date(2012, 1, 3)
SEED = 20260731
MIN_IFS = 1_000
MIN_FILTERS = 250
COLD_RUNS = 3

# Tickers with bundled prices (src/alchemiser/data/prices/).
TICKERS = (
    *("SPY", "TLT", "QQQ", "GLD", "IEF", "BIL", "XLK", "IOO", "TQQQ", "VTV", "XLF"),
    *("UVXY", "BTAL", "VOX", "UPRO", "BWXT", "LEU", "EXC", "NLR", "PSQ", "SQQQ", "TECL"),
    *("SPXL", "BSV", "VOOG", "VOOV", "XLP", "XLY", "FAS", "SOXL", "AGG", "VTI", "BND"),
)

# Composer's exports name the fund after its ticker; about half the assets here do.
NAMES = {
    "SPY": "SPDR S&P 500 ETF Trust",
    "TLT": "iShares 20+ Year Treasury Bond ETF",
    "QQQ": "Invesco QQQ Trust",
    "GLD": "SPDR Gold Shares",
    "IEF": "iShares 7-10 Year Treasury Bond ETF",
    "BIL": "SPDR Bloomberg 1-3 Month T-Bill ETF",
    "XLK": "Technology Select Sector SPDR Fund",
    "TQQQ": "ProShares UltraPro QQQ",
    "UVXY": "ProShares Ultra VIX Short-Term Futures ETF",
    "BTAL": "AGF U.S. Market Neutral Anti-Beta Fund",
    "UPRO": "ProShares UltraPro S&P500",
    "SQQQ": "ProShares UltraPro Short QQQ",
    "TECL": "Direxion Daily Technology Bull 3X Shares",
    "SOXL": "Direxion Daily Semiconductor Bull 3X Shares",
    "BND": "Vanguard Total Bond Market ETF",
}

# Condition shapes: (indicator, windows, low, high) for "indicator vs number", the
# thresholds in the range the indicator actually takes on these funds.
THRESHOLDS: tuple[tuple[str, tuple[int, ...], float, float], ...] = (
    ("rsi", (10, 10, 10, 14, 20, 9, 7), 20.0, 85.0),
    ("cumulative-return", (5, 10, 20, 60), -15.0, 15.0),
    ("moving-average-return", (5, 20, 90), -1.0, 1.0),
    ("stdev-return", (10, 20, 30), 0.5, 5.0),
    ("max-drawdown", (10, 60), 3.0, 30.0),
)
# Filter scores: (indicator, windows).
SCORES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("rsi", (10, 10, 14, 20)),
    ("cumulative-return", (5, 10, 20, 60)),
    ("moving-average-return", (20, 90)),
    ("stdev-return", (10, 20)),
    ("max-drawdown", (10, 60)),
    ("exponential-moving-average-price", (8, 21)),
)
Memory = dict[str, list[dict[str, float]]]
PRICE_AVERAGES = ("moving-average-price", "exponential-moving-average-price")


# --- the generated symphony ------------------------------------------------------------


class Generator:
    """Composer-style text, built from one seeded ``random.Random``.

    The body is ``weight-equal`` over sleeves (groups); each sleeve is a deep if-chain
    (the else branch holds the next ``if``, as exported symphonies nest them), whose
    then-branches are blocks: an asset, a short nested if-chain, a filter over assets,
    a filter over groups (each holding its own if or filter), weight-specified, or
    inverse volatility. Sleeves are added until both node counts are reached.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ifs = 0
        self.filters = 0
        self.groups = 0

    def ticker(self) -> str:
        return self.rng.choice(TICKERS)

    def condition(self) -> str:
        rng = self.rng
        roll = rng.random()
        op = rng.choice((">", "<", ">", "<", ">=", "<="))
        if roll < 0.55:
            fn, windows, low, high = rng.choice(THRESHOLDS)
            value = round(rng.uniform(low, high), 1 if fn != "rsi" else 0)
            number = f"{value:g}"
            return f'({op} ({fn} "{self.ticker()}" {{:window {rng.choice(windows)}}}) {number})'
        if roll < 0.75:  # one fund's RSI against another's, same window
            window = rng.choice((10, 10, 20, 9))
            left, right = rng.sample(TICKERS, 2)
            return (
                f'({op} (rsi "{left}" {{:window {window}}}) (rsi "{right}" {{:window {window}}}))'
            )
        ticker = self.ticker()  # trend: price or a short average above a long one
        long = f'({rng.choice(PRICE_AVERAGES)} "{ticker}" {{:window {rng.choice((50, 200))}}})'
        if roll < 0.9:
            return f'({op} (current-price "{ticker}") {long})'
        short = f'(moving-average-price "{ticker}" {{:window {rng.choice((10, 20))}}})'
        return f"({op} {short} {long})"

    def asset(self, ticker: str | None = None) -> str:
        ticker = ticker or self.ticker()
        name = NAMES.get(ticker)
        if name is not None and self.rng.random() < 0.7:
            return f'(asset "{ticker}" "{name}")'
        return f'(asset "{ticker}")'

    def filter(self, pad: str, candidates: list[str]) -> str:
        self.filters += 1
        fn, windows = self.rng.choice(SCORES)
        how = self.rng.choice(("select-top", "select-top", "select-bottom"))
        count = self.rng.randint(1, max(1, min(3, len(candidates) - 1)))
        score = f"({fn} {{:window {self.rng.choice(windows)}}})"
        inner = f"\n{pad}   ".join(candidates)
        return f"(filter {score} ({how} {count})\n{pad}  [{inner}])"

    def group(self, pad: str, body: str) -> str:
        self.groups += 1
        return f'(group "G{self.groups} {self.ticker()}"\n{pad}  [{body}])'

    def short_chain(self, pad: str, links: int) -> str:
        """``links`` nested ifs ending in an asset, each then-branch an asset."""
        text, closing = "", ""
        for depth in range(links):
            here = pad + "  " * depth
            self.ifs += 1
            text += f"(if {self.condition()}\n{here}  [{self.asset()}]\n{here}  ["
            closing += "])"
        return text + self.asset() + closing

    def candidate_group(self, pad: str) -> str:
        inner = pad + "   "
        if self.rng.random() < 0.6:
            body = self.short_chain(inner, self.rng.randint(1, 2))
        else:
            assets = self.rng.sample(TICKERS, self.rng.randint(2, 4))
            body = self.filter(inner, [self.asset(t) for t in assets])
        return self.group(pad, body)

    def block(self, pad: str) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.2:
            return self.asset()
        if roll < 0.4:
            return self.short_chain(pad, rng.randint(1, 3))
        if roll < 0.62:
            assets = rng.sample(TICKERS, rng.randint(3, 6))
            return self.filter(pad, [self.asset(t) for t in assets])
        if roll < 0.8:
            groups = [self.candidate_group(pad + "   ") for _ in range(rng.randint(2, 4))]
            if rng.random() < 0.3:
                groups.append(self.asset())
            return self.filter(pad, groups)
        if roll < 0.9:
            first, second = rng.sample(TICKERS, 2)
            share = rng.choice((50, 60, 75, 80))
            return (
                f"(weight-specified {share} {self.asset(first)} {100 - share} {self.asset(second)})"
            )
        children = [self.candidate_group(pad + "   ") for _ in range(2)]
        joined = f"\n{pad}   ".join(children)
        return f"(weight-inverse-volatility {rng.choice((10, 14, 20))}\n{pad}  [{joined}])"

    def chain(self, pad: str, links: int) -> str:
        text, closing = "", ""
        for depth in range(links):
            here = pad + "  " * depth
            self.ifs += 1
            text += f"(if {self.condition()}\n{here}  [{self.block(here + '   ')}]\n{here}  ["
            closing += "])"
        end = pad + "  " * links
        tail = self.block(end) if self.rng.random() < 0.5 else self.asset()
        return text + tail + closing

    def symphony(self) -> str:
        sleeves: list[str] = []
        while self.ifs < MIN_IFS or self.filters < MIN_FILTERS:
            links = self.rng.randint(60, 140)
            sleeves.append(self.group("    ", self.chain("     ", links)))
        body = "\n   ".join(sleeves)
        return (
            ";; Generated by bench/bench_symphony.py (seeded): a large symphony for timing.\n"
            '(defsymphony "Generated benchmark" {:rebalance-frequency :daily}\n'
            f"  (weight-equal\n  [{body}]))\n"
        )


def generate(path: Path) -> None:
    path.write_text(Generator(SEED).symphony(), encoding="utf-8")


def counts(symphony: Symphony) -> tuple[int, int, int]:
    """(if nodes, filter nodes, all nodes) of the parsed tree."""
    nodes = list(iter_nodes(symphony))
    ifs = sum(isinstance(n, If) for n in nodes)
    filters = sum(isinstance(n, Filter) for n in nodes)
    return ifs, filters, len(nodes)


# --- measuring ---------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def spread(samples: list[float]) -> str:
    return f"best {ms(min(samples))}   median {ms(statistics.median(samples))}"


def repeat(k: int, run: Callable[[], dict[str, float]]) -> dict[str, list[float]]:
    """``run`` k times; each returns its timed stages. GC runs between runs, untimed."""
    stages: dict[str, list[float]] = {}
    for _ in range(k):
        gc.collect()
        for name, seconds in run().items():
            stages.setdefault(name, []).append(seconds)
    return stages


def generated_once(path: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    strategy = SymphonyStrategy("generated", read_symphony_file(path))
    t1 = time.perf_counter()
    store = FilePriceStore.bundled()
    history = store.history(sorted(strategy.symbols()), AS_OF, strategy.lookback())
    t2 = time.perf_counter()
    strategy.evaluate(history, AS_OF)
    t3 = time.perf_counter()
    return {"read + parse": t1 - t0, "prices": t2 - t1, "evaluate": t3 - t2, "total": t3 - t0}


def builtin_universe() -> list[str]:
    symbols: set[str] = set()
    for name in BUILTINS:
        symbols |= SymphonyStrategy(name, builtin_symphony(name)).symbols()
    return sorted(symbols)


def builtin_once(name: str, history: PriceHistory) -> tuple[dict[str, float], int, int]:
    """Stages of one built-in, and (sessions decided, sessions without a decision)."""
    t0 = time.perf_counter()
    strategy = SymphonyStrategy(name, builtin_symphony(name))
    t1 = time.perf_counter()
    evaluation = strategy.evaluate_all(history)
    t2 = time.perf_counter()
    first, last = history.row_index(START), history.row_index(AS_OF)
    if history.session(first) < START:
        first += 1
    decided = undecided = 0
    for index in range(first, last + 1):
        try:
            evaluation.weights_at(history.session(index))
            decided += 1
        except StrategyError:
            undecided += 1
    t3 = time.perf_counter()
    stages = {"parse": t1 - t0, "evaluate_all": t2 - t1, "rows": t3 - t2, "total": t3 - t0}
    return stages, decided, undecided


def builtins_once(history: PriceHistory) -> dict[str, float]:
    stages: dict[str, float] = {}
    for name in BUILTINS:
        for stage, seconds in builtin_once(name, history)[0].items():
            stages[f"{name} {stage}"] = seconds
    stages["all three"] = sum(v for k, v in stages.items() if k.endswith(" total"))
    return stages


def backtest_once() -> tuple[float, date, int]:
    t0 = time.perf_counter()
    config = load_config()
    result = run_backtest(config, bootstrap.market_data(config), START, AS_OF)
    elapsed = time.perf_counter() - t0
    return elapsed, result.metrics.start, result.metrics.sessions


def maxrss_mb() -> float:
    # Linux reports kilobytes, macOS bytes.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def child(scenario: str, argument: str) -> None:
    """One scenario, once, in this fresh process: print JSON with its stages and peak."""
    baseline = maxrss_mb()
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    if scenario == "generated":
        stages = generated_once(Path(argument))
    elif scenario == "builtins":
        builtins_once(FilePriceStore.bundled().history(builtin_universe(), AS_OF, ALL_HISTORY))
    else:
        backtest_once()
    stages["seconds"] = time.perf_counter() - t0
    print(json.dumps({"baseline": baseline, "peak": maxrss_mb(), **stages}))


def in_subprocess(scenario: str, argument: str = "") -> dict[str, float]:
    command = [sys.executable, __file__, "--child", scenario, argument]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    parsed: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return parsed


def memory_line(runs: list[dict[str, float]], target: str = "") -> None:
    peak = max(run["peak"] for run in runs)
    seconds = statistics.median(run["seconds"] for run in runs)
    print(
        f"  peak memory {peak:7.1f} MB{target}   (ru_maxrss, fresh subprocess; baseline after "
        f"imports {runs[0]['baseline']:.1f} MB; its run took {ms(seconds).strip()})"
    )


# --- the scenarios -----------------------------------------------------------------------


def scenario_generated(k: int, path: Path, built: float, memory: Memory) -> None:
    symphony = read_symphony_file(path)
    ifs, filters, nodes = counts(symphony)
    strategy = SymphonyStrategy("generated", symphony)
    print(
        f"1. generated symphony, latest date only ({AS_OF}), k={k} runs (seed {SEED}, "
        f"generated untimed in {built * 1000:.0f} ms)"
    )
    print(
        f"  ifs={ifs} filters={filters} nodes={nodes} bytes={path.stat().st_size:,} "
        f"symbols={len(strategy.symbols())}"
    )
    history = FilePriceStore.bundled().history(sorted(strategy.symbols()), AS_OF, ALL_HISTORY)
    weights = strategy.evaluate(history, AS_OF)
    print(
        f"  decision on {AS_OF}: {len(weights)} symbols, weights sum {sum(weights.values()):.4f}; "
        f"history {history.session(0)}..{history.session(len(history.dates) - 1)} "
        f"({len(history.dates)} sessions)"
    )
    del history, weights
    stages = repeat(k, lambda: generated_once(path))
    cold = memory["generated"]
    warm, fresh = f"warm: {k} runs in this process", f"cold: {len(cold)} fresh processes"
    print(f"  {'':<13}{warm:<37}   |   {fresh}")
    for name, samples in stages.items():
        target = "   (target < 1 s)" if name == "total" else ""
        first = [run[name] for run in cold]
        print(f"  {name:<13}{spread(samples)}   |   {spread(first)}{target}")
    memory_line(cold)


def scenario_builtins(k: int, memory: Memory) -> None:
    t0 = time.perf_counter()
    history = FilePriceStore.bundled().history(builtin_universe(), AS_OF, ALL_HISTORY)
    loaded = time.perf_counter() - t0
    print(
        f"2. built-ins, full history {START}..{AS_OF} (history from "
        f"{history.session(0)}: {len(history.dates)} sessions x {len(history.symbols)} "
        f"symbols, loaded once in {loaded * 1000:.0f} ms, not in the total), k={k} runs"
    )
    stages = repeat(k, lambda: builtins_once(history))
    for name in BUILTINS:
        _, decided, undecided = builtin_once(name, history)
        parts = "   ".join(
            f"{stage} {statistics.median(stages[f'{name} {stage}']) * 1000:6.1f}"
            for stage in ("parse", "evaluate_all", "rows")
        )
        print(f"  {name:<14}{spread(stages[f'{name} total'])}   (median ms: {parts})")
        print(f"  {'':<14}sessions decided {decided}, without a decision {undecided}")
    print(f"  {'all three':<14}{spread(stages['all three'])}   (target < 2 s)")
    memory_line(memory["builtins"])


def scenario_backtest(k: int, memory: Memory) -> None:
    runs = [backtest_once() for _ in range(k)]
    _, start, sessions = runs[0]
    print(
        f"3. backtest of the default config (nuclear/tecl/kmlm-switcher 30/50/20), "
        f"requested {START}..{AS_OF}, k={k} runs"
    )
    print(f"  starts {start} (first session every strategy decides), {sessions} sessions")
    print(f"  wall         {spread([r[0] for r in runs])}   (target < 10 s)")
    memory_line(memory["backtest"], "   (target < 1 GB = 1024 MB)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
        return
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores; "
        "time.perf_counter wall times, best/median of k in-process runs; peak memory = "
        "ru_maxrss of a fresh subprocess per scenario"
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "generated.clj"
        t0 = time.perf_counter()
        generate(path)
        built = time.perf_counter() - t0
        # Subprocesses first: a child's ru_maxrss starts from its parent's peak (Linux
        # carries the high-water mark across fork and exec), so spawn them while small.
        memory = {
            "generated": [in_subprocess("generated", str(path)) for _ in range(COLD_RUNS)],
            "builtins": [in_subprocess("builtins")],
            "backtest": [in_subprocess("backtest")],
        }
        scenario_generated(k, path, built, memory)
    scenario_builtins(k, memory)
    scenario_backtest(max(1, k // 2), memory)


if __name__ == "__main__":
    main()
