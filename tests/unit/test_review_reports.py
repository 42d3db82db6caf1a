"""The backtest command's edges: an --out that cannot take the files, a range without
sessions, a benchmark whose data stops before the backtest does."""

from __future__ import annotations

import csv
import gzip
from datetime import date
from pathlib import Path

import numpy as np
import pytest

import alchemiser
from alchemiser.cli import main
from alchemiser.domain.prices import PriceHistory
from alchemiser.reporting.benchmark import benchmark_equity, gaps
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


def test_an_out_path_that_is_a_file_is_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, SPY_ONLY)
    out = tmp_path / "not-a-directory"
    out.write_text("x")
    status = main(_backtest(config, out, "--benchmark", "none"))
    assert status in (1, 2)
    assert "alchemiser:" in capsys.readouterr().err


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


def test_benchmark_gaps_are_counted_and_a_stop_is_dated() -> None:
    days = [date(2026, 7, d) for d in (6, 7, 8, 9, 10)]
    dates = np.array([np.datetime64(d, "D") for d in days])
    closes = np.array([[100.0], [np.nan], [102.0], [103.0], [104.0]])
    history = PriceHistory(dates, ("B",), closes)
    assert gaps(history, "B", days) == [
        "benchmark B has no close on 1 of the 5 sessions: each is marked at its last close "
        "before (no return that day)"
    ]
    assert benchmark_equity(history, "B", days, 100.0).tolist() == [
        100.0,
        100.0,
        102.0,
        103.0,
        104.0,
    ]
    stopped = PriceHistory(dates[:3], ("B",), closes[:3])
    (note,) = gaps(stopped, "B", days)
    assert note.startswith("benchmark B has no close on 3 of the 5 sessions")
    assert "its data stops at 2026-07-08, so it is held flat for the last 2 sessions" in note
    whole = PriceHistory(dates, ("B",), np.array([[100.0], [101.0], [102.0], [103.0], [104.0]]))
    assert gaps(whole, "B", days) == []
