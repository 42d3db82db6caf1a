"""The price reader's two ways through a file agree: what numpy reads in one go is, bit
for bit, what the line-by-line reader reads, and whatever that reader refuses numpy
leaves to it (so the bad line is still named)."""

from __future__ import annotations

import gzip
import random
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from alchemiser.adapters.files import price_arrays, prices
from alchemiser.adapters.files.prices import FilePriceStore, bundled_prices_dir
from alchemiser.errors import DataError
from tests.conftest import LAST
from tests.unit.test_price_fuzz import bundled_texts, price_text

Series = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def names_of(text: str) -> list[str] | None:
    header = text.partition("\n")[0].strip().lower()
    return prices._columns(header) if header != prices.HEADER else ["date", "close"]


def line_by_line(text: str) -> Series:
    """The line-by-line reader's result (DataError if it refuses the file)."""
    header = text.partition("\n")[0].strip().lower()
    names = names_of(text)
    if header != prices.HEADER and names is not None:
        series = prices._parse_columns(text, "SPY.csv", names)
    else:
        series = prices._parse_lines(text, "SPY.csv")
    return series.dates, series.closes, series.opens


def assert_same(fast: Series, slow: Series) -> None:
    assert fast[0].dtype == slow[0].dtype == np.dtype("datetime64[D]")
    assert fast[0].tobytes() == slow[0].tobytes()
    assert fast[1].dtype == slow[1].dtype == np.float64
    assert fast[1].tobytes() == slow[1].tobytes()
    assert (fast[2] is None) == (slow[2] is None)
    if fast[2] is not None and slow[2] is not None:
        assert fast[2].tobytes() == slow[2].tobytes()


def agree(text: str) -> bool:
    """Both ways agree on ``text``; True when numpy read it."""
    names = names_of(text)
    fast = price_arrays.parse(text, names) if names is not None else None
    try:
        slow = line_by_line(text)
    except DataError:
        assert fast is None, "read in one go a file the line-by-line reader refuses"
        return False
    if fast is not None:
        assert_same(fast, slow)
    return fast is not None


def test_the_bundled_files_are_read_in_one_go_exactly_as_line_by_line() -> None:
    for text in bundled_texts():
        assert agree(text)
        assert agree(text.replace("\n", "\r\n"))


def number(rng: random.Random) -> str:
    """A positive number as price files and people write them."""
    value = rng.choice([rng.uniform(0.01, 5000), rng.lognormvariate(0, 6), rng.random()])
    text = rng.choice(
        [
            repr(value),
            f"{value:.2f}",
            f"{value:.4f}",
            f"{value:.{rng.randrange(0, 25)}f}",
            str(int(value) + 1),
            f"{int(value) + 1}.",
            f"{value:.3e}",
            f"00{value:.3f}",
            f".{rng.randrange(1, 10**9)}",
            repr(np.float32(value).item()),
            "1" + "0" * rng.randrange(0, 30),
            f"{rng.randrange(1, 10**19)}.{rng.randrange(0, 10**6)}",
        ]
    )
    return text if 0 < float(text) < float("inf") else "1"


def valid_text(rng: random.Random) -> str:
    """A file the reader accepts: any header, optional cells left empty, any line ending."""
    extra = rng.sample(["open", "high", "low", "volume"], rng.randrange(0, 5))
    names = ["date", "close", *extra]
    rng.shuffle(names)
    day = date(rng.randrange(1, 9700), rng.randrange(1, 13), 1)
    rows = []
    for _ in range(rng.randrange(1, 200)):
        day += timedelta(days=rng.choice([1, 1, 1, 3, 29, 366]))
        cells = {"date": day.isoformat(), "close": number(rng)}
        for name in extra:
            cells[name] = "" if rng.random() < 0.2 else number(rng)
        if "volume" in extra and rng.random() < 0.1:
            cells["volume"] = "0"
        rows.append(",".join(cells[n] for n in names))
    ending = rng.choice(["\n", "\r\n"])
    return ending.join([",".join(names), *rows]) + rng.choice(["", ending, ending * 2])


def test_random_valid_files_are_read_in_one_go_exactly_as_line_by_line() -> None:
    read = 0
    for case in range(300):
        rng = random.Random(f"valid:{case}")
        try:
            read += agree(valid_text(rng))
        except AssertionError as error:
            error.add_note(f"case valid:{case}")
            raise
    assert read == 300


def test_mutated_files_are_read_in_one_go_only_when_line_by_line_reads_them() -> None:
    texts = bundled_texts()
    read = refused = 0
    for case in range(800):
        rng = random.Random(f"mutated:{case}")
        text = price_text(rng, texts)
        try:
            fast = agree(text)
        except AssertionError as error:
            error.add_note(f"case mutated:{case}")
            raise
        read += fast
        refused += not fast
    assert read > 100
    assert refused > 100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,close\n2026-07-30,1,2026-07-31\n5\n", r"^SPY\.csv:2: expected 'YYYY-MM-DD,close'"),
        ("\x1cdate,close\n2026-07-31,1\n", r"^SPY\.csv:1: expected header"),
        ("date,close\n2026-07-30,1\n\n2026-07-30,2\n", r"^SPY\.csv: dates are not strictly"),
        ("date,close\n2026-02-29,1\n", r"^SPY\.csv:2: expected 'YYYY-MM-DD,close'"),
        ("date,close\n0000-01-01,1\n", r"^SPY\.csv:2: expected 'YYYY-MM-DD,close'"),
        ("date,close\n2026-07-31,1\x002\n", r"^SPY\.csv:2: expected 'YYYY-MM-DD,close'"),
        ("date,close,open\n2026-07-30,1,2\n2026-07-31,,2\n", r"^SPY\.csv:3: close '' is not"),
        ("date,close,volume\n2026-07-31,1,-0.5\n", r"^SPY\.csv:2: volume '-0.5' is not a price"),
    ],
)
def test_a_file_refused_names_its_bad_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "SPY.csv").write_text(text, newline="")
    with pytest.raises(DataError, match=message):
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)


def test_cells_the_reader_strips_read_the_same_either_way(tmp_path: Path) -> None:
    text = "date,close,open\n 2026-07-30 , 1.5 ,\n2026-07-31,1e1,\x1f2\n"
    (tmp_path / "SPY.csv").write_text(text)
    history = FilePriceStore(tmp_path).history(["SPY"], LAST, 2)
    assert history.closes[:, 0].tolist() == [1.5, 10.0]
    assert history.opens is not None
    assert np.isnan(history.opens[0, 0])
    assert history.opens[1, 0] == 2.0
    assert agree(text) is False  # read line by line, the same


def test_the_bundled_prices_read_the_same_as_gzip_and_float_read_them() -> None:
    directory = bundled_prices_dir()
    store = FilePriceStore.bundled()
    name = "SPY.csv.gz"
    rows = gzip.decompress(directory.joinpath(name).read_bytes()).decode().splitlines()[1:]
    series = store._read("SPY")
    assert series.closes.tolist() == [float(row.split(",")[1]) for row in rows]
    assert [str(d) for d in series.dates] == [row.split(",")[0] for row in rows]
