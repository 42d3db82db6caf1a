"""Benchmark: reading price files in a cold process. Prints numbers; asserts nothing.

Two sets: (a) the bundled demo prices (39 files), (b) the first 90 files of
``shared/data/prices`` in a directory above the checkout (skipped when it is not there). Each run is
a fresh Python process that imports the reader, then reads and validates every file of
the set (gzip inflate, caps, parse); the time printed is that read alone, in-process,
and the median and best over the runs. The shared set is read three ways: parsed (no
binary copies: the directory is left as it is), then from a scratch copy of it, once
writing the binary copies and then reading them.

Run: .venv/bin/python bench/bench_prices.py [runs]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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
which, count, copies = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
directory = bundled_prices_dir() if which == "bundled" else Path(which)
names = sorted(e.name for e in directory.iterdir() if e.name.endswith(".csv.gz"))[:count]
try:
    store = FilePriceStore(directory, binary_cache=copies)
except TypeError:  # a reader without binary copies
    store = FilePriceStore(directory)
started = time.perf_counter()
rows = 0
for name in names:
    store.check(name.removesuffix(".csv.gz"))
    rows += len(store._read(name.removesuffix(".csv.gz")).dates)
print(json.dumps({"files": len(names), "rows": rows, "ms": (time.perf_counter() - started) * 1e3}))
"""


def cold(which: str, count: int, runs: int, label: str, copies: bool = False) -> None:
    times: list[float] = []
    result: dict[str, float] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, which, str(count), "1" if copies else "0"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out)
        times.append(result["ms"])
    print(
        f"{label:22s} {int(result['files']):3d} files {int(result['rows']):7d} rows: "
        f"median {statistics.median(times):7.1f} ms  best {min(times):7.1f} ms  "
        f"({runs} cold processes)"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    cold("bundled", 1000, runs, "bundled")
    if not SHARED.is_dir():
        print(f"shared skipped: {SHARED} is not there")
        return
    cold(str(SHARED), FILES, runs, "shared, parsed")
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch)
        for path in sorted(SHARED.glob("*.csv.gz"))[:FILES]:
            shutil.copy2(path, copy / path.name)
        time.sleep(2.5)  # binary copies are kept of files settled for 2 s
        cold(str(copy), FILES, 1, "shared, writing copies", copies=True)
        cold(str(copy), FILES, runs, "shared, from copies", copies=True)


if __name__ == "__main__":
    main()
