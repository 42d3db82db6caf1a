"""Benchmark: reading price files in a cold process. Prints numbers; asserts nothing.

Two sets: (a) the bundled demo prices (39 files), (b) the first 90 files of
``shared/data/prices`` in a directory above the checkout (skipped when it is not there). Each run is
a fresh Python process that imports the reader, then reads and validates every file of
the set (gzip inflate, caps, parse); the time printed is that read alone, in-process,
and the median and best over the runs.

Run: .venv/bin/python bench/bench_prices.py [runs]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

SHARED = next(
    (
        up / "shared" / "data" / "prices"
        for up in Path(__file__).resolve().parents
        if (up / "shared" / "data" / "prices").is_dir()
    ),
    Path("shared") / "data" / "prices",
)
FILES = 90

CHILD = """
import json, sys, time
from pathlib import Path
from alchemiser.adapters.files.prices import FilePriceStore, bundled_prices_dir
which, count = sys.argv[1], int(sys.argv[2])
directory = bundled_prices_dir() if which == "bundled" else Path(which)
names = sorted(e.name for e in directory.iterdir() if e.name.endswith(".csv.gz"))[:count]
store = FilePriceStore(directory)
started = time.perf_counter()
rows = 0
for name in names:
    store.check(name.removesuffix(".csv.gz"))
    rows += len(store._read(name.removesuffix(".csv.gz")).dates)
print(json.dumps({"files": len(names), "rows": rows, "ms": (time.perf_counter() - started) * 1e3}))
"""


def cold(which: str, count: int, runs: int) -> None:
    times: list[float] = []
    result: dict[str, float] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, which, str(count)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out)
        times.append(result["ms"])
    label = "bundled" if which == "bundled" else "shared"
    print(
        f"{label:8s} {int(result['files']):3d} files {int(result['rows']):7d} rows: "
        f"median {statistics.median(times):7.1f} ms  best {min(times):7.1f} ms  "
        f"({runs} cold processes)"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    cold("bundled", 1000, runs)
    if SHARED.is_dir():
        cold(str(SHARED), FILES, runs)
    else:
        print(f"shared   skipped: {SHARED} is not there")


if __name__ == "__main__":
    main()
