"""Cold start of each Lambda handler: how long importing it takes in a fresh process,
and how much memory the process then holds.

For each target, ten fresh ``python -c`` processes (after one untimed run, so bytecode
is compiled): the import is timed inside the child, around the import alone (the
interpreter's own start-up is not counted), and the child's peak RSS is read when it
is done. Then one ``python -X importtime`` run of the same import, whose ten largest
cumulative entries say where the time goes. Prints numbers and asserts nothing.

The children run outside Lambda (no AWS_LAMBDA_* variables), where Powertools keeps
tracing off: the cold start a run on the simulated broker pays, and "worker + Alpaca
adapters" what an account trading on Alpaca adds to it.

    python bench/bench_coldstart.py            # this checkout
    python bench/bench_coldstart.py --src DIR  # another checkout's src/ (a baseline)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

RUNS = 10
TOP = 10
TARGETS = {
    "orchestrator": "import alchemiser.handlers.orchestrator",
    "worker": "import alchemiser.handlers.worker",
    "watchdog": "import alchemiser.handlers.watchdog",
    "worker + Alpaca adapters": (
        "import alchemiser.handlers.worker, alchemiser.adapters.alpaca.broker, "
        "alchemiser.adapters.alpaca.market_data, alchemiser.bootstrap"
    ),
}
CHILD = """
import resource, sys, time
start = time.perf_counter()
{statement}
took = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(took, rss, int("pandas" in sys.modules), int("aws_xray_sdk" in sys.modules))
"""


def environment(src: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_LAMBDA_", "POWERTOOLS_", "_X_AMZN", "PYTHONPATH"))
    }
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def timed(statement: str, env: dict[str, str]) -> tuple[float, float, bool, bool]:
    """Seconds the import took, peak RSS (MiB), and whether pandas and the X-Ray SDK
    were loaded."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(statement=statement)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024, out[2] == "1", out[3] == "1"


def top_imports(statement: str, env: dict[str, str]) -> list[tuple[int, str]]:
    """The largest cumulative entries (microseconds, module) of ``-X importtime``."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:TOP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", help="import alchemiser from this directory instead")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    env = environment(args.src)
    print(f"cold start: median of {args.runs} fresh processes, import time and peak RSS")
    summary = []
    for name, statement in TARGETS.items():
        timed(statement, env)  # bytecode compiled, files in the page cache
        runs = [timed(statement, env) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        pandas, xray = runs[0][2], runs[0][3]
        summary.append((name, seconds, rss, pandas, xray))
        print(
            f"\n== {name}: {seconds:.3f} s, {rss:.0f} MiB peak RSS"
            f" (pandas {'loaded' if pandas else 'not loaded'},"
            f" aws_xray_sdk {'loaded' if xray else 'not loaded'})"
        )
        print("   top cumulative imports (-X importtime):")
        for micros, module in top_imports(statement, env):
            print(f"   {micros / 1e6:8.3f} s  {module}")
    print("\nsummary")
    for name, seconds, rss, _, _ in summary:
        print(f"  {name:<26} {seconds:6.3f} s  {rss:6.0f} MiB")


if __name__ == "__main__":
    main()
