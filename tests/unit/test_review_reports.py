"""Known defects of the backtest command's edges, each pinned by a test that fails
until it is fixed (strict xfail: a fix turns it into XPASS and the marker must go)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

import alchemiser
from alchemiser.cli import main
from tests.unit.test_backtest import write_config

SPY_ONLY = """
[[strategies]]
name = "a"
allocation = 1.0
weights = { SPY = 1.0 }
"""
BUNDLED = Path(alchemiser.__file__).parent / "data" / "prices"


def _backtest(config: Path, out: Path, *extra: str) -> list[str]:
    return [
        "backtest",
        "--config",
        str(config),
        "--start",
        "2026-06-01",
        "--end",
        "2026-07-31",
        "--out",
        str(out),
        "--no-chart",
        *extra,
    ]


@pytest.mark.xfail(
    strict=True,
    reason="--out naming a file: the CSV writers' mkdir raises FileExistsError "
    "(a traceback after the whole backtest ran) instead of a typed error",
)
def test_an_out_path_that_is_a_file_is_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, SPY_ONLY)
    out = tmp_path / "not-a-directory"
    out.write_text("x")
    status = main(_backtest(config, out, "--benchmark", "none"))
    assert status in (1, 2)
    assert "alchemiser:" in capsys.readouterr().err


@pytest.mark.xfail(
    strict=True,
    reason="a range without sessions is reported as a --benchmark problem (load_benchmark "
    "runs first and fails) instead of 'no sessions between ...'",
)
def test_a_range_without_sessions_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, SPY_ONLY)
    args = [
        "backtest",
        "--config",
        str(config),
        "--start",
        "2026-03-07",  # a Saturday
        "--end",
        "2026-03-08",  # and the Sunday after it
        "--out",
        str(tmp_path / "out"),
        "--no-chart",
    ]
    status = main(args)
    err = capsys.readouterr().err
    assert status != 0
    assert "no sessions" in err
    assert "--benchmark" not in err


def _prices_with_stale_benchmark(directory: Path) -> Path:
    """SPY and TLT as bundled, and STALE: SPY's closes up to 2026-06-15 only."""
    directory.mkdir()
    for name in ("SPY", "TLT"):
        (directory / f"{name}.csv.gz").write_bytes((BUNDLED / f"{name}.csv.gz").read_bytes())
    with gzip.open(BUNDLED / "SPY.csv.gz", "rt", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    kept = [rows[0], *(row for row in rows[1:] if row[0] <= "2026-06-15")]
    with (directory / "STALE.csv").open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(kept)
    return directory


@pytest.mark.xfail(
    strict=True,
    reason="a benchmark whose data stops mid-backtest is held flat at its last close for "
    "every later session without a word (benchmark_equity carries the last close): its "
    "volatility, beta and correlation are computed on invented flat days",
)
def test_a_benchmark_whose_data_stops_early_is_not_silently_held_flat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, SPY_ONLY)
    prices = _prices_with_stale_benchmark(tmp_path / "prices")
    args = _backtest(config, tmp_path / "out", "--prices", str(prices), "--benchmark", "STALE")
    status = main(args)
    captured = capsys.readouterr()
    # Either refused, or the output says the benchmark has no close after its last one.
    assert status != 0 or "2026-06-15" in captured.out + captured.err
