"""Benchmark: diff + risk review for a 5,000-symbol account. Prints numbers; asserts nothing.

Target (issue 2): under 50 ms for diff + risk on a 2-core machine. Two books:
- rebuild: 80% of symbols held, 80% targeted, weights unrelated to holdings, so about
  92% of symbols trade (the worst case: one intent and one risk decision each);
- drift: holdings were at target and prices moved by up to +-15% since, so about a
  third of the symbols leave their drift band and trade (a typical periodic run).

Run: make bench  (or .venv/bin/python bench/bench_diff_risk.py [symbols] [repeats])
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from decimal import Decimal

from alchemiser.domain.account import AccountSnapshot, Position
from alchemiser.domain.decisions import TradingState
from alchemiser.portfolio.diff import DiffPolicy, diff
from alchemiser.portfolio.risk import RiskLimits, review

Book = tuple[dict[str, float], AccountSnapshot, dict[str, Decimal]]


def rebuild(symbols: int, seed: int = 7) -> Book:
    rng = random.Random(seed)
    names = [f"S{i:04d}" for i in range(symbols)]
    prices = {n: Decimal(f"{rng.uniform(5, 500):.4f}") for n in names}
    held = rng.sample(names, k=int(symbols * 0.8))
    positions = tuple(
        Position(symbol=n, qty=Decimal(f"{rng.uniform(0.1, 50):.6f}")) for n in sorted(held)
    )
    targeted = rng.sample(names, k=int(symbols * 0.8))
    raw = {n: rng.random() for n in targeted}
    total = sum(raw.values())
    targets = {n: w / total * 0.98 for n, w in raw.items()}
    snapshot = AccountSnapshot(
        cash=Decimal(250_000), buying_power=Decimal(250_000), positions=positions
    )
    return targets, snapshot, prices


def drift(symbols: int, seed: int = 11) -> Book:
    rng = random.Random(seed)
    names = [f"S{i:04d}" for i in range(symbols)]
    targets = dict.fromkeys(names, 0.99 / symbols)
    equity = Decimal(5_000_000)
    yesterday = {n: Decimal(f"{rng.uniform(5, 500):.4f}") for n in names}
    positions = tuple(
        Position(
            symbol=n,
            qty=(equity * Decimal(targets[n]) * Decimal("0.99") / yesterday[n]).quantize(
                Decimal("0.000001")
            ),
        )
        for n in names
    )
    prices = {
        n: (p * Decimal(1 + rng.uniform(-0.15, 0.15))).quantize(Decimal("0.0001"))
        for n, p in yesterday.items()
    }
    snapshot = AccountSnapshot(
        cash=Decimal(50_000), buying_power=Decimal(50_000), positions=positions
    )
    return targets, snapshot, prices


def measure(name: str, book: Book, repeats: int) -> None:
    targets, snapshot, prices = book
    policy = DiffPolicy()
    limits = RiskLimits(max_orders=10_000, max_position_weight=Decimal(1))
    diff_ms: list[float] = []
    risk_ms: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        plan = diff(targets, snapshot, prices, policy, "bench-run")
        middle = time.perf_counter()
        verdicts = review(plan.intents, snapshot, prices, limits, TradingState.ACTIVE)
        end = time.perf_counter()
        diff_ms.append((middle - start) * 1000)
        risk_ms.append((end - middle) * 1000)
        intents, approved = len(plan.intents), len(verdicts.approved)
        holds = len(plan.holds)
        # Free this round's results here, untimed, not inside the next round's diff.
        del plan, verdicts
    total = [d + r for d, r in zip(diff_ms, risk_ms, strict=True)]
    print(
        f"{name}: symbols={len(prices)} intents={intents} holds={holds} "
        f"approved={approved} repeats={repeats}"
    )
    print(f"  diff   median {statistics.median(diff_ms):7.2f} ms   min {min(diff_ms):7.2f} ms")
    print(f"  risk   median {statistics.median(risk_ms):7.2f} ms   min {min(risk_ms):7.2f} ms")
    print(
        f"  total  median {statistics.median(total):7.2f} ms   "
        f"min {min(total):7.2f} ms   (target < 50 ms)"
    )


def main() -> None:
    symbols = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    measure("rebuild", rebuild(symbols), repeats)
    measure("drift", drift(symbols), repeats)


if __name__ == "__main__":
    main()
