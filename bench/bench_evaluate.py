"""Benchmark: a cold ``alchemiser evaluate`` of large symphonies, as a user runs it.

Prints numbers; asserts nothing. Two symphonies, each evaluated for 2026-07-31 in
fresh processes (``python -c 'alchemiser.cli.main.main(...)'``: imports, read + parse,
price files, evaluation, printing), the median of k runs (default 5):

1. a real-shaped export from ``bench/gen_symphony.py`` (seeded): ~2 MB, ~5,000 nodes,
   80-95 tickers, over ``gen_symphony.prices_dir()`` (the shared directory of real
   prices when present, else the bundled prices; the line says which);
2. the generated benchmark symphony of ``bench/bench_symphony.py`` (over 1,000 ``if``
   and 250 ``filter`` nodes), over the bundled prices.

Target for both: under 1.0 s wall and under 150 MiB peak. Wall time is measured around
the child process; peak memory is the child's ``ru_maxrss`` and its CPU time (user +
system, less sensitive than wall time to other load on the machine) its ``ru_utime +
ru_stime``, both from ``os.wait4``.

``--src DIR`` runs another checkout's ``src`` (e.g. a ``git archive`` of an earlier
commit) with this interpreter, so one script measures before and after.

Run: .venv/bin/python bench/bench_evaluate.py [k] [--src DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_symphony  # noqa: E402
import gen_symphony  # noqa: E402

AS_OF = "2026-07-31"
RUN = "import sys; from alchemiser.cli.main import main; sys.exit(main(sys.argv[1:]))"


def cold(src: Path, arguments: list[str]) -> tuple[float, float, str, float]:
    """(wall seconds, peak MiB, sha256 of stdout, CPU seconds) of one fresh process."""
    env = dict(os.environ, PYTHONPATH=str(src))
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", RUN, *arguments], stdout=out, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        digest = hashlib.sha256(out.read()).hexdigest()[:16]
    if child.returncode != 0:
        raise SystemExit(f"evaluate failed ({child.returncode}): {arguments}")
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return wall, usage.ru_maxrss / scale, digest, usage.ru_utime + usage.ru_stime


def measure(label: str, src: Path, arguments: list[str], k: int) -> None:
    runs = [cold(src, arguments) for _ in range(k)]
    walls = [r[0] for r in runs]
    peaks = [r[1] for r in runs]
    digests = {r[2] for r in runs}
    cpu = statistics.median(r[3] for r in runs)
    print(
        f"  {label:<34} wall median {statistics.median(walls):6.3f} s "
        f"(best {min(walls):.3f}, CPU {cpu:.3f})"
        f"   peak median {statistics.median(peaks):6.1f} MiB (max {max(peaks):.1f})"
        f"   output sha256 {'/'.join(sorted(digests))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("k", type=int, nargs="?", default=5)
    parser.add_argument("--src", type=Path, default=HERE.parent / "src")
    args = parser.parse_args()
    bundled = gen_symphony.BUNDLED_PRICES
    prices = gen_symphony.prices_dir()
    print(
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores; src {args.src}; k={args.k} fresh processes each; "
        "targets < 1.0 s and < 150 MiB"
    )
    with tempfile.TemporaryDirectory() as directory:
        big = Path(directory) / "export.clj"
        text, tickers = gen_symphony.generate()
        big.write_text(text, encoding="utf-8")
        generated = Path(directory) / "generated.clj"
        bench_symphony.generate(generated)
        print(
            f"  export: {len(text):,} bytes, {len(tickers)} tickers, prices {prices}; "
            f"generated: {generated.stat().st_size:,} bytes, bundled prices"
        )
        measure(
            "evaluate export (2 MB)",
            args.src,
            ["evaluate", str(big), "--as-of", AS_OF, "--prices", str(prices)],
            args.k,
        )
        measure(
            "evaluate bench_symphony generated",
            args.src,
            ["evaluate", str(generated), "--as-of", AS_OF, "--prices", str(bundled)],
            args.k,
        )


if __name__ == "__main__":
    main()
