"""The price files ``data fetch`` writes: merged with what is there, atomic, and never
a file the price reader refuses."""

from __future__ import annotations

import gzip
import os
from datetime import date
from pathlib import Path

import pytest

from alchemiser.adapters.files import price_writer
from alchemiser.adapters.files.price_writer import appended, read_stored, write_rows
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.domain.prices import DailyBar
from alchemiser.errors import ConfigError, DataError


def bar(day: str, close: float) -> DailyBar:
    return DailyBar(date.fromisoformat(day), close - 1, close + 1, close - 2, close, 1000.0)


def test_a_close_only_gz_file_is_merged_into_a_csv_and_the_gz_removed(tmp_path: Path) -> None:
    text = "date,close\n2026-07-16,10.5\n2026-07-17,11\n"
    (tmp_path / "SPY.csv.gz").write_bytes(gzip.compress(text.encode()))
    stored = read_stored(tmp_path, "SPY")
    assert stored is not None
    assert stored.last.close == "11"
    rows = appended(stored.rows, [bar("2026-07-17", 11.0), bar("2026-07-20", 12.0)])
    write_rows(tmp_path, "SPY", rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SPY.csv"]
    assert (tmp_path / "SPY.csv").read_text() == (
        "date,open,high,low,close,volume\n"
        "2026-07-16,,,,10.5,\n"
        "2026-07-17,,,,11,\n"
        "2026-07-20,11.0,13.0,10.0,12.0,1000\n"
    )
    history = FilePriceStore(tmp_path).history(["SPY"], date(2026, 7, 20), 3)
    assert history.closes[:, 0].tolist() == [10.5, 11.0, 12.0]
    assert history.opens is not None
    assert history.opens[2, 0] == 11.0


def test_rows_the_reader_refuses_are_never_written(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_text("date,close\n2026-07-17,11\n")
    rows = appended([], [bar("2026-07-20", 12.0), bar("2026-07-17", 11.0)])  # out of order
    with pytest.raises(DataError):
        write_rows(tmp_path, "SPY", rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SPY.csv"]
    assert (tmp_path / "SPY.csv").read_text() == "date,close\n2026-07-17,11\n"


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "SPY.csv").write_text("date,close\n2026-07-17,11\n")

    def refuse(source: object, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(price_writer.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_rows(tmp_path, "SPY", appended([], [bar("2026-07-20", 12.0)]))
    monkeypatch.setattr(price_writer.os, "replace", os.replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SPY.csv"]


def test_a_file_the_reader_refuses_is_not_merged(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_text("date,close\n2026-07-17,-1\n")
    with pytest.raises(DataError):
        read_stored(tmp_path, "SPY")


def test_the_directory_is_created(tmp_path: Path) -> None:
    write_rows(tmp_path / "a" / "b", "SPY", appended([], [bar("2026-07-20", 12.0)]))
    assert (tmp_path / "a" / "b" / "SPY.csv").is_file()


@pytest.mark.parametrize("symbol", ["../SPY", "sub/SPY", "/tmp/SPY", "a\\b"])
def test_a_symbol_whose_file_would_leave_the_directory_is_refused(
    tmp_path: Path, symbol: str
) -> None:
    directory = tmp_path / "prices"
    directory.mkdir()
    (directory / "sub").mkdir()
    with pytest.raises(ConfigError):
        write_rows(directory, symbol, appended([], [bar("2026-07-17", 11.0)]))
    with pytest.raises(ConfigError):
        read_stored(directory, symbol)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["prices", "sub"]
