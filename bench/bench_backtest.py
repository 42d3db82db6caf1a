"""Benchmark: backtest time against the number of sessions.

Prints numbers; asserts nothing. Every figure is the median of k fresh processes (one
backtest each, as ``alchemiser backtest`` runs it), timing ``run_backtest`` from the
config to the result: loading the prices, evaluating the strategies over the whole
history, then one ``service.rebalance`` per session against the simulated broker.

Scenarios:

1. A large generated symphony (``bench_symphony.generate``: over 1,000 ``if`` and 250
   ``filter`` nodes over bundled tickers), alone in a config (allocation 1.0) over the
   bundled prices, backtested over its first 30, 1,000 and 2,829 tradable sessions
   and over every one (3,716 to 2026-07-31). The per-session cost of sessions
   1,000..2,829 is set against that of the first 1,000, each net of the fixed cost
   (``(T(2829) - T(1000)) / 1829`` against ``(T(1000) - T(30)) / 970``). Targets:
   within 1.5x; the 2,829-session run under 8 s. The long runs (2,829 and all) take
   the median of k_long processes.
2. When ``bench/gen_symphony.py`` exists, the same for the real-shaped symphony its
   ``generate()`` writes, over the prices directory it draws the tickers from.
3. The embedded default config (``load_config()``, three built-ins) from 2012-01-03 to
   2026-07-31. Target: under 3 s.

The CPU time (``time.process_time``) of the same call is printed beside each wall
time: on a shared machine it moves less than the wall time does.

Each run also prints the SHA-256 of its equity CSV (``write_csv``) and summary lines
(``summary``), so two checkouts' outputs can be compared byte for byte.

Run: .venv/bin/python bench/bench_backtest.py [k] [k_long]   (defaults 5 and 3)
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from alchemiser import bootstrap
from alchemiser.backtest import run_backtest, summary, write_csv
from alchemiser.config import load_config

BENCH = Path(__file__).resolve().parent
START = date(2012, 1, 3)
END = date(2026, 7, 31)
EARLIEST = date(1990, 1, 1)
LONG_RUN = 2_829
CONFIG = """account = "bench"

[[strategies]]
name = "{name}"
kind = "symphony"
file = "{file}"
allocation = 1.0
"""


def child(config_path: str, start: str, end: str) -> None:
    """One backtest in this fresh process: print JSON with its time, sessions, digest."""
    config = load_config(Path(config_path) if config_path else None)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_backtest(
        config, bootstrap.market_data(config), date.fromisoformat(start), date.fromisoformat(end)
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as directory:
        curve = Path(directory) / "equity.csv"
        write_csv(result, curve)
        digest = hashlib.sha256(curve.read_bytes())
    digest.update("\n".join(summary(result)).encode())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "sessions": result.metrics.sessions,
                "digest": digest.hexdigest()[:16],
                "days": [d.session.isoformat() for d in result.days],
            }
        )
    )


def once(config: Path | None, start: date, end: date) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(config or ""),
        start.isoformat(),
        end.isoformat(),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    parsed: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return parsed


def median_of(
    k: int, config: Path | None, start: date, end: date
) -> tuple[tuple[float, float], dict[str, Any]]:
    """(median wall, median CPU) seconds of k runs, and the first run's output."""
    runs = [once(config, start, end) for _ in range(k)]
    digests = {run["digest"] for run in runs}
    if len(digests) != 1:
        raise SystemExit(f"runs of one backtest disagree: {digests}")
    seconds = [float(run["seconds"]) for run in runs]
    cpu = statistics.median(float(run["cpu"]) for run in runs)
    spread = f"min {min(seconds):6.2f}  max {max(seconds):6.2f}"
    print(
        f"    {runs[0]['sessions']:>5} sessions  median {statistics.median(seconds):6.2f} s  "
        f"({spread}, k={k}; CPU {cpu:6.2f} s)  output {runs[0]['digest']}"
    )
    return (statistics.median(seconds), cpu), runs[0]


def scenario_symphony(
    label: str, symphony: Path, k: int, k_long: int, prices: Path | None = None
) -> None:
    config = symphony.parent / f"{symphony.stem}.toml"
    text = CONFIG.format(name=symphony.stem, file=symphony.name)
    if prices is not None:
        text += f'\n[data]\ndir = "{prices}"\n'
    config.write_text(text, encoding="utf-8")
    size = symphony.stat().st_size / 1e6
    print(f"\n{label} ({size:.2f} MB), alone in a config:")
    full, first = median_of(k_long, config, EARLIEST, END)
    days = [date.fromisoformat(d) for d in first["days"]]
    n = min(LONG_RUN, len(days))
    t30, _ = median_of(k, config, days[0], days[29])
    t1000, _ = median_of(k, config, days[0], days[999])
    long = median_of(k_long, config, days[0], days[n - 1])[0] if len(days) > n else full
    for what, i in (("wall", 0), ("CPU", 1)):
        early = (t1000[i] - t30[i]) / 970
        late = (long[i] - t1000[i]) / (n - 1000)
        tail = (full[i] - t1000[i]) / (len(days) - 1000)
        print(
            f"  per session ({what}): first 1,000 {early * 1e3:.2f} ms; 1,000..{n:,} "
            f"{late * 1e3:.2f} ms = {late / early:.2f}x (target <= 1.5x); 1,000..{len(days):,} "
            f"{tail * 1e3:.2f} ms = {tail / early:.2f}x"
        )
    print(f"  {n:,}-session run {long[0]:.2f} s wall, {long[1]:.2f} s CPU (target < 8 s)")
    print(f"  all {len(days):,} sessions {full[0]:.2f} s wall, {full[1]:.2f} s CPU")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    k_long = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores; run_backtest wall time (time.perf_counter) in fresh "
        "processes, median of k"
    )
    sys.path.insert(0, str(BENCH))
    from bench_symphony import generate  # noqa: PLC0415 - a sibling script, not a package

    with tempfile.TemporaryDirectory() as directory:
        generated = Path(directory) / "generated.clj"
        generate(generated)
        scenario_symphony("generated symphony (bench_symphony.py)", generated, k, k_long)
        if (BENCH / "gen_symphony.py").exists():
            module = importlib.import_module("gen_symphony")
            realistic = Path(directory) / "realistic.clj"
            text, _ = module.generate()
            realistic.write_text(text, encoding="utf-8")
            prices = module.prices_dir()
            label = f"real-shaped symphony (gen_symphony.py, prices {prices})"
            scenario_symphony(label, realistic, k, k_long, prices)
    print(f"\ndefault config (three built-ins), {START}..{END}:")
    (wall, cpu), _ = median_of(k, None, START, END)
    print(f"  {wall:.2f} s wall, {cpu:.2f} s CPU (target < 3 s)")


if __name__ == "__main__":
    main()
