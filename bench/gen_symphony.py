"""Generate symphonies shaped like real Composer exports (seeded: same seed, same text).

Real exports of large symphonies share a shape this reproduces:

- depth 10-20: a top-level ``weight-equal`` over long-named sleeves, each a chain of
  ``if`` nodes (rsi / cumulative-return / moving-average / stdev conditions, a fund's
  RSI against another's, price against its moving average) whose branches open more
  groups, filters and chains;
- filters are a large share of the nodes, most of them over groups (sub-portfolios
  the filter scores by their compounded value), some over assets;
- ``weight-inverse-volatility`` blocks over groups, ``weight-specified`` pairs;
- 50-100 tickers, every one with a close on the evaluation date;
- verbose text: long group names, fund names on assets, ``{:window N}`` maps and
  Composer's deep indentation, so ~5,000 nodes make ~2 MB.

Tickers come from a prices directory: ``/work/shared/data/prices`` (700+ real funds and
stocks) when present, else the bundled prices (about 40 tickers, so a symphony over
them names fewer than 50). ``PRICES_DIR`` overrides it.

Run: .venv/bin/python bench/gen_symphony.py OUT.clj [--seed N] [--nodes N] [--bytes N]
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
from datetime import date
from pathlib import Path

SHARED_PRICES = Path("/work/shared/data/prices")
BUNDLED_PRICES = Path(__file__).resolve().parent.parent / "src/alchemiser/data/prices"
AS_OF = date(2026, 7, 31)
FIRST_BY = date(2012, 1, 3)
"""A ticker qualifies when its history starts by this date and has a close on AS_OF."""

SEED = 15_2026
NODES = 5_000
BYTES = 2_000_000

THRESHOLDS: tuple[tuple[str, tuple[int, ...], float, float, int], ...] = (
    ("rsi", (10, 10, 10, 14, 20, 9, 7, 5), 18.0, 85.0, 0),
    ("cumulative-return", (1, 2, 5, 10, 20, 60), -15.0, 15.0, 1),
    ("moving-average-return", (5, 10, 20, 90), -2.0, 2.0, 2),
    ("stdev-return", (5, 10, 20, 30), 0.5, 6.0, 1),
    ("max-drawdown", (10, 60), 3.0, 30.0, 0),
)
SCORES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("rsi", (5, 10, 10, 14, 20)),
    ("cumulative-return", (5, 10, 20, 60)),
    ("moving-average-return", (10, 20, 90)),
    ("stdev-return", (10, 20, 30)),
    ("max-drawdown", (10, 60)),
)
AVERAGES = ("moving-average-price", "exponential-moving-average-price")
WORDS = (
    *("Anansi", "Scale-in", "FTLT", "Bull", "Bear", "Hedge", "Pop Bots", "BWC", "Modified"),
    *("Volatility", "Frontrunner", "Safety", "Mean Reversion", "Momentum", "Rotator", "v2"),
    *("Semis", "Nasdaq", "Treasuries", "Commodities", "K-1 Free", "Dip Buy", "TQQQ or Not"),
    *("Sideways Market Deleverage", "Overbought", "Oversold", "Beta Baller", "Sort", "Top N"),
)


def _dates(path: Path) -> tuple[str, str] | None:
    """First and last date of a ``date,close`` file, or None when it cannot be read."""
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError):
        return None
    rows = [line for line in lines[1:] if line.strip()]
    if not rows:
        return None
    return rows[0].split(",", 1)[0], rows[-1].split(",", 1)[0]


def prices_dir() -> Path:
    """The prices the generated symphonies draw tickers from (and the bench loads)."""
    override = os.environ.get("PRICES_DIR")
    if override:
        return Path(override)
    return SHARED_PRICES if SHARED_PRICES.is_dir() else BUNDLED_PRICES


def pool(directory: Path, rng: random.Random, wanted: int) -> list[str]:
    """Up to ``wanted`` tickers of ``directory`` with history from FIRST_BY to AS_OF."""
    names = sorted(p.name for p in directory.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    rng.shuffle(names)
    chosen: list[str] = []
    for name in names:
        span = _dates(directory / name)
        if span and span[0] <= FIRST_BY.isoformat() and span[1] >= AS_OF.isoformat():
            chosen.append(name.split(".", 1)[0].upper())
            if len(chosen) == wanted:
                break
    return sorted(chosen)


class Generator:
    """One symphony's text from a seeded ``random.Random``; counts the nodes it writes."""

    def __init__(self, seed: int, tickers: list[str]) -> None:
        self.rng = random.Random(seed)
        self.tickers = tickers
        self.nodes = 0
        self.groups = 0

    def ticker(self) -> str:
        return self.rng.choice(self.tickers)

    def label(self) -> str:
        self.groups += 1
        words = " ".join(self.rng.sample(WORDS, self.rng.randint(3, 6)))
        return f"{words} | {self.ticker()} {self.rng.choice(('/', '|', '-'))} #{self.groups}"

    def indicator(self, fn: str, ticker: str, window: int) -> str:
        return f'({fn} "{ticker}" {{:window {window}}})'

    def condition(self) -> str:
        rng = self.rng
        op = rng.choice((">", "<", ">", "<", ">=", "<="))
        roll = rng.random()
        if roll < 0.6:
            fn, windows, low, high, digits = rng.choice(THRESHOLDS)
            value = round(rng.uniform(low, high), digits)
            return f"({op} {self.indicator(fn, self.ticker(), rng.choice(windows))} {value:g})"
        if roll < 0.8:
            window = rng.choice((10, 10, 20, 5))
            left, right = rng.sample(self.tickers, 2)
            sides = self.indicator("rsi", left, window), self.indicator("rsi", right, window)
            return f"({op} {sides[0]} {sides[1]})"
        ticker = self.ticker()
        long = self.indicator(rng.choice(AVERAGES), ticker, rng.choice((50, 100, 200)))
        if roll < 0.9:
            return f'({op} (current-price "{ticker}") {long})'
        return (
            f"({op} {self.indicator('moving-average-price', ticker, rng.choice((10, 20)))} {long})"
        )

    def asset(self, pad: str, ticker: str | None = None) -> str:
        self.nodes += 1
        ticker = ticker or self.ticker()
        return f'(asset\n{pad} "{ticker}"\n{pad} "{ticker} - {self.rng.choice(WORDS)} Fund")'

    def group(self, pad: str, depth: int, budget: int) -> str:
        self.nodes += 1
        inner = pad + "  "
        return f'(group\n{pad} "{self.label()}"\n{pad} [{self.node(inner, depth + 1, budget - 1)}])'

    def children(self, pad: str, depth: int, budget: int, count: int, groups: bool) -> str:
        parts = []
        share = max(1, budget // count)
        distinct = self.rng.sample(self.tickers, count)
        for ticker in distinct:
            if groups and share > 1:
                parts.append(self.group(pad + "  ", depth + 1, share))
            else:
                parts.append(self.asset(pad + "  ", ticker))
        return f"\n{pad}  ".join(parts)

    def filter(self, pad: str, depth: int, budget: int) -> str:
        self.nodes += 1
        rng = self.rng
        fn, windows = rng.choice(SCORES)
        over_groups = budget > 4 and rng.random() < 0.75
        count = rng.randint(2, 4) if over_groups else rng.randint(3, 8)
        how = rng.choice(("select-top", "select-top", "select-bottom"))
        body = self.children(pad, depth, budget - 1, count, over_groups)
        pick = rng.randint(1, max(1, count - 1))
        return (
            f"(filter\n{pad} ({fn} {{:window {rng.choice(windows)}}})\n{pad} ({how} {pick})\n"
            f"{pad} [{body}])"
        )

    def inverse_volatility(self, pad: str, depth: int, budget: int) -> str:
        self.nodes += 1
        count = self.rng.randint(2, 3)
        body = self.children(pad, depth, budget - 1, count, budget > 3)
        window = self.rng.choice((10, 14, 20, 30))
        return f"(weight-inverse-volatility\n{pad} {window}\n{pad} [{body}])"

    def weight_specified(self, pad: str) -> str:
        self.nodes += 1
        first, second = self.rng.sample(self.tickers, 2)
        share = self.rng.choice((50, 60, 75, 80))
        return (
            f"(weight-specified\n{pad} {share}\n{pad} {self.asset(pad + ' ', first)}\n"
            f"{pad} {100 - share}\n{pad} {self.asset(pad + ' ', second)})"
        )

    def if_node(self, pad: str, depth: int, budget: int) -> str:
        self.nodes += 1
        inner = pad + "  "
        then_budget = max(1, (budget - 1) // 2)
        then = self.node(inner, depth + 1, then_budget)
        otherwise = self.node(inner, depth + 1, budget - 1 - then_budget)
        return f"(if\n{pad} {self.condition()}\n{pad} [{then}]\n{pad} [{otherwise}])"

    def node(self, pad: str, depth: int, budget: int) -> str:
        """A subtree of about ``budget`` nodes starting at ``depth``."""
        rng = self.rng
        if budget <= 1 or depth >= 19:
            return self.asset(pad)
        if budget <= 3:
            return self.weight_specified(pad) if rng.random() < 0.3 else self.asset(pad)
        roll = rng.random()
        if depth < 8:  # the trunk: chains and groups, so leaves sit 10-20 deep
            if roll < 0.6:
                return self.if_node(pad, depth, budget)
            if roll < 0.8:
                return self.filter(pad, depth, budget)
            return self.group(pad, depth, budget)
        if roll < 0.35:
            return self.filter(pad, depth, budget)
        if roll < 0.75:
            return self.if_node(pad, depth, budget)
        if roll < 0.85:
            return self.inverse_volatility(pad, depth, budget)
        return self.group(pad, depth, budget)

    def symphony(self, nodes: int) -> str:
        sleeves = []
        while self.nodes < nodes:
            budget = min(nodes - self.nodes, self.rng.randint(200, 600))
            sleeves.append(self.group("   ", 2, budget))
        self.nodes += 1  # the weight-equal at the root
        body = "\n   ".join(sleeves)
        return (
            f'(defsymphony\n "{self.label()} (generated, seed {self.rng.random():.6f})"\n'
            ' {:asset-class "EQUITIES", :rebalance-frequency :daily}\n'
            f" (weight-equal\n  [{body}]))\n"
        )


def generate(
    seed: int = SEED, nodes: int = NODES, size: int = BYTES, directory: Path | None = None
) -> tuple[str, list[str]]:
    """(text, ticker pool): a symphony of about ``nodes`` nodes over tickers of
    ``directory`` (default ``prices_dir()``), padded with Composer-style indentation to
    about ``size`` bytes."""
    rng = random.Random(seed)
    tickers = pool(directory or prices_dir(), rng, rng.randint(80, 95))
    text = Generator(seed, tickers).symphony(nodes)
    lines = text.split("\n")
    if len(text) < size:  # exports indent deeper than we do: widen every indent evenly
        extra = (size - len(text)) / sum(1 for line in lines if line.startswith(" "))
        owed = 0.0
        for i, line in enumerate(lines):
            if line.startswith(" "):
                owed += extra
                lines[i] = " " * int(owed) + line
                owed -= int(owed)
    return "\n".join(lines), tickers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--bytes", type=int, default=BYTES)
    args = parser.parse_args()
    text, tickers = generate(args.seed, args.nodes, args.bytes)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(text):,} bytes, {len(tickers)} tickers from {prices_dir()}")


if __name__ == "__main__":
    main()
