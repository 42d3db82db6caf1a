"""Benchmark: diff + risk review for a 5,000-symbol account. Prints numbers; asserts nothing.

Target (issue 2): under 50 ms for diff + risk on a 2-core machine. Two books:
- rebuild: 80% of symbols held, 80% targeted, weights unrelated to holdings, so about
  92% of symbols trade (the worst case: one intent and one risk decision each);
- drift: holdings were at target and prices moved by up to +-15% since, so about a
  third of the symbols leave their drift band and trade (a typical periodic run).

Two measures of each book:
- in-process: ``repeats`` rounds in this process, after the first; the median and the
  best round;
- cold: ``--cold`` fresh processes (default 5), each timing its first round (what one
  scheduled run pays: nothing warmed up by an earlier round) and the median of its
  ``repeats`` rounds; the median of each over the processes.

Run: make bench  (or .venv/bin/python bench/bench_diff_risk.py [symbols] [repeats]
[--cold N] [--src DIR], DIR another checkout's src/ to measure a baseline)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
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


def rounds(book: Book, repeats: int) -> tuple[list[float], list[float], tuple[int, int, int]]:
    """Milliseconds of diff and of risk for each of ``repeats`` rounds, and the counts of
    intents, holds and approved orders."""
    targets, snapshot, prices = book
    policy = DiffPolicy()
    limits = RiskLimits(max_orders=10_000, max_position_weight=Decimal(1))
    diff_ms: list[float] = []
    risk_ms: list[float] = []
    counts = (0, 0, 0)
    for _ in range(repeats):
        start = time.perf_counter()
        plan = diff(targets, snapshot, prices, policy, "bench-run")
        middle = time.perf_counter()
        verdicts = review(plan.intents, snapshot, prices, limits, TradingState.ACTIVE)
        end = time.perf_counter()
        diff_ms.append((middle - start) * 1000)
        risk_ms.append((end - middle) * 1000)
        counts = (len(plan.intents), len(plan.holds), len(verdicts.approved))
        # Free this round's results here, untimed, not inside the next round's diff.
        del plan, verdicts
    return diff_ms, risk_ms, counts


BOOKS = {"rebuild": rebuild, "drift": drift}


def measure(name: str, book: Book, repeats: int) -> None:
    diff_ms, risk_ms, (intents, holds, approved) = rounds(book, repeats + 1)
    # The first round warms up what a process does once; the cold runs report it.
    diff_ms, risk_ms = diff_ms[1:], risk_ms[1:]
    total = [d + r for d, r in zip(diff_ms, risk_ms, strict=True)]
    print(
        f"{name}: symbols={len(book[2])} intents={intents} holds={holds} "
        f"approved={approved} repeats={repeats}"
    )
    print(f"  diff   median {statistics.median(diff_ms):7.2f} ms   min {min(diff_ms):7.2f} ms")
    print(f"  risk   median {statistics.median(risk_ms):7.2f} ms   min {min(risk_ms):7.2f} ms")
    print(
        f"  total  median {statistics.median(total):7.2f} ms   "
        f"min {min(total):7.2f} ms   (target < 50 ms)"
    )


def child(symbols: int, repeats: int) -> None:
    """One cold process: per book, its first round's total and its rounds' median."""
    result = {}
    for name, make in BOOKS.items():
        diff_ms, risk_ms, _ = rounds(make(symbols), repeats)
        total = [d + r for d, r in zip(diff_ms, risk_ms, strict=True)]
        result[name] = (total[0], statistics.median(total))
    print(json.dumps(result))


def cold(symbols: int, repeats: int, processes: int, src: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if src is not None:
        env["PYTHONPATH"] = src
    runs = []
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, __file__, str(symbols), str(repeats), "--child"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out))
    print(f"cold: {processes} fresh processes, {repeats} rounds each")
    for name in BOOKS:
        first = [run[name][0] for run in runs]
        medians = [run[name][1] for run in runs]
        print(
            f"  {name:8s} first round median {statistics.median(first):7.2f} ms "
            f"(min {min(first):6.2f})   process medians' median "
            f"{statistics.median(medians):7.2f} ms (min {min(medians):6.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("symbols", nargs="?", type=int, default=5_000)
    parser.add_argument("repeats", nargs="?", type=int, default=20)
    parser.add_argument("--cold", type=int, default=5, metavar="N")
    parser.add_argument("--src", help="another checkout's src/ to measure instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.symbols, args.repeats)
        return
    if args.src is None:
        for name, make in BOOKS.items():
            measure(name, make(args.symbols), args.repeats)
    if args.cold:
        cold(args.symbols, args.repeats, args.cold, args.src)


if __name__ == "__main__":
    main()
