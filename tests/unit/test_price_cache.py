"""Binary copies of parsed price files: read only while current and intact, rebuilt
otherwise, never written for the bundled prices, for a bad file or for a file that
changed moments ago."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import numpy as np
import pytest

from alchemiser.adapters.files import price_cache, prices
from alchemiser.adapters.files.prices import FilePriceStore, bundled_prices_dir
from alchemiser.errors import DataError
from tests.conftest import LAST
from tests.unit.test_price_arrays import valid_text

TEXT = "date,open,close,volume\n2026-07-29,,10.5,\n2026-07-30,11,11.25,100\n2026-07-31,12,12,0\n"


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as settled however recently they were written."""
    monkeypatch.setattr(price_cache, "SETTLED_NS", 0)


def written(directory: Path, text: str = TEXT, name: str = "SPY.csv.gz") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    raw = text.encode()
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return path


def arrays(directory: Path) -> list[bytes]:
    series = FilePriceStore(directory)._read("SPY")
    assert series.opens is not None
    return [series.dates.tobytes(), series.closes.tobytes(), series.opens.tobytes()]


def refuse_to_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str, source: str) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(prices, "_parse", refuse)


@pytest.mark.usefixtures("settled")
def test_a_copy_is_kept_and_read_back_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written(tmp_path)
    parsed = arrays(tmp_path)
    assert (tmp_path / ".cache" / "SPY.csv.gz.npy").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache", "SPY.csv.gz"]
    refuse_to_parse(monkeypatch)
    assert arrays(tmp_path) == parsed
    history = FilePriceStore(tmp_path).history(["SPY"], LAST, 3)
    assert history.closes[:, 0].tolist() == [10.5, 11.25, 12.0]


@pytest.mark.usefixtures("settled")
@pytest.mark.parametrize("close", ["13", "12.5"], ids=["same-size", "other-size"])
def test_a_changed_file_is_parsed_again(tmp_path: Path, close: str) -> None:
    path = written(tmp_path, name="SPY.csv")
    arrays(tmp_path)
    before = path.stat()
    written(tmp_path, TEXT.replace("12,12,0", f"12,{close},0"), name="SPY.csv")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same mtime, too
    assert FilePriceStore(tmp_path)._read("SPY").closes[-1] == float(close)


@pytest.mark.usefixtures("settled")
@pytest.mark.parametrize(
    "damage",
    [
        "truncate",
        "truncate-whole-values",
        "header-length",
        "flip",
        "garbage",
        "empty",
        "other-file",
        "other-dtype",
        "big-endian",
    ],
)
def test_a_damaged_copy_is_ignored_and_rebuilt(tmp_path: Path, damage: str) -> None:
    written(tmp_path)
    parsed = arrays(tmp_path)
    copy = tmp_path / ".cache" / "SPY.csv.gz.npy"
    raw = copy.read_bytes()
    if damage == "truncate":
        copy.write_bytes(raw[:-5])
    elif damage == "truncate-whole-values":  # fewer values than the header's shape
        copy.write_bytes(raw[:-8])
    elif damage == "header-length":  # the header's own length no longer fits it
        copy.write_bytes(raw[:8] + bytes([raw[8] + 8]) + raw[9:])
    elif damage == "other-dtype":  # a valid .npy of other values: read by np.load
        np.save(copy, np.frombuffer(raw[128:], dtype=np.float64))
    elif damage == "big-endian":
        np.save(copy, np.frombuffer(raw[128:], dtype=np.int64).astype(">i8"))
    elif damage == "flip":
        copy.write_bytes(raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:])
    elif damage == "garbage":
        copy.write_bytes(b"\x93NUMPY garbage" * 10)
    elif damage == "empty":
        copy.write_bytes(b"")
    else:  # another file's copy under this name
        written(tmp_path / "other", TEXT.replace("10.5", "99"))
        arrays(tmp_path / "other")
        copy.write_bytes((tmp_path / "other" / ".cache" / "SPY.csv.gz.npy").read_bytes())
    assert arrays(tmp_path) == parsed
    assert copy.read_bytes() == raw  # rebuilt


@pytest.mark.usefixtures("settled")
def test_a_copy_is_read_without_np_load_as_np_load_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = written(tmp_path)
    arrays(tmp_path)
    copy = tmp_path / ".cache" / "SPY.csv.gz.npy"
    expected = np.load(copy, allow_pickle=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("np.load")

    monkeypatch.setattr(np, "load", refuse)
    data = price_cache._read(copy)
    assert data.dtype == expected.dtype
    assert data.tobytes() == expected.tobytes()
    assert data.flags.writeable
    seen = price_cache.stamp(path)
    assert seen is not None
    assert price_cache.load(path, seen) is not None


def test_no_copy_of_a_file_that_changed_moments_ago(tmp_path: Path) -> None:
    written(tmp_path)
    arrays(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SPY.csv.gz"]


@pytest.mark.usefixtures("settled")
def test_no_copy_when_turned_off_or_of_a_bad_file(tmp_path: Path) -> None:
    written(tmp_path / "off")
    FilePriceStore(tmp_path / "off", binary_cache=False).check("SPY")
    assert not (tmp_path / "off" / ".cache").exists()
    written(tmp_path / "bad", TEXT.replace("11.25", "-1"))
    for _ in range(2):
        with pytest.raises(DataError, match=r"^SPY\.csv\.gz:3: close '-1' is not a price"):
            FilePriceStore(tmp_path / "bad").check("SPY")
    assert not (tmp_path / "bad" / ".cache").exists()


@pytest.mark.usefixtures("settled")
def test_no_copy_in_the_bundled_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[Path] = []
    monkeypatch.setattr(price_cache, "save", lambda path, *_: saved.append(path))
    FilePriceStore.bundled().check("SPY")
    FilePriceStore(Path(str(bundled_prices_dir()))).check("SPY")  # named as a directory
    assert saved == []


@pytest.mark.usefixtures("settled")
def test_an_unwritable_cache_directory_is_no_error(tmp_path: Path) -> None:
    written(tmp_path)
    (tmp_path / ".cache").write_text("a file where the directory would be")
    assert len(arrays(tmp_path)) == 3
    assert price_cache.writable(tmp_path / "SPY.csv.gz") is False


@pytest.mark.usefixtures("settled")
def test_random_files_read_back_from_their_copies_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [valid_text(random.Random(f"copy:{case}")) for case in range(40)]
    first = []
    for case, text in enumerate(texts):
        written(tmp_path / str(case), text, name="SPY.csv")
        series = FilePriceStore(tmp_path / str(case))._read("SPY")
        first.append((series.dates.tobytes(), series.closes.tobytes(), series.opens))
    monkeypatch.setattr(prices, "_parse", None)
    for case, (dates, closes, opens) in enumerate(first):
        series = FilePriceStore(tmp_path / str(case))._read("SPY")
        assert (series.dates.tobytes(), series.closes.tobytes()) == (dates, closes)
        if opens is None:
            assert series.opens is None
        else:
            assert series.opens is not None
            assert series.opens.tobytes() == opens.tobytes()
    assert np.all([(tmp_path / str(c) / ".cache" / "SPY.csv.npy").is_file() for c in range(40)])
