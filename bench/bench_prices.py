"""Benchmark: reading price files in a cold process. Prints numbers; asserts nothing.

Sets: (a) the bundled demo prices (38 files), and the same rewritten with the six
columns ``data fetch`` writes (date,open,high,low,close,volume, plain CSV); (b) the
first 90 files of ``shared/data/prices`` in a directory above the checkout (skipped
when it is not there). Each run is a fresh Python process that imports the reader, then
reads and validates every file of the set (inflate, caps, parse); the time printed is
that read alone, in-process, and the median and best over the runs. The shared set is
read three ways: parsed (no binary copies: the directory is left as it is), then from a
scratch copy of it, once writing the binary copies and then reading them.

Run: .venv/bin/python bench/bench_prices.py [runs]
"""

from __future__ import annotations

import gzip
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
names = sorted(e.name for e in directory.iterdir() if e.name.endswith((".csv", ".gz")))[:count]
try:
    store = FilePriceStore(directory, binary_cache=copies)
except TypeError:  # a reader without binary copies
    store = FilePriceStore(directory)
started = time.perf_counter()
rows = 0
for name in names:
    symbol = name.removesuffix(".gz").removesuffix(".csv")
    store.check(symbol)
    rows += len(store._read(symbol).dates)
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


def wide(directory: Path) -> str:
    """The bundled files as ``data fetch`` writes files: six columns, plain CSV."""
    bundled = Path(__file__).resolve().parents[1] / "src" / "alchemiser" / "data" / "prices"
    for path in sorted(bundled.glob("*.csv.gz")):
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()[1:]
        rows = [
            f"{day},{close},{close},{close},{close},1000"
            for day, close in (line.split(",") for line in lines)
        ]
        text = "date,open,high,low,close,volume\n" + "\n".join(rows) + "\n"
        (directory / path.name.removesuffix(".gz")).write_text(text)
    return str(directory)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    cold("bundled", 1000, runs, "bundled")
    with tempfile.TemporaryDirectory() as scratch:
        cold(wide(Path(scratch)), 1000, runs, "bundled, 6 columns")
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
